"""The forgetting check: a guard set the task never touched, scored on the base model and on the
fine-tuned one (`eval --guard-dataset`).

Which check depends on what the guard rows are:
- **plain text**: the perplexity of each model on it; forgetting when the fine-tuned model's is
  FORGETTING_RATIO times the base's. It sees a model that no longer models prose, and misses an
  instruct model that still models prose but answers every question with the task's label.
- **chat rows** (a question and, as the reference, the word a right answer contains, 'a|b' for
  either): each question is asked of both models, greedily, and the answers compared. `kept_right`:
  of the questions the base answers right, how many the fine-tuned model still does; `kept_close`:
  how many fine-tuned answers are close to the base's own answer (ROUGE-L F >= CLOSE). Forgetting
  when fewer than KEPT_RIGHT of the base's right answers are kept, or fewer than CLOSE_SHARE of the
  answers are close. It sees only what the questions ask.
- **a benchmark task** (`--guard-benchmark`, lm-evaluation-harness: harness.py): the task's first
  metric on both models with its standard error; forgetting when the fine-tuned score is worse than
  the base's by more than FORGETTING_SE (2) standard errors of the difference, sqrt(se_base² +
  se_tuned²): a drop that size happens by chance about one time in forty.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter

from tunestudio.core.errors import CodedText, UserError
from tunestudio.data.chat.turns import split_reasoning
from tunestudio.data.split import load_splits
from tunestudio.evaluate.benchmarks import FORGETTING_SE
from tunestudio.evaluate.metrics import rouge
from tunestudio.evaluate.report import input_text
from tunestudio.models.generate import Sampling, generate_timed

FORGETTING_RATIO = 1.25   # guard perplexity this much above the base's: clearly worse
KEPT_RIGHT = 0.8          # fewer than this share of the base's right answers still right: forgetting
# ROUGE-L F (metrics.rouge: stemmed words) at or above which a tuned answer is "close" to the base's.
# Measured on SmolLM2-135M-Instruct and demo-general.jsonl (README): a LoRA run that kept its answers
# (20 of 21 still right) gave 0.24-1.0, mean 0.63, 19 of 21 at 0.3 or more (the two below: the base's
# answer cut short, "The opposite of hot is cold."); a full fine-tune that answers with team codes gave
# 0-0.18, mean 0.01. Two unrelated short sentences can reach 0.3 on "the ... is" alone, so closeness is
# the second figure; kept_right is the main one.
CLOSE = 0.3
CLOSE_SHARE = 0.5         # fewer than this share of answers close to the base's: most moved away
REPEATED_SHARE = 0.5      # one answer to at least this share of the prompts (3 or more): a collapse
GUARD_NEW_TOKENS = 48     # room for a sentence: the answers are compared, not only searched for a word


def guard_records(ws, dataset: str) -> list:
    """Every row of the guard set (it is not trained on, so there is nothing to hold out)."""

    records = load_splits(ws, dataset, 0, 0).train
    if not records:
        raise UserError(f"guard dataset {dataset} has no usable rows", "guard_no_rows", dataset=dataset)
    return records


def chat_rows(records: list) -> list:
    """The guard rows the chat check asks (conversations); none: the perplexity check."""
    return [r for r in records if r.is_chat]


# ---- the chat check's scores, on answers alone ------------------------------------------------

def _fold(text: str) -> str:
    # NFKC: "H₂O" is "H2O", full-width letters their plain ones; spaces collapsed
    return " ".join(unicodedata.normalize("NFKC", text or "").split())


def answer_right(answer: str, reference: str) -> bool:
    """Whether `answer` contains the reference: any of its '|' alternatives as whole words, case
    ignored ("7|seven" is right in "A week has seven days."). A hyphen between word characters joins
    them into one word: the team code "TEC-4" does not answer "What is 2 plus 2?". An empty
    reference: any non-empty answer."""
    answer = _fold(answer)
    alternatives = [a for a in (_fold(x) for x in (reference or "").split("|")) if a]
    if not alternatives:
        return bool(answer)
    return any(re.search(rf"(?<!\w)(?<!\w-){re.escape(a)}(?!\w)(?!-\w)", answer, re.IGNORECASE) for a in alternatives)


def similarity(answer: str, base_answer: str) -> float:
    """ROUGE-L F of `answer` against the base model's own answer (1.0 when both are empty)."""
    if not answer.strip() and not base_answer.strip():
        return 1.0
    return rouge(answer, base_answer)["rougeL"]


def repeated_answer(answers: list[str]) -> tuple[str, int] | None:
    """(answer, count) when one non-empty answer is given to REPEATED_SHARE of the prompts or more
    (at least 3): the model answers everything alike, as a tuned model that learnt only its label does."""
    counts = Counter(a.strip() for a in answers if a.strip())
    if not counts:
        return None
    answer, n = counts.most_common(1)[0]
    return (answer, n) if n >= 3 and n >= REPEATED_SHARE * len(answers) else None


def chat_summary(name: str, records: list, tuned: list[str], base: list[str] | None, warnings: list) -> dict:
    """The `guard` result of the chat check. `tuned` / `base`: each model's answer to each record's
    prompt (`base` None: no base to compare, e.g. `eval --model`). Warnings go into `warnings`."""
    refs = [r.reference() for r in records]
    prompts = [input_text(r.prompt()) for r in records]
    n = len(records)
    right_tuned = [answer_right(a, ref) for a, ref in zip(tuned, refs)]
    g: dict = {"kind": "chat", "dataset": name, "n": n, "tuned_right": sum(right_tuned), "close_threshold": CLOSE}
    if base is None:
        g.update(base_right=None, kept_right=None, kept_close=None, mean_similarity=None, forgetting=None,
                 rows=[{"prompt": p, "reference": ref, "tuned": a, "right_tuned": ok}
                       for p, ref, a, ok in zip(prompts, refs, tuned, right_tuned)])
        return g
    right_base = [answer_right(a, ref) for a, ref in zip(base, refs)]
    sims = [similarity(a, b) for a, b in zip(tuned, base)]
    base_right = sum(right_base)
    kept_right = sum(t and b for t, b in zip(right_tuned, right_base))
    kept_close = sum(s >= CLOSE for s in sims)
    g.update(base_right=base_right, kept_right=kept_right, kept_close=kept_close,
             mean_similarity=sum(sims) / n if n else None,
             rows=[{"prompt": p, "reference": ref, "base": b, "tuned": a, "right_base": rb, "right_tuned": rt,
                    "similarity": s}
                   for p, ref, b, a, rb, rt, s in zip(prompts, refs, base, tuned, right_base, right_tuned, sims)])
    lost_right = base_right > 0 and kept_right < KEPT_RIGHT * base_right
    moved = kept_close < CLOSE_SHARE * n
    g["forgetting"] = None if base_right == 0 else bool(lost_right or moved)
    if base_right == 0:
        # nothing to keep: moving away from a base that knows none of the answers is not forgetting
        warnings.append(CodedText(f"the base model answers none of the {n} prompts of the guard set {name} right: "
                                  "the chat forgetting check has nothing to keep; give it questions this base model "
                                  "answers right (or a plain-text guard set for a model that knows no answers)",
                                  "guard_base_wrong", guard=name, n=n))
    elif g["forgetting"]:
        warnings.append(CodedText(
            f"possible catastrophic forgetting: of the {base_right} guard prompts in {name} the base model answers "
            f"right, the fine-tuned model still answers {kept_right} right ({kept_right / base_right:.0%}), and "
            f"{kept_close} of {n} answers stay close to the base's (mean ROUGE-L {g['mean_similarity']:.2f})",
            "forgetting_chat", guard=name, base_right=base_right, kept_right=kept_right,
            kept_share=f"{kept_right / base_right:.0%}", kept_close=kept_close, n=n,
            similarity=f"{g['mean_similarity']:.2f}"))
    same = repeated_answer(tuned)
    if same and (repeated_answer(base) or ("", 0))[0] != same[0]:
        g["repeated"] = {"answer": same[0], "count": same[1]}
        warnings.append(CodedText(f"the fine-tuned model gives the same answer {same[0]!r} to {same[1]} of {n} "
                                  f"prompts of the guard set {name}: it answers everything with what the task taught",
                                  "guard_repeated", guard=name, answer=repr(same[0]), count=same[1], n=n))
    return g


def ask(model, tok, records: list, mode: str, batch_size: int, progress=None) -> list[str]:
    """Each guard prompt's greedy answer (its reasoning split off)."""

    gen = generate_timed(model, tok, [r.prompt() for r in records], Sampling(max_new_tokens=GUARD_NEW_TOKENS),
                         batch_size, progress=progress, mode=mode, tools=[r.tools for r in records])
    return [split_reasoning(t)[1].strip() for t in gen.texts]


# ---- the perplexity check ----------------------------------------------------------------------

def perplexity_summary(name: str, evaluated: dict | None, base: dict | None, warnings: list) -> dict:
    """The `guard` result of the perplexity check: `evaluated` / `base` are loss_metrics of each
    model on the guard text (base None: not scored)."""
    g = {"kind": "perplexity", "dataset": name, "evaluated": evaluated}
    if base and evaluated:
        g["base"] = base
        before, after = base["perplexity"], evaluated["perplexity"]
        g["perplexity_ratio"] = after / before if before else math.inf
        g["forgetting"] = g["perplexity_ratio"] >= FORGETTING_RATIO
        if g["forgetting"]:
            warnings.append(CodedText(f"possible catastrophic forgetting: perplexity on the guard set {name} rose from "
                                      f"{before:.4g} (base) to {after:.4g} (fine-tuned), x{g['perplexity_ratio']:.2f}",
                                      "forgetting", guard=name, before=f"{before:.4g}", after=f"{after:.4g}",
                                      ratio=f"{g['perplexity_ratio']:.2f}"))
    return g


# ---- the benchmark check -----------------------------------------------------------------------

def benchmark_summary(task: str, table: list[dict], warnings: list) -> dict:
    """The `guard` result of the benchmark check: `table` is benchmarks.table of the run against its
    base; the verdict stands on each task's first metric (acc for a multiple-choice task)."""
    first = {}
    for r in table:
        first.setdefault(r["task"], r)
    rows = [r for r in first.values() if r.get("delta") is not None]
    g = {"kind": "benchmark", "dataset": task, "rows": rows, "threshold_se": FORGETTING_SE,
         "forgetting": any(r["forgetting"] for r in rows) if rows else None}
    for r in rows:
        if r["forgetting"]:
            warnings.append(CodedText(
                f"possible catastrophic forgetting: on benchmark {r['task']} the fine-tuned model's {r['metric']} fell "
                f"from {r['base']:.4f} (base) to {r['tuned']:.4f}, {r['delta']:+.4f} ± {r['error']:.4f}: more than "
                f"{FORGETTING_SE:g} standard errors", "forgetting_benchmark", task=r["task"], metric=r["metric"],
                before=f"{r['base']:.4f}", after=f"{r['tuned']:.4f}", delta=f"{r['delta']:+.4f}",
                error=f"{r['error']:.4f}", se=f"{FORGETTING_SE:g}"))
    return g
