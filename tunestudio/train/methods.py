"""Fine-tuning methods as data: a table from name to what the method does to a loaded model.

Each Method says how to load the base model (`load_kwargs`, e.g. 4-bit weights for qlora) and
how to make it trainable (`apply`): full and freeze set `requires_grad`, the rest wrap the model
with a peft config. Adding a method is adding one row here. Everything saved loads in plain
transformers (full, freeze) or peft (the adapters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tunestudio.config import choices
from tunestudio.config.choices import check_table
from tunestudio.core.errors import UserError


@dataclass(frozen=True)
class Method:
    name: str
    help: str
    adapter: bool                                   # saved as a peft adapter (vs a full model)
    peft_config: Callable | None = None             # (cfg, model, base_path) -> peft config
    apply: Callable | None = None                   # (model, cfg) -> model, for non-peft methods
    load_kwargs: Callable | None = None             # (cfg) -> extra from_pretrained kwargs
    mergeable: bool = False                         # merge_and_unload gives a plain model


def target_modules(cfg) -> str | list[str]:
    value = cfg.target_modules.strip()
    return "all-linear" if value == "all-linear" else [m.strip() for m in value.split(",") if m.strip()]


def _lora(cfg, model, base_path, use_dora=False):
    from peft import LoraConfig

    return LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                      lora_dropout=cfg.lora_dropout, target_modules=target_modules(cfg), use_dora=use_dora)


def _ia3(cfg, model, base_path):
    from peft import IA3Config
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as TARGETS

    targets = target_modules(cfg)
    if targets == "all-linear" and model.config.model_type in TARGETS:
        # IA3 scales keys, values and the MLP output: peft knows those layers for common models
        return IA3Config(task_type="CAUSAL_LM")
    return IA3Config(task_type="CAUSAL_LM", target_modules=targets,
                     feedforward_modules=[] if targets != "all-linear" else None)


def _prefix(cfg, model, base_path):
    from peft import PrefixTuningConfig

    return PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=cfg.num_virtual_tokens)


def _prompt(cfg, model, base_path):
    from peft import PromptTuningConfig

    if cfg.prompt_init_text:
        return PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=cfg.num_virtual_tokens,
                                  prompt_tuning_init="TEXT", prompt_tuning_init_text=cfg.prompt_init_text,
                                  tokenizer_name_or_path=base_path)
    return PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=cfg.num_virtual_tokens)


def _full(model, cfg):
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def decoder_blocks(model):
    """The model's list of transformer blocks: the ModuleList as long as config.num_hidden_layers."""
    import torch

    n = getattr(model.config, "num_hidden_layers", None)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return name, module
    raise UserError(f"--method freeze: cannot find the transformer blocks of this {type(model).__name__}: "
                    "use lora or full", "freeze_no_blocks", option="method", model_class=type(model).__name__)


def _freeze(model, cfg):
    """Train the last `freeze_layers` blocks, the final norm and the output head; freeze the rest."""
    prefix, blocks = decoder_blocks(model)
    n = len(blocks)
    if cfg.freeze_layers > n:
        raise UserError(f"--freeze-layers {cfg.freeze_layers}: the model has only {n} blocks", "freeze_too_many_layers",
                        option="freeze_layers", value=cfg.freeze_layers, blocks=n)
    for p in model.parameters():
        p.requires_grad_(False)
    for block in list(blocks)[n - cfg.freeze_layers:]:
        for p in block.parameters():
            p.requires_grad_(True)
    for p in model.get_output_embeddings().parameters():
        p.requires_grad_(True)
    # the norm right before the head belongs to the trained top of the network
    for name, module in model.named_modules():
        if name.startswith(prefix.rsplit(".", 1)[0]) and name.endswith("norm") and not name.startswith(prefix):
            for p in module.parameters():
                p.requires_grad_(True)
    return model


def _four_bit(cfg):
    import torch
    from transformers import BitsAndBytesConfig

    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"quantization_config": BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype), "dtype": dtype}


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("full", "train every weight", adapter=False, apply=_full),
    Method("freeze", "train only the last N blocks and the head", adapter=False, apply=_freeze),
    Method("lora", "low-rank adapters on the chosen layers", adapter=True, peft_config=_lora, mergeable=True),
    Method("dora", "weight-decomposed low-rank adapters", adapter=True,
           peft_config=lambda cfg, model, base: _lora(cfg, model, base, use_dora=True), mergeable=True),
    Method("ia3", "learned scaling of keys, values and MLP activations", adapter=True, peft_config=_ia3,
           mergeable=True),
    Method("prefix", "learned key/value prefixes in every layer", adapter=True, peft_config=_prefix),
    Method("prompt", "learned virtual tokens before the input", adapter=True, peft_config=_prompt),
    Method("qlora", "LoRA on a 4-bit quantised base (CUDA + bitsandbytes)", adapter=True,
           peft_config=_lora, load_kwargs=_four_bit, mergeable=True),
]}
check_table(METHODS, choices.METHODS, "train/methods.py")


def apply_method(model, cfg, base_path: str):
    """Make `model` trainable with `cfg.method`: a peft-wrapped model, or the model itself."""
    method = METHODS[cfg.method]
    if method.peft_config is None:
        return method.apply(model, cfg)
    from peft import get_peft_model, prepare_model_for_kbit_training

    if cfg.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    try:
        return get_peft_model(model, method.peft_config(cfg, model, base_path))
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"--method {cfg.method} cannot be applied to this {model.config.model_type} model: "
                        f"{str(e).splitlines()[0]}", "method_not_applicable", option="method", method=cfg.method,
                        model_type=str(model.config.model_type), detail=str(e).splitlines()[0]) from None


def check_supported(model, cfg, tokenizer) -> None:
    """Prefix/prompt tuning depend on how the model handles its cache and inputs: run one tiny
    forward pass and turn a failure into a clear message instead of a traceback mid-training."""
    if cfg.method not in ("prefix", "prompt"):
        return
    import torch

    ids = torch.tensor([[tokenizer.eos_token_id or 0] * 2], device=model.device)
    try:
        with torch.no_grad():
            model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids)
    except Exception as e:  # noqa: BLE001 - any failure here means "not supported"
        detail = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        raise UserError(f"--method {cfg.method} does not work with this {model.config.model_type} model "
                        f"({detail}): use lora or ia3", "method_unsupported_by_model", option="method",
                        method=cfg.method, model_type=str(model.config.model_type), detail=detail) from None
