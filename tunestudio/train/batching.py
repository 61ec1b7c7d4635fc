"""Batches: pad each batch only to its own longest row, and put rows of similar length together.

With lengths spread widely, a random batch is about half padding; sorting within large random
"mega-batches" removes most of it while keeping the order random between steps. The order
depends only on the seed and the epoch, so a resumed run sees exactly the batches the
uninterrupted run would have seen.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from tunestudio.data.encoding.base import IGNORE  # a label not scored (the prompt; context a block repeats)


class Examples(Dataset):
    """Encoded rows ({"input_ids", "labels"}) as a torch Dataset: a list of dicts, or the
    memory-mapped examples of `encode` (data/encoding/encoded.py), whose lengths column is read as is."""

    def __init__(self, examples):
        self.examples = examples
        lengths = getattr(examples, "lengths", None)
        self.lengths = np.asarray(lengths if lengths is not None else [len(e["input_ids"]) for e in examples],
                                  dtype=np.int64)

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        return self.examples[i]


class PadCollator:
    """Right-pad input_ids with the pad token and labels with -100, to the batch's longest row."""

    def __init__(self, pad_id: int, multiple_of: int = 1):
        self.pad_id = pad_id
        self.multiple_of = multiple_of

    def __call__(self, rows: list[dict]) -> dict:
        longest = max(len(r["input_ids"]) for r in rows)
        longest = math.ceil(longest / self.multiple_of) * self.multiple_of
        ids = torch.full((len(rows), longest), self.pad_id, dtype=torch.long)       # (B, T)
        labels = torch.full((len(rows), longest), IGNORE, dtype=torch.long)        # (B, T)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)                 # (B, T)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.as_tensor(r["input_ids"])
            labels[i, :n] = torch.as_tensor(r["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class FlatCollator:
    """Padding-free batches (train/attention.py): the rows concatenated into one row, with
    position_ids restarting at 0 for each and no attention mask; each row's first label is
    ignored so the row before it does not learn to predict it."""

    def __call__(self, rows: list[dict]) -> dict:
        ids = torch.cat([torch.as_tensor(r["input_ids"], dtype=torch.long) for r in rows])[None]    # (1, N)
        labels = [torch.as_tensor(r["labels"], dtype=torch.long).clone() for r in rows]
        for row in labels:
            row[0] = IGNORE
        positions = torch.cat([torch.arange(len(r["input_ids"])) for r in rows])[None]             # (1, N)
        return {"input_ids": ids, "labels": torch.cat(labels)[None], "position_ids": positions}


class LengthGroupedSampler(Sampler):
    """A seeded random order in which each run of `group` consecutive rows has similar lengths.

    `group` is the effective batch (micro-batch x accumulation x processes), so every micro-batch
    of one optimizer step is short or long together. Shuffle, cut into mega-batches of 50 groups,
    sort each by length (longest first), then shuffle the groups so long and short steps mix.
    """

    def __init__(self, lengths, group: int, seed: int, by_length: bool = True):
        self.lengths = np.asarray(lengths, dtype=np.int64)   # (N,): a million rows cost 8 MB
        self.group = max(1, group)
        self.seed = seed
        self.by_length = by_length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:  # Trainer calls this at each epoch start (also on resume)
        self.epoch = epoch

    def __len__(self):
        return len(self.lengths)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=g).tolist()
        if not self.by_length:
            return iter(order)
        mega = self.group * 50
        groups = []
        order = np.asarray(order, dtype=np.int64)
        for start in range(0, len(order), mega):
            chunk = order[start:start + mega]
            # longest first; a stable sort keeps equal lengths in shuffled order (as sorted() did)
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")].tolist()
            groups += [chunk[k:k + self.group] for k in range(0, len(chunk), self.group)]
        # keep a ragged last group last, so every full step has a full batch
        full = [grp for grp in groups if len(grp) == self.group]
        ragged = [grp for grp in groups if len(grp) != self.group]
        perm = torch.randperm(len(full), generator=g).tolist()
        return iter([i for k in perm for i in full[k]] + [i for grp in ragged for i in grp])
