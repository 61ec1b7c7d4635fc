"""Where a run's weights and tokenizer come from, and the model it trains.

`resolve_base` turns `--model` (a folder under models/, a path or a hub id) or `--from-run` (a
parent run's final model or adapter) into a `Base`; `load_tokenizer` loads its tokenizer with a chat
template and a pad token; `build_model` loads the weights in the precision the method wants and
applies the method (train/methods.py), continuing or merging a parent's adapter.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from tunestudio.config.run_config import RunConfig, resolve_precision
from tunestudio.core import registry
from tunestudio.core.errors import UserError
from tunestudio.data.chat import turns
from tunestudio.data.chat.template import ensure_chat_template
from tunestudio.train import attention
from tunestudio.train.methods import METHODS, apply_method, check_supported

DROPOUT_ATTRS = ("attention_dropout", "hidden_dropout", "dropout", "resid_pdrop", "embd_pdrop", "attn_pdrop",
                 "hidden_dropout_prob", "attention_probs_dropout_prob")



@dataclass
class Base:
    """Where the weights come from: a base model, or a parent run's result."""
    path: str                       # what from_pretrained loads: a folder or a hub id
    revision: str                   # hub revision, or a fingerprint of the local weights
    tokenizer_path: str
    parent_id: str | None = None
    adapter: str | None = None      # the parent run's adapter folder, when it trained one
    parent_method: str | None = None


def resolve_base(cfg: RunConfig, ws) -> Base:
    if cfg.from_run:
        parent = registry.lookup_run(ws.db_path, cfg.from_run)
        final = Path(parent.get("output_dir") or "")
        if parent["status"] not in ("completed", "stopped") or not (final / "config.json").is_file() \
                and not (final / "adapter_config.json").is_file():
            raise UserError(f"--from-run {cfg.from_run}: run {parent['id']} is {parent['status']} and has no "
                            "final model to start from", "parent_no_model", run=parent["id"], status=parent["status"])
        if (final / "adapter_config.json").is_file():
            return Base(parent["base_model"], parent.get("base_revision") or "", str(final), parent["id"],
                        adapter=str(final), parent_method=parent.get("method"))
        return Base(str(final), weights_fingerprint(final), str(final), parent["id"])
    path = ws.model_path_or_id(cfg.model)
    if Path(path).is_dir():
        return Base(path, weights_fingerprint(Path(path)), path)
    from transformers import AutoConfig

    try:  # a hub id: make sure it exists (or is cached) before creating a run
        AutoConfig.from_pretrained(path, revision=cfg.revision or None)
    except Exception as e:  # noqa: BLE001 - OSError, HTTP errors, offline mode...
        detail = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise UserError(f"model '{cfg.model}' is not a folder under {ws.models_dir} and could not be loaded "
                        f"from the hub ({detail})", "model_not_on_hub", name=cfg.model, folder=str(ws.models_dir),
                        detail=detail) from None
    return Base(path, cfg.revision or "main", path)


def original_model(cfg: RunConfig, ws, base: Base) -> str:
    """The base model this run descends from (a --from-run parent's own base): what its presets and
    replay judge ("random" or "pretrained", train/presets.model_kind)."""
    if cfg.from_run:
        return registry.lookup_run(ws.db_path, cfg.from_run).get("base_model") or base.path
    return base.path


def weights_fingerprint(folder: Path) -> str:
    """A quick identity for local weights: sizes plus the first and last MiB of each weights file
    (hashing every byte of a 15 GB model at each run start would take minutes)."""
    h = hashlib.sha256()
    for p in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        size = p.stat().st_size
        h.update(f"{p.name}:{size}".encode())
        with open(p, "rb") as f:
            h.update(f.read(1 << 20))
            if size > 2 << 20:
                f.seek(-(1 << 20), os.SEEK_END)
                h.update(f.read())
    return "weights-sha256:" + h.hexdigest()[:16]


def load_tokenizer(base: Base):
    from transformers import AutoTokenizer


    try:
        tokenizer = AutoTokenizer.from_pretrained(base.tokenizer_path)
    except Exception as e:  # noqa: BLE001
        detail = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise UserError(f"cannot load the tokenizer of {base.tokenizer_path}: {detail}", "tokenizer_unloadable",
                        source=str(base.tokenizer_path), detail=detail) from None
    ensure_chat_template(tokenizer)
    if tokenizer.pad_token_id is None:  # many base models have none; padding is masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def precision(cfg: RunConfig) -> str:
    """The precision `cfg` trains in on this machine (\"auto\" resolved)."""
    return resolve_precision(cfg.precision)


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def build_model(cfg: RunConfig, base: Base, tokenizer):
    from transformers import AutoConfig, AutoModelForCausalLM

    method = METHODS[cfg.method]
    config = AutoConfig.from_pretrained(base.path, revision=hub_revision(base))
    if cfg.dropout >= 0:
        for attr in DROPOUT_ATTRS:
            if isinstance(getattr(config, attr, None), float):
                setattr(config, attr, cfg.dropout)
    kwargs = method.load_kwargs(cfg) if method.load_kwargs else {"dtype": base_dtype(cfg)}
    kwargs.update(attention.load_kwargs(cfg))   # FlashAttention-2 for padding-free batches on CUDA
    model = AutoModelForCausalLM.from_pretrained(base.path, config=config, revision=hub_revision(base), **kwargs)
    if cfg.gradient_checkpointing and cfg.method != "qlora":  # qlora's preparation turns it on itself
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False  # no generation while training; the cache only costs memory
    # every folder this model is saved to (checkpoints, final/) stops where the template ends a turn
    turns.set_generation_eos(model, tokenizer)
    if base.adapter:
        model = from_parent_adapter(model, cfg, base)
    else:
        model = apply_method(model, cfg, base.path)
    check_supported(model, cfg, tokenizer)
    if METHODS[cfg.method].peft_config is not None:
        from tunestudio.train import fast_lora

        fast_lora.install(model)   # LoRA's forward with one dropout mask per shared input (fast_lora.py)
    return model


def base_dtype(cfg: RunConfig):
    """fp32 weights, except the frozen base under LoRA/DoRA in bf16: autocast would cast every
    frozen weight to bf16 on every forward anyway (~17% of a CPU step, bench/train_speed.py), so
    keep them in bf16 once. The adapter itself stays fp32 (peft upcasts it) and is saved in fp32."""
    import torch

    if cfg.method in ("lora", "dora") and precision(cfg) == "bf16":
        return torch.bfloat16
    return torch.float32


def hub_revision(base: Base) -> str | None:
    return None if Path(base.path).is_dir() or base.revision in ("", "main") else base.revision


def from_parent_adapter(model, cfg, base: Base):
    """A parent run trained an adapter: keep training it (same method), or merge it into the base
    and apply this run's method."""
    from peft import PeftModel

    if base.parent_method == cfg.method:
        return PeftModel.from_pretrained(model, base.adapter, is_trainable=True)
    if not METHODS.get(base.parent_method, METHODS["prompt"]).mergeable:
        raise UserError(f"--from-run: the parent's {base.parent_method} adapter cannot be merged into the "
                        f"model, so it can only be continued with --method {base.parent_method}",
                        "parent_adapter_not_mergeable", option="from_run", method=base.parent_method)
    merged = PeftModel.from_pretrained(model, base.adapter).merge_and_unload()
    return apply_method(merged, cfg, base.path)
