"""What the answers say about training, as evaluation warnings: a model that does not stop, one
that answers nothing, one that answers as its base does (run_eval.evaluate adds them)."""

from __future__ import annotations

import json

from tunestudio.core.errors import CodedText
from tunestudio.evaluate import metrics as M
from tunestudio.models import loading

STOPPED_WARN = 0.5        # below this share of answers ending on their own: warn
EMPTY_WARN = 0.1          # at least this share of empty answers (to non-empty references): warn
SAME_ANSWERS = 0.5        # an unchanged score is "answers as the base" when this share of answers are the base's


def stopping_warning(stopped: list[bool], max_new_tokens: int, base: bool = False) -> str | None:
    """A warning when most answers ran to max_new_tokens instead of ending on their own. For the base
    model (`base`) it says what that means there: it was never trained on these answers, so a long
    answer is its own way of answering, not a training fault to fix."""
    if not stopped:
        return None
    share = sum(stopped) / len(stopped)
    if share >= STOPPED_WARN:
        return None
    if base:
        return (f"the base model, not trained on this data, ran past max_new_tokens = {max_new_tokens} in "
                f"{1 - share:.0%} of answers: it answers in its own longer way (or is not a chat model), which "
                "is what fine-tuning changes; judge the fine-tuned model's line")
    return (f"the model stopped on its own in only {share:.0%} of answers (the rest ran to max_new_tokens = "
            f"{max_new_tokens}): it has not learnt where an answer ends, and would ramble in chat and any "
            "server; train longer, or check that the chat template's turn end is trained (data preview)")


def empty_answers_warning(label: str, predictions: list[str], references: list[str],
                          max_new_tokens: int) -> CodedText | None:
    """A warning when EMPTY_WARN of the answers or more are empty where the reference is not: a model
    that learnt nothing, or no room to answer."""
    asked = [p for p, r in zip(predictions, references) if str(r).strip()]
    empty = sum(not p.strip() for p in asked)
    if not empty or empty < EMPTY_WARN * len(asked):
        return None
    return CodedText(f"{label}: {empty} of {len(asked)} answers are empty: the model ends its turn at once (a LoRA "
                     "adapter on a randomly initialised model, or training data whose answers are empty, teach it "
                     f"that), or max_new_tokens = {max_new_tokens} is too small for the answer (its reasoning took "
                     "it all)", "eval_empty_answers", side=label, empty=empty, rows=len(asked),
                     max_new_tokens=max_new_tokens)


def unchanged_warning(ft: dict, base: dict, primary: str | None, run: loading.RunInfo) -> CodedText | None:
    """A warning when the fine-tuned model scores what the base scores (exact match, else the primary
    metric) and gives SAME_ANSWERS of its answers word for word as the base: training changed nothing."""
    metric = "exact_match" if "exact_match" in ft["metrics"] else primary
    if metric is None or metric in M.LOSS_METRICS or metric not in ft["metrics"] or metric not in base["metrics"]:
        return None
    value = ft["metrics"][metric]
    same = sum(a == b for a, b in zip(ft["predictions"], base["predictions"]))
    n = len(ft["predictions"])
    if abs(value - base["metrics"][metric]) > 1e-9 or not n or same < SAME_ANSWERS * n:
        return None
    lr, steps = run.config.get("lr", "?"), _trained_steps(run)
    return CodedText(f"the fine-tuned model answers as the base does: {metric} {value:.4g} for both, and {same} of {n} "
                     "answers are the base's word for word; likely too low a learning rate or too few steps (this run: "
                     f"method {run.method}, lr {lr}, {steps} steps)", "eval_unchanged", metric=metric,
                     value=f"{value:.4g}", same=same, rows=n, method=run.method, lr=lr, steps=steps)


def _trained_steps(run: loading.RunInfo):
    """The optimizer steps the run took (its metrics.json, else the registry's copy), or "?"."""
    path = run.folder / "metrics.json"
    try:
        steps = json.loads(path.read_text()).get("steps") if path.is_file() else None
    except (OSError, ValueError, AttributeError):
        steps = None
    return steps if steps is not None else (run.record.get("metrics") or {}).get("steps", "?")
