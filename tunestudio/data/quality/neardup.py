"""Near-duplicate rows, in memory bounded by a few bytes a row (a million rows fit easily).

The rule (what `data clean` documents): two rows are near-duplicates when their final answers and
system prompts are equal (case and whitespace folded) and their other turns have a character
3-gram Jaccard similarity >= the threshold (case folded, whitespace collapsed, 3-grams counted as
a multiset, template text left out: grams found in more than half of the rows); plain text is
compared whole. The later row is the duplicate of the earliest kept one it matches.

How, at any size:
  1. one pass over the rows keeps an 8-byte digest of each row's blocking key (system prompt +
     answer): rows of different blocks are never compared, and most blocks hold one row;
  2. template text and the gram order come from the grams of at most DF_SAMPLE rows spread over
     the file (all rows in a smaller file, so small files get exactly the full-file answer);
  3. a block of up to EXACT_BLOCK rows is compared exactly with prefix filtering (two sets with
     Jaccard >= t share one of the first |X| - ceil(t|X|) + 1 grams of each, in one global
     order); its grams are built for that block only and dropped after it;
  4. a larger block (a classification set where half a million rows answer "positive") is
     searched with MinHash and LSH banding (Broder 1997; Leskovec, Rajaraman & Ullman, "Mining of
     Massive Datasets", ch. 3): BANDS bands of ROWS_PER_BAND hashes, so a pair at Jaccard 0.9
     becomes a candidate with probability 1 - (1 - 0.9^6)^11 > 0.9998, and every candidate is
     verified with the exact Jaccard before a row is dropped (no false removals); a row's
     candidates are verified most-shared-bands first, at most MAX_CANDIDATES of them, so rows
     that share a template (Jaccard ~0.7, candidates in a band or two) cannot make it quadratic.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from tunestudio.core.progress import progress
from tunestudio.data.formats.records import Record
from tunestudio.data.tools.toolcalls import message_text

NEAR_THRESHOLD = 0.9
BOILERPLATE_MIN_ROWS = 20   # below this, "in most rows" says little
DF_SAMPLE = 50_000          # rows whose grams decide template text and the gram order
EXACT_BLOCK = 2_000         # blocks up to this size are compared exactly (a templated block can
                            # make prefix filtering quadratic: beyond this, LSH)
MAX_CANDIDATES = 32         # LSH candidates verified per row, those sharing the most bands first
BANDS, ROWS_PER_BAND = 11, 6
_PRIME = (1 << 31) - 1   # Mersenne: a*h + b stays below 2^63 for a, h, b < 2^31


def fold(s: str) -> str:
    return " ".join(s.casefold().split())


def near_parts(r: Record) -> tuple[str, str]:
    """(blocking key, text compared). The key is the system prompt and the answer: rows with
    another answer are never near-duplicates, and a long shared system prompt must not make
    different questions look alike; the declared tools are part of it too (the same words offered
    other functions are another example). Earlier turns are compared with their calls written out.
    Plain text: one block, the whole text compared."""
    if r.messages is None:
        return "", fold(r.text or "")
    system = "\n".join(m["content"] for m in r.messages if m["role"] == "system")
    prompt = "\n".join(f"{m['role']}: {message_text(m)}" for m in r.prompt() if m["role"] != "system")
    tools = json.dumps(r.tools, sort_keys=True) if r.tools else ""
    return fold(system) + "\x00" + tools + "\x00" + fold(r.reference()), fold(prompt)


def grams(s: str) -> set[str]:
    """Character 3-grams as a multiset: the k-th repeat of a gram is its own element, so
    "ab ab ab" and "ab" are not alike."""
    all_grams = [s[i:i + 3] for i in range(max(1, len(s) - 2))]
    out = set(all_grams)
    if len(out) == len(all_grams):   # no repeats: the usual case, and the fast one
        return out
    seen: dict[str, int] = {}
    out = set()
    for g in all_grams:
        k = seen.get(g, 0)
        seen[g] = k + 1
        out.add(g if k == 0 else f"{g}\x01{k}")
    return out


def _digest(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "little")


def _jaccard_at_least(x: set, y: set, threshold: float) -> bool:
    if min(len(x), len(y)) < threshold * max(len(x), len(y)):
        return False   # sizes too different to reach the threshold
    inter = len(x & y)
    return inter / (len(x) + len(y) - inter) >= threshold


class _Grams:
    """The compared grams of a row, template text left out, and the global gram order."""

    def __init__(self, df: Counter, sample_rows: int):
        self.common = set()
        if sample_rows >= BOILERPLATE_MIN_ROWS:
            self.common = {g for g, c in df.items() if c > sample_rows / 2}
        # rarest first; a gram the sample never saw counts as rarest (any fixed total order is
        # correct for prefix filtering: the order only decides how short the candidate lists are)
        self.rank = {g: i for i, g in enumerate(sorted(df, key=lambda g: (df[g], g)))}

    def of(self, r: Record) -> set[str]:
        x = grams(near_parts(r)[1])
        return (x - self.common) or x

    def order(self, x: set[str]) -> list[str]:
        try:
            return sorted(x, key=self.rank.__getitem__)
        except KeyError:   # a gram outside the sample
            return sorted(x, key=lambda g: (self.rank.get(g, -1), g))


def _spread(n: int, k: int) -> np.ndarray:
    return np.arange(n) if n <= k else np.linspace(0, n - 1, k).round().astype(np.int64)


def _fetch(records: Sequence, positions) -> list[Record]:
    """Records at `positions` (a view takes them in one Arrow call)."""
    take = getattr(records, "take", None)
    if take is not None and hasattr(records, "batches"):
        return list(take(np.asarray(positions, dtype=np.int64)))
    return [records[int(i)] for i in positions]


def near_duplicates(records: Sequence[Record], threshold: float = NEAR_THRESHOLD) -> dict[int, int]:
    """{index: index of the earlier row it nearly duplicates} over `records` (a list or a
    RecordsView, or any sequence of Records), by the rule in the module docstring."""
    n = len(records)
    if n < 2:
        return {}
    keys = np.fromiter((_digest(near_parts(r)[0]) for r in records), dtype=np.uint64, count=n)
    sample = _spread(n, DF_SAMPLE)
    df: Counter = Counter()
    for r in _fetch(records, sample):
        df.update(grams(near_parts(r)[1]))
    gramset = _Grams(df, len(sample))
    order = np.argsort(keys, kind="stable")          # blocks, each in file order
    bounds = np.flatnonzero(np.diff(keys[order])) + 1
    found: dict[int, int] = {}
    with progress(n, "looking for near-duplicates") as bar:
        for members in np.split(order, bounds):
            if len(members) >= 2:
                rows = _fetch(records, members) if len(members) <= EXACT_BLOCK else None
                search = _exact_block if rows is not None else _lsh_block
                found.update(search(records, members, rows, gramset, threshold))
            bar.update(len(members))
    return found


def _exact_block(records, members, rows, gramset: _Grams, threshold: float) -> dict[int, int]:
    """Prefix filtering over one block (its rows' grams in memory)."""
    found = {}
    sets = {int(i): gramset.of(r) for i, r in zip(members, rows)}
    index: dict = defaultdict(list)    # prefix gram -> kept rows
    for i in (int(m) for m in members):
        x = sets[i]
        prefix = gramset.order(x)[:len(x) - math.ceil(threshold * len(x)) + 1]
        match, seen = None, set()
        for g in prefix:
            for j in index[g]:
                if j not in seen:
                    seen.add(j)
                    if _jaccard_at_least(x, sets[j], threshold):
                        match = j
                        break
            if match is not None:
                break
        if match is not None:
            found[i] = match
        else:
            for g in prefix:
                index[g].append(i)
    return found


def _minhashes(sets: list[set[str]], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(sets), len(a)) MinHash values: for each set, the min over its grams of
    (a*h + b) mod p, p = 2^31 - 1 and h, a, b < p, so nothing overflows 64 bits.
    Python's str hash is fixed within a process, which is all one search needs. Computed for a
    batch of sets at once (one matrix, then a segmented min)."""
    sizes = np.fromiter((len(x) for x in sets), dtype=np.int64, count=len(sets))
    h = np.fromiter((hash(g) for x in sets for g in x), dtype=np.int64, count=int(sizes.sum()))
    h = (h % _PRIME).astype(np.uint64)
    v = (a[:, None] * h[None, :] + b[:, None]) % np.uint64(_PRIME)      # (k, total grams)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.minimum.reduceat(v, starts, axis=1).T                     # (sets, k)


def _lsh_block(records, members, rows, gramset: _Grams, threshold: float, batch: int = 2048) -> dict[int, int]:
    """MinHash + LSH banding over one large block; candidates verified exactly. Memory: a few
    band hashes per kept row; grams are rebuilt for the rows a candidate names."""
    rng = np.random.default_rng(0)
    k = BANDS * ROWS_PER_BAND
    a = rng.integers(1, _PRIME, size=k, dtype=np.uint64)
    b = rng.integers(0, _PRIME, size=k, dtype=np.uint64)
    buckets: list[dict[int, list[int]]] = [defaultdict(list) for _ in range(BANDS)]
    found = {}
    for start in range(0, len(members), batch):
        part = [int(m) for m in members[start:start + batch]]
        sets = [gramset.of(r) for r in _fetch(records, part)]
        sigs = _minhashes(sets, a, b).reshape(len(part), BANDS, ROWS_PER_BAND)
        for i, x, sig in zip(part, sets, sigs):
            bands = [hash(row.tobytes()) for row in sig]
            shared = Counter(j for band, key in zip(buckets, bands) for j in band.get(key, ()))
            candidates = sorted(shared, key=lambda j: (-shared[j], j))[:MAX_CANDIDATES]
            match = next((j for j in candidates
                          if _jaccard_at_least(x, gramset.of(records[j]), threshold)), None)
            if match is not None:
                found[i] = match
            else:
                for band, key in zip(buckets, bands):
                    band[key].append(i)
    return found
