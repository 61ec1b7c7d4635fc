"""Plain text as one token stream cut into blocks: language modelling that loses no token.

Continued pre-training brings documents of any length (a 19,000-token article beside a 50-token
one). Cutting each at --max-length (`text_mode="truncate"`, one example per document) throws away
everything past the cut. Here (`text_mode="stream"`, the default for plain text) the documents of
one split are tokenized (with the tokenizer's special tokens, as one-row-per-document training
does), each followed by eos, joined into one stream in file order, and the stream is cut into
blocks of `max_length` tokens; the last block keeps what is left, so every token of every
document is in a block:

    doc 1 + eos | doc 2 + eos | doc 3 + eos ...      ->   [block 0][block 1]...[last, shorter]

With `stride` S > 0 each block starts S tokens before the previous one ended: those S tokens are
context (label -100, not trained again), so the loss still covers every token exactly once while
no block starts cold. Blocks cross document boundaries (as in GPT-2, nanoGPT and HF's run_clm);
the eos between documents tells the model one ended.

The split is made before this, by document (split.py), and each split is blocked on its own: a
block never mixes training and validation text. The blocks go through the same Arrow layout and
cache as every encoded example (encoded.py): one row per block, `line` the line of the document
the block starts in.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.core.progress import progress
from tunestudio.data.encoding.base import (
    IGNORE,
    Encoded,
    fingerprint_lines,
    quiet_length_warning,
    tokenizer_fingerprint,
)

STREAM_VERSION = 1   # bump when the blocking changes, so old caches are not reused
DOCS_PER_CALL = 256  # documents tokenized in one batched tokenizer call
BLOCKS_PER_BATCH = 1024   # blocks per Arrow record batch


def all_text(records) -> bool:
    """Whether every record is plain text (a RecordsView answers from its messages column)."""
    if hasattr(records, "parts"):   # a Chain of views
        return all(all_text(p) for p in records.parts)
    table = getattr(records, "table", None)
    if table is not None:
        col = table.column("messages")
        if getattr(records, "index", None) is None:
            return col.null_count == len(col)
        return col.take(records.index).null_count == len(records)
    return not any(r.is_chat for r in records)


def check_stride(stride: int, max_length: int) -> None:
    if not 0 <= stride < max_length:
        raise UserError(f"--stride must be at least 0 and below --max-length {max_length} (got {stride}): "
                        "it is how many tokens a block repeats from the one before", "stride_out_of_range",
                        option="stride", max_length=max_length, value=stride)


def fingerprint(records, tokenizer, max_length: int, stride: int) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": STREAM_VERSION, "mode": "stream", "max_length": max_length, "stride": stride}).encode())
    h.update(tokenizer_fingerprint(tokenizer).encode())
    for line in fingerprint_lines(records):
        h.update(line)
    return h.hexdigest()[:32]


def _documents(records):
    """(line, text) of each record, a batch at a time (RecordsView batches build no more than that)."""
    if hasattr(records, "batches"):
        for batch in records.batches(DOCS_PER_CALL):
            yield [(r.line, r.text or "") for r in batch]
        return
    batch = []
    for r in records:
        batch.append((r.line, r.text or ""))
        if len(batch) >= DOCS_PER_CALL:
            yield batch
            batch = []
    if batch:
        yield batch


def document_ids(tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of each document as the stream holds it: the tokenizer's special tokens, then eos."""
    quiet_length_warning(tokenizer)
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"] if texts else []
    eos = tokenizer.eos_token_id
    return [list(x) + ([eos] if eos is not None and (not x or x[-1] != eos) else []) for x in ids]


class Blocker:
    """Cuts a stream fed in pieces into blocks of `length` tokens, `stride` of them repeated.

    `feed(ids, lines)` adds tokens (int64 array) with the file line of each; `blocks()` gives the
    finished (ids, labels, line) blocks; `finish()` the last, shorter one."""

    def __init__(self, length: int, stride: int = 0):
        import numpy as np

        self.np, self.length, self.stride = np, length, stride
        self.ids = np.zeros(0, np.int64)
        self.lines = np.zeros(0, np.int64)
        self.started = False   # a block was cut: the buffer's first `stride` tokens are context

    def feed(self, ids, lines) -> None:
        self.ids = self.np.concatenate([self.ids, ids])
        self.lines = self.np.concatenate([self.lines, lines])

    def _block(self, start: int, end: int):
        ids = self.ids[start:end]
        labels = ids.copy()
        if self.started and self.stride:
            labels[:self.stride] = IGNORE   # trained in the block before
        return ids, labels, int(self.lines[start])

    def blocks(self) -> list:
        """The full blocks the buffer holds; the rest stays for the next feed."""
        step, pos, out = self.length - self.stride, 0, []
        while len(self.ids) - pos >= self.length:
            out.append(self._block(pos, pos + self.length))
            self.started = True
            pos += step
        self.ids, self.lines = self.ids[pos:], self.lines[pos:]   # new arrays: the blocks' views stay valid
        return out

    def finish(self) -> list:
        """The last, shorter block, when it holds a token not trained yet."""
        context = self.stride if self.started else 0
        out = [self._block(0, len(self.ids))] if len(self.ids) > context else []
        self.ids, self.lines = self.ids[:0], self.lines[:0]
        return out


def encode_stream(records, tokenizer, max_length: int, stride: int = 0, cache_dir=None):
    """The blocks of `records` (plain text) as an `encode.Encoded` whose examples are blocks.

    stats: documents (= rows), tokens (the stream: every document's tokens and its eos), blocks
    (= examples), block_tokens (tokens in blocks: more than `tokens` by the repeated context when
    stride > 0), trained_tokens (= tokens), longest_document_tokens, max_length, stride,
    text_mode "stream"; truncated and dropped are 0 (nothing is cut). Cached like `encode.encode`.
    """
    import numpy as np

    from tunestudio.data.encoding import encoded as E  # pyarrow

    check_stride(stride, max_length)
    fp = fingerprint(records, tokenizer, max_length, stride)
    source = getattr(records, "source", None) or (records[0].source if len(records) else "")
    folder = Path(cache_dir) / fp if cache_dir else None
    hit = E.cached(folder, source)
    if hit is not None:
        return Encoded(hit[0], 0, 0, hit[1]["stats"], fingerprint=fp, from_cache=True)
    staging = E.new_staging(folder)
    try:
        writer = E.PartWriter(staging / "part-00000.arrow" if staging is not None else None)
        blocker = Blocker(max_length, stride)
        n = {"documents": 0, "tokens": 0, "blocks": 0, "block_tokens": 0, "trained": 0, "longest": 0}
        pending: list = []

        def take(blocks, flush=False):
            pending.extend(blocks)
            if pending and (flush or len(pending) >= BLOCKS_PER_BATCH):
                for ids, labels, _ in pending:
                    n["blocks"] += 1
                    n["block_tokens"] += len(ids)
                    n["trained"] += int((labels >= 0).sum())
                writer.write(E.batch([b[0] for b in pending], [b[1] for b in pending], [b[2] for b in pending]))
                pending.clear()

        with progress(len(records), "tokenizing documents") as bar:
            for docs in _documents(records):
                ids = document_ids(tokenizer, [t for _, t in docs])
                sizes = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
                n["documents"] += len(docs)
                n["tokens"] += int(sizes.sum())
                n["longest"] = max(n["longest"], int(sizes.max(initial=0)))
                flat = np.fromiter((t for x in ids for t in x), dtype=np.int64, count=int(sizes.sum()))
                blocker.feed(flat, np.repeat(np.asarray([line for line, _ in docs], dtype=np.int64), sizes))
                take(blocker.blocks())
                bar.update(len(docs))
        take(blocker.finish(), flush=True)
        part = writer.close()
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    stats = {
        "rows": n["documents"], "documents": n["documents"], "examples": n["blocks"], "blocks": n["blocks"],
        "tokens": n["tokens"], "block_tokens": n["block_tokens"], "trained_tokens": n["trained"],
        "mean_tokens": round(n["block_tokens"] / n["blocks"], 2) if n["blocks"] else 0.0,
        "max_tokens": min(max_length, n["block_tokens"]), "longest_row_tokens": n["longest"],
        "longest_document_tokens": n["longest"], "truncated": 0, "dropped": 0, "max_length": max_length,
        "stride": stride, "text_mode": "stream", "train_on_prompt": False, "refused": 0,
        "reasoning": "keep", "reasoning_rows": 0,
    }
    if staging is not None:
        E.publish_entry(staging, folder, {"parts": ["part-00000.arrow"], "truncated": 0, "dropped": 0,
                                          "stats": stats, "truncated_rows": [], "dropped_rows": [],
                                          "refused_rows": [], "fingerprint": fp})
        table, _ = E.read_entry(folder)
    else:
        table = part if part is not None else E.SCHEMA.empty_table()
    return Encoded(E.EncodedExamples(table, source), 0, 0, stats, fingerprint=fp)


def summary(stats: dict) -> dict:
    """What `data stats` shows of a stream: documents, tokens, blocks, block length, stride."""
    return {k: stats[k] for k in ("documents", "tokens", "blocks", "block_tokens", "max_length", "stride",
                                  "longest_document_tokens")}
