"""Which run configs are refused before anything starts, and why: a UserError naming the flag and
what to do instead.

`RunConfig.validate` and `RunConfig.check_device` (config.py) call these; the options themselves,
their defaults and their help live in config.py.
"""

from __future__ import annotations

import importlib.util
import math

from tunestudio.config.choices import METHODS, OBJECTIVES
from tunestudio.config.run_config import RunConfig, bf16_supported, fields_by_name, flag_name, stage_config
from tunestudio.core.errors import UserError, error_record
from tunestudio.train import attention
from tunestudio.train import objectives as objective_table
from tunestudio.train.launch import check_launcher
from tunestudio.train.tracking import check_trackers


def validate(cfg: RunConfig) -> RunConfig:
    """Raise UserError naming the first bad option and what to do; return `cfg` when valid."""
    def bad(flag: str, why: str, code: str | None = None, **fields):
        # `code`: the web UI words it (engine.<code>, the option named by its form label)
        raise UserError(f"{flag_name(flag)}: {why}", code, option=flag, **fields)

    if cfg.stages:
        if not isinstance(cfg.stages, list) or not all(isinstance(s, dict) for s in cfg.stages):
            bad("stages", "must be a list of option sets, e.g. [{dataset: a.jsonl}, {dataset: b.jsonl}]",
                "stages_not_list", example="[{dataset: a.jsonl}, {dataset: b.jsonl}]")
        for i, stage in enumerate(cfg.stages, 1):
            try:
                validate(stage_config(cfg, i - 1))
            except UserError as e:
                raise UserError(f"stage {i}: {e}", "in_stage", stage=i, error=error_record(e)) from None
        return cfg
    if not cfg.model.strip() and not cfg.from_run.strip():
        bad("model", "no base model given: a folder under models/, a path or a hub id", "no_model_given")
    if not cfg.dataset.strip():
        bad("dataset", "no dataset given: a file under training/datasets or a path", "no_dataset_given")
    methods = METHODS
    if cfg.method not in methods:
        bad("method", f"unknown method '{cfg.method}': choose one of {', '.join(methods)}", "unknown_choice",
            value=cfg.method, choices=", ".join(methods))
    objectives = OBJECTIVES
    if cfg.objective not in objectives:
        bad("objective", f"unknown objective '{cfg.objective}': choose one of {', '.join(objectives)}",
            "unknown_choice", value=cfg.objective, choices=", ".join(objectives))
    objective_table.OBJECTIVES[cfg.objective].validate(cfg)
    for name in ("scheduler", "optimizer", "precision", "text_mode", "pref_loss", "reference", "launcher",
                 "padding_free"):
        choices = fields_by_name()[name].metadata["choices"]
        if getattr(cfg, name) not in choices:
            bad(name, f"unknown {name} '{getattr(cfg, name)}': choose one of {', '.join(choices)}", "unknown_choice",
                value=getattr(cfg, name), choices=", ".join(map(str, choices)))
    if not (cfg.lr >= 0 and math.isfinite(cfg.lr)):   # 0: the preset's (config/presets.py)
        bad("lr", f"the learning rate must be above 0 (or 0 for the preset's), got {cfg.lr}", "option_above_zero",
            value=cfg.lr)
    if cfg.max_steps < 0:
        bad("max_steps", f"must be 0 (use --epochs) or more, got {cfg.max_steps}", "option_not_negative",
            value=cfg.max_steps)
    if cfg.max_steps == 0 and not cfg.epochs > 0:
        bad("epochs", f"must be above 0 (or set --max-steps), got {cfg.epochs}", "epochs_not_positive",
            value=cfg.epochs)
    for name in ("batch_size", "grad_accum", "lora_r", "num_virtual_tokens", "logging_steps"):
        if getattr(cfg, name) < 1:
            bad(name, f"must be at least 1, got {getattr(cfg, name)}", "option_at_least", least=1,
                value=getattr(cfg, name))
    if not (cfg.replay == -1 or 0 <= cfg.replay <= 1):
        bad("replay", f"must be a share from 0 to 1 (or -1: automatic), got {cfg.replay}", "replay_share",
            value=cfg.replay)
    if cfg.early_stopping_patience < -1:
        bad("early_stopping_patience", f"must be 0 or more (or -1: automatic), got {cfg.early_stopping_patience}",
            "option_not_negative", value=cfg.early_stopping_patience)
    for name in ("warmup_steps", "eval_steps", "save_steps",
                 "overfitting_window", "keep_checkpoints", "freeze_layers", "num_processes"):
        if getattr(cfg, name) < 0:
            bad(name, f"must be 0 or more, got {getattr(cfg, name)}", "option_not_negative", value=getattr(cfg, name))
    if cfg.keep_checkpoints < 1:
        bad("keep_checkpoints", "must be at least 1 (a run needs its last checkpoint to resume)", "option_at_least",
            least=1, value=cfg.keep_checkpoints)
    if cfg.max_length < 8:
        bad("max_length", f"must be at least 8 tokens, got {cfg.max_length}", "option_at_least", least=8,
            value=cfg.max_length)
    if not 0 <= cfg.stride < cfg.max_length:
        bad("stride", f"must be at least 0 and below --max-length {cfg.max_length}, got {cfg.stride}",
            "stride_not_below_max_length", max_length=cfg.max_length, value=cfg.stride)
    for name in ("val_split", "test_split", "warmup_ratio", "lora_dropout"):
        if not 0 <= getattr(cfg, name) < 1:
            bad(name, f"must be at least 0 and below 1, got {getattr(cfg, name)}", "option_fraction",
                value=getattr(cfg, name))
    if cfg.val_split + cfg.test_split >= 1:
        bad("val_split", f"--val-split {cfg.val_split} + --test-split {cfg.test_split} leave "
            "nothing to train on: keep their sum below 1", "splits_leave_nothing", val=cfg.val_split,
            test=cfg.test_split)
    if cfg.warmup_steps and cfg.warmup_ratio:
        bad("warmup_ratio", "give --warmup-steps or --warmup-ratio, not both", "warmup_both")
    if cfg.eval_rows < 0:
        bad("eval_rows", f"must be 0 (all) or more, got {cfg.eval_rows}", "option_not_negative", value=cfg.eval_rows)
    if cfg.streaming and not cfg.max_steps:
        bad("streaming", "a stream has no known length: give --max-steps (the number of optimizer steps)",
            "streaming_needs_max_steps")
    if cfg.shuffle_buffer < 1:
        bad("shuffle_buffer", f"must be 1 (no shuffling) or more, got {cfg.shuffle_buffer}", "shuffle_buffer_too_small",
            value=cfg.shuffle_buffer)
    if cfg.num_proc < 0:
        bad("num_proc", f"must be 0 (automatic) or more, got {cfg.num_proc}", "option_not_negative", value=cfg.num_proc)
    if not (cfg.dropout == -1 or 0 <= cfg.dropout < 1):
        bad("dropout", f"must be -1 (keep the model's) or at least 0 and below 1, got {cfg.dropout}", "dropout_bad",
            value=cfg.dropout)
    if cfg.weight_decay < 0 or cfg.max_grad_norm < 0 or cfg.momentum < 0:
        bad("weight_decay" if cfg.weight_decay < 0 else "max_grad_norm" if cfg.max_grad_norm < 0
            else "momentum", "must be 0 or more", "option_below_zero")
    if cfg.lora_alpha <= 0:
        bad("lora_alpha", f"must be above 0, got {cfg.lora_alpha}", "option_above_zero", value=cfg.lora_alpha)
    if not cfg.target_modules.strip():
        bad("target_modules", "give all-linear or a comma list of module names", "target_modules_empty")

    check_trackers(cfg.report_to)  # a missing tracker package stops the run before it starts
    attention.check_config(cfg)
    check_device(cfg)
    return cfg


def check_device(cfg: RunConfig) -> None:
    """Options that depend on this machine: qlora needs CUDA and bitsandbytes; fp16/bf16 support."""
    import torch

    cuda = torch.cuda.is_available()
    if cfg.method == "qlora":
        if not cuda:
            raise UserError("--method qlora needs a CUDA GPU (4-bit weights via bitsandbytes); on this "
                            "machine use --method lora, which trains the same adapter in full precision",
                            "qlora_needs_cuda", option="method")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise UserError("--method qlora needs the bitsandbytes package: pip install bitsandbytes",
                            "qlora_needs_bitsandbytes", option="method")
    if cfg.precision == "fp16" and not cuda:
        raise UserError("--precision fp16 needs a CUDA GPU (fp16 on a CPU is unusably slow): "
                        "use bf16 or fp32", "fp16_needs_cuda", option="precision")
    if cfg.precision == "bf16" and not bf16_supported():
        where = "this GPU" if cuda else "this CPU (it lacks avx512_bf16/AMX)"
        raise UserError(f"--precision bf16 is not supported on {where}: use fp32"
                        + (" or fp16" if cuda else ""), "bf16_unsupported_gpu" if cuda else "bf16_unsupported_cpu",
                        option="precision")
    check_launcher(cfg)
