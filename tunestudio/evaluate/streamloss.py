"""Loss and perplexity on plain text, cut into blocks exactly as training cut its token stream.

A run trained with `--text-mode stream` (the default for plain text) saw its documents as one
stream: each document's tokens then eos, joined in file order, cut into `--max-length` blocks,
each block after the first repeating `--stride` tokens of the one before as context (not
trained again). Scoring held-out text any other way (one window of some other length per
document, no eos) measures a different task: shorter context raises the loss, and the eos the
model learnt to predict after each document is never asked for. So the held-out documents go
through the very code training used (data.stream.document_ids and data.stream.Blocker) and each
scored token counts for the document it belongs to, which gives every row its own loss for the
per-example table while the corpus loss is the token-weighted mean over the blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tunestudio.config.run_config import fields_by_name
from tunestudio.data.encoding.stream import Blocker, check_stride, document_ids
from tunestudio.evaluate.metrics import model_length, piece_losses, reference_losses

STREAM, TRUNCATE = "stream", "truncate"


@dataclass(frozen=True)
class TextBlocking:
    """How a run cut its plain text: `text_mode` "stream" or "truncate", `max_length` tokens per
    block (or per document, truncated), `stride` tokens repeated between blocks (stream only)."""
    text_mode: str = STREAM
    max_length: int = 512
    stride: int = 0

    @classmethod
    def of_config(cls, config: dict | None) -> "TextBlocking":
        """From a run's config.yaml; a key it lacks (an older run, or no run at all: `--model`,
        `bench-models`) takes `train`'s default, so a base model is scored as training would cut."""

        config, field = config or {}, fields_by_name()
        def get(key):
            return config.get(key) if config.get(key) is not None else field[key].default

        return cls(str(get("text_mode")), int(get("max_length")), int(get("stride")))

    def describe(self) -> str:
        if self.text_mode == STREAM:
            return (f"one token stream (documents ended by eos) in blocks of {self.max_length} tokens"
                    + (f", each repeating {self.stride} of the one before as context" if self.stride else ""))
        return f"each document on its own, in windows of {self.max_length} tokens"


def stream_pieces(tokenizer, texts: list[str], max_length: int, stride: int = 0) -> list[tuple]:
    """The blocks training would make of `texts` (one document each, in this order), as
    metrics.piece_losses takes them: (ids, labels, owner) with one owner (document index) per token.
    Every token of every document is in a block; with `stride` > 0, each block after the first
    starts with `stride` tokens of context whose labels are masked, as in training."""
    import numpy as np


    check_stride(stride, max_length)
    ids = document_ids(tokenizer, texts)
    sizes = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    ends = np.cumsum(sizes)
    flat = np.fromiter((t for x in ids for t in x), dtype=np.int64, count=int(sizes.sum()))
    blocker = Blocker(max_length, stride)
    # the Blocker carries one number per token and gives each block that of its first token; fed the
    # token's position in the stream, it tells where each block starts, hence whose tokens it holds
    blocker.feed(flat, np.arange(len(flat), dtype=np.int64))
    pieces = []
    for block_ids, labels, start in [*blocker.blocks(), *blocker.finish()]:
        owner = np.searchsorted(ends, start + np.arange(len(block_ids)), side="right")
        pieces.append((block_ids, labels, owner))
    return pieces


def stream_losses(model, tokenizer, texts: list[str], blocking: TextBlocking, batch_size: int = 8,
                  progress: Callable[[int], None] | None = None) -> list[tuple[float, int]]:
    """Per document of `texts`: (summed negative log-likelihood in nats, tokens scored), the
    documents blocked as `blocking` says training cut them (see the module docstring). A block's
    first token has no context and is not scored, as in training."""

    length = model_length(model, blocking.max_length)
    stride = blocking.stride if blocking.stride < length else 0
    pieces = stream_pieces(tokenizer, texts, length, stride)
    return piece_losses(model, tokenizer, pieces, len(texts), batch_size, progress)


def text_losses(model, tokenizer, records: list, blocking: TextBlocking, batch_size: int = 8,
                progress: Callable[[int], None] | None = None) -> list[tuple[float, int]]:
    """Loss per record of plain text, as the run trained on it: blocks of one stream, or each
    document in `max_length` windows when it trained with `--text-mode truncate`."""

    texts = [r.text or "" for r in records]
    if blocking.text_mode == STREAM:
        return stream_losses(model, tokenizer, texts, blocking, batch_size, progress)
    return reference_losses(model, tokenizer, [(None, t) for t in texts], batch_size, blocking.max_length, progress)
