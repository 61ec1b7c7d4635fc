"""`--streaming`: training examples read, encoded and shuffled as the run consumes them.

For a file larger than memory, or one whose Arrow cache would cost too much disk, nothing is
prepared up front: the training rows are read a chunk at a time (JSON Lines, the format such
files come in), converted and encoded with the same templates, masking and truncation as a
prepared run (load._convert_chunk, encode.encode), and handed to the Trainer as a
`datasets.IterableDataset` shuffled through a buffer of `--shuffle-buffer` examples. The run
length is `--max-steps` (the number of rows is not known in advance); the file is read again,
reshuffled, when it runs out before that.

Validation is taken from the head of the stream: the first `--eval-rows` rows (when
`--val-split` is above 0), never trained on. A split set (NAME.train.jsonl + NAME.val.jsonl)
streams its train file and reads its (small) val file as usual. There is no test split: give
`eval` a test file of its own.

Rows that cannot be read are skipped and each is reported (file:line: what is wrong) on
stderr, which the run's console log keeps; the format is decided from the first chunk.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.data.encoding.encode import encode
from tunestudio.data.formats import load as L
from tunestudio.data.formats import readers
from tunestudio.data.formats.load import load_file
from tunestudio.data.split import dataset_hash, relative_name, resolve_dataset, sha256_file

REPORT_LIMIT = 100  # unreadable rows reported one by one; the rest are counted


def _plan_and_chunks(path: Path, fmt, mapping):
    """(plan, chunks): the format planned from the first chunk, and an iterator of row chunks
    (that first chunk included). UserError when the head of the file cannot be used."""

    result = L.LoadResult(None, [], [], [], path=str(path))
    chunks = readers.jsonl_chunks(path.name, path, result.errors)
    first = next(chunks, [])
    scan = L._Scan(L.parse_mapping(mapping))
    scan.add(first)
    plan = L._plan(result, path.name, ".jsonl", scan, L.normalize_format(fmt), L.parse_mapping(mapping))
    if plan is None:
        problems = [p for p in result.errors if p.line == 0] or result.errors[:5] or \
            [L.Problem(path.name, 0, "no rows", "empty_file")]
        raise UserError(f"cannot stream {path.name}: " + "; ".join(str(p) for p in problems), "stream_unreadable",
                        file=path.name, problems=[p.as_warning() for p in problems])

    def all_chunks():
        yield first
        yield from chunks
    return result, plan, all_chunks()


def record_chunks(path: Path, fmt=None, mapping=None, skip: int = 0, limit: int | None = None,
                  report=None) -> Iterator:
    """RecordsViews of up to readers.JSONL_CHUNK records of a JSON Lines file, in file order, after the first
    `skip` records and up to `limit` records in all. Each unreadable row is given to `report`
    (a Problem) instead of stopping the stream."""
    from tunestudio.data.formats.table import RecordsView, TableBuilder

    result, plan, chunks = _plan_and_chunks(path, fmt, mapping)
    seen = given = 0
    for rows in chunks:
        builder = TableBuilder()
        L._convert_chunk(result, path.name, plan, rows, builder)
        if report is not None:
            for p in result.errors:
                report(p)
        result.errors.clear()
        view = RecordsView(path.name, builder.table())
        a = min(max(skip - seen, 0), len(view))
        seen += len(view)
        b = len(view) if limit is None else min(len(view), a + limit - given)
        if a < b:
            given += b - a
            yield view.take(range(a, b)) if (a, b) != (0, len(view)) else view
        if limit is not None and given >= limit:
            return


class _Reporter:
    """Unreadable rows to stderr: the first REPORT_LIMIT one by one, then a count."""

    def __init__(self):
        self.count = 0

    def __call__(self, problem) -> None:
        self.count += 1
        if self.count <= REPORT_LIMIT:
            print(f"warning: skipped {problem}", file=sys.stderr, flush=True)
        elif self.count == REPORT_LIMIT + 1:
            print("warning: more unreadable rows skipped; counting them quietly", file=sys.stderr, flush=True)


def streaming_files(ws, dataset: str) -> dict[str, Path]:
    """The dataset's files, checked for streaming: JSON Lines, one file or a split set."""

    files = resolve_dataset(ws, dataset)
    train = files.get("all") or files["train"]
    if train.suffix.lower() != ".jsonl":
        raise UserError(f"--streaming reads JSON Lines files (.jsonl); {train.name} is a "
                        f"{train.suffix or 'extensionless'} file: convert it, or train without --streaming",
                        "streaming_needs_jsonl", file=train.name, suffix=train.suffix or "extensionless",
                        option="streaming")
    return files


def examples(path: Path, tokenizer, cfg, skip: int, seed: int):
    """The training examples of `path` after its first `skip` rows, as a shuffled
    `datasets.IterableDataset` of {"input_ids", "labels"} (lists of ints), encoded on the fly."""
    from datasets import IterableDataset


    def generate(shards):
        report = _Reporter()
        for _ in shards:
            for view in record_chunks(path, cfg.format or None, cfg.mapping or None, skip=skip, report=report):
                # plain text is blocked chunk by chunk (--text-mode stream): a chunk's last block is
                # shorter, no token is lost
                enc = encode(view, tokenizer, cfg.max_length, cfg.train_on_prompt, cache_dir=None, num_proc=1,
                             reasoning=cfg.reasoning, skip_bad_rows=True, text_mode=cfg.text_mode,
                             stride=cfg.stride)
                for row in enc.refused_rows:
                    report(row)
                for i in range(len(enc.examples)):
                    ids, labels = enc.examples.arrays(i)
                    yield {"input_ids": ids.tolist(), "labels": labels.tolist()}

    # one shard: the file is read in order; the buffer does the mixing
    data = IterableDataset.from_generator(generate, gen_kwargs={"shards": [0]})
    return data.shuffle(seed=seed, buffer_size=cfg.shuffle_buffer)


def load(cfg, ws, tokenizer) -> dict:
    """What `train` needs of a streamed dataset: {info, train, val, stats, warnings} (see
    train.run.Data). `val` is encoded now (it is small); `train` is an IterableDataset."""

    files = streaming_files(ws, cfg.dataset)
    path = files.get("all") or files["train"]
    opts = dict(cache_dir=None, num_proc=1, reasoning=cfg.reasoning, skip_bad_rows=True, text_mode=cfg.text_mode,
                stride=cfg.stride)
    if "val" in files:
        val_records = load_file(files["val"], fmt=cfg.format or None, mapping=cfg.mapping or None).records
        skip = 0
    else:
        n_val = (cfg.eval_rows or 1000) if cfg.val_split > 0 else 0
        parts = list(record_chunks(path, cfg.format or None, cfg.mapping or None, limit=n_val)) if n_val else []
        val_records = [r for view in parts for r in view]
        skip = len(val_records)
    val = encode(val_records, tokenizer, cfg.max_length, cfg.train_on_prompt, **opts) if val_records else None
    info = {"dataset": cfg.dataset, "streaming": True, "seed": cfg.seed, "format": cfg.format or None,
            "files": {k: {"path": relative_name(ws, p), "name": p.name, "sha256": sha256_file(p)} for k, p in files.items()},
            "val_from": "the val file" if "val" in files else f"the first {skip} rows of {path.name}",
            "val_rows": len(val_records)}
    info["hash"] = dataset_hash(info)
    warnings = [{"code": "refused", "message": f"skipped {row}"} for row in (val.refused_rows if val else [])]
    return {"info": info, "train": examples(path, tokenizer, cfg, skip, cfg.seed),
            "val": val.examples.spread(cfg.eval_rows) if val else [],
            "stats": {"train": {"streaming": True}, "val": val.stats if val else None}, "warnings": warnings}
