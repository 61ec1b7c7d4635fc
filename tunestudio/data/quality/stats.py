"""Dataset statistics: sizes, turns, roles, lengths against the cutoff, duplicates, label balance.

`compute_stats` returns a plain dict (JSON-able) so the CLI prints it and the web UI shows it.
Lengths are in tokens when a tokenizer is given (the model's chat template applied, as training
will see the row), otherwise in characters; the cutoff (`max_length`) is in the same unit.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections import Counter

from tunestudio.config.choices import TEXT_MODES
from tunestudio.config.run_config import RunConfig
from tunestudio.core.errors import UserError
from tunestudio.core.progress import progress
from tunestudio.data.chat import turns
from tunestudio.data.chat.template import ensure_chat_template
from tunestudio.data.encoding import stream
from tunestudio.data.encoding.base import quiet_length_warning
from tunestudio.data.encoding.encode import encode, preview
from tunestudio.data.encoding.stream import summary as stream_summary
from tunestudio.data.formats.records import Record
from tunestudio.data.quality.pick import at_line
from tunestudio.data.split import load_dataset
from tunestudio.data.tools.toolcalls import message_text

LABEL_MAX_DISTINCT = 20     # at most this many distinct answers: the task is classification
DOMINANT_SHARE = 0.7        # one label above this share of rows gets a warning


def load_tokenizer(ws, model: str):
    """The tokenizer of `model` (folder under models/, path or hub id), with a chat template."""
    path = ws.model_path_or_id(model)   # before the slow import: a bad name fails at once
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as e:  # missing files, offline hub id, bad json: all mean "cannot use this model"
        detail = str(e).splitlines()[0]
        raise UserError(f"cannot load the tokenizer of model '{model}': {detail}", "tokenizer_unloadable",
                        source=f"'{model}'", detail=detail) from None
    ensure_chat_template(tokenizer)   # a base model without a template gets the fallback training uses
    return tokenizer


def default_max_length(tokenizer, fallback: int = 2048) -> int:
    n = getattr(tokenizer, "model_max_length", None)
    return int(n) if isinstance(n, int) and 0 < n < 1_000_000 else fallback  # HF uses 1e30 for "unknown"


def tokenizer_and_cutoff(ws, model: str | None, max_length: int | None):
    """(the tokenizer of `model`, or None without one; `max_length`, else training's default)."""
    tokenizer = load_tokenizer(ws, model) if model else None
    if tokenizer is not None and not max_length:
        # what `train` cuts at by default (the model's own limit, often 32k+, only when smaller):
        # check, stats, preview and training then agree on which rows are cut
        max_length = min(training_max_length(), default_max_length(tokenizer))
    return tokenizer, max_length


def record_text(record: Record) -> str:
    """All the text of a row, for character counts and similarity."""
    if record.messages is not None:
        return "\n".join(message_text(m) for m in record.messages)
    return record.text or ""


def row_key(record: Record) -> str:
    """Two rows with the same key are exact duplicates (the same turns and calls, and the same
    tools declared: one conversation offered other functions is another example)."""
    if record.messages is not None:
        key = json.dumps([[m["role"], message_text(m)] for m in record.messages], ensure_ascii=False)
        return key + "\x1e" + json.dumps(record.tools, sort_keys=True, ensure_ascii=False) if record.tools else key
    return record.text or ""


def count_tokens(records, tokenizer, batch: int = 512, refused: dict | None = None) -> list[int]:
    """Tokens per row as training sees it: chat rows through the chat template, text as is.
    Rendered a batch at a time, so a million rows never exist as text all at once.

    A row the chat template refuses is counted by its raw text, and its message goes into
    `refused` (row index -> the template's message) when the caller passes a dict."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    style = turns.reasoning_style(tokenizer) if has_template else "inline"
    counts: list[int] = []
    texts: list[str] = []
    special: list[bool] = []

    def flush():
        out = [0] * len(texts)
        for flag in (False, True):
            idx = [i for i, s in enumerate(special) if s == flag]
            if idx:
                enc = tokenizer([texts[i] for i in idx], add_special_tokens=flag)["input_ids"]
                for i, ids in zip(idx, enc):
                    out[i] = len(ids)
        counts.extend(out)
        texts.clear()
        special.clear()

    with progress(len(records), "counting tokens") as bar:
        for n, r in enumerate(records):
            rendered = None
            if r.messages is not None and has_template:
                try:
                    rendered = turns.render(tokenizer, turns.template_messages(r.messages, style), tools=r.tools)
                except turns.TemplateRefused as e:
                    if refused is not None:
                        refused[n] = str(e)
            texts.append(rendered if rendered is not None else record_text(r))
            special.append(rendered is None)   # a template writes its own special tokens
            if len(texts) >= batch:
                bar.update(len(texts))
                flush()
        bar.update(len(texts))
        flush()
    return counts


def row_lengths(records, tokenizer=None, refused: dict | None = None) -> list[int]:
    """Length of each row: tokens with a tokenizer (`count_tokens`), else characters."""
    if tokenizer is None:
        return [len(record_text(r)) for r in records]
    return count_tokens(records, tokenizer, refused=refused)


def row_digest(record: Record) -> bytes:
    """16 bytes standing for `row_key` (equal rows, equal digests): a million keys in little memory."""
    return hashlib.blake2b(row_key(record).encode(), digest_size=16).digest()


def histogram(lengths: list[int], cutoff: int | None, bins: int = 10) -> list[dict]:
    """Length bins fitted to the data: [{"lo", "hi", "count", "over_cutoff"}], counts in rows.

    The bins run from 0 past the longest row within the cutoff (to the cutoff at most), with a
    round width (1, 2 or 5 x 10^k) no narrower than numpy's 'auto' choice and giving at most `bins`
    bins; a row of length n is in the bin with lo <= n < hi, the last bin also holding n == hi.
    With a cutoff, one more bin (over_cutoff, lo = the cutoff) counts the rows longer than it,
    so no bin reaches past the cutoff. No rows: []."""
    import numpy as np

    if not lengths:
        return []
    values = np.asarray(lengths, dtype=np.int64)
    inside = values[values <= cutoff] if cutoff else values
    top = int(inside.max()) if inside.size else 0
    if cutoff and not inside.size:
        top = cutoff
    top = max(top, 1)
    auto = np.histogram_bin_edges(inside, bins="auto", range=(0, top)) if inside.size > 1 else [0, top]
    width = _round_width(max(float(auto[1] - auto[0]), top / max(bins, 1)))
    # whole bins up to the longest row, the last one cut short only by the cutoff
    end = -(-top // width) * width
    end = min(end, cutoff) if cutoff else end
    edges = list(range(0, end, width)) + [end]
    counts = np.histogram(inside, bins=edges)[0] if inside.size else [0] * (len(edges) - 1)
    out = [{"lo": lo, "hi": hi, "count": int(n), "over_cutoff": False}
           for lo, hi, n in zip(edges[:-1], edges[1:], counts)]
    if cutoff:
        # hi: the longest row over the cutoff; none over: the bin is empty, lo == hi (never lo > hi)
        out.append({"lo": cutoff, "hi": max(int(values.max()), cutoff), "count": int((values > cutoff).sum()),
                    "over_cutoff": True})
    return out


def _round_width(x: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is >= x: bin edges a person reads at a glance."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if step * m >= x:
                return step * m
        step *= 10


def _summary(values: list[int]) -> dict:
    if not values:
        return {"min": 0, "mean": 0, "median": 0, "p95": 0, "max": 0, "total": 0}
    ordered = sorted(values)
    return {"min": ordered[0], "mean": round(statistics.fmean(values), 1), "median": statistics.median(values),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1],
            "total": sum(values)}


def compute_stats(records, tokenizer=None, max_length: int | None = None,
                  fmt: str | None = None, bins: int = 10, cut: bool = True) -> dict:
    """Everything `data stats` shows, as a dict (see the module docstring for units).
    `records`: a sequence of Records (a list, or RecordsViews chained); read in one pass for
    everything but token counts, keeping numbers and 16-byte digests, not rows. `cut` False: rows
    over `max_length` are not truncated (a text stream is cut into blocks), so no warning."""
    unit = "tokens" if tokenizer is not None else "characters"
    lengths = row_lengths(records, tokenizer) if tokenizer is not None else None
    roles: Counter = Counter()
    turns, chars = [], []
    keys: Counter = Counter()
    answers: Counter | None = Counter()   # None once there are too many distinct answers for labels
    n = n_chats = 0
    for r in records:
        n += 1
        chars.append(len(record_text(r)))
        keys[row_digest(r)] += 1
        if r.messages is not None:
            n_chats += 1
            roles.update(m["role"] for m in r.messages)
            turns.append(len(r.messages))
            if answers is not None:
                answers[r.reference().strip()] += 1
                if len(answers) > LABEL_MAX_DISTINCT:
                    answers = None
    if lengths is None:
        lengths = chars
    warnings = []
    parts = []   # the same warnings as {code, fields}: the web UI words them in its language

    over = sum(x > max_length for x in lengths) if max_length else 0
    if over and cut:
        warnings.append(f"{over} of {n} rows are longer than the cutoff of {max_length} {unit}: "
                        "they will be truncated")
        parts.append({"code": "over_cutoff", "over": over, "rows": n, "cutoff": max_length, "unit": unit})

    labels, dominant = None, None
    if n_chats and answers is not None and n_chats >= 2 * len(answers):
        labels = dict(answers.most_common())
        label, count = answers.most_common(1)[0]
        dominant = {"label": label, "count": count, "share": round(count / n_chats, 3)}
        if count / n_chats > DOMINANT_SHARE:
            warnings.append(f"class imbalance: the answer {label!r} is {count / n_chats:.0%} of rows; "
                            "a model can score well by always giving it")
            parts.append({"code": "class_imbalance", "label": repr(label), "share": f"{count / n_chats:.0%}"})

    duplicates = sum(c - 1 for c in keys.values())
    del keys
    if duplicates:
        warnings.append(f"{duplicates} rows are exact duplicates of an earlier row (`tunestudio data clean` drops them)")
        parts.append({"code": "duplicates", "duplicates": duplicates})
    return {
        "format": fmt,
        "rows": n,
        "unit": unit,
        "turns": _summary(turns) if n_chats else None,
        "roles": dict(roles),
        "chars": _summary(chars),
        "length": _summary(lengths),
        "cutoff": max_length,
        "over_cutoff": over,
        "histogram": histogram(lengths, max_length, bins),
        "duplicates": duplicates,
        "labels": labels,
        "dominant_label": dominant,
        "warnings": warnings,
        "warning_parts": [{**p, "message": w} for p, w in zip(parts, warnings)],
    }


def stats_dataset(ws, dataset: str, fmt: str | None = None, mapping=None, model: str | None = None,
                  max_length: int | None = None, separator: str | None = None, bins: int = 10,
                  text_mode: str = "stream", stride: int = 0) -> dict:
    """`compute_stats` over every usable row of `dataset` (all files of a split set), plus the
    number of rows skipped for errors (`data check` lists them).

    Plain text in `text_mode` "stream" (training's default) adds "documents" and "stream": None
    without a model, else {documents, tokens, blocks, block_tokens, max_length, stride,
    longest_document_tokens} for blocks of `max_length` tokens (training's default when None)."""

    if text_mode not in TEXT_MODES:
        raise UserError(f"--text-mode must be one of {', '.join(TEXT_MODES)} (got {text_mode!r})",
                        "unknown_choice", option="text_mode", value=text_mode, choices=list(TEXT_MODES))
    files, results = load_dataset(ws, dataset, fmt, mapping, separator)
    block_length = max_length or training_max_length()
    tokenizer, max_length = tokenizer_and_cutoff(ws, model, max_length)
    records = _usable_records(dataset, results)
    first = results.get("all") or results["train"]
    streamed = text_mode == "stream" and stream.all_text(records)
    if streamed:
        stream.check_stride(stride, block_length)
        if tokenizer is not None:
            quiet_length_warning(tokenizer)
    stats = compute_stats(records, tokenizer, max_length, first.format, bins, cut=not streamed)
    stats["text_mode"] = text_mode if stream.all_text(records) else None   # it applies to plain text only
    if streamed:
        stats["documents"] = len(records)
        stats["stream"] = None
        if tokenizer is not None:
            enc = stream.encode_stream(records, tokenizer, block_length, stride,
                                       cache_dir=ws.encoded_cache_dir)
            stats["stream"] = stream.summary(enc.stats)
    stats["dataset"] = dataset
    stats["files"] = {key: {"name": path.name, "rows": len(results[key].records)} for key, path in files.items()}
    stats["errors"] = sum(len(r.errors) for r in results.values())
    if stats["errors"]:
        # first and in both lists: the UI words `warning_parts` when there are any, so a line only in
        # `warnings` would vanish there (or show in English when it is the only one)
        skipped = f"{stats['errors']} problem(s) skipped: Check on the Datasets tab lists them (`tunestudio data check {dataset}`)"
        stats["warnings"].insert(0, skipped)
        stats["warning_parts"].insert(0, {"code": "skipped_problems", "errors": stats["errors"],
                                          "dataset": dataset, "message": skipped})
    return stats


def _usable_records(dataset: str, results: dict):
    """The records of every file of `dataset`, in file order (one sequence over their views);
    raises when there are none."""
    from tunestudio.data.formats.table import Chain

    records = Chain([r.records for r in results.values()])
    if not len(records):
        problems = [p for r in results.values() for p in r.errors[:3]]
        raise UserError(f"no usable rows in '{dataset}'" + (": " + "; ".join(map(str, problems)) if problems else ""),
                        "no_usable_rows_because" if problems else "no_usable_rows_in", dataset=dataset,
                        problems=[p.as_warning() for p in problems])
    return records


TRAINING_MAX_LENGTH = 512   # used when the run config's default cannot be read


def training_max_length() -> int:
    """The max length a training run uses when none is given (RunConfig's default)."""
    try:
        import dataclasses


        return int(next(f.default for f in dataclasses.fields(RunConfig) if f.name == "max_length"))
    except Exception:  # the training area missing or changed: the documented default
        return TRAINING_MAX_LENGTH


def preview_dataset(ws, dataset: str, model: str, row: int = 1, max_length: int | None = None,
                    train_on_prompt: bool = False, fmt: str | None = None, mapping=None,
                    separator: str | None = None, reasoning: str = "keep", text_mode: str = "stream",
                    stride: int = 0, line: int | None = None) -> dict:
    """One row of `dataset` as `model` will be trained on it, and the truncation count of all rows.
    Plain text in `text_mode` "stream" is cut into blocks, not truncated: the row's first
    `max_length` tokens are shown, nothing counts as truncated, and "stream" holds the stream's
    documents, tokens and blocks (stream.summary); else "stream" is None.

    `row` is 1-based over the usable rows of every file of the dataset, in file order (train,
    val, test for a split set); `line`, when given, picks by the line in the (first) file instead
    (data/quality/pick.py: the next usable row when that line holds none, "asked_line" saying so).
    Returns {"dataset", "model", "row", "rows", "source", "line", "asked_line", "chat",
    "max_length", "train_on_prompt", "tokens": [{"text", "trained"}], "n_tokens", "n_trained",
    "row_truncated", "row_dropped", "truncated", "dropped", "truncated_rows", "truncation" (the
    truncation warning, or None), "errors", "warnings", "reasoning" (the row's last reasoning, or ""),
    "prompts" ({"training", "template"}: the text chat and eval ask this row with, and the template's
    own generation prompt, when the two differ; else None)};
    `tunestudio.data.encoding.encode.render_preview` turns `tokens` into text.
    """

    if max_length is None:
        max_length = training_max_length()
    if max_length < 1:
        raise UserError(f"--max-length must be at least 1 token, got {max_length}", "option_at_least",
                        option="max_length", value=max_length, least=1)
    _, results = load_dataset(ws, dataset, fmt, mapping, separator)
    records = _usable_records(dataset, results)
    errors = sum(len(r.errors) for r in results.values())
    asked_line = None
    if line is not None:
        picked = at_line(records, line, dataset)
        row, asked_line = records.index(picked.record) + 1, picked.asked_line
    if not 1 <= row <= len(records):
        raise UserError(f"--row {row} is out of range: '{dataset}' has {len(records)} usable rows "
                        f"(1 to {len(records)})", "row_out_of_range", row=row, dataset=dataset, rows=len(records))
    tokenizer = load_tokenizer(ws, model)

    record = records[row - 1]
    pairs = preview(record, tokenizer, max_length, train_on_prompt=train_on_prompt, reasoning=reasoning)
    # cached like training data: a second preview of a large dataset reads the counts back at once
    enc = encode(records, tokenizer, max_length, train_on_prompt=train_on_prompt, reasoning=reasoning,
                 skip_bad_rows=True, cache_dir=ws.encoded_cache_dir,
                 text_mode=text_mode, stride=stride)
    streamed = enc.stats.get("text_mode") == "stream"
    what = "trained" if train_on_prompt or not any(r.is_chat for r in records) else "answer"
    truncation = None
    if enc.truncated:
        truncation = (f"{enc.truncated} of {len(records)} rows lose {what} tokens at max length {max_length}"
                      + (f" ({enc.dropped} keep none and will be dropped)" if enc.dropped else "")
                      + f"; first: {', '.join(enc.truncated_rows[:3])}; raise --max-length or shorten the "
                      + ("prompts" if what == "answer" else "rows"))
    warnings = [truncation] if truncation else []
    if enc.refused_rows:
        warnings.append(f"{len(enc.refused_rows)} row(s) refused by the chat template (training stops on them "
                        f"unless --skip-bad-rows); first: {enc.refused_rows[0]}")
    prompts = None
    difference = turns.prompt_difference(tokenizer) if record.is_chat else None
    if difference:
        warnings.append(difference)
        opened = reasoning == "keep" and bool(record.reference_reasoning())
        prompts = {"training": turns.training_prompt(tokenizer, record.prompt(), opened, record.tools),
                   "template": turns.render(tokenizer, record.prompt(), add_generation_prompt=True, tools=record.tools)}
    if errors:
        warnings.append(f"{errors} problem(s) in the data (rows skipped here; training refuses the dataset "
                        f"until they are fixed): `tunestudio data check {dataset}` lists them")
    return {
        "dataset": dataset, "model": model, "row": row, "rows": len(records),
        "source": record.source, "line": record.line, "asked_line": asked_line, "chat": record.is_chat,
        "max_length": max_length, "train_on_prompt": bool(train_on_prompt),
        "tokens": [{"text": text, "trained": trained} for text, trained in pairs],
        "n_tokens": len(pairs), "n_trained": sum(trained for _, trained in pairs),
        "row_truncated": record.where() in enc.truncated_rows,
        "stream": stream_summary(enc.stats) if streamed else None,
        "row_dropped": record.where() in enc.dropped_rows,
        "truncated": enc.truncated, "dropped": enc.dropped, "truncated_rows": enc.truncated_rows[:20],
        "truncation": truncation, "errors": errors, "warnings": warnings,
        "reasoning": record.reference_reasoning(), "prompts": prompts,
        "tools": [t["function"]["name"] for t in record.tools or []],
        "tool_calls": sum(len(m.get("tool_calls") or []) for m in record.messages or []),
        "tool_results": sum(m["role"] == "tool" for m in record.messages or []),
        # a template may drop reasoning (DeepSeek-R1's strips it from rendered answers): say so
        "reasoning_rendered": bool(record.reference_reasoning())
        and record.reference_reasoning().strip() in "".join(text for text, _ in pairs),
    }
