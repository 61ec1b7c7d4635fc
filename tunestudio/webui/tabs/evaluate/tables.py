"""The Evaluate tab's tables: results, per-example rows, the forgetting check, the leaderboard, split names.

Plain functions from an engine result to a DataFrame or a line in the user's language, so the tab
and its tests share them without Gradio.
"""

from __future__ import annotations

import pandas as pd

from tunestudio.evaluate.metrics import LOWER_IS_BETTER
from tunestudio.evaluate.report import worst_examples
from tunestudio.models.memory import human_bytes
from tunestudio.webui.common.context import empty_table, metric_label, translated_columns
from tunestudio.webui.i18n.texts import DEFAULT, engine_warning, t

METRICS = ("exact_match", "f1", "bleu", "rouge1", "rouge2", "rougeL", "perplexity", "loss")


def _num(v):
    return f"{v:.4f}" if isinstance(v, float) else ("" if v is None else v)


def metrics_frame(lang: str, out: dict) -> pd.DataFrame:
    base, deltas = out.get("base_metrics") or {}, out.get("deltas") or {}
    cols = [t(lang, "evaluate.col.metric"), t(lang, "evaluate.col.finetuned"), t(lang, "evaluate.col.base"),
            t(lang, "evaluate.col.delta")]
    rows = [[metric_label(lang, k), _num(v), _num(base.get(k)), _num(deltas.get(k))]
            for k, v in (out.get("metrics") or {}).items()]
    return pd.DataFrame(rows, columns=cols)


# input | reference | the fine-tuned answer | the base's | scores: the answers beside what was asked and
# what was right, each column a fixed share of the width (EXAMPLE_WIDTHS) and wrapped, so no answer is
# off-screen; the downloads hold every field (where, reasoning, losses, meta)
EXAMPLE_COLUMNS = ["input", "reference", "prediction", "base_prediction", "scores"]
EXAMPLE_WIDTHS = ["27%", "12%", "22%", "22%", "17%"]
INPUT_CHARS = 400   # a long prompt is cut in its cell (its start says which row it is)
BENCH_COLUMNS = ["model", "source", "params", "tokens_per_second", "seconds", "metrics"]


def _scores(lang: str, scores: dict, loss=None) -> str:
    cells = [f"{metric_label(lang, a, with_id=False)}={_num(b)}" for a, b in (scores or {}).items()]
    return ", ".join(cells + ([f"{metric_label(lang, 'loss', with_id=False)}={_num(loss)}"] if loss is not None else []))


def examples_frame(rows: list[dict], limit: int = 500, lang: str = DEFAULT) -> pd.DataFrame:
    """The per-example table, worst first as given, in EXAMPLE_COLUMNS; headers in `lang`. The scores
    cell holds the fine-tuned model's scores, then the base's after "base:"."""
    if not rows:
        return empty_table(lang, [f"evaluate.col_example.{c}" for c in EXAMPLE_COLUMNS])
    flat = []
    for r in rows[:limit]:
        text = r.get("input") or ""
        scores = _scores(lang, r.get("scores"), r.get("loss"))
        if "base_prediction" in r:
            scores += f" · {t(lang, 'evaluate.col.base')}: {_scores(lang, r.get('base_scores'), r.get('base_loss'))}"
        flat.append({"input": text if len(text) <= INPUT_CHARS else text[:INPUT_CHARS] + "…",
                     "reference": str(r.get("reference", "")), "prediction": r.get("prediction", ""),
                     "base_prediction": r.get("base_prediction", ""), "scores": scores})
    return translated_columns(lang, pd.DataFrame(flat, columns=EXAMPLE_COLUMNS), "evaluate.col_example.")


def result_lines(lang: str, out: dict) -> str:
    """What the head of a result adds under its first line: whether every example is exactly right
    or how many are not (the table lists those first), and a note for each metric asked that
    reads 0 on these answers (metric_choice.metric_notes, as {code, message, metric}). "" when
    neither applies."""
    rows, primary = out.get("rows") or [], out.get("primary_metric")
    lines = []
    if rows and primary and primary not in LOWER_IS_BETTER:
        wrong = len(worst_examples(rows, primary, k=len(rows)))
        label = metric_label(lang, primary, with_id=False)
        lines.append(t(lang, "evaluate.all_right", n=len(rows), primary=label) if not wrong else
                     t(lang, "evaluate.not_right", k=wrong, n=len(rows), primary=label))
    lines += [f"- ℹ {engine_warning(lang, note)}" for note in out.get("metric_notes") or []]
    return "".join("\n\n" + line for line in lines)


def no_result(lang: str) -> tuple:
    """The results table, per-example table, guard table and downloads when there is nothing to show."""
    return metrics_frame(lang, {}), examples_frame([], lang=lang), guard_frame(lang, None), None


GUARD_COLUMNS = ["prompt", "reference", "base", "right_base", "tuned", "right_tuned", "similarity"]
GUARD_DEFAULT = "demo-general.jsonl"   # the demo's chat guard set (questions SmolLM2 answers right)


def guard_frame(lang: str, guard: dict | None) -> pd.DataFrame:
    """The chat forgetting check question by question (empty for none, or a perplexity check)."""
    rows = (guard or {}).get("rows") or []
    if not rows:
        return empty_table(lang, [f"evaluate.col_guard.{c}" for c in GUARD_COLUMNS])
    cells = [{c: ("✓" if r[c] else "✗") if c.startswith("right_") else _num(r[c]) for c in GUARD_COLUMNS if c in r}
             for r in rows]
    return translated_columns(lang, pd.DataFrame(cells), "evaluate.col_guard.")


def guard_text(lang: str, g: dict | None) -> str:
    """The forgetting check's result in one line in `lang` ("" when none was asked)."""
    if not g:
        return ""
    if g.get("kind") == "chat":
        verdict = t(lang, "evaluate.guard_verdict." + {True: "forgetting", False: "kept"}.get(g.get("forgetting"),
                                                                                           "unknown"))
        if g.get("base_right") is None:
            return t(lang, "evaluate.guard_chat_alone", dataset=g["dataset"], right=g["tuned_right"], n=g["n"])
        share = f"{g['kept_right'] / g['base_right']:.0%}" if g["base_right"] else "-"
        return t(lang, "evaluate.guard_chat", dataset=g["dataset"], n=g["n"], base_right=g["base_right"],
                 kept_right=g["kept_right"], kept_share=share, kept_close=g["kept_close"],
                 similarity=f"{g['mean_similarity']:.2f}", verdict=verdict)
    after = (g.get("evaluated") or {}).get("perplexity")
    if after is None:
        return ""
    if not g.get("base"):
        return t(lang, "evaluate.guard_perplexity_alone", dataset=g["dataset"], after=f"{after:.4g}")
    verdict = t(lang, "evaluate.guard_verdict." + ("forgetting" if g.get("forgetting") else "kept_perplexity"))
    return t(lang, "evaluate.guard_perplexity", dataset=g["dataset"], after=f"{after:.4g}",
             before=f"{g['base']['perplexity']:.4g}", ratio=f"{g['perplexity_ratio']:.3f}", verdict=verdict)


def leaderboard_frame(lang: str, rows: list[dict]) -> pd.DataFrame:
    """The benchmark's leaderboard, headers in `lang` (empty: the usual columns)."""
    if not rows:
        return empty_table(lang, [f"evaluate.col_bench.{c}" for c in BENCH_COLUMNS])
    return translated_columns(lang, pd.DataFrame([{k: _cell(k, v, lang) for k, v in r.items()} for r in rows]),
                              "evaluate.col_bench.")


def _cell(key: str, value, lang: str = DEFAULT):
    """A leaderboard cell: memory (bytes) as MiB/GiB, numbers rounded, dicts as a=b pairs (metric names in `lang`)."""

    if isinstance(value, dict):
        return ", ".join(f"{metric_label(lang, a, with_id=False)}={_num(b)}" for a, b in value.items())
    if "memory" in key and isinstance(value, (int, float)):
        return human_bytes(value)
    return _num(value)


SPLITS = ("test", "val", "train")


def split_word(lang: str, split: str | None) -> str | None:
    """A split's name (test, val, train: the engine's and the CLI's word) in `lang`."""
    return t(lang, f"evaluate.split_name.{split}") if split in SPLITS else split


def split_choices(lang: str) -> list[tuple[str, str]]:
    """The split picker's choices: (name in `lang`, engine word)."""
    return [(split_word(lang, s), s) for s in SPLITS]


# ---- the LLM judge (judge.py: the panel; tunestudio.evaluate.judge: the engine) -------------------

JUDGE_ROWS = ("tuned_mean", "base_mean", "single_unparseable", "single_failed", "win", "tie", "loss", "inconsistent",
              "unparseable", "failed", "win_rate")
JUDGE_EXAMPLE_COLUMNS = ["index", "input", "base_prediction", "prediction", "base_score", "tuned_score", "outcome",
                         "raw"]
RAW_CHARS = 600   # of each judge text in a cell; judge.jsonl holds them whole


def judge_results_frame(lang: str, out: dict | None) -> pd.DataFrame:
    """Measure | value: mean scores with their counts, the pairwise counts, the win rate."""
    if not out:
        return empty_table(lang, ["judge.col.measure", "judge.col.value"])
    s, p = out.get("single") or {}, out.get("pairwise") or {}
    values = {}
    for side in ("tuned", "base"):
        if side in s:
            m = s[side]
            values[f"{side}_mean"] = "-" if m["mean"] is None else f"{m['mean']:.2f} / 10 (n {m['n']})"
    if s:
        values.update(single_unparseable=s["unparseable"], single_failed=s["failed"])
    if p:
        values.update({k: p[k] for k in ("win", "tie", "loss", "inconsistent", "unparseable", "failed")})
        values["win_rate"] = "-" if p["win_rate"] is None else f"{p['win_rate']:.0%} ({p['win']}/{p['judged']})"
    rows = [[t(lang, f"judge.row.{k}"), values[k]] for k in JUDGE_ROWS if k in values]
    return pd.DataFrame(rows, columns=[t(lang, "judge.col.measure"), t(lang, "judge.col.value")])


def _score(v) -> str:
    return "" if v is None else f"{v:g}"


def _raw(e: dict) -> str:
    parts = []
    for side, got in (e.get("single") or {}).items():
        parts.append(f"[{side}] {got.get('raw') or got.get('error') or ''}"[:RAW_CHARS])
    pw = e.get("pairwise") or {}
    for order in ("base_first", "tuned_first"):
        if order in pw:
            parts.append(f"[{order}] {pw[order].get('raw') or pw[order].get('error') or ''}"[:RAW_CHARS])
    return "\n---\n".join(parts)


def judge_examples_frame(lang: str, examples: list[dict] | None, limit: int = 500) -> pd.DataFrame:
    """One row per example: both answers, the parsed scores and outcome, and the judge's raw texts."""
    if not examples:
        return empty_table(lang, [f"judge.col_example.{c}" for c in JUDGE_EXAMPLE_COLUMNS])
    rows = []
    for e in examples[:limit]:
        single = e.get("single") or {}
        outcome = (e.get("pairwise") or {}).get("outcome")
        rows.append({"index": e.get("index"), "input": e.get("input"), "base_prediction": e.get("base_prediction"),
                     "prediction": e.get("prediction"),
                     "base_score": _score((single.get("base") or {}).get("score")),
                     "tuned_score": _score((single.get("tuned") or {}).get("score")),
                     "outcome": t(lang, f"judge.outcome.{outcome}") if outcome else "", "raw": _raw(e)})
    return translated_columns(lang, pd.DataFrame(rows), "judge.col_example.")


def agreement_text(lang: str, a: dict | None) -> str:
    """"The judge agrees with your ratings on 14 of 20 (70%), κ = 0.41", or how to get such a figure."""
    if not a or not a.get("n"):
        return t(lang, "judge.agreement_none")
    kappa = t(lang, "judge.kappa_undefined") if a["kappa"] is None else f"{a['kappa']:.2f}"
    return t(lang, "judge.agreement", agree=a["agree"], n=a["n"], share=f"{a['share']:.0%}", kappa=kappa)
