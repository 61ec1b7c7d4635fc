"""Records kept as Arrow columns, built into Python objects one row (or one batch) at a time.

A million rows as `Record` objects (a dataclass, a list of message dicts, a meta dict) cost
~2 KB of Python objects each; as Arrow columns they cost about their text. So a loaded file is a
table with one row per record:

    line      int64     the row's line in its file (see load.py for what a line is)
    messages  string    the conversation as JSON (`json.dumps(messages, ensure_ascii=False)`), or null
    text      string    plain-text records, or null
    meta      string    the other columns as JSON, or null when there are none
    tools     string    the functions the row may call, as JSON (toolcalls.py), or null
    key       binary16  a digest of the row's normalised content (digest.content_key): equal rows,
                        equal keys; the split groups rows by it without reading them again

and `RecordsView` is a read-only sequence of Records over it (or over a subset of its rows: a
split), which builds a Record only when asked for one. Every Record it gives still knows its file
and line, so every message can point the user there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa

from tunestudio.data.formats.digest import content_digest
from tunestudio.data.formats.records import Record

SCHEMA = pa.schema([("line", pa.int64()), ("messages", pa.large_string()),
                    ("text", pa.large_string()), ("meta", pa.large_string()), ("key", pa.binary(16)),
                    ("tools", pa.large_string())])
BATCH = 2048   # rows turned into Python objects at once when iterating


class TableBuilder:
    """Collects Records into Arrow record batches (the Python objects of a chunk are dropped as
    soon as it is converted)."""

    def __init__(self, chunk: int = 8192):
        self.chunk = chunk
        self.batches: list[pa.RecordBatch] = []
        self._cols: tuple[list, ...] = ([], [], [], [], [], [])
        self._digest = content_digest

    def add(self, record: Record) -> None:
        lines, messages, texts, metas, keys, tools = self._cols
        keys.append(self._digest(record.messages, record.text))
        lines.append(record.line)
        messages.append(None if record.messages is None else json.dumps(record.messages, ensure_ascii=False))
        texts.append(record.text)
        metas.append(json.dumps(record.meta, ensure_ascii=False, default=str) if record.meta else None)
        tools.append(json.dumps(record.tools, ensure_ascii=False) if record.tools else None)
        if len(lines) >= self.chunk:
            self._flush()

    def _flush(self) -> None:
        if self._cols[0]:
            self.batches.append(pa.RecordBatch.from_arrays(
                [pa.array(c, type=f.type) for c, f in zip(self._cols, SCHEMA)], schema=SCHEMA))
            self._cols = ([], [], [], [], [], [])

    def table(self) -> pa.Table:
        self._flush()
        return pa.Table.from_batches(self.batches, schema=SCHEMA)


def _record(source: str, line, messages, text, meta, tools=None) -> Record:
    return Record(source, line, messages=None if messages is None else json.loads(messages), text=text,
                  meta=json.loads(meta) if meta else {}, tools=json.loads(tools) if tools else None)


class RecordsView(Sequence):
    """The Records of one file's table (all rows, or the rows at `index`), built on demand.

    Behaves like a list of Records for reading: len, [i], [a:b] (a list), iteration (in batches of
    BATCH rows), == with a list. `take(positions)` gives a view of a subset without copying text.
    """

    def __init__(self, source: str, table: pa.Table, index: np.ndarray | None = None):
        self.source = source
        self.table = table
        self.index = None if index is None else np.asarray(index, dtype=np.int64)

    @classmethod
    def from_records(cls, records, source: str | None = None) -> "RecordsView":
        """A view over a list of Records (all from one file, `source`)."""
        builder = TableBuilder()
        for r in records:
            builder.add(r)
        records = list(records) if source is None else records
        src = source if source is not None else (records[0].source if records else "")
        return cls(src, builder.table())

    def __len__(self) -> int:
        return self.table.num_rows if self.index is None else len(self.index)

    def _positions(self, start: int, stop: int) -> np.ndarray:
        return np.arange(start, stop) if self.index is None else self.index[start:stop]

    def _rows(self, positions: np.ndarray) -> list[Record]:
        if len(positions) == 0:
            return []
        contiguous = positions[-1] - positions[0] == len(positions) - 1 and bool(np.all(np.diff(positions) == 1))
        part = self.table.slice(int(positions[0]), len(positions)) if contiguous else self.table.take(positions)
        cols = [part.column(name).to_pylist() for name in ("line", "messages", "text", "meta", "tools")]
        return [_record(self.source, *row) for row in zip(*cols)]

    def __getitem__(self, i):
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            return self._rows(np.arange(start, stop, step) if self.index is None else self.index[start:stop:step])
        n = len(self)
        if not -n <= i < n:
            raise IndexError("record index out of range")
        i = i + n if i < 0 else i
        return self._rows(self._positions(i, i + 1))[0]

    def __iter__(self) -> Iterator[Record]:
        for batch in self.batches():
            yield from batch

    def batches(self, size: int = BATCH, start: int = 0, stop: int | None = None) -> Iterator[list[Record]]:
        """Records in lists of at most `size`, rows start..stop of the view."""
        stop = len(self) if stop is None else min(stop, len(self))
        for a in range(start, stop, size):
            yield self._rows(self._positions(a, min(a + size, stop)))

    def __eq__(self, other) -> bool:
        if isinstance(other, (list, tuple, RecordsView)):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"RecordsView({self.source!r}, {len(self)} rows)"

    def take(self, positions) -> "RecordsView":
        """The view of rows `positions` (0-based, in this view), in that order."""
        positions = np.asarray(positions, dtype=np.int64)
        return RecordsView(self.source, self.table, positions if self.index is None else self.index[positions])

    @property
    def lines(self) -> np.ndarray:
        """The line of every row of the view (int64)."""
        lines = self.table.column("line").to_numpy()
        return lines if self.index is None else lines[self.index]

    def keys(self) -> list[bytes]:
        """The content digest of every row of the view (see the `key` column)."""
        keys = self.table.column("key")
        return (keys if self.index is None else keys.take(self.index)).to_pylist()

    def columns(self, names=("messages", "text"), size: int = BATCH) -> Iterator[dict]:
        """The raw columns in batches ({name: list}): what fingerprints and keys need, without
        building Records (messages stay JSON strings)."""
        for a in range(0, len(self), size):
            positions = self._positions(a, min(a + size, len(self)))
            contiguous = self.index is None
            part = self.table.slice(int(positions[0]), len(positions)) if contiguous else self.table.take(positions)
            yield {name: part.column(name).to_pylist() for name in names}


def as_view(records) -> RecordsView | None:
    """`records` when it is a view, else None (a plain list of Records)."""
    return records if isinstance(records, RecordsView) else None


class Chain(Sequence):
    """Several sequences of Records read as one (the files of a split set), without copying."""

    def __init__(self, parts: list):
        self.parts = [p for p in parts if len(p)]
        self._starts = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __iter__(self) -> Iterator[Record]:
        for p in self.parts:
            yield from p

    def __getitem__(self, i):
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step != 1:
                return [self[k] for k in range(start, stop, step)]
            out = []
            for k, p in enumerate(self.parts):   # each part's own (batched) slicing
                a, b = max(start - int(self._starts[k]), 0), min(stop - int(self._starts[k]), len(p))
                if a < b:
                    out += p[a:b]
            return out
        n = len(self)
        if not -n <= i < n:
            raise IndexError("record index out of range")
        i = i + n if i < 0 else i
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self.parts[k][i - int(self._starts[k])]
