"""A decoder's shape from its config: sizes, every parameter shape, what each method trains.

Counting from config.json alone (no weights loaded) is what lets the memory estimate (memory.py)
and the web UI size a model before it is downloaded or loaded. Exact for Llama-like decoders
(Llama, Mistral, Qwen2, Qwen3); other families are a UserError that asks to load the model.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

from tunestudio.core.errors import UserError

# ---- model shape from a config ----------------------------------------------------------------

def _get(cfg, name, default=None):
    if isinstance(cfg, dict):
        return cfg.get(name, default)
    try:
        value = getattr(cfg, name)
    except AttributeError:
        return default
    return default if value is None else value


def load_model_config(model_or_path):
    """A model's config: the `.config` of a loaded model, a config object or dict as is, or
    `AutoConfig` read from a model folder (works offline, reads config.json only)."""
    if isinstance(model_or_path, (str, Path)):
        path = Path(model_or_path).expanduser()
        if path.is_dir() and not (path / "config.json").is_file():
            raise UserError(f"model folder {path} has no config.json: cannot estimate its memory",
                            "memory_no_config", folder=str(path))
        from transformers import AutoConfig
        try:
            cfg = AutoConfig.from_pretrained(str(model_or_path))
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read the config of model '{model_or_path}': {e}", "model_config_unreadable",
                            name=str(model_or_path), detail=str(e).splitlines()[0][:300] if str(e) else type(e).__name__
                            ) from None
    elif isinstance(model_or_path, dict):
        cfg = model_or_path
    else:
        cfg = getattr(model_or_path, "config", model_or_path)
    # Multimodal configs (Gemma 3, Llava...) hold the language model under text_config.
    if hasattr(cfg, "get_text_config"):
        cfg = cfg.get_text_config()
    elif isinstance(cfg, dict) and isinstance(cfg.get("text_config"), dict):
        cfg = cfg["text_config"]
    return cfg


def model_dims(cfg) -> SimpleNamespace:
    """The sizes the estimate needs, from Llama-style names (hidden_size, num_hidden_layers...)
    or GPT-2-style ones (n_embd, n_layer...)."""
    h = _get(cfg, "hidden_size") or _get(cfg, "n_embd") or _get(cfg, "d_model")
    layers = _get(cfg, "num_hidden_layers") or _get(cfg, "n_layer") or _get(cfg, "num_layers")
    heads = _get(cfg, "num_attention_heads") or _get(cfg, "n_head")
    vocab = _get(cfg, "vocab_size")
    if not all((h, layers, heads, vocab)):
        raise UserError(
            f"cannot estimate memory for model type '{_get(cfg, 'model_type', '?')}' from its config "
            "(no hidden size, layer count, head count or vocabulary size)",
            "memory_config_lacks_sizes", model_type=str(_get(cfg, "model_type", "?")))
    head_dim = _get(cfg, "head_dim") or h // heads
    kv_heads = _get(cfg, "num_key_value_heads") or heads
    inter = _get(cfg, "intermediate_size") or _get(cfg, "n_inner") or 4 * h
    model_type = _get(cfg, "model_type", "")
    return SimpleNamespace(
        h=h, layers=layers, heads=heads, head_dim=head_dim, kv_heads=kv_heads, q_dim=heads * head_dim,
        kv_dim=kv_heads * head_dim, inter=inter, vocab=vocab,
        tie=bool(_get(cfg, "tie_word_embeddings", False)),
        # Qwen2 always has q/k/v biases; Llama-likes say so with attention_bias.
        qkv_bias=bool(_get(cfg, "attention_bias", False)) or model_type.startswith("qwen2"),
        o_bias=bool(_get(cfg, "attention_bias", False)) and not model_type.startswith("qwen2"),
        mlp_bias=bool(_get(cfg, "mlp_bias", False)),
        qk_norm=model_type.startswith("qwen3"),
        moe=bool(_get(cfg, "num_local_experts") or _get(cfg, "num_experts")),
        llama_like=_get(cfg, "intermediate_size") is not None and _get(cfg, "hidden_size") is not None,
        eager=_get(cfg, "_attn_implementation", None) == "eager",
        model_type=model_type,
    )


def linear_shapes(d) -> list[tuple[str, int, int]]:
    """(name, out_features, in_features) of the linear layers in ONE decoder block."""
    return [
        ("q_proj", d.q_dim, d.h), ("k_proj", d.kv_dim, d.h), ("v_proj", d.kv_dim, d.h),
        ("o_proj", d.h, d.q_dim),
        ("gate_proj", d.inter, d.h), ("up_proj", d.inter, d.h), ("down_proj", d.h, d.inter),
    ]


def param_shapes(d) -> dict[str, list[tuple[int, ...]]]:
    """Every parameter shape of a Llama-like decoder, grouped: embed, block (one layer), final, head."""
    if not d.llama_like or d.moe:
        kind = "mixture-of-experts" if d.moe else f"'{d.model_type}'"
        raise UserError(
            f"cannot count the parameters of a {kind} model from its config alone "
            "(only Llama-like decoders: Llama, Mistral, Qwen2/3...); load the model to estimate its memory",
            "memory_moe_not_counted" if d.moe else "memory_model_not_counted", model_type=str(d.model_type))
    block = []
    for name, out_f, in_f in linear_shapes(d):
        block.append((out_f, in_f))
        if (name in ("q_proj", "k_proj", "v_proj") and d.qkv_bias) or (name == "o_proj" and d.o_bias) \
                or (name.endswith(("gate_proj", "up_proj", "down_proj")) and d.mlp_bias):
            block.append((out_f,))
    block += [(d.h,), (d.h,)]  # input and post-attention RMSNorm
    if d.qk_norm:
        block += [(d.head_dim,), (d.head_dim,)]
    return {
        "embed": [(d.vocab, d.h)],
        "block": block,
        "final": [(d.h,)],
        # A tied head is the embedding matrix itself: no extra parameters.
        "head": [] if d.tie else [(d.vocab, d.h)],
    }


def count_params(model_config) -> int:
    """Parameters of a Llama-like model from its config: embeddings, attention, MLP, norms,
    and lm_head unless tie_word_embeddings. Exact for Llama, Mistral, Qwen2 and Qwen3."""
    return param_count(model_dims(load_model_config(model_config)))


def param_count(d) -> int:
    """Parameters of the decoder whose sizes are `d` (model_dims), the head included unless tied."""
    groups = param_shapes(d)
    return (numel(groups["embed"]) + d.layers * numel(groups["block"])
            + numel(groups["final"]) + numel(groups["head"]))


def numel(shapes) -> int:
    """Elements in all `shapes` together."""
    return sum(math.prod(s) for s in shapes)


# ---- trainable parameters per method (config only) ---------------------------------------------

def trainable_shapes(d, method: str, *, lora_rank: int = 16, freeze_trainable_layers: int = 2,
                     num_virtual_tokens: int = 20) -> list[tuple[int, ...]]:
    """Shapes of what a method trains, without building the peft model (for estimates)."""
    groups = param_shapes(d)
    if method == "full":
        return groups["embed"] + groups["block"] * d.layers + groups["final"] + groups["head"]
    if method == "freeze":  # last N blocks, the final norm and the head (the embedding if tied)
        n = min(freeze_trainable_layers, d.layers)
        return groups["block"] * n + groups["final"] + (groups["head"] or groups["embed"])
    if method in ("lora", "qlora", "dora"):  # all-linear: every block projection, not lm_head
        shapes = []
        for _, out_f, in_f in linear_shapes(d):
            shapes += [(lora_rank, in_f), (out_f, lora_rank)]
            if method == "dora":
                shapes.append((out_f,))  # the magnitude vector
        return shapes * d.layers
    if method == "ia3":  # peft's Llama defaults: scale k, v outputs and the down_proj input
        return [(d.kv_dim,), (d.kv_dim,), (d.inter,)] * d.layers
    if method == "prefix":  # a key and a value prefix per layer
        return [(num_virtual_tokens, 2 * d.layers * d.kv_dim)]
    if method == "prompt":
        return [(num_virtual_tokens, d.h)]
    raise UserError(f"unknown method '{method}' for the memory estimate", "memory_method_unknown", method=str(method))
