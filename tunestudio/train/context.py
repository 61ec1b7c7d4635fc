"""What an objective's builder is given, and what every objective's Trainer shares: one
TrainerContext, the common TrainingArguments, and a Trainer that prints nothing of its own.
The builders (sft.py, preference.py, grpo.py) import this; the objectives table (objectives.py)
points at the builders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunestudio.config.run_config import resolve_precision
from tunestudio.train import tracking


@dataclass
class TrainerContext:
    """Everything a builder needs; one object so adding a need does not change every signature."""
    cfg: Any                    # RunConfig
    model: Any                  # the trainable model (peft-wrapped for adapter methods)
    tokenizer: Any
    data: Any                   # run.Data: train/val in the shape this objective's load_data made
    ckpt_dir: Any               # Path of the run's checkpoints/ folder (the Trainer's output_dir)
    micro_batch: int
    grad_accum: int
    monitor: Any                # callbacks.RunMonitor
    eval_on_start: bool
    base: Any = None            # run.Base: where the weights came from (for the reference model)
    ws: Any = None
    run_dir: Any = None


def training_kwargs(ctx: TrainerContext) -> dict:
    """The TrainingArguments every objective shares (TRL's configs subclass TrainingArguments):
    schedule, optimizer, precision, logging; evaluation and saving are driven by the RunMonitor."""
    import torch

    cfg = ctx.cfg
    cuda = torch.cuda.is_available()
    precision = resolve_precision(cfg.precision)
    scheduler = cfg.scheduler
    if scheduler == "constant" and (cfg.warmup_steps or cfg.warmup_ratio):
        scheduler = "constant_with_warmup"
    # fused AdamW on CPUs too (torch >= 2.4; the Trainer's own default): one kernel per step instead of
    # a Python loop over parameters, ~2.4x faster on LoRA adapters, ~11x on a 21M model's full
    # weights (docs/profile.md), and deterministic
    optim = {"adamw": "adamw_torch_fused", "sgd": "sgd", "adafactor": "adafactor"}[cfg.optimizer]
    return dict(
        output_dir=str(ctx.ckpt_dir),
        per_device_train_batch_size=ctx.micro_batch, per_device_eval_batch_size=ctx.micro_batch,
        gradient_accumulation_steps=ctx.grad_accum,
        num_train_epochs=cfg.epochs, max_steps=cfg.max_steps or -1,
        learning_rate=cfg.lr, lr_scheduler_type=scheduler,
        warmup_steps=cfg.warmup_steps or cfg.warmup_ratio,
        optim=optim, optim_args=f"momentum={cfg.momentum}" if cfg.optimizer == "sgd" else None,
        weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm,
        bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=not cuda,
        # the monitor callback decides when to evaluate and save (steps, epoch ends, new best)
        eval_strategy="no", save_strategy="no", eval_on_start=ctx.eval_on_start,
        logging_strategy="steps", logging_steps=cfg.logging_steps, logging_first_step=True,
        report_to=tracking.hf_report_to(cfg), disable_tqdm=True,
        seed=cfg.seed, dataloader_num_workers=0,
        # on CUDA, Liger's Triton kernels (RMSNorm, SwiGLU, RoPE) when `tunestudio[liger]` is installed
        use_liger_kernel=cuda and _has_liger(),
    )


def _has_liger() -> bool:
    import importlib.util

    return importlib.util.find_spec("liger_kernel") is not None


def quiet(trainer):
    """Progress goes to our console line and events.jsonl; the Trainer's own printer would write
    raw dicts to stdout, where `--json` must print exactly one object."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer
