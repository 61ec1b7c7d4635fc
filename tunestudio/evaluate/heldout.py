"""A held-out file: every usable row of a dataset file the run never trained on, asked as the run asks.

A held-out file IS the test set, so it is scored whole (a split of it only when one is asked).
Its rows are read with the run's format, column mapping and document separator (its config.yaml),
and a conversation without a system message gets the one the run's training rows share: the
fine-tuned model (and its base, through the run's tokenizer and chat template) is asked exactly as
it was trained, not in a shape it never saw.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from tunestudio.core.errors import UserError
from tunestudio.data.split import load_splits, splits_from_info

SYSTEM_SAMPLE = 5000   # training rows read to tell a shared system prompt (enough, even for a huge file)


def read_options(config: dict | None) -> dict:
    """How the run read its data (format, mapping, separator), as load_splits takes them."""
    config = config or {}
    return {"fmt": config.get("format") or None, "mapping": config.get("mapping") or None,
            "separator": config.get("separator") or None}


def training_system_prompt(ws, info: dict | None) -> str | None:
    """The system message the run's training rows share (`info`: its split.json): the commonest
    among the first SYSTEM_SAMPLE when at least half carry it; None when none does, or the data is
    gone or changed. The Chat tab fills its system prompt with the same."""
    if not info or not info.get("rows"):
        return None
    try:
        rows = splits_from_info(ws, info).train
    except (UserError, OSError, KeyError, TypeError, ValueError):   # data gone, changed, or a damaged split.json
        return None
    counts: Counter = Counter()
    total = 0
    for rec in rows:
        if total == SYSTEM_SAMPLE:
            break
        total += 1
        system = next((m["content"] for m in rec.messages or [] if m.get("role") == "system"), None)
        if system:
            counts[_text(system)] += 1
    if not counts:
        return None
    system, n = counts.most_common(1)[0]
    return system if n * 2 >= total else None


def _text(content) -> str:
    """A message's text: a string, or a list of {"type": "text", "text"} parts."""
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return content if isinstance(content, str) else str(content)


def with_system(records, system: str | None) -> list:
    """The records, each conversation without a system message given `system` first."""
    if not system:
        return list(records)
    return [replace(r, messages=[{"role": "system", "content": system}, *r.messages])
            if r.is_chat and not any(m.get("role") == "system" for m in r.messages) else r for r in records]


def file_records(ws, dataset: str, config: dict | None = None, info: dict | None = None,
                 part: str = "all") -> list:
    """The rows of `dataset` read as the run read its data (`config`: its config.yaml; `info`: its
    split.json, for the shared system prompt): every usable row for part "all", else that part of
    the split `train` would carve (its default shares)."""
    options = read_options(config)
    splits = load_splits(ws, dataset, 0, 0, **options) if part == "all" else load_splits(ws, dataset, **options)
    records = splits.train if part == "all" else getattr(splits, part)
    return with_system(records, training_system_prompt(ws, info))
