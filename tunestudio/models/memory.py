"""How much memory a training run needs, how much the device has, and what to do on CUDA OOM.

Three uses:
- before loading weights (the web UI, `bench-models`, the engine's start check; from a model's
  config.json): `estimate("models/x", ...)`, or `estimate_settings` with a form's settings;
- before training (the engine, with the loaded, peft-wrapped model): `estimate(model, ...)`,
  then `check_fits(est, available_memory(device))` refuses a run that clearly cannot fit;
- during training: `run_with_oom_retry(fn, micro_batch, grad_accum, on_retry)` halves the
  micro-batch on `torch.OutOfMemoryError`, keeping the effective batch.

The model's sizes and parameter shapes come from its config (model_shape.py).

Every figure is bytes for ONE process (one device): under DDP each rank holds all of it; FSDP
and ZeRO shard weights/gradients/optimizer state, which this estimate does not model. On a CPU it
is the process's peak resident memory, so it includes what the process holds before the model
(`runtime`: Python, torch, transformers, peft, the tokenizer, the data); on CUDA it is GPU memory.

The parts, each checked against SmolLM2-135M-Instruct (30 layers, hidden 576, 49,152-token tied
vocabulary) trained on a CPU by `tunestudio train` (peak RSS; bench/memory_estimate.md has the table):
- weights as the engine loads them (model_source.base_dtype: fp32, the frozen base of LoRA/DoRA in
  bf16 under bf16, QLoRA's block linears in nf4), plus the 16-bit copy autocast keeps of every fp32
  matrix the forward uses when computing in bf16/fp16;
- gradients and optimizer state for the trained parameters only;
- activations of the longest batch: batch x its longest row (the data's, when the dataset is known:
  `data_lengths`; else --max-length) x the layers that need a backward pass, plus the logits of the
  trained positions (the engine's loss computes logits only where a label is, train/trainer.py);
- runtime: what a CPU process holds before loading the model.

Activations per decoder layer and per token: what autograd keeps for the backward pass, counted
with torch.autograd.graph.saved_tensors_hooks on Llama blocks (RMSNorm, SwiGLU, GQA, SDPA), in the
spirit of Korthikanti et al. 2022 (arXiv:2205.05198):
    act_bytes x (4h + 2q + 2*h_kv + 4i)  norm inputs, q, k, v, attention output, SwiGLU gate/up/silu/product
    + 2 RMSNorms x h x (4 in fp32; 11 under 16-bit autocast: their fp32 upcast, fp32 output, 16-bit cast)
    + LoRA/DoRA/QLoRA on all linear layers: (5h + q + i) input elements x (act_bytes + 1): each
      adapter's dropped-out (or cast) input and its dropout mask
    + a*s attention probabilities per token with eager attention (SDPA keeps none of the s x s matrix).
The logits of each trained position take LOGIT_BYTES x vocab at the loss's peak (fp32 log-softmax
kept for the backward pass, its gradient, the gradient of the fp32 upcast; the 16-bit logits too
under autocast). With gradient checkpointing only each layer's input is kept, plus one layer's full
set while it is recomputed. On a CPU the allocator keeps freed blocks of earlier batches (batches
of other lengths rarely fit them), so the peak resident memory is CPU_ACTIVATION_SLACK x the
activations alive at once.
"""

from __future__ import annotations

import math

from tunestudio.config.run_config import RunConfig, resolve_precision
from tunestudio.core.errors import CodedText, UserError
from tunestudio.models import shape as model_shape
from tunestudio.models.shape import linear_shapes, load_model_config, model_dims, numel, param_count, trainable_shapes

DTYPE_BYTES = {"fp32": 4, "float32": 4, "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2}
ADAPTER_METHODS = {"lora", "dora", "qlora", "ia3", "prefix", "prompt"}
LORA_LIKE = {"lora", "dora", "qlora"}
# nf4 with blocksize 64 and one fp32 absmax per block: 4 bits + 32/64 bits per weight.
NF4_BYTES = 0.5 + 4 / 64
DEFAULT_MARGIN = 1.1  # refuse only when the estimate is clearly over: it is an estimate
count_params = model_shape.count_params   # re-exported: the web UI (tab_model.py) and tests count here

# What a CPU training process holds before its weights load: Python, torch, transformers, peft,
# accelerate, the engine's modules, the tokenizer and the encoded data. Measured: 0.40 GiB for a
# process that only imports them, 0.56 GiB in `tunestudio train` once the model is loaded, less its weights
# (SmolLM2's tokenizer, 400 short rows). GPU memory holds none of it (the CUDA context is outside
# what `available_memory` reports as free once torch has started it).
RUNTIME_CPU = 570 * 2**20
# Bytes per vocabulary entry per trained position at the loss's peak (see the module docstring).
LOGIT_BYTES = {4: 12, 2: 14}
# Peak RSS over the activations alive at once, on a CPU: glibc keeps blocks freed within a step
# and by earlier batches of other lengths, which later tensors do not fit, so the peak grows over
# the first steps and jumps at the longest batch. Fitted on SmolLM2 runs of one epoch (20 steps,
# rows of 287-437 tokens), whose peak came at the longest batch: LoRA needed 1.53 x what autograd
# keeps, full training 1.25 (its gradients are allocated into the blocks the backward pass frees;
# bench/memory_estimate.md). Slightly under those, as runs of a few steps (most of the table)
# peak lower: they rarely meet the longest batch.
CPU_ACTIVATION_SLACK = {"lora_like": 1.45, "other": 1.15}


# ---- the estimate -----------------------------------------------------------------------------

def estimate_for_config(cfg, model_or_config=None, **overrides) -> dict:
    """`estimate` with the options of a RunConfig (or any object with the same field names):
    method, batch_size, max_length, precision, optimizer, gradient_checkpointing, lora_r,
    lora_dropout, freeze_layers, num_virtual_tokens. `model_or_config` defaults to `cfg.model` as a
    path (a folder under models/ must be resolved by the caller: `ws.model_path_or_id(cfg.model)`).
    `overrides`: any keyword of `estimate` (lengths=data_lengths(...), device=..., batch_size=...)."""
    kwargs = dict(
        method=cfg.method, batch_size=cfg.batch_size, max_length=cfg.max_length,
        precision=getattr(cfg, "precision", "fp32"), optimizer=getattr(cfg, "optimizer", "adamw"),
        grad_checkpointing=getattr(cfg, "gradient_checkpointing", False),
        lora_rank=getattr(cfg, "lora_r", 16), lora_dropout=getattr(cfg, "lora_dropout", 0.05),
        freeze_trainable_layers=getattr(cfg, "freeze_layers", 2),
        num_virtual_tokens=getattr(cfg, "num_virtual_tokens", 20),
    )
    return estimate(model_or_config if model_or_config is not None else cfg.model, **{**kwargs, **overrides})


def estimate_settings(model_or_config, *, lengths: dict | None = None, device: str | None = None,
                      **settings) -> dict:
    """The estimate for a run with RunConfig's defaults and `settings` (RunConfig field names:
    method, batch_size, max_length, precision, gradient_checkpointing, lora_r...; None: the default)
    on top. The one entry point of everything that shows an estimate before a run (the Model tab,
    the Training tab, `bench-models`), so the same settings give the same figure everywhere, and
    the figure the engine's start check would compute from the same config."""
    import dataclasses


    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = set(settings) - known
    if unknown:
        raise TypeError(f"estimate_settings: unknown setting(s) {', '.join(sorted(unknown))}")
    cfg = RunConfig(**{k: v for k, v in settings.items() if v is not None})
    return estimate_for_config(cfg, model_or_config, lengths=lengths, device=device)


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


def layer_bytes_per_token(d, *, act_bytes: int, method: str = "full", lora_dropout: float = 0.05,
                          length: int = 0) -> int:
    """Bytes autograd keeps per decoder layer and per token (the module docstring's formula)."""
    kept = act_bytes * (4 * d.h + 2 * d.q_dim + 2 * d.kv_dim + 4 * d.inter)
    kept += 2 * d.h * (4 if act_bytes == 4 else 11)         # the two RMSNorms compute in fp32
    if d.eager:
        kept += d.heads * length * act_bytes                   # the s x s attention probabilities
    if method in LORA_LIKE:
        # all-linear adapters: q, k, v, gate and up read h, o reads q, down reads i. Each keeps its
        # input after dropout (and the dropout mask); without dropout an fp32 run shares the base
        # layer's input, a 16-bit one still keeps the cast copy.
        per_element = act_bytes + 1 if lora_dropout > 0 else (act_bytes if act_bytes < 4 else 0)
        kept += (5 * d.h + d.q_dim + d.inter) * per_element
    return int(kept)


def _activation_bytes(d, *, batch: int, length: int, trained: int, act_bytes: int, resid_bytes: int,
                      grad_layers: int, checkpointing: bool, method: str, lora_dropout: float,
                      slack: float) -> dict:
    # per row (then times the batch, so a batch twice as large is exactly twice the activations)
    full_layer = length * layer_bytes_per_token(d, act_bytes=act_bytes, method=method,
                                                lora_dropout=lora_dropout, length=length)
    logits = trained * d.vocab * LOGIT_BYTES[act_bytes]
    stored = grad_layers * full_layer
    checkpointed = grad_layers * length * d.h * resid_bytes + (full_layer if grad_layers else 0)
    with_ckpt, without = (batch * int(slack * (x + logits)) for x in (checkpointed, stored))
    return {"activations": with_ckpt if checkpointing else without,
            "activations_if_checkpointing": with_ckpt, "activations_without_checkpointing": without,
            "logits": batch * int(slack * logits)}


def _device_kind(device) -> str:
    """'cuda' or 'cpu' for `device` (None: where a run would train: CUDA when there is one)."""
    if device is None:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if str(getattr(device, "type", device)).lower().startswith("cuda") else "cpu"


def estimate(model_or_config, *, method: str = "full", batch_size: int = 1, max_length: int = 512,
             precision: str = "fp32", optimizer: str = "adamw", grad_checkpointing: bool = False,
             trainable_params: int | None = None, weights_dtype: str | None = None,
             lora_rank: int = 16, freeze_trainable_layers: int = 2, num_virtual_tokens: int = 20,
             lora_dropout: float = 0.05, lengths: dict | None = None, device=None) -> dict:
    """Bytes one training process needs: weights, gradients, optimizer state, activations, the
    process itself (runtime), total.

    `model_or_config`: a loaded model (plain or peft-wrapped: parameters, their dtypes and what
    requires grad are measured), a transformers config, a config.json dict, or a model folder
    path (only config.json is read). From a config the counts come from
    `model_shape.param_shapes` (Llama-like decoders) and the method's trainable shapes (`lora_rank`,
    `freeze_trainable_layers`, `num_virtual_tokens`); `trainable_params` overrides the trainable
    count when known.
    `precision` is the compute precision (fp32, bf16, fp16; "auto" resolved as the engine does).
    `weights_dtype` is how the weights are stored (default: what the engine loads,
    model_source.base_dtype: bf16 for the frozen base of LoRA/DoRA under bf16, else fp32; qlora
    stores block weights in 4 bits). A loaded model is measured. `batch_size` is the per-device
    micro-batch: gradient accumulation adds no memory.
    `lengths`: the data's token lengths, `data_lengths(...)` ({"longest": tokens of the longest
    row, "trained": most trained tokens in a row}); None: every row max_length tokens, all trained.
    `device`: "cpu" or "cuda" (None: CUDA when there is one). On a CPU the total includes the
    process's libraries (`runtime`) and the allocator's slack on activations; on CUDA neither.

    Returns a JSON-able dict: weights, gradients, optimizer, activations, runtime, total (bytes),
    activations_if_checkpointing, activations_without_checkpointing, logits (part of the
    activations), params, trainable_params, and `assumptions` (the inputs and the rules used),
    which `check_fits` reads.
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
    kind = _device_kind(device)

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
        # fp32 matrices the forward multiplies under 16-bit autocast: a 16-bit copy of each is kept
        # (the input embedding is looked up, not multiplied, unless it is also the tied head)
        wide = sum(p.numel() for name, p in params if p.dim() == 2 and p.element_size() > act_bytes
                   and (d.tie or "embed_tokens" not in name))
        resid_bytes = _embedding_bytes(model_or_config)
        source, w_dtype = "loaded model", "measured"
    else:
        n_params = param_count(d)
        # What model_source.base_dtype loads: fp32, except LoRA/DoRA's frozen base under bf16.
        default_dtype = "bf16" if method in ("lora", "dora") and precision == "bf16" else "fp32"
        w_dtype = (weights_dtype or default_dtype).lower()
        if w_dtype not in DTYPE_BYTES:
            raise UserError(f"unknown weights dtype '{weights_dtype}' (fp32, bf16 or fp16)", "memory_dtype_unknown",
                            value=str(weights_dtype))
        linear = d.layers * sum(o * i for _, o, i in linear_shapes(d))
        if method == "qlora":  # block linears in nf4, embeddings/norms/head in 16-bit
            weights = int(linear * NF4_BYTES + (n_params - linear) * 2)
            wide = 0
        else:
            weights = n_params * DTYPE_BYTES[w_dtype]
            wide = linear + d.vocab * d.h if DTYPE_BYTES[w_dtype] > act_bytes else 0
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
        resid_bytes = 2 if method == "qlora" else DTYPE_BYTES[w_dtype]
    casts = int(wide * act_bytes)
    opt_bytes, opt_rule = _optimizer_bytes(optimizer, shapes, param_bytes)
    if trainable_params is not None and trainable_params != n_train:
        # A known count (e.g. from peft's print_trainable_parameters) wins: scale per parameter.
        if n_train:
            grads, opt_bytes = (int(x * trainable_params / n_train) for x in (grads, opt_bytes))
        else:
            grads = int(trainable_params * param_bytes)
            opt_bytes, opt_rule = _optimizer_bytes(optimizer, [(int(trainable_params),)], param_bytes)
        n_train = int(trainable_params)

    # The longest batch: the length-grouped sampler (train/batching.py) puts the longest rows
    # together and pads a batch to its longest row, so once an epoch a batch is `batch_size` rows
    # of the data's longest length, and the peak memory is that batch's (the allocator keeps it).
    # Measured, not the mean or the 95th percentile: SmolLM2 on 160 rows of 287-437 tokens peaked
    # at step 11 of 20, its batch padded to 8 x 437 (LoRA 9.6 GiB, 1.29 x the 7.5 GiB of the first
    # 3 steps, padded to at most 372). Logits: the most trained tokens of a row, for every row.
    if lengths and lengths.get("longest"):
        length = max(1, min(max_length, int(lengths["longest"])))
        trained = max(0, min(length, int(lengths.get("trained", length))))
        length_source = "data"
    else:
        length, trained, length_source = max_length, max_length, "max_length"
    slack = CPU_ACTIVATION_SLACK["lora_like" if method in LORA_LIKE else "other"] if kind == "cpu" else 1.0
    acts = _activation_bytes(d, batch=batch_size, length=length, trained=trained, act_bytes=act_bytes,
                             resid_bytes=resid_bytes, grad_layers=grad_layers, checkpointing=grad_checkpointing,
                             method=method, lora_dropout=lora_dropout, slack=slack)
    runtime = RUNTIME_CPU if kind == "cpu" else 0
    weights = int(weights) + casts
    total = int(weights + grads + opt_bytes + acts["activations"] + runtime)
    return {
        "weights": int(weights), "gradients": int(grads), "optimizer": int(opt_bytes),
        "activations": acts["activations"], "runtime": runtime, "total": total,
        "activations_if_checkpointing": acts["activations_if_checkpointing"],
        "activations_without_checkpointing": acts["activations_without_checkpointing"],
        "logits": acts["logits"],
        "params": int(n_params), "trainable_params": int(n_train),
        "assumptions": {
            "source": source, "method": method, "batch_size": batch_size, "max_length": max_length,
            "tokens_per_row": length, "trained_per_row": trained, "lengths": length_source,
            "precision": precision, "optimizer": optimizer, "optimizer_state": opt_rule,
            "grad_checkpointing": bool(grad_checkpointing), "layers_with_grad": grad_layers,
            "weights_dtype": "nf4 + bf16" if method == "qlora" and not loaded else w_dtype,
            "autocast_weight_copies": casts,
            "attention": "eager" if d.eager else "sdpa/flash", "device": kind,
        },
    }


def _embedding_bytes(model) -> int:
    """Bytes per element of the hidden states between layers: the input embedding's dtype."""
    try:
        return model.get_input_embeddings().weight.element_size()
    except (AttributeError, NotImplementedError):
        return 4


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


PARTS = ("weights", "gradients", "optimizer", "activations")


def breakdown_code(est: dict) -> str:
    """The text code of `est`'s breakdown: with the process's own memory (a CPU estimate) or not."""
    return "memory_breakdown_cpu" if est.get("runtime") else "memory_breakdown"


def breakdown(est: dict) -> str:
    """'about 3.1 GiB (weights 1.0 GiB, gradients ..., optimizer ..., activations ...[, process and
    libraries ...])': the last part on a CPU, where the estimate counts the process itself."""
    parts = ", ".join(f"{k} {human_bytes(est[k])}" for k in PARTS)
    if est.get("runtime"):
        parts += f", process and libraries {human_bytes(est['runtime'])}"
    return f"about {human_bytes(est['total'])} ({parts})"


def breakdown_sizes(est: dict) -> dict:
    """The breakdown's parts as MiB/GiB texts (total, weights, gradients, optimizer, activations,
    runtime): the fields of its coded text, which the web UI words in its language."""
    return {k: human_bytes(est.get(k) or 0) for k in ("total", *PARTS, "runtime")}


def advice(est: dict | None = None, *, method: str | None = None, max_length: int | None = None,
           grad_checkpointing: bool | None = None, batch_size: int | None = None) -> list[str]:
    """Concrete ways to need less memory, most effective first (with numbers when `est` is given).
    Each is text that also carries a code and its numbers (errors.CodedText: the UI words it)."""

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
