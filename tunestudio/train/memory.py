"""How much memory a training run needs, how much the device has, and what to do on CUDA OOM.

Three uses:
- before loading weights (the web UI, from a model's config.json): `estimate("models/x", ...)`;
- before training (the engine, with the loaded, peft-wrapped model): `estimate(model, ...)`,
  then `check_fits(est, available_memory(device))` refuses a run that clearly cannot fit;
- during training: `run_with_oom_retry(fn, micro_batch, grad_accum, on_retry)` halves the
  micro-batch on `torch.OutOfMemoryError`, keeping the effective batch.

The model's sizes and parameter shapes come from its config (model_shape.py).

Every figure is bytes for ONE process (one device): under DDP each rank holds all of it; FSDP
and ZeRO shard weights/gradients/optimizer state, which this estimate does not model.

Activation formula (stated because everything else is plain parameter counting): per decoder
layer and per token we count what autograd keeps for the backward pass, following Korthikanti et
al. 2022 ("Reducing Activation Recomputation in Large Transformer Models", arXiv:2205.05198,
sbh(34 + 5as/h) bytes for a GPT block in 16-bit) adapted to Llama blocks (RMSNorm, SwiGLU, GQA,
no dropout):
    norms in/out 4h + q h + k,v 2*h_kv + attention output h + SwiGLU gate, up, silu, product 4i
    = 6h + 2*h_kv + 4i elements, plus a*s attention probabilities per token with eager attention
    (SDPA / flash attention keep none of the s x s matrix).
Times `act_bytes` (2 in bf16/fp16 autocast, 4 in fp32), b*s tokens and the layers that need a
backward pass. The loss adds the logits b*s*vocab three times: in the compute dtype, upcast to
fp32 for the cross-entropy, and its fp32 log-softmax. With gradient checkpointing only each
layer's input (h per token) is kept, plus one layer's full set while it is recomputed.
"""

from __future__ import annotations

import gc
import math
from typing import Any, Callable

from tunestudio.errors import UserError
from tunestudio.train.config import resolve_precision
from tunestudio.train import model_shape
from tunestudio.train.model_shape import (linear_shapes, load_model_config, model_dims, numel, param_count,
                                          trainable_shapes)

DTYPE_BYTES = {"fp32": 4, "float32": 4, "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2}
ADAPTER_METHODS = {"lora", "dora", "qlora", "ia3", "prefix", "prompt"}
# nf4 with blocksize 64 and one fp32 absmax per block: 4 bits + 32/64 bits per weight.
NF4_BYTES = 0.5 + 4 / 64
DEFAULT_MARGIN = 1.1  # refuse only when the estimate is clearly over: it is an estimate
count_params = model_shape.count_params   # re-exported: the web UI (tab_model.py) and tests count here


# ---- the estimate -----------------------------------------------------------------------------

def estimate_for_config(cfg, model_or_config=None, **overrides) -> dict:
    """`estimate` with the options of a RunConfig (or any object with the same field names):
    method, batch_size, max_length, precision, optimizer, gradient_checkpointing, lora_r,
    freeze_layers, num_virtual_tokens. `model_or_config` defaults to `cfg.model` as a path
    (a folder under models/ must be resolved by the caller: `ws.model_path_or_id(cfg.model)`)."""
    kwargs = dict(
        method=cfg.method, batch_size=cfg.batch_size, max_length=cfg.max_length,
        precision=getattr(cfg, "precision", "fp32"), optimizer=getattr(cfg, "optimizer", "adamw"),
        grad_checkpointing=getattr(cfg, "gradient_checkpointing", False),
        lora_rank=getattr(cfg, "lora_r", 16), freeze_trainable_layers=getattr(cfg, "freeze_layers", 2),
        num_virtual_tokens=getattr(cfg, "num_virtual_tokens", 20),
    )
    return estimate(model_or_config if model_or_config is not None else cfg.model, **{**kwargs, **overrides})

def _optimizer_bytes(optimizer: str, shapes, param_bytes: float) -> tuple[int, str]:
    """Optimizer state for the trainable shapes, and the rule used (recorded in the estimate)."""
    name = (optimizer or "adamw").lower()
    n = numel(shapes)
    if "8bit" in name:
        return 2 * n, "two 8-bit moments"
    if name.startswith("adafactor"):
        # Factored second moment: a row and a column vector per matrix, a full vector otherwise.
        return 4 * sum((s[0] + s[1]) if len(s) == 2 else math.prod(s) for s in shapes), "factored second moment"
    if name.startswith("sgd"):
        return int(param_bytes * n), "one momentum buffer"
    if name.startswith("lion"):
        return int(param_bytes * n), "one moment in the parameter dtype"
    # AdamW and anything unknown: two moments (the common and the larger case).
    return int(2 * param_bytes * n), "two moments in the parameter dtype"


def _activation_bytes(d, *, batch: int, length: int, act_bytes: int, grad_layers: int,
                      checkpointing: bool) -> dict:
    tokens = batch * length
    per_layer_token = 6 * d.h + 2 * d.kv_dim + 4 * d.inter + (d.heads * length if d.eager else 0)
    full_layer = tokens * per_layer_token * act_bytes
    logits = tokens * d.vocab * (act_bytes + 4 + 4)
    stored = grad_layers * full_layer
    checkpointed = grad_layers * tokens * d.h * act_bytes + (full_layer if grad_layers else 0)
    return {"activations": int((checkpointed if checkpointing else stored) + logits),
            "activations_if_checkpointing": int(checkpointed + logits),
            "activations_without_checkpointing": int(stored + logits)}


def estimate(model_or_config, *, method: str = "full", batch_size: int = 1, max_length: int = 512,
             precision: str = "fp32", optimizer: str = "adamw", grad_checkpointing: bool = False,
             trainable_params: int | None = None, weights_dtype: str | None = None,
             lora_rank: int = 16, freeze_trainable_layers: int = 2, num_virtual_tokens: int = 20) -> dict:
    """Bytes one training process needs: weights, gradients, optimizer state, activations, total.

    `model_or_config`: a loaded model (plain or peft-wrapped: parameters, their dtypes and what
    requires grad are measured), a transformers config, a config.json dict, or a model folder
    path (only config.json is read). From a config the counts come from
    `model_shape.param_shapes` (Llama-like decoders) and the method's trainable shapes (`lora_rank`,
    `freeze_trainable_layers`, `num_virtual_tokens`); `trainable_params` overrides the trainable
    count when known.
    `precision` is the compute precision (fp32, bf16, fp16): the activations' dtype.
    `weights_dtype` is how the weights are stored (default: fp32 for full/freeze, as mixed-
    precision training keeps fp32 weights; `precision` for adapter methods, whose frozen base is
    loaded in the compute dtype; qlora stores block weights in 4 bits). A loaded model is
    measured. `batch_size` is the per-device micro-batch: gradient accumulation adds no memory.

    Returns a JSON-able dict: weights, gradients, optimizer, activations, total (bytes),
    activations_if_checkpointing, activations_without_checkpointing, params,
    trainable_params, and `assumptions` (the inputs and the rules used), which `check_fits` reads.
    """
    method = (method or "full").lower()
    precision = resolve_precision(precision)
    if precision not in DTYPE_BYTES:
        raise UserError(f"unknown precision '{precision}' (fp32, bf16 or fp16)", "memory_precision_unknown",
                        value=str(precision))
    if batch_size < 1 or max_length < 1:
        raise UserError("batch size and max length must be at least 1 for the memory estimate",
                        "memory_sizes_too_small")
    act_bytes = DTYPE_BYTES[precision]
    d = model_dims(load_model_config(model_or_config))
    loaded = hasattr(model_or_config, "named_parameters")

    if loaded:
        params = list(model_or_config.named_parameters())
        n_params = sum(p.numel() for _, p in params)
        weights = sum(p.numel() * p.element_size() for _, p in params) + \
            sum(b.numel() * b.element_size() for b in model_or_config.buffers())
        train = [p for _, p in params if p.requires_grad]
        shapes = [tuple(p.shape) for p in train]
        n_train = sum(p.numel() for p in train)
        grads = sum(p.numel() * p.element_size() for p in train)
        param_bytes = (grads / n_train) if n_train else 4
        grad_layers = _layers_with_grad(params, d.layers)
        source, w_dtype = "loaded model", "measured"
    else:
        n_params = param_count(d)
        # Full training keeps fp32 weights under mixed precision; an adapter method's frozen base
        # is usually loaded in the compute dtype.
        w_dtype = (weights_dtype or (precision if method in ADAPTER_METHODS else "fp32")).lower()
        if w_dtype not in DTYPE_BYTES:
            raise UserError(f"unknown weights dtype '{weights_dtype}' (fp32, bf16 or fp16)", "memory_dtype_unknown",
                            value=str(weights_dtype))
        if method == "qlora":  # block linears in nf4, embeddings/norms/head in 16-bit
            linear = d.layers * sum(o * i for _, o, i in linear_shapes(d))
            weights = int(linear * NF4_BYTES + (n_params - linear) * 2)
        else:
            weights = n_params * DTYPE_BYTES[w_dtype]
        shapes = trainable_shapes(d, method, lora_rank=lora_rank, num_virtual_tokens=num_virtual_tokens,
                                  freeze_trainable_layers=freeze_trainable_layers)
        n_train = numel(shapes)
        # Full/freeze train the weights in their own dtype; peft keeps adapters in fp32.
        param_bytes = DTYPE_BYTES[w_dtype] if method in ("full", "freeze") else 4
        grads = n_train * param_bytes
        # Freeze trains only the top blocks, so the backward pass stops there, unless the head is
        # tied to the input embedding: that gradient flows back through every layer.
        grad_layers = min(freeze_trainable_layers, d.layers) if method == "freeze" and not d.tie else d.layers
        source = "config"
    opt_bytes, opt_rule = _optimizer_bytes(optimizer, shapes, param_bytes)
    if trainable_params is not None and trainable_params != n_train:
        # A known count (e.g. from peft's print_trainable_parameters) wins: scale per parameter.
        if n_train:
            grads, opt_bytes = (int(x * trainable_params / n_train) for x in (grads, opt_bytes))
        else:
            grads = int(trainable_params * param_bytes)
            opt_bytes, opt_rule = _optimizer_bytes(optimizer, [(int(trainable_params),)], param_bytes)
        n_train = int(trainable_params)

    acts = _activation_bytes(d, batch=batch_size, length=max_length, act_bytes=act_bytes,
                             grad_layers=grad_layers, checkpointing=grad_checkpointing)
    total = int(weights + grads + opt_bytes + acts["activations"])
    return {
        "weights": int(weights), "gradients": int(grads), "optimizer": int(opt_bytes),
        "activations": acts["activations"], "total": total,
        "activations_if_checkpointing": acts["activations_if_checkpointing"],
        "activations_without_checkpointing": acts["activations_without_checkpointing"],
        "params": int(n_params), "trainable_params": int(n_train),
        "assumptions": {
            "source": source, "method": method, "batch_size": batch_size, "max_length": max_length,
            "precision": precision, "optimizer": optimizer, "optimizer_state": opt_rule,
            "grad_checkpointing": bool(grad_checkpointing), "layers_with_grad": grad_layers,
            "weights_dtype": "nf4 + bf16" if method == "qlora" and not loaded else w_dtype,
            "attention": "eager" if d.eager else "sdpa/flash",
        },
    }


def _layers_with_grad(named_params, n_layers: int) -> int:
    """Decoder layers that need a backward pass: from the first layer holding a trainable
    parameter to the last (an input-side adapter such as a prompt needs them all)."""
    first = None
    for name, p in named_params:
        if not p.requires_grad:
            continue
        idx = _layer_index(name)
        if idx is None:  # embeddings, prompt encoder: gradients flow through every layer
            if "embed" in name or "prompt" in name or "prefix" in name:
                return n_layers
            continue
        first = idx if first is None else min(first, idx)
    return n_layers - first if first is not None else 0


def _layer_index(name: str) -> int | None:
    parts = name.split(".")
    for a, b in zip(parts, parts[1:]):
        if a in ("layers", "h", "layer", "blocks") and b.isdigit():
            return int(b)
    return None


# ---- what the device has ----------------------------------------------------------------------

def available_memory(device=None) -> int:
    """Free bytes on `device` ("cuda", "cuda:1", a torch.device, "cpu"; None: CUDA if present).

    CUDA: free memory as the driver reports it (other processes' use counted). CPU (and anything
    else): the memory the OS can give without swapping (MemAvailable)."""
    import torch

    dev = torch.device(device) if device is not None else \
        torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        return int(free)
    try:
        import psutil
        return int(psutil.virtual_memory().available)
    except ImportError:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    raise RuntimeError("cannot read the available memory on this machine")


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def breakdown(est: dict) -> str:
    """'about 3.1 GiB (weights 1.0 GiB, gradients ..., optimizer ..., activations ...)'."""
    parts = ", ".join(f"{k} {human_bytes(est[k])}" for k in ("weights", "gradients", "optimizer", "activations"))
    return f"about {human_bytes(est['total'])} ({parts})"


def advice(est: dict | None = None, *, method: str | None = None, max_length: int | None = None,
           grad_checkpointing: bool | None = None, batch_size: int | None = None) -> list[str]:
    """Concrete ways to need less memory, most effective first (with numbers when `est` is given).
    Each is text that also carries a code and its numbers (errors.CodedText: the UI words it)."""
    from tunestudio.errors import CodedText

    a = dict((est or {}).get("assumptions", {}))
    method = method or a.get("method")
    max_length = max_length or a.get("max_length")
    batch_size = batch_size or a.get("batch_size")
    if grad_checkpointing is None:
        grad_checkpointing = a.get("grad_checkpointing")
    tips = []
    if method in (None, "full", "freeze"):
        saved = human_bytes(est["gradients"] + est["optimizer"]) if est else None
        tips.append(CodedText(f"train an adapter instead: --method lora (saves about {saved} of gradients and optimizer "
                              "state)", "tip_adapter_saves", saved=saved) if saved else
                    CodedText("train an adapter instead: --method lora", "tip_adapter"))
    if not grad_checkpointing:
        after, before = (human_bytes(est["activations_if_checkpointing"]), human_bytes(est["activations"])) if est else (None, None)
        tips.append(CodedText(f"turn on gradient checkpointing (activations about {after} instead of {before})",
                              "tip_checkpointing_saves", after=after, before=before) if est else
                    CodedText("turn on gradient checkpointing", "tip_checkpointing"))
    if max_length is None or max_length > 256:
        now = f" (now {max_length})" if max_length else ""
        tips.append(CodedText(f"use a shorter --max-length{now}: activations grow with it",
                              "tip_max_length_now" if max_length else "tip_max_length", now=max_length))
    if batch_size is None or batch_size > 1:
        now = f" (now {batch_size})" if batch_size else ""
        tips.append(CodedText(f"use a smaller --batch-size{now} with a larger --grad-accum: same effective batch, "
                              "fewer activations", "tip_batch_size_now" if batch_size else "tip_batch_size", now=batch_size))
    if method != "qlora":
        tips.append(CodedText("QLoRA (--method qlora, CUDA GPU with bitsandbytes) stores the base weights in 4 bits",
                              "tip_qlora"))
    return tips


def check_fits(est: dict, available: int, *, margin: float = DEFAULT_MARGIN, device: str | None = None) -> tuple[bool, str]:
    """(ok, message). Not ok only when the estimate exceeds `margin` x available: the estimate
    is approximate, so a close call is allowed with a warning in the message."""
    where = f" on {device}" if device else ""
    needs = f"this run needs {breakdown(est)}; {human_bytes(available)} is available{where}"
    if est["total"] > margin * available:
        tips = "; ".join(advice(est))
        return False, f"not enough memory: {needs}. To fit: {tips}"
    if est["total"] > 0.9 * available:
        return True, f"memory is tight: {needs}. If it runs out: {'; '.join(advice(est)[:3])}"
    return True, needs


# ---- CUDA out-of-memory retry -----------------------------------------------------------------

def is_oom(exc: BaseException) -> bool:
    """True for CUDA out-of-memory, also when a library re-raised it as a RuntimeError."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower() and "cuda" in str(exc).lower()


def smaller_micro_batch(micro_batch: int, grad_accum: int) -> tuple[int, int]:
    """Half the micro-batch (rounded down to a divisor of the effective batch, so
    micro x accum stays exactly the same), and the accumulation that keeps it."""
    effective = micro_batch * grad_accum
    new = max(1, micro_batch // 2)
    while effective % new:
        new -= 1
    return new, effective // new


def _free_cuda_memory() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_with_oom_retry(train_fn: Callable[[int, int], Any], micro_batch: int, grad_accum: int,
                       on_retry: Callable[[dict], None] | None = None, *, method: str | None = None,
                       max_length: int | None = None, grad_checkpointing: bool | None = None) -> Any:
    """Call `train_fn(micro_batch, grad_accum)`; on CUDA out-of-memory call it again with half
    the micro-batch and twice the accumulation (same effective batch), down to micro-batch 1.

    `train_fn` must be safe to call again: it builds its trainer/dataloader for the sizes it is
    given and restarts (or resumes from the run's last checkpoint). Its return value is returned.
    `on_retry(event)` is called before each retry with a JSON-able dict:
        {"attempt", "micro_batch", "grad_accum", "new_micro_batch", "new_grad_accum",
         "effective_batch", "error"}
    (the engine writes it as `events.emit("oom_retry", **event)`). When micro-batch 1 still runs out of memory it
    raises UserError with concrete advice (`method`, `max_length`, `grad_checkpointing` tailor it).

    Multi-process runs: an OOM on one rank leaves the others waiting in a collective, so only
    use this with world_size 1 (or have every rank agree before retrying).
    """
    if micro_batch < 1 or grad_accum < 1:
        raise UserError("batch size and gradient accumulation must be at least 1", "micro_batch_too_small")
    attempt = 0
    while True:
        error = None
        try:
            return train_fn(micro_batch, grad_accum)
        except Exception as e:  # noqa: BLE001 - only OOM is handled, the rest re-raised
            if not is_oom(e):
                raise
            error = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        # Outside the except block: the traceback (and the tensors its frames hold) is gone,
        # so emptying the cache can actually return that memory.
        _free_cuda_memory()
        if micro_batch == 1:
            tip_list = advice(method=method, max_length=max_length, grad_checkpointing=grad_checkpointing, batch_size=1)
            tips = "; ".join(tip_list)
            raise UserError(   # the tips are CodedTexts: the web UI words each (engine.tip_*)
                f"CUDA ran out of memory even with a micro-batch of 1 ({error}). To fit: {tips}",
                "out_of_memory", error=error,
                tips=[{"code": tip.code, "message": str(tip), **tip.fields} for tip in tip_list])
        attempt += 1
        new_mb, new_ga = smaller_micro_batch(micro_batch, grad_accum)
        event = {"attempt": attempt, "micro_batch": micro_batch, "grad_accum": grad_accum,
                 "new_micro_batch": new_mb, "new_grad_accum": new_ga, "effective_batch": new_mb * new_ga,
                 "error": error}
        if on_retry is not None:
            on_retry(event)
        micro_batch, grad_accum = new_mb, new_ga


