"""`data check`: validate every row of a dataset and say exactly what is wrong where.

Errors come from loading (a row that cannot be used: invalid JSON, missing or empty response,
wrong type, unknown role, no assistant turn, null content, bytes that are not UTF-8, unreadable or
unsupported file, missing columns, empty file). Warnings do not fail the check: exact duplicates,
rows far longer than the rest, rows over the length cutoff (tokens of `--model`, else characters),
and, for a split set (NAME.train.* + NAME.val.*/NAME.test.*), rows of the val/test files that are
also training rows (train/test leakage).
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

from tunestudio.data.chat import turns
from tunestudio.data.chat.render import REFUSED
from tunestudio.data.encoding.encode import encode
from tunestudio.data.formats.load import LoadResult, Problem
from tunestudio.data.formats.records import Record
from tunestudio.data.formats.table import Chain
from tunestudio.data.quality.stats import record_text, row_digest, row_lengths, tokenizer_and_cutoff
from tunestudio.data.split import leakage_warnings, load_dataset

LONG_FACTOR = 10        # a row this many times the median length ...
LONG_MIN_CHARS = 2000   # ... and at least this long is "very long" (a pasted document, a runaway answer)


@dataclass
class CheckReport:
    format: str | None
    rows: int
    errors: list[Problem]
    warnings: list[Problem]
    files: dict[str, LoadResult] = field(default_factory=dict)   # split key -> what was loaded
    unit: str = "characters"
    max_length: int | None = None
    refused: Counter = field(default_factory=Counter)   # file -> rows its chat template refused (not usable)
    dropped: int = 0   # rows cut before any answer token at max_length: training leaves them out

    def usable(self, loaded: LoadResult) -> int:
        """Rows of one loaded file that training can use: read, and accepted by the chat template."""
        return len(loaded.records) - (self.refused[loaded.records[0].source] if loaded.records else 0)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict:
        """Exactly the object `data check --json` prints (docs/dev/architecture.md)."""
        return {"format": self.format, "rows": self.rows,
                "errors": [p.to_dict() for p in self.errors],
                "warnings": [p.to_dict() for p in self.warnings]}


def row_warnings(records, lengths: list[int] | None = None, max_length: int | None = None,
                 unit: str = "tokens", dropped: set[str] = frozenset()) -> list[Problem]:
    """Duplicates, very long rows, and rows over `max_length` (`lengths` per row, in `unit`;
    `dropped`: Record.where() of the rows cut before any answer token).
    Rows are remembered by a 16-byte digest and their place, so a million rows fit."""
    out = []
    first_seen: dict[bytes, str] = {}   # row digest -> "file:line" of its first row
    chars = [len(record_text(r)) for r in records]
    median = statistics.median(chars) if chars else 0
    for i, r in enumerate(records):
        key = row_digest(r)
        if key in first_seen:
            out.append(Problem(r.source, r.line, f"duplicate of {first_seen[key]}", "duplicate_of",
                               {"where": first_seen[key]}))
        else:
            first_seen[key] = r.where()
        if chars[i] >= LONG_MIN_CHARS and chars[i] > LONG_FACTOR * median:
            out.append(Problem(r.source, r.line, f"very long row: {chars[i]} characters (the median is {median:g})",
                               "very_long_row", {"chars": chars[i], "median": f"{median:g}"}))
        if max_length and lengths is not None and lengths[i] > max_length:
            # plain text is streamed into blocks by default (stream.py): nothing of it is lost
            fate = ("no answer token fits: the row will be dropped from training" if r.where() in dropped else
                    "it will be truncated" if r.is_chat else
                    "it spans several blocks of the text stream (truncated only with --text-mode truncate)")
            out.append(Problem(r.source, r.line, f"{lengths[i]} {unit}, over the max length of {max_length}: {fate}",
                               "over_max_length_dropped" if r.where() in dropped else
                               "over_max_length" if r.is_chat else "over_max_length_text",
                               {"length": lengths[i], "unit": unit, "max_length": max_length}))
    return out


def template_warnings(tokenizer, dataset: str, records: list[Record]) -> list[Problem]:
    """What the model's chat template does that a user should know before training: a generation
    prompt that differs from what training puts before answers, a turn end that is not one token."""
    out = [Problem.of(dataset, 0, msg) for msg in [turns.prompt_difference(tokenizer)] if msg]
    try:
        out += [Problem.of(dataset, 0, note) for note in turns.probe(tokenizer).notes]
    except turns.TemplateRefused as e:
        out.append(Problem(dataset, 0, f"the chat template cannot render a one-question chat: {e}",
                           "template_cannot_render", {"detail": str(e)}))
    return out if any(r.is_chat for r in records) else []


def _dropped(records, lengths, tokenizer, max_length) -> set[str]:
    """Where the chat rows over `max_length` are cut before their first answer token (training
    drops them). Encodes only the rows over the limit, so a large file costs little more."""
    if tokenizer is None or lengths is None:
        return set()
    over = [records[i] for i, n in enumerate(lengths) if n > max_length and records[i].is_chat]
    if not over:
        return set()

    return set(encode(over, tokenizer, max_length, skip_bad_rows=True).dropped_rows)


def check_dataset(ws, dataset: str, fmt: str | None = None, mapping=None, model: str | None = None,
                  max_length: int | None = None, separator: str | None = None) -> CheckReport:
    """Load every file of `dataset` and report its errors and warnings (raises only for a
    dataset that cannot be found or a bad option)."""
    files, results = load_dataset(ws, dataset, fmt, mapping, separator)
    tokenizer, max_length = tokenizer_and_cutoff(ws, model, max_length)
    unit = "tokens" if tokenizer is not None else "characters"
    errors = [p for r in results.values() for p in r.errors]
    warnings = [p for r in results.values() for p in r.warnings]
    records = Chain([r.records for r in results.values()])   # rows built a batch at a time
    refused: dict[int, str] = {}
    lengths = row_lengths(records, tokenizer, refused) if max_length else None
    errors += [Problem(records[i].source, records[i].line, f"{REFUSED}: {msg}", "template_refused", {"detail": msg})
               for i, msg in sorted(refused.items())]
    dropped = _dropped(records, lengths, tokenizer, max_length)
    warnings += row_warnings(records, lengths, max_length, unit, dropped)
    if tokenizer is not None:  # first: said once for the file, not lost behind per-row warnings
        warnings = template_warnings(tokenizer, dataset, records) + warnings
    if "all" not in files:   # a split set: held-out files must not repeat training rows
        warnings += leakage_warnings({key: r.records for key, r in results.items()})

    formats = {r.format for r in results.values() if r.format}
    first = results.get("all") or results["train"]
    return CheckReport(first.format if len(formats) <= 1 else "/".join(sorted(formats)),
                       len(records), errors, warnings, results, unit, max_length,
                       refused=Counter(records[i].source for i in refused), dropped=len(dropped))
