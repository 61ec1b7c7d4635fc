"""Records -> token ids and labels: what the model is actually trained on.

Chat records go through the model's chat template; the loss is on assistant turns only (their
content and the end-of-turn token that follows, so the model learns to stop), unless
`train_on_prompt`. Plain-text records train on every token, plus eos.

Finding the assistant tokens works for any template, not only those with `{% generation %}`
markers: render the conversation and find each assistant turn's character span by rendering the
prefixes before and after it (render.py), then tokenise the whole text once with offsets and mark
the tokens that overlap those spans. Tokenising the whole text (not pieces) keeps the ids exactly
what `apply_chat_template(tokenize=True)` would give.

Truncation cuts from the right at `max_length`; rows that lose trained tokens are counted
(`truncated`), rows left with nothing to train on are dropped (`dropped`). The examples are Arrow
columns (encoded.py), cached on disk under a fingerprint of the records, the tokenizer and the
options, and memory-mapped from there; large datasets are encoded by several processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from tunestudio.config.choices import REASONING_MODES, TEXT_MODES
from tunestudio.core.errors import UserError
from tunestudio.core.progress import progress
from tunestudio.data.chat import turns
from tunestudio.data.chat.render import Refused, refusal_error, refusal_fields, refused_part, render_or_refuse
from tunestudio.data.encoding import stream
from tunestudio.data.encoding.base import (
    IGNORE,
    Encoded,
    fingerprint_lines,
    quiet_length_warning,
    tokenizer_fingerprint,
)
from tunestudio.data.formats.records import Record

ENCODER_VERSION = 2    # bump when the encoding changes, so old caches are not reused


# ---- tokenising: texts + spans -> ids + trained mask ----

def _trained_mask(offsets: list, spans: list) -> np.ndarray:
    off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)   # (T, 2): start, end of each token
    starts, ends = off[:, 0], off[:, 1]
    mask = np.zeros(len(off), dtype=bool)
    for a, b in spans:  # a token is trained when it overlaps an assistant span
        mask |= (starts < b) & (ends > a)
    return mask


def _tokenize(tokenizer, texts: list[str], add_special_tokens: bool):
    """ids and character offsets of each text, in one batched call."""
    if not texts:
        return [], []
    quiet_length_warning(tokenizer)   # rows are cut at max_length after this, and the cut is reported
    try:
        enc = tokenizer(texts, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    except NotImplementedError:
        raise UserError("this tokenizer cannot report character offsets (not a fast tokenizer): "
                        "use a model with a tokenizer.json", "tokenizer_not_fast") from None
    return enc["input_ids"], enc["offset_mapping"]


def encode_rows(records, tokenizer, train_on_prompt, reasoning: str = "keep"):
    """For each record: (ids, trained mask as a bool array, text, offsets), or Refused."""
    rendered = [render_or_refuse(r, tokenizer, train_on_prompt, reasoning) for r in records]
    out: list = [r if isinstance(r, Refused) else None for r in rendered]
    for is_chat in (True, False):
        idx = [i for i, r in enumerate(rendered) if not isinstance(r, Refused) and r[2] == is_chat]
        # chat templates place their own bos/special tokens; plain text gets the tokenizer's
        ids, offsets = _tokenize(tokenizer, [rendered[i][0] for i in idx], add_special_tokens=not is_chat)
        for k, i in enumerate(idx):
            text, spans, _ = rendered[i]
            row_ids, row_off = list(ids[k]), [tuple(o) for o in offsets[k]]
            mask = _trained_mask(row_off, spans)
            eos = tokenizer.eos_token_id
            if not is_chat and eos is not None and (not row_ids or row_ids[-1] != eos):
                # a document ends: teach the model to stop there
                row_ids.append(eos)
                row_off.append((len(text), len(text)))
                mask = np.append(mask, True)
            out[i] = (row_ids, mask, text, row_off)
    return out


# ---- fingerprint and cache ----

def fingerprint(records, tokenizer, max_length: int, train_on_prompt: bool, reasoning: str = "keep",
                skip_bad_rows: bool = False) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": ENCODER_VERSION, "max_length": max_length, "train_on_prompt": bool(train_on_prompt),
                         "reasoning": reasoning, "skip_bad_rows": bool(skip_bad_rows)}).encode())
    h.update(tokenizer_fingerprint(tokenizer).encode())
    for line in fingerprint_lines(records):
        h.update(line)
    return h.hexdigest()[:32]


# ---- encoding rows into Arrow parts ----

PART_ROWS = 4096       # rows per part file (one worker's unit of work, one progress step)
BATCH_ROWS = 512       # rows rendered and tokenised in one `encode_rows` call
PARALLEL_MIN_ROWS = 20000   # below this, worker processes cost more than they save


def _record_batches(records, start: int, stop: int):
    if hasattr(records, "batches"):
        yield from records.batches(BATCH_ROWS, start, stop)
    else:
        for a in range(start, stop, BATCH_ROWS):
            yield records[a:min(a + BATCH_ROWS, stop)]


def _encode_part(records, start: int, stop: int, tokenizer, max_length: int, train_on_prompt: bool,
                 path: Path | None, options: dict | None = None):
    """Rows start..stop -> one Arrow part (a file at `path`, or a table when None), and what the
    stats need: (table or None, counts dict, truncated rows, dropped rows, refused rows).
    `options`: keyword options of `encode_rows`; a row it gives back as something other than an
    (ids, mask, text, offsets) tuple is one it refused, listed by its str()."""
    from tunestudio.data.encoding import encoded as E

    writer = E.PartWriter(path)
    truncated_rows, dropped_rows, refused_rows = [], [], []
    n = {"examples": 0, "tokens": 0, "trained": 0, "longest": 0, "max_tokens": 0, "reasoning": 0}
    for recs in _record_batches(records, start, stop):
        ids_out, labels_out, lines = [], [], []
        for record, row in zip(recs, encode_rows(recs, tokenizer, train_on_prompt, **(options or {}))):
            if not isinstance(row, tuple):
                refused_rows.append(str(row))
                continue
            if record.is_chat and any(m.get("reasoning") for m in record.messages):
                n["reasoning"] += 1
            ids, mask, _, _ = row
            n["longest"] = max(n["longest"], len(ids))
            n_trained = int(mask.sum())
            ids, mask = np.asarray(ids[:max_length], dtype=np.int64), mask[:max_length]  # cut from the right
            kept = int(mask.sum())
            if kept < n_trained:
                truncated_rows.append(record.where())
            if kept == 0:
                dropped_rows.append(record.where())
                continue
            ids_out.append(ids)
            labels_out.append(np.where(mask, ids, IGNORE))
            lines.append(record.line)
            n["trained"] += kept
            n["tokens"] += len(ids)
            n["max_tokens"] = max(n["max_tokens"], len(ids))
        n["examples"] += len(ids_out)
        if ids_out:
            writer.write(E.batch(ids_out, labels_out, lines))
    return writer.close(), n, truncated_rows, dropped_rows, refused_rows


_JOB: tuple | None = None   # what forked workers encode (inherited, never pickled)


def _work(args):
    start, stop, path = args
    records, tokenizer, max_length, train_on_prompt, options = _JOB
    _, n, truncated, dropped, refused = _encode_part(records, start, stop, tokenizer, max_length, train_on_prompt,
                                                     path, options)
    return stop - start, n, truncated, dropped, refused


def default_num_proc(rows: int) -> int:
    """Worker processes for `rows`: one per CPU core (up to 8) for large datasets, else 1."""
    if rows < PARALLEL_MIN_ROWS or not hasattr(os, "fork"):
        return 1
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _encode_parts(records, tokenizer, max_length, train_on_prompt, staging: Path | None, num_proc: int,
                  options: dict | None = None):
    """Encode every row into parts (in row order). Returns (tables or part names, counts, truncated,
    dropped, refused)."""
    import multiprocessing


    ranges = [(a, min(a + PART_ROWS, len(records))) for a in range(0, len(records), PART_ROWS)]
    names = [f"part-{k:05d}.arrow" for k in range(len(ranges))]
    totals = {"examples": 0, "tokens": 0, "trained": 0, "longest": 0, "max_tokens": 0, "reasoning": 0}
    truncated, dropped, refused, tables = [], [], [], []

    def add(n, t, d, r):
        for key in ("examples", "tokens", "trained", "reasoning"):
            totals[key] += n[key]
        for key in ("longest", "max_tokens"):
            totals[key] = max(totals[key], n[key])
        truncated.extend(t)
        dropped.extend(d)
        refused.extend(r)

    with progress(len(records), "encoding rows") as bar:
        if num_proc > 1 and staging is not None and len(ranges) > 1:
            global _JOB
            _JOB = (records, tokenizer, max_length, train_on_prompt, options)
            saved = os.environ.get("TOKENIZERS_PARALLELISM")
            os.environ["TOKENIZERS_PARALLELISM"] = "false"   # each worker one thread: no fork warning
            try:
                with multiprocessing.get_context("fork").Pool(min(num_proc, len(ranges))) as pool:
                    jobs = [(a, b, staging / name) for (a, b), name in zip(ranges, names)]
                    for rows, n, t, d, r in pool.imap(_work, jobs):   # in order: truncated rows stay sorted
                        add(n, t, d, r)
                        bar.update(rows)
            finally:
                _JOB = None
                if saved is None:
                    os.environ.pop("TOKENIZERS_PARALLELISM", None)
                else:
                    os.environ["TOKENIZERS_PARALLELISM"] = saved
            return names, totals, truncated, dropped, refused
        for (a, b), name in zip(ranges, names):
            table, n, t, d, r = _encode_part(records, a, b, tokenizer, max_length, train_on_prompt,
                                             staging / name if staging is not None else None, options)
            tables.append(table)
            add(n, t, d, r)
            bar.update(b - a)
    return (names if staging is not None else tables), totals, truncated, dropped, refused


# ---- public ----

def encode(records, tokenizer, max_length: int, train_on_prompt: bool = False,
           cache_dir: str | Path | None = None, num_proc: int | None = None, reasoning: str = "keep",
           skip_bad_rows: bool = False, text_mode: str = "truncate", stride: int = 0) -> Encoded:
    """Token ids and labels for training (labels -100 where the loss is not taken).

    `records`: a list of Records or a RecordsView. With `cache_dir`, the examples are written
    there once as Arrow files under the fingerprint (a later call with the same rows, tokenizer
    and options maps them back in seconds) and read memory-mapped. `num_proc`: worker
    processes (None: `default_num_proc`; they need `cache_dir`, as each writes its own part).
    `reasoning`: "keep" trains on assistants' reasoning where the template renders it, "drop" leaves
    it out. Rows the chat template raises on are a UserError listing them, or with `skip_bad_rows`
    are left out and listed in `refused_rows`. `text_mode` "stream": plain-text records (all of them
    text) become blocks of one token stream (stream.py, with `stride`); "truncate", or any chat
    record: one example per row, cut at max_length.
    """
    import pyarrow as pa

    from tunestudio.data.encoding import encoded as E

    if max_length < 1:
        raise UserError(f"max length must be at least 1 token, got {max_length}", "option_at_least",
                        option="max_length", value=max_length, least=1)
    if reasoning not in REASONING_MODES:
        raise UserError(f"--reasoning must be one of {', '.join(REASONING_MODES)} (got {reasoning!r})",
                        "unknown_choice", option="reasoning", value=reasoning, choices=list(REASONING_MODES))
    if text_mode not in TEXT_MODES:
        raise UserError(f"--text-mode must be one of {', '.join(TEXT_MODES)} (got {text_mode!r})",
                        "unknown_choice", option="text_mode", value=text_mode, choices=list(TEXT_MODES))
    if text_mode == "stream" and len(records) and stream.all_text(records):
        return stream.encode_stream(records, tokenizer, max_length, stride, cache_dir)
    fp = fingerprint(records, tokenizer, max_length, train_on_prompt, reasoning, skip_bad_rows)
    source = getattr(records, "source", None) or (records[0].source if len(records) else "")
    folder = Path(cache_dir) / fp if cache_dir else None
    hit = E.cached(folder, source)
    if hit is not None:
        examples, meta = hit
        return Encoded(examples, meta["truncated"], meta["dropped"], meta["stats"], meta["truncated_rows"],
                       meta["dropped_rows"], meta.get("refused_rows", []), fingerprint=fp, from_cache=True)

    staging = E.new_staging(folder)
    num_proc = default_num_proc(len(records)) if num_proc is None else max(1, num_proc)
    try:
        parts, n, truncated_rows, dropped_rows, refused = _encode_parts(
            records, tokenizer, max_length, train_on_prompt, staging, num_proc, {"reasoning": reasoning})
        if refused and not skip_bad_rows:
            raise UserError(refusal_error(refused), "template_refused_rows", **refusal_fields(refused))
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    examples = n["examples"]
    stats = {
        "rows": len(records), "examples": examples,
        "tokens": n["tokens"], "trained_tokens": n["trained"],
        "mean_tokens": round(n["tokens"] / examples, 2) if examples else 0.0,
        "max_tokens": n["max_tokens"], "longest_row_tokens": n["longest"],
        "truncated": len(truncated_rows), "dropped": len(dropped_rows),
        "max_length": max_length, "train_on_prompt": bool(train_on_prompt), "refused": len(refused),
        "reasoning": reasoning, "reasoning_rows": n["reasoning"],
    }
    if staging is not None:
        E.publish_entry(staging, folder, {"parts": parts, "truncated": len(truncated_rows),
                                          "dropped": len(dropped_rows), "stats": stats,
                                          "truncated_rows": truncated_rows, "dropped_rows": dropped_rows,
                                          "refused_rows": refused, "fingerprint": fp})
        table, _ = E.read_entry(folder)
    else:
        table = pa.concat_tables(parts) if parts else E.SCHEMA.empty_table()
    return Encoded(E.EncodedExamples(table, source), len(truncated_rows), len(dropped_rows), stats,
                   truncated_rows, dropped_rows, refused, fingerprint=fp)


def last_answer_tokens(tokenizer, messages: list[dict], reasoning: str = "keep",
                       tools: list | None = None) -> tuple[list[int], int, int]:
    """(ids of the conversation's training rendering, first and end token index of its last assistant
    turn): the same tokens training takes its loss on, for scoring a reference answer.

    Raises turns.TemplateRefused (a UserError) when the template refuses the conversation."""
    (row,) = encode_rows([Record("", 0, messages=messages, tools=tools)], tokenizer, False, reasoning)
    if isinstance(row, Refused):
        raise turns.TemplateRefused(row.message)
    ids, mask = row[0], row[1]
    return (ids, *last_trained_span(mask))


def last_trained_span(mask) -> tuple[int, int]:
    """(start, end) token indices of the last run of trained tokens in a row's mask: its final
    assistant turn with the turn end."""
    end = len(mask)
    while end and not mask[end - 1]:
        end -= 1
    start = end
    while start and mask[start - 1]:
        start -= 1
    return start, end


def preview(record: Record, tokenizer, max_length: int, train_on_prompt: bool = False,
            reasoning: str = "keep") -> list[tuple[str, bool]]:
    """One record as the model sees it: (token text, trained) pairs, cut at max_length.

    Token texts are slices of the rendered text, so joined they give it back exactly (a
    character split over several byte-level tokens shows on the first of them).
    Raises UserError when the chat template refuses the row.
    """
    (row,) = encode_rows([record], tokenizer, train_on_prompt, reasoning)
    if isinstance(row, Refused):
        part = refused_part(row)
        raise UserError(str(row), part["code"], **part.get("fields", {}))
    ids, mask, text, offsets = row
    pairs, done = [], 0
    for i in range(min(len(ids), max_length)):
        start, end = offsets[i]
        if start == end == len(text) and i == len(ids) - 1 and not record.is_chat:
            piece = tokenizer.eos_token or ""  # the eos we appended has no place in the text
        else:
            piece = text[done:end] if end > done else ""
            done = max(done, end)
        pairs.append((piece, bool(mask[i])))
    return pairs


def render_preview(pairs: list[tuple[str, bool]], color: bool = False) -> str:
    """Text for a terminal: trained runs in green (color) or wrapped in [[...]]."""
    open_, close = ("\x1b[32m", "\x1b[0m") if color else ("[[", "]]")
    out, on = [], False
    for piece, trained in pairs:
        if trained != on:
            out.append(open_ if trained else close)
            on = trained
        out.append(piece)
    if on:
        out.append(close)
    return "".join(out)
