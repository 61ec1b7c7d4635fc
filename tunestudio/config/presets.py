"""Starting values that fit the model and the method in front of them.

One learning rate does not fit every method: 2e-4 is a LoRA rate, and full fine-tuning of a
pretrained model at it answers everything with the task's answers after a few steps (measured on
SmolLM2-135M-Instruct: "Write one sentence about the sea." -> "The Sea"). A random-initialised
model (the tiny demo model) is the other way round: LoRA barely moves it, full fine-tuning at 1e-3
learns the demo tasks in one epoch (docs/dev/pitfalls.md). `preset(kind, method)` gives the values and the
reason; `--lr` left out (0) takes the preset's rate; `slow_learning` says when a rate is unlikely to
learn in the steps a run has, so the usual guide's values (LoRA at 1e-5 to 5e-5) never fail silently.
"""

from __future__ import annotations

from pathlib import Path

from tunestudio.core.errors import CodedText

# Learning rates for a pretrained model, by method: PEFT's and the methods' papers' usual values
# (LoRA/DoRA 1e-4..3e-4; IA3 ~3e-3; prefix ~1e-2; prompt tuning ~3e-2), full fine-tuning an order
# of magnitude under LoRA's.
PRETRAINED_LR = {"full": 2e-5, "freeze": 5e-5, "lora": 2e-4, "dora": 2e-4, "qlora": 2e-4, "ia3": 3e-3,
                 "prefix": 1e-2, "prompt": 3e-2}
# A random-initialised model learns from scratch: full fine-tuning at 1e-3, one epoch (the demo tasks).
RANDOM_PRESET = {"method": "full", "lr": 1e-3, "batch_size": 16, "epochs": 1}
RANDOM_LR = 1e-3
# A file a model folder may hold to say its weights are random.
RANDOM_MARKER = "RANDOM_INIT"
# The tiny random demo model's folder name (demo/ takes it from here: the engine must know it
# without importing the demo package, which sits above it).
TINY_DEMO = "tiny-demo"
# Replay rows (train/replay.py): the base model's own answers of up to this many new tokens, and the
# row's tokens besides its answer (the template, a system prompt, the question), which the memory
# estimate (models/memory.py) allows for.
REPLAY_MAX_NEW_TOKENS = 96
REPLAY_PROMPT_ALLOWANCE = 48
# The mean learning rate over the schedule x optimizer steps under which a method rarely moves a
# pretrained model far enough to change its answers. LoRA measured on SmolLM2-135M and demo-tickets
# (batch 8, eval loss from 8.3): cosine 2e-4 x 24 steps (2.4e-3) -> 2.22, exact match 0/16; constant
# 2e-4 x 40 (8e-3) -> 11/16; x 60 (1.2e-2) -> 16/16. The others are scaled from their usual rates.
MIN_LR_STEPS = {"lora": 6e-3, "dora": 6e-3, "qlora": 6e-3, "full": 6e-4, "freeze": 1.5e-3, "ia3": 9e-2,
                "prefix": 0.3, "prompt": 0.9}
# The mean of the schedule's factor over a run (warmup aside): cosine and linear decay average half.
SCHEDULE_MEAN = {"cosine": 0.5, "linear": 0.5, "constant": 1.0}


def model_kind(folder) -> str:
    """'random' for a random-initialised model (the demo model, or a folder marked RANDOM_INIT),
    else 'pretrained' (a hub id is always pretrained)."""
    path = Path(str(folder or ""))
    if path.name == TINY_DEMO or (path.is_dir() and (path / RANDOM_MARKER).is_file()):
        return "random"
    return "pretrained"


def preset(kind: str, method: str) -> dict:
    """{"lr", and for a random model "method", "batch_size", "epochs"; "reason": a CodedText}."""
    if kind == "random":
        return {**RANDOM_PRESET, "reason": CodedText(
            "a random-initialised model learns from scratch: full fine-tuning at lr 1e-3 for one epoch "
            "(LoRA barely moves a random model)", "preset_random")}
    lr = PRETRAINED_LR.get(method, PRETRAINED_LR["lora"])
    if method in ("full", "freeze"):
        reason = CodedText(f"a pretrained model, {method} fine-tuning: lr {lr:g}, an order of magnitude under "
                           "LoRA's (higher rates overwrite what the model knows)", "preset_pretrained_full",
                           method=method, lr=f"{lr:g}")
    else:
        reason = CodedText(f"a pretrained model, {method}: lr {lr:g}, the usual rate for {method}",
                           "preset_pretrained_peft", method=method, lr=f"{lr:g}")
    return {"lr": lr, "reason": reason}


def resolve_lr(cfg, model_folder) -> CodedText | None:
    """Fill `cfg.lr` from the preset when it was left at 0 (`--lr` not given). Returns the reason
    (to say at the start of the run), or None when the user chose the rate."""
    if cfg.lr:
        return None
    kind = "pretrained" if cfg.from_run else model_kind(model_folder)
    cfg.lr = RANDOM_LR if kind == "random" else preset(kind, cfg.method)["lr"]
    if kind == "random":
        return CodedText(f"--lr not given: {cfg.lr:g}, the preset for a random-initialised model",
                         "lr_from_preset_random", lr=f"{cfg.lr:g}")
    return CodedText(f"--lr not given: {cfg.lr:g}, the preset for a pretrained model with {cfg.method}",
                     "lr_from_preset_pretrained", lr=f"{cfg.lr:g}", method=cfg.method)


def slow_learning(method: str, lr: float, steps: int, kind: str = "pretrained",
                  scheduler: str = "cosine") -> CodedText | None:
    """A warning when `lr` over `steps` optimizer steps is unlikely to change what the model answers,
    or None. On a random-initialised model a parameter-efficient method is the problem, not the rate:
    its output layer stays random (docs/dev/pitfalls.md), so LoRA at the usual rates learns nothing there."""
    if kind == "random":
        if method in ("full", "freeze"):
            return None
        return CodedText(f"{method} on a random-initialised model barely learns (its output layer stays random): "
                         "use full fine-tuning at lr 1e-3 (the preset for this model), or a pretrained model",
                         "peft_on_random", method=method)
    need = MIN_LR_STEPS.get(method)
    have = lr * SCHEDULE_MEAN.get(scheduler, 1.0) * steps
    if need is None or steps <= 0 or have >= need:
        return None
    usual = PRETRAINED_LR.get(method, 2e-4)
    return CodedText(f"lr {lr:g} over {steps} steps is unlikely to teach a pretrained model much with {method} "
                     f"(it usually needs the mean learning rate x steps above {need:g}; this run has {have:.2g}): the "
                     f"answers may stay the base model's. Raise --lr (the preset is {usual:g}) or train for more steps",
                     "slow_learning", lr=f"{lr:g}", steps=steps, method=method, need=f"{need:g}",
                     have=f"{have:.2g}", usual=f"{usual:g}")
