"""An LLM judge over any OpenAI-compatible endpoint grades an evaluation's answers.

Two modes (docs/evaluation.md, "LLM judge"):

- single: each answer (the fine-tuned model's, and the base's when the evaluation has them) is
  rated 1-10 against a rubric, MT-Bench style; the judge must end with `Rating: [[N]]`.
- pairwise: base and fine-tuned answers side by side, asked in BOTH orders (base as A, then
  tuned as A). Judges favour a position (often the first); a win counts only when the judge picks
  the same answer in both orders. Different picks are "inconsistent", counted apart, never a win.

A verdict that is not in the fixed format (no `[[N]]`, two different ones, a rating outside 1-10)
is "unparseable": counted, never guessed. A request that fails (timeout, server error) is retried
at most once, then counted as failed with its reason. Requests run in a bounded thread pool, each
with a timeout, so a slow judge costs bounded time; the judge's raw text is kept per example.
"""

from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.core.progress import progress
from tunestudio.models.endpoint import complete_chat

MODES = ("single", "pairwise", "both")
MAX_RUBRIC_CHARS = 20_000

DEFAULT_CRITERIA = ("Your evaluation should consider the helpfulness, relevance, accuracy, depth and level of detail "
                    "of the answer. When a reference answer is given, correctness against it matters most: an answer "
                    "that contradicts the reference is poor however well it is written.")

SINGLE = """[Instruction]
Please act as an impartial judge and evaluate the quality of the answer an AI assistant gave to the user question \
displayed below. {criteria}
Begin your evaluation with a short explanation, being as objective as possible. After the explanation you must rate \
the answer on a scale of 1 to 10 by strictly following this format: "Rating: [[N]]", for example "Rating: [[5]]".

[Question]
{question}
{reference}
[The Start of Assistant's Answer]
{answer}
[The End of Assistant's Answer]"""

PAIRWISE = """[Instruction]
Please act as an impartial judge and compare the answers two AI assistants gave to the user question displayed \
below. Choose the assistant that follows the user's instructions and answers the question better. {criteria}
Begin by comparing the two answers with a short explanation. Avoid any position bias: the order in which the \
answers are shown must not influence your decision. Do not let the length of the answers or the names of the \
assistants influence you. Be as objective as possible. After the explanation, output your final verdict by strictly \
following this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.

[User Question]
{question}
{reference}
[The Start of Assistant A's Answer]
{a}
[The End of Assistant A's Answer]

[The Start of Assistant B's Answer]
{b}
[The End of Assistant B's Answer]"""

_RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_CHOICE = re.compile(r"\[\[\s*([ABC])\s*\]\]")


@dataclass
class Judge:
    """Where and how to ask: the endpoint (…/v1), its model, the key (from the environment, never
    logged), at most `parallel` requests at once, each waiting at most `timeout` seconds per read."""

    url: str
    model: str | None = None
    api_key: str | None = None
    parallel: int = 4
    timeout: float = 60.0
    retries: int = 1
    max_new_tokens: int = 512


def read_rubric(path: str | Path | None) -> str:
    """The criteria paragraph: a rubric file's text (plain text or Markdown), else DEFAULT_CRITERIA.
    The verdict format is always added by tunestudio, so a rubric cannot break parsing."""
    if not path:
        return DEFAULT_CRITERIA
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read the rubric file {p} ({e})", "judge_rubric_unreadable", path=str(p),
                        detail=str(e)) from None
    if not text or len(text) > MAX_RUBRIC_CHARS:
        raise UserError(f"the rubric file {p} must hold 1 to {MAX_RUBRIC_CHARS} characters (it has {len(text)})",
                        "judge_rubric_size", path=str(p), chars=len(text), most=MAX_RUBRIC_CHARS)
    return text


def parse_rating(text: str | None) -> float | None:
    """The 1-10 rating in `[[N]]`; None when there is none, several different ones, or one out of range."""
    values = {float(v) for v in _RATING.findall(text or "")}
    if len(values) != 1:
        return None
    v = values.pop()
    return v if 1 <= v <= 10 else None


def parse_choice(text: str | None) -> str | None:
    """"A", "B" or "tie" from `[[A]]`, `[[B]]`, `[[C]]`; None when absent or contradictory."""
    found = set(_CHOICE.findall(text or ""))
    return {"A": "A", "B": "B", "C": "tie"}[found.pop()] if len(found) == 1 else None


def _reference_block(reference) -> str:
    ref = str(reference or "").strip()
    return f"\n[The Start of Reference Answer]\n{ref}\n[The End of Reference Answer]\n" if ref else ""


def single_prompt(row: dict, answer: str, criteria: str) -> str:
    return SINGLE.format(criteria=criteria, question=row.get("input") or "", answer=answer,
                         reference=_reference_block(row.get("reference")))


def pairwise_prompt(row: dict, a: str, b: str, criteria: str) -> str:
    return PAIRWISE.format(criteria=criteria, question=row.get("input") or "", a=a, b=b,
                           reference=_reference_block(row.get("reference")))


def _ask(judge: Judge, prompt: str) -> dict:
    """{raw, error}: the judge's text, or the code of why there is none (after at most `retries` retries)."""
    out: dict = {}
    for _ in range(1 + max(0, min(int(judge.retries), 1))):
        try:
            return {"raw": complete_chat(judge.url, [{"role": "user", "content": prompt}], api_key=judge.api_key,
                                         model=judge.model, max_new_tokens=judge.max_new_tokens, temperature=0.0,
                                         timeout=judge.timeout), "error": None}
        except UserError as e:
            out = {"raw": None, "error": e.code, "message": str(e)}
            status = e.fields.get("status") or 0
            if e.code == "endpoint_bad_reply" or (400 <= status < 500 and status != 429):
                break   # the request itself is wrong: asking again gives the same answer
    return out


def ask_all(judge: Judge, prompts: list[str], desc: str = "judge") -> list[dict]:
    """Every prompt's {raw, error}, in order; at most judge.parallel requests in flight."""
    results: list = [None] * len(prompts)
    if not prompts:
        return results
    pool = ThreadPoolExecutor(max_workers=max(1, int(judge.parallel)), thread_name_prefix="judge")
    try:
        with progress(len(prompts), desc, unit="requests") as bar:
            futures = {pool.submit(_ask, judge, p): i for i, p in enumerate(prompts)}
            for f in as_completed(futures):
                results[futures[f]] = f.result()
                bar.update(1)
    finally:   # interrupted (Ctrl-C, Stop): the requests not yet sent are dropped, not waited for
        pool.shutdown(wait=False, cancel_futures=True)
    return results


def _outcome(first: dict, second: dict) -> str:
    """win / loss / tie (the tuned model's, the same in both orders), inconsistent, unparseable or failed.
    `first` asked base as A, `second` tuned as A."""
    if first.get("error") or second.get("error"):
        return "failed"
    if first["choice"] is None or second["choice"] is None:
        return "unparseable"
    w1 = {"A": "base", "B": "tuned", "tie": "tie"}[first["choice"]]
    w2 = {"A": "tuned", "B": "base", "tie": "tie"}[second["choice"]]
    if w1 != w2:
        return "inconsistent"
    return {"tuned": "win", "base": "loss", "tie": "tie"}[w1]


# what each pairwise outcome says about base vs tuned, for agreement with people (agreement.py):
# a judge that flips with the order has no preference, the same as a tie
VERDICT = {"win": "tuned", "loss": "base", "tie": "tie", "inconsistent": "tie"}


def judge_rows(rows: list[dict], judge: Judge, mode: str = "both", criteria: str = DEFAULT_CRITERIA) -> dict:
    """Grade an evaluation's rows ({index, input, reference, prediction, [base_prediction]}).

    Returns {mode, single: {tuned, base, unparseable, failed}, pairwise: {win, tie, loss, inconsistent,
    unparseable, failed, judged, win_rate}, failed_reasons, examples: [per row: scores, raw texts, outcome,
    verdict]}. Pairwise needs base predictions (an evaluation run with compare-base)."""
    if mode not in MODES:
        raise UserError(f"--judge-mode must be one of {', '.join(MODES)} (got '{mode}')", "unknown_choice",
                        option="--judge-mode", value=mode, choices=list(MODES))
    has_base = bool(rows) and all(r.get("base_prediction") is not None for r in rows)
    if mode in ("pairwise", "both") and not has_base:
        raise UserError("pairwise judging compares the base model's answers with the fine-tuned ones: evaluate with "
                        "--compare-base (a run), or use --judge-mode single", "judge_needs_base")
    examples = [{"index": r.get("index", i), "input": r.get("input"), "reference": r.get("reference"),
                 "prediction": r.get("prediction"), "base_prediction": r.get("base_prediction")}
                for i, r in enumerate(rows)]
    out: dict = {"mode": mode, "n": len(rows), "examples": examples}
    reasons: Counter = Counter()
    if mode in ("single", "both"):
        sides = ["tuned"] + (["base"] if has_base else [])
        asks = [(e, side) for e in examples for side in sides]
        answers = ask_all(judge, [single_prompt(e, e["prediction" if side == "tuned" else "base_prediction"] or "",
                                                criteria) for e, side in asks], "judge: single")
        for (e, side), got in zip(asks, answers):
            e.setdefault("single", {})[side] = {**got, "score": parse_rating(got["raw"])}
        single = {"unparseable": 0, "failed": 0}
        for side in sides:
            scores = [e["single"][side]["score"] for e in examples if e["single"][side]["score"] is not None]
            single[side] = {"mean": sum(scores) / len(scores) if scores else None, "n": len(scores)}
        for e in examples:
            for got in e["single"].values():
                single["failed"] += bool(got["error"])
                single["unparseable"] += got["error"] is None and got["score"] is None
                reasons.update([got["error"]] if got["error"] else [])
        out["single"] = single
    if mode in ("pairwise", "both"):
        prompts = []
        for e in examples:
            base, tuned = e["base_prediction"] or "", e["prediction"] or ""
            prompts += [pairwise_prompt(e, base, tuned, criteria), pairwise_prompt(e, tuned, base, criteria)]
        answers = ask_all(judge, prompts, "judge: pairwise (both orders)")
        counts = Counter()
        for k, e in enumerate(examples):
            first, second = ({**g, "choice": parse_choice(g["raw"])} for g in answers[2 * k: 2 * k + 2])
            outcome = _outcome(first, second)
            e["pairwise"] = {"outcome": outcome, "base_first": first, "tuned_first": second}
            counts[outcome] += 1
            reasons.update(g["error"] for g in (first, second) if g["error"])
        judged = sum(counts[k] for k in ("win", "tie", "loss", "inconsistent"))
        out["pairwise"] = {**{k: counts[k] for k in ("win", "tie", "loss", "inconsistent", "unparseable", "failed")},
                           "judged": judged, "win_rate": counts["win"] / judged if judged else None,
                           "loss_rate": counts["loss"] / judged if judged else None}
    for e in examples:
        e["verdict"] = _verdict(e)
    out["failed_reasons"] = dict(reasons)
    return out


def _verdict(e: dict) -> str | None:
    """base / tuned / tie for this example (pairwise when asked, else the two single scores), None without one."""
    if "pairwise" in e:
        return VERDICT.get(e["pairwise"]["outcome"])
    s = e.get("single") or {}
    if "base" not in s or s["tuned"]["score"] is None or s["base"]["score"] is None:
        return None
    t, b = s["tuned"]["score"], s["base"]["score"]
    return "tuned" if t > b else "base" if b > t else "tie"


def summary_lines(out: dict) -> list[str]:
    """The console lines of a judgement (cli and logs)."""
    lines = [f"LLM judge ({out.get('judge_model') or 'endpoint model'} at {out.get('endpoint', '?')}), "
             f"mode {out['mode']}, {out['n']} examples"]
    s = out.get("single")
    if s:
        for side in ("tuned", "base"):
            if side in s:
                m = s[side]
                lines.append(f"  {side:<6} mean score {m['mean']:.2f} / 10 over {m['n']}" if m["mean"] is not None
                             else f"  {side:<6} no parseable score")
        lines.append(f"  single: {s['unparseable']} unparseable, {s['failed']} failed")
    p = out.get("pairwise")
    if p:
        rate = "-" if p["win_rate"] is None else f"{p['win_rate']:.0%}"
        lines.append(f"  pairwise (tuned vs base, both orders): {p['win']} win, {p['tie']} tie, {p['loss']} loss, "
                     f"{p['inconsistent']} inconsistent, {p['unparseable']} unparseable, {p['failed']} failed; "
                     f"win rate {rate} of {p['judged']} judged")
    if out.get("failed_reasons"):
        lines.append("  failed requests: " + ", ".join(f"{k} ×{v}" for k, v in out["failed_reasons"].items()))
    return lines
