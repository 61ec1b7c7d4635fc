"""`data clean`: write a cleaned copy of a dataset and a report of every row removed, and why.

The input is only ever read. Each row is trimmed (leading/trailing whitespace of every message,
CRLF -> LF) and NFC-normalised, then dropped, first reason wins, when it:
  error           cannot be used (what `data check` reports, e.g. invalid JSON, unknown role)
  empty           has an empty prompt or response (or empty text)
  duplicate       equals an earlier row exactly (after trimming and normalising)
  near-duplicate  asks almost the same thing as an earlier row and gets the same answer
  too-long        has more than --max-tokens tokens for --model (chat template applied)

Near-duplicates: two rows are near-duplicates when their final answers and system prompts are
equal (case and whitespace folded) and their other turns have a character 3-gram Jaccard
similarity >= 0.9 (case folded, whitespace collapsed, 3-grams counted as a multiset, grams that
occur in most rows of the file, i.e. template text, left out); for plain text the whole text is
compared. Why this rule:
  - rows whose answers differ teach different things, even when the questions differ by one
    word ("12 March" vs "13 March"): comparing whole rows would drop real, templated data;
    for the same reason a long shared system prompt or instruction template is not counted;
  - character 3-grams catch what copies of a row really differ by (a typo, punctuation, an extra
    word) and work for any language without a tokenizer; 0.9 keeps paraphrases, which are data;
  - it is exact where that is cheap and bounded in memory everywhere: rows are grouped by answer
    (the blocking key), compared only within a group, and a very large group is searched with
    MinHash/LSH whose candidates are verified exactly (data/quality/neardup.py), so a million rows fit in
    a few hundred MB.
The cleaned rows are written as JSON Lines in the messages format (or {"text"}), extra columns kept,
to a file that does not exist yet (NAME.clean.jsonl, NAME.clean-2.jsonl, ...), with the removals
in NAME.clean.report.jsonl ({"file", "line", "reason", "detail"} per row).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.data.formats.load import load_file, normalize_format, parse_mapping
from tunestudio.data.formats.problems import problem_list
from tunestudio.data.formats.records import Record
from tunestudio.data.quality.neardup import NEAR_THRESHOLD, near_duplicates
from tunestudio.data.quality.stats import count_tokens, load_tokenizer, row_key
from tunestudio.data.split import MAX_LISTED, format_problems, resolve_dataset

REASONS = ("error", "empty", "duplicate", "near-duplicate", "too-long")


@dataclass
class Removal:
    file: str
    line: int
    reason: str     # one of REASONS
    detail: str     # in English, as the report file and the CLI give it
    code: str | None = None   # the detail's `engine.<code>` text in webui/i18n/locales (the UI words it)
    fields: dict = field(default_factory=dict)   # the values that text is filled from

    def to_dict(self) -> dict:
        out = {"file": self.file, "line": self.line, "reason": self.reason, "detail": self.detail}
        if self.code:
            out.update(code=self.code, fields=dict(self.fields))
        return out


@dataclass
class CleanResult:
    input: Path
    output: Path
    report: Path
    format: str | None
    rows: int                                 # rows read (usable or not)
    kept: int
    removals: list[Removal] = field(default_factory=list)

    @property
    def removed(self) -> dict[str, int]:
        counts = Counter(r.reason for r in self.removals)
        return {reason: counts[reason] for reason in REASONS if counts[reason]}

    def to_json(self) -> dict:
        return {"input": str(self.input), "output": str(self.output), "report": str(self.report),
                "format": self.format, "rows": self.rows, "kept": self.kept, "removed": self.removed}


def _norm(s: str) -> str:
    return unicodedata.normalize("NFC", s.replace("\r\n", "\n")).strip()


def normalize_record(r: Record) -> Record:
    """Trimmed, NFC-normalised copy; an empty system message is dropped."""
    if r.messages is None:
        return Record(r.source, r.line, text=_norm(r.text or ""), meta=r.meta, tools=r.tools)
    msgs = [{**m, "content": _norm(m["content"])} for m in r.messages]
    msgs = [m for m in msgs if m["content"] or m["role"] != "system"]
    return Record(r.source, r.line, messages=msgs, meta=r.meta, tools=r.tools)


def _is_empty(r: Record) -> bool:
    if r.messages is None:
        return not r.text
    # a turn that only calls tools, or a tool that returned nothing, is not empty
    return any(not m["content"] and not m.get("tool_calls") and m["role"] != "tool" for m in r.messages) \
        or not r.reference()


def output_names(path: Path, split: str | None = None, tag: str = "clean") -> tuple[Path, Path]:
    """NAME.TAG[.SPLIT].jsonl and NAME.TAG[.SPLIT].report.jsonl next to `path`."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    if split and stem.endswith(f".{split}"):
        stem = stem[: -len(split) - 1]
    tail = f".{split}" if split else ""
    return path.parent / f"{stem}.{tag}{tail}.jsonl", path.parent / f"{stem}.{tag}{tail}.report.jsonl"


def free_tag(files: dict[str, Path]) -> str:
    """'clean', else 'clean-2', ...: the first tag under which no output file exists for any file
    (one tag for a whole split set, so the cleaned files form a split set again)."""
    for k in range(1, 10_000):
        tag = "clean" if k == 1 else f"clean-{k}"
        names = [n for key, p in files.items() for n in output_names(p, None if key == "all" else key, tag)]
        if not any(n.exists() for n in names):
            return tag
    raise UserError("too many cleaned copies of this dataset", "clean_too_many_copies")


class _Normalized(Sequence):
    """`normalize_record` applied to a RecordsView as its rows are read (nothing is copied)."""

    def __init__(self, records):
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i):
        return normalize_record(self.records[i])

    def __iter__(self):
        return map(normalize_record, self.records)

    def take(self, positions):
        return _Normalized(self.records.take(positions))

    def batches(self, *args, **kwargs):
        for batch in self.records.batches(*args, **kwargs):
            yield [normalize_record(r) for r in batch]


def _to_row(r: Record) -> dict:
    body = {"messages": r.messages} if r.messages is not None else {"text": r.text}
    if r.tools:
        body["tools"] = r.tools
    return {**{k: v for k, v in r.meta.items() if k not in body}, **body}


def clean_file(path: Path, fmt=None, mapping=None, separator=None, tokenizer=None,
               max_tokens: int | None = None, threshold: float = NEAR_THRESHOLD,
               split: str | None = None, tag: str | None = None) -> CleanResult:
    """Clean one file into a new file next to it; see the module docstring."""
    path = Path(path)
    loaded = load_file(path, fmt=fmt, mapping=mapping, separator=separator)
    if loaded.format is None:   # nothing could be read: there is nothing to clean
        raise UserError(f"cannot clean {path.name}:\n" + format_problems(loaded.errors), "clean_unreadable",
                        file=path.name, problems=problem_list(loaded.errors, MAX_LISTED))
    removals = [Removal(p.file, p.line, "empty" if p.message.startswith("empty") else "error", p.message,
                        p.code, p.fields) for p in loaded.errors]
    records = loaded.records   # a RecordsView: Arrow columns, Records built a batch at a time
    # one pass, Python objects for one batch at a time: an exact-duplicate digest per kept row
    kept: list[int] = []
    seen: dict[bytes, int] = {}
    for i, r in enumerate(map(normalize_record, records)):
        if _is_empty(r):
            removals.append(Removal(r.source, r.line, "empty", "empty after trimming whitespace", "clean_empty"))
        elif (key := hashlib.blake2b(row_key(r).encode("utf-8"), digest_size=16).digest()) in seen:
            removals.append(Removal(r.source, r.line, "duplicate", f"same as line {seen[key]}", "clean_same_as",
                                    {"line": seen[key]}))
        else:
            seen[key] = r.line
            kept.append(i)
    del seen
    near = near_duplicates(_Normalized(records.take(kept)), threshold)
    lines = records.lines
    for i, j in sorted(near.items()):
        removals.append(Removal(records.source, int(lines[kept[i]]), "near-duplicate",
                                f"nearly the same as line {lines[kept[j]]} (3-gram Jaccard >= {threshold})",
                                "clean_near", {"line": int(lines[kept[j]]), "threshold": threshold}))
    kept = [k for i, k in enumerate(kept) if i not in near]
    if max_tokens:
        lengths = count_tokens(_Normalized(records.take(kept)), tokenizer)
        too_long = set()
        for i, n in enumerate(lengths):
            if n > max_tokens:
                too_long.add(i)
                removals.append(Removal(records.source, int(lines[kept[i]]), "too-long", f"{n} tokens, over --max-tokens "
                                        f"{max_tokens}", "clean_too_long", {"tokens": n, "max_tokens": max_tokens}))
        kept = [k for i, k in enumerate(kept) if i not in too_long]
    removals.sort(key=lambda x: x.line)

    key = split or "all"
    output, report = output_names(path, split, tag or free_tag({key: path}))
    # "x": create, never replace, even if a file appeared since the names were chosen.
    with open(output, "x", encoding="utf-8") as f:
        for r in _Normalized(records.take(kept)):
            f.write(json.dumps(_to_row(r), ensure_ascii=False, default=str) + "\n")
    with open(report, "x", encoding="utf-8") as f:
        for rm in removals:
            f.write(json.dumps(rm.to_dict(), ensure_ascii=False) + "\n")
    rows = len(loaded.records) + len({p.line for p in loaded.errors if p.line})
    return CleanResult(path, output, report, loaded.format, rows, len(kept), removals)


def clean_dataset(ws, dataset: str, fmt=None, mapping=None, model: str | None = None,
                  max_tokens: int | None = None, threshold: float = NEAR_THRESHOLD,
                  separator: str | None = None) -> list[CleanResult]:
    """Clean every file of `dataset` (one file, or each file of a split set)."""
    if max_tokens and not model:
        raise UserError("--max-tokens counts tokens of a model: give --model too", "clean_max_tokens_needs_model")
    if not 0 < threshold <= 1:
        raise UserError(f"--near-threshold must be above 0 and at most 1, got {threshold}", "option_top_p",
                        option="--near-threshold", value=threshold)
    fmt = normalize_format(fmt)
    mapping = parse_mapping(mapping)
    files = resolve_dataset(ws, dataset)
    tokenizer = load_tokenizer(ws, model) if max_tokens else None
    tag = free_tag(files)
    return [clean_file(path, fmt, mapping, separator, tokenizer, max_tokens, threshold,
                       split=None if key == "all" else key, tag=tag)
            for key, path in files.items()]
