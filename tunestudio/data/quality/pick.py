"""Which record a preview shows: by its line in the file (the number Check and every error speak in),
or by its place among the usable rows.

A line that holds no usable row (a CSV header, a blank line, a row Check refuses) shows the next
usable one, and says so, instead of refusing: the user asked to see "about here" in their file."""

from __future__ import annotations

from dataclasses import dataclass

from tunestudio.core.errors import UserError
from tunestudio.data.formats.records import Record


@dataclass
class Picked:
    record: Record   # or a preference row (data/preference.py): anything with source and line
    asked_line: int | None   # the line asked for, when it held no usable row (else None)


def at_line(records: list, line: int, dataset: str) -> Picked:
    """The record of the first file at `line`, or the next usable one after it (`records`: SFT
    Records or preference rows, each with its `source` and `line`)."""
    if line < 1:
        raise UserError(f"line {line}: lines count from 1", "line_below_one", line=line)
    first = [r for r in records if r.source == records[0].source] if records else []
    for r in first:
        if r.line >= line:
            return Picked(r, None if r.line == line else line)
    last = first[-1].line if first else 0
    raise UserError(f"line {line} is past the last usable row of '{dataset}' (line {last})", "line_past_rows",
                    line=line, dataset=dataset, last=last)
