"""Scores for tool calls: did the model call the right function with the right arguments?

- `tool_call_match`: 1 when the calls parsed from the prediction (toolparse.py) are the
  reference's calls: the same function names with arguments equal as JSON (key order and
  whitespace do not matter, 2 equals 2.0, true does not equal 1), as a multiset (parallel calls
  may come in any order); else 0.
- `tool_name_match`: 1 when the predicted calls name the same functions (a multiset), whatever
  their arguments.

Both are scored on the rows whose reference makes a call, and averaged over those rows only
(a row answered in words has no key); a prediction with no parseable call scores 0.
"""

from __future__ import annotations

import json
from collections import Counter

from tunestudio.core.errors import CodedText
from tunestudio.evaluate.toolparse import parse_tool_calls

TOOL_METRICS = ("tool_call_match", "tool_name_match")


def _canonical(value):
    """A JSON value with integral floats as ints (2.0 == 2), bools kept apart from numbers."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _key(call: dict, with_args: bool) -> str:
    fn = call.get("function", call)
    if not with_args:
        return fn["name"]
    return json.dumps([fn["name"], _canonical(fn.get("arguments") or {})], sort_keys=True)


def tool_call_match(predicted: list[dict], reference: list[dict]) -> float:
    """1.0 when the predicted calls equal the reference calls (names and JSON arguments)."""
    return float(bool(reference) and Counter(_key(c, True) for c in predicted) == Counter(_key(c, True) for c in reference))


def tool_name_match(predicted: list[dict], reference: list[dict]) -> float:
    """1.0 when the predicted calls name the reference's functions."""
    return float(bool(reference) and Counter(_key(c, False) for c in predicted) == Counter(_key(c, False) for c in reference))


def score_tool_calls(names: list[str], predictions: list[str], references: list[list[dict] | None],
                     scores: list[dict] | None = None) -> list[dict]:
    """Per-example tool scores for the metrics of `names` in TOOL_METRICS, added to `scores` (one
    dict per example, created when None). `references[i]`: the reference calls, None for a row
    answered in words (which gets no tool score)."""
    scores = scores if scores is not None else [{} for _ in predictions]
    wanted = [n for n in names if n in TOOL_METRICS]
    for s, text, ref in zip(scores, predictions, references):
        if not ref or not wanted:
            continue
        calls = parse_tool_calls(text)
        if "tool_call_match" in wanted:
            s["tool_call_match"] = tool_call_match(calls, ref)
        if "tool_name_match" in wanted:
            s["tool_name_match"] = tool_name_match(calls, ref)
    return scores


def aggregate_tool_scores(names: list[str], scores: list[dict]) -> dict[str, float]:
    """The mean of each tool metric over the rows that have it (rows whose reference calls)."""
    out = {}
    for name in (n for n in names if n in TOOL_METRICS):
        values = [s[name] for s in scores if name in s]
        if values:
            out[name] = sum(values) / len(values)
    return out


def no_calls_warning(names: list[str], where: str, holds: str, nothing_else: bool) -> str | None:
    """The warning for tool metrics asked for (`names`, any others ignored) on rows none of whose
    references calls a tool: `where` names the rows ("the test split of data.jsonl"), `holds` says
    what they are ("12 conversations answered in words"); `nothing_else`: no other metric was
    asked, so the evaluation has no score at all. None when no tool metric was asked."""
    wanted = [n for n in names if n in TOOL_METRICS]
    if not wanted:
        return None
    out = (f"{', '.join(wanted)}: no reference holds a tool call in {where} ({holds}), so no row was scored "
           "for them (a reference's calls are an assistant message's tool_calls, or written in it as "
           "<tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call> or as a JSON call)")
    if nothing_else:
        out += ("; no other metric was asked for, so nothing was scored: name one with --metrics, "
                "or leave --metrics out for all")

    return CodedText(out, "no_reference_calls", metrics=", ".join(wanted))   # worded per language in the UI
