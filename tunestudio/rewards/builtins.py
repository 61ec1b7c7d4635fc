"""Built-in rewards: plain functions of (prompt, completion, row) -> float, run in our process.

Each is scored per completion; `row` holds the dataset row's other columns (`reference` among
them). Scores are in [0, 1] except `length_penalty`, which is in [-1, 0].
"""

from __future__ import annotations

import json
import re
import unicodedata

from tunestudio.core.errors import CodedError


class RewardValueError(CodedError, ValueError):
    """A built-in reward that cannot score (a ValueError, as before), with a code and fields so the
    web UI words it (engine.<code>); the caller names the reward and the row."""


def _norm(text) -> str:
    """Compare answers as exact-match evaluation does: NFKC, case-folded, spaces collapsed."""
    text = unicodedata.normalize("NFKC", str(text or "")).casefold()
    return " ".join(text.split()).strip(" .")


def exact_match(prompt, completion, reference=None, **row) -> float:
    """1.0 when the completion equals the row's `reference` (normalised), else 0.0. A row without a
    reference cannot be scored: ValueError (the caller names the row)."""
    if reference is None:
        raise RewardValueError("exact_match needs a 'reference' column in the dataset", "reward_needs_reference")
    return float(_norm(completion) == _norm(reference))


def make_regex(pattern: str):
    """A reward that is 1.0 when the whole completion matches `pattern` (re.fullmatch, DOTALL)."""
    try:
        compiled = re.compile(pattern, re.DOTALL)
    except re.error as e:
        raise RewardValueError(f"--reward-regex '{pattern}' is not a valid regular expression: {e}", "reward_regex_bad",
                               option="reward_regex", pattern=pattern, detail=str(e)) from None

    def regex(prompt, completion, **row) -> float:
        return float(compiled.fullmatch(completion.strip()) is not None)

    return regex


def json_valid(prompt, completion, **row) -> float:
    """1.0 when the completion (a ```json fence allowed around it) parses as JSON, else 0.0."""
    text = completion.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    try:
        json.loads(fenced.group(1) if fenced else text)
        return 1.0
    except ValueError:
        return 0.0


def make_length_penalty(max_chars: int):
    """A reward of 0 up to `max_chars` characters, falling linearly to -1 at twice that length."""
    def length_penalty(prompt, completion, **row) -> float:
        over = max(0, len(completion) - max_chars)
        return -min(1.0, over / max(1, max_chars))

    return length_penalty


def builtin(name: str, regex: str = "", max_chars: int = 200):
    """The built-in reward called `name` (see NAMES), or None when there is none by that name."""
    if name == "exact_match":
        return exact_match
    if name == "json_valid":
        return json_valid
    if name == "regex":
        if not regex:
            raise RewardValueError("the regex reward needs a pattern: set --reward-regex", "reward_regex_missing",
                                   option="reward_regex")
        return make_regex(regex)
    if name == "length_penalty":
        return make_length_penalty(max_chars)
    return None


NAMES = ("exact_match", "regex", "json_valid", "length_penalty")
