"""The lengths of a dataset's training rows as a model's tokenizer encodes them: what the memory
estimate (memory.py) needs to know before a run, read from a sample of the rows."""

from __future__ import annotations

from tunestudio.config import presets
from tunestudio.data.encoding.encode import encode
from tunestudio.data.quality.stats import load_tokenizer
from tunestudio.data.split import load_dataset


def data_lengths(examples, *, sample: int = 2000) -> dict | None:
    """What the estimate needs of encoded examples (data/encoded.EncodedExamples, or a list of
    {"input_ids", "labels"} dicts): {"longest": tokens of the longest row (all rows), "trained":
    the most trained tokens (labels other than -100) in a row, "rows", "checked": rows whose labels
    were read for it (the longest and an even spread of `sample`: a big memory-mapped file is not
    read whole)}. None for a stream or no rows (no lengths known in advance)."""
    import numpy as np

    if examples is None or not hasattr(examples, "__len__") or not len(examples):
        return None
    n = len(examples)
    lengths = getattr(examples, "lengths", None)
    if lengths is None:
        lengths = [len(examples[i]["input_ids"]) for i in range(n)]
    lengths = np.asarray(lengths, dtype=np.int64)
    picked = set(np.argsort(-lengths, kind="stable")[:256].tolist())
    picked |= set(np.linspace(0, n - 1, min(n, sample)).round().astype(np.int64).tolist())
    arrays = getattr(examples, "arrays", None)
    trained = 0
    for i in picked:
        labels = arrays(int(i))[1] if arrays is not None else examples[int(i)]["labels"]
        trained = max(trained, int((np.asarray(labels) != -100).sum()))
    return {"longest": int(lengths.max()), "trained": trained, "rows": n, "checked": len(picked)}


_LENGTHS_CACHE: dict = {}


def _with_replay(got: dict, records, ws, model: str, max_length: int) -> dict:
    """A default run on chat data and a pretrained model also trains on replay rows (train/replay.py):
    the base model's own answers of up to presets.REPLAY_MAX_NEW_TOKENS tokens, usually longer than a narrow
    task's rows. Measured on SmolLM2 and demo-tickets: peak 2.0 GB without them, 3.8 GB with."""
    if not (records[0].is_chat and presets.model_kind(ws.model_path_or_id(model)) == "pretrained"):
        return got
    longest = min(max_length, presets.REPLAY_MAX_NEW_TOKENS + presets.REPLAY_PROMPT_ALLOWANCE)
    return {**got, "longest": max(got["longest"], longest),
            "trained": max(got["trained"], min(longest, presets.REPLAY_MAX_NEW_TOKENS + 1)), "replay": True}


def dataset_lengths(ws, dataset: str, model: str, max_length: int, *, train_on_prompt: bool = False,
                    sample: int = 1000) -> dict | None:
    """`data_lengths` of `dataset` as `model`'s tokenizer encodes it at `max_length`, from an even
    spread of up to `sample` rows (all of a smaller file): what the Training tab shows before a
    run. Kept per file state, model and options, so a form change does not tokenise again. None when
    the rows cannot be read or encoded (a preference file, a broken row...): the estimate then
    falls back to max_length."""

    try:
        files, results = load_dataset(ws, dataset)
        stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files.values())
        key = (stamp, str(ws.model_path_or_id(model)), int(max_length), bool(train_on_prompt), sample)
        if key in _LENGTHS_CACHE:
            return _LENGTHS_CACHE[key]
        from tunestudio.data.formats.table import Chain

        records = Chain([res.records for res in results.values()])
        if not len(records):
            return None
        import numpy as np


        spread = sorted(set(np.linspace(0, len(records) - 1, min(len(records), sample)).round().astype(int).tolist()))
        enc = encode([records[i] for i in spread], load_tokenizer(ws, model), int(max_length), train_on_prompt,
                     num_proc=1, skip_bad_rows=True)
        got = data_lengths(enc.examples)
        if got is not None:
            got["sampled_from"] = len(records)
            got = _with_replay(got, records, ws, model, int(max_length))
        if len(_LENGTHS_CACHE) > 64:
            _LENGTHS_CACHE.clear()
        _LENGTHS_CACHE[key] = got
        return got
    except Exception:  # noqa: BLE001 - the estimate still helps without the data's lengths
        return None
