"""Encoded examples as Arrow columns: written once to the cache, memory-mapped when training.

One table per dataset part, one row per kept example:

    input_ids  list<int32>   token ids, cut at max_length
    labels     list<int32>   the id where the loss is taken, -100 elsewhere
    length     int32         len(input_ids): what the length-grouped sampler reads
    line       int64         the row's line in its file (with `source`, its provenance)

A cache entry is a folder `<fingerprint>/` holding `part-NNNNN.arrow` files (Arrow IPC, one per
slice of rows encoded by one worker, in row order) and `meta.json` (stats, truncated and dropped
rows), published by renaming the whole folder into place, so a reader never sees half of one.
Reading it maps the files: a million examples cost their lengths column in memory, not their
tokens; the rows of a batch are paged in when the batch is built.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

SCHEMA = pa.schema([("input_ids", pa.list_(pa.int32())), ("labels", pa.list_(pa.int32())),
                    ("length", pa.int32()), ("line", pa.int64())])
META = "meta.json"


def batch(ids: list[np.ndarray], labels: list[np.ndarray], lines: list[int]) -> pa.RecordBatch:
    """One record batch from per-row id and label arrays (equal lengths per row)."""
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int32, count=len(ids))
    offsets = np.zeros(len(ids) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    flat_ids = np.concatenate(ids).astype(np.int32) if ids else np.zeros(0, np.int32)
    flat_labels = np.concatenate(labels).astype(np.int32) if labels else np.zeros(0, np.int32)
    return pa.RecordBatch.from_arrays([
        pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat_ids)),
        pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat_labels)),
        pa.array(lengths), pa.array(np.asarray(lines, dtype=np.int64))], schema=SCHEMA)


class PartWriter:
    """Record batches into one Arrow IPC file (or kept in memory when `path` is None)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.batches: list[pa.RecordBatch] = []
        self._writer = pa.ipc.new_file(str(path), SCHEMA) if path is not None else None

    def write(self, b: pa.RecordBatch) -> None:
        if self._writer is not None:
            self._writer.write_batch(b)
        else:
            self.batches.append(b)

    def close(self) -> pa.Table | None:
        if self._writer is not None:
            self._writer.close()
            return None
        return pa.Table.from_batches(self.batches, schema=SCHEMA)


def map_part(path: Path) -> pa.Table:
    """An Arrow IPC file as a table over its memory map (no copy)."""
    return pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()


def read_entry(folder: Path) -> tuple[pa.Table, dict] | None:
    """(the examples table, meta) of a published cache folder; None when missing or unreadable."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        parts = [map_part(folder / name) for name in meta["parts"]]
    except (OSError, ValueError, KeyError, pa.ArrowInvalid):
        return None   # an old format or a damaged copy: encode again
    table = pa.concat_tables(parts) if parts else SCHEMA.empty_table()
    return table, meta


def cached(folder: Path | None, source: str) -> tuple["EncodedExamples", dict] | None:
    """(examples, meta) of the cache entry `folder` when it is there and readable; a damaged entry
    (or one of an older layout) is removed, so it is encoded again. None: not cached."""
    if folder is None or not folder.is_dir():
        return None
    got = read_entry(folder)
    if got is None:
        shutil.rmtree(folder, ignore_errors=True)
        return None
    table, meta = got
    return EncodedExamples(table, source), meta


def new_staging(folder: Path | None) -> Path | None:
    """An empty folder beside the cache entry `folder`, private to this process, where the entry
    is written before `publish_entry` renames it into place (None when there is no cache)."""
    if folder is None:
        return None
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    return staging


def publish_entry(staging: Path, folder: Path, meta: dict) -> None:
    """Write meta.json into `staging` and rename it to `folder` (atomic; a concurrent writer of the
    same entry wins or loses as a whole)."""
    (staging / META).write_text(json.dumps(meta, separators=(",", ":")), encoding="utf-8")
    try:
        os.replace(staging, folder)
    except OSError:   # another process published the same fingerprint first: same content
        shutil.rmtree(staging, ignore_errors=True)


class EncodedExamples:
    """The examples of an `Encoded`: a read-only sequence of {"input_ids", "labels"} dicts (lists
    of ints) over the Arrow table, plus `lengths` (numpy int32, one per example) and `line(i)`."""

    def __init__(self, table: pa.Table, source: str = ""):
        self.table = table
        self.source = source
        self.lengths = table.column("length").to_numpy() if table.num_rows else np.zeros(0, np.int32)
        chunks = table.column("input_ids").chunks
        sizes = [len(c) for c in chunks]
        self._starts = np.cumsum([0] + sizes[:-1]) if sizes else np.zeros(0, np.int64)
        self._chunks: dict[int, tuple] = {}

    def _chunk(self, k: int):
        got = self._chunks.get(k)
        if got is None:
            ids = self.table.column("input_ids").chunk(k)
            labels = self.table.column("labels").chunk(k)
            # zero-copy views of the mapped buffers; `offsets` accounts for a sliced chunk
            got = (ids.offsets.to_numpy(), ids.values.to_numpy(), labels.offsets.to_numpy(),
                   labels.values.to_numpy())
            self._chunks[k] = got
        return got

    def __len__(self) -> int:
        return self.table.num_rows

    def arrays(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, labels) of example `i` as int32 arrays (views of the mapped file)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError("example index out of range")
        i = i + n if i < 0 else i
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        j = i - int(self._starts[k])
        id_off, id_val, lab_off, lab_val = self._chunk(k)
        return id_val[id_off[j]:id_off[j + 1]], lab_val[lab_off[j]:lab_off[j + 1]]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        ids, labels = self.arrays(i)
        return {"input_ids": ids.tolist(), "labels": labels.tolist()}

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __eq__(self, other) -> bool:
        if isinstance(other, (list, EncodedExamples)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def spread(self, n: int) -> "EncodedExamples":
        """At most `n` examples at evenly spaced positions (all when `n` is 0 or covers them)."""
        if not n or n >= len(self):
            return self
        positions = np.linspace(0, len(self) - 1, n).round().astype(np.int64)
        return EncodedExamples(self.table.take(positions), self.source)

    def where(self, i: int) -> str:
        """'file:line' of the row example `i` was encoded from."""
        return f"{self.source}:{self.table.column('line')[i].as_py()}"

    def __repr__(self) -> str:
        return f"EncodedExamples({len(self)} examples)"
