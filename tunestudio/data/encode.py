"""Records -> token ids and labels: what the model is actually trained on.

Chat records go through the model's chat template; the loss is on assistant turns only (their
content and the end-of-turn token that follows, so the model learns to stop), unless
`train_on_prompt`. Plain-text records train on every token, plus eos.

Finding the assistant tokens works for any template, not only those with `{% generation %}`
markers: render the conversation, find each assistant turn's character span by rendering the
prefixes before and after it, then tokenise the whole text once with offsets and mark the tokens
that overlap those spans. Tokenising the whole text (not pieces) keeps the ids exactly what
`apply_chat_template(tokenize=True)` would give.

Truncation cuts from the right at `max_length`; rows that lose trained tokens are counted
(`truncated`), rows left with nothing to train on are dropped (`dropped`). Results are cached on
disk under a fingerprint of the records, the tokenizer and the options.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tunestudio.data.records import Record
from tunestudio.errors import UserError

IGNORE = -100          # label of a token the loss skips (the value transformers expects)
ENCODER_VERSION = 1    # bump when the encoding changes, so old caches are not reused


@dataclass
class Encoded:
    examples: list[dict]                 # {"input_ids": [...], "labels": [...]}, one per kept row
    truncated: int                       # rows whose trained tokens were cut at max_length
    dropped: int                         # rows with nothing left to train on (not in examples)
    stats: dict                          # rows, examples, tokens, trained_tokens, mean/max tokens...
    truncated_rows: list[str] = field(default_factory=list)  # Record.where() of each truncated row
    dropped_rows: list[str] = field(default_factory=list)
    fingerprint: str = ""
    from_cache: bool = False


# ---- rendering: a record -> (text, character spans to train on) ----

def _render(tokenizer, messages, add_generation_prompt=False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer, messages: list[dict], full: str) -> list[tuple[int, int]]:
    """Character spans of each assistant turn in `full` (content plus its end-of-turn marker)."""
    spans, searched_to = [], 0
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], add_generation_prompt=True) if i else ""
        through = full if i == len(messages) - 1 else _render(tokenizer, messages[: i + 1])
        if i and full.startswith(through) and through.startswith(before) and len(before) >= searched_to:
            # The turn is what rendering it added after the generation prompt. Trailing
            # whitespace (ChatML's "\n" after <|im_end|>) is layout, not something to generate.
            start, end = len(before), len(through.rstrip())
        else:
            # Templates that render earlier turns differently (e.g. dropping reasoning) or that
            # cannot render a prefix: find the content itself, then a special token right after.
            start = full.find(m["content"], searched_to)
            if start < 0:
                continue  # the template dropped this turn: nothing of it is in the text
            end = start + len(m["content"])
            for tok in _special_tokens(tokenizer):
                if full.startswith(tok, end):
                    end += len(tok)
                    break
        if end > start:
            spans.append((start, end))
        searched_to = max(searched_to, end)
    return spans


def _special_tokens(tokenizer) -> list[str]:
    toks = [tokenizer.eos_token] + list(getattr(tokenizer, "all_special_tokens", []))
    return sorted({t for t in toks if t}, key=len, reverse=True)  # longest first: no prefix clash


def render_record(record: Record, tokenizer, train_on_prompt: bool = False) -> tuple[str, list, bool]:
    """(text, spans to train on, is_chat). Plain text trains on everything."""
    if record.is_chat:
        if not getattr(tokenizer, "chat_template", None):
            raise UserError("the tokenizer has no chat template: give it one with "
                            "template.ensure_chat_template(tokenizer) (or --template chatml|plain)")
        full = _render(tokenizer, record.messages)
        spans = [(0, len(full))] if train_on_prompt else assistant_spans(tokenizer, record.messages, full)
        return full, spans, True
    text = record.text or ""
    return text, [(0, len(text))], False


# ---- tokenising: texts + spans -> ids + trained mask ----

def _trained_mask(offsets: list, spans: list) -> np.ndarray:
    starts = np.fromiter((o[0] for o in offsets), dtype=np.int64, count=len(offsets))
    ends = np.fromiter((o[1] for o in offsets), dtype=np.int64, count=len(offsets))
    mask = np.zeros(len(offsets), dtype=bool)
    for a, b in spans:  # a token is trained when it overlaps an assistant span
        mask |= (starts < b) & (ends > a)
    return mask


def _tokenize(tokenizer, texts: list[str], add_special_tokens: bool):
    """ids and character offsets of each text, in one batched call."""
    if not texts:
        return [], []
    try:
        enc = tokenizer(texts, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    except NotImplementedError:
        raise UserError("this tokenizer cannot report character offsets (not a fast tokenizer): "
                        "use a model with a tokenizer.json") from None
    return enc["input_ids"], enc["offset_mapping"]


def _encode_rows(records, tokenizer, train_on_prompt):
    """For each record: (ids, trained mask as a bool array, text, offsets)."""
    rendered = [render_record(r, tokenizer, train_on_prompt) for r in records]
    out: list = [None] * len(records)
    for is_chat in (True, False):
        idx = [i for i, (_, _, c) in enumerate(rendered) if c == is_chat]
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

def tokenizer_fingerprint(tokenizer) -> str:
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    for part in (type(tokenizer).__name__, tokenizer.chat_template or "", tokenizer.eos_token or "",
                 tokenizer.bos_token or ""):
        h.update(b"\0" + str(part).encode())
    return h.hexdigest()


def fingerprint(records, tokenizer, max_length: int, train_on_prompt: bool) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": ENCODER_VERSION, "max_length": max_length,
                         "train_on_prompt": bool(train_on_prompt)}).encode())
    h.update(tokenizer_fingerprint(tokenizer).encode())
    for r in records:
        h.update(json.dumps([r.messages, r.text, r.where()], ensure_ascii=False).encode() + b"\n")
    return h.hexdigest()[:32]


def _load_cache(path: Path) -> Encoded | None:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return Encoded(**d, from_cache=True)
    except (OSError, ValueError, TypeError):
        return None  # missing or unreadable (an old format, a partial copy): encode again


def _save_cache(path: Path, enc: Encoded) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    d = {k: getattr(enc, k) for k in ("examples", "truncated", "dropped", "stats",
                                      "truncated_rows", "dropped_rows", "fingerprint")}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(d, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader never sees half a cache file


# ---- public ----

def encode(records: list[Record], tokenizer, max_length: int, train_on_prompt: bool = False,
           cache_dir: str | Path | None = None) -> Encoded:
    """Token ids and labels for training (labels -100 where the loss is not taken)."""
    if max_length < 1:
        raise UserError(f"max length must be at least 1 token, got {max_length}")
    fp = fingerprint(records, tokenizer, max_length, train_on_prompt)
    cache_path = Path(cache_dir) / f"{fp}.json" if cache_dir else None
    if cache_path is not None and cache_path.is_file():
        cached = _load_cache(cache_path)
        if cached is not None:
            return cached

    examples, truncated_rows, dropped_rows = [], [], []
    longest = trained_total = 0
    for record, (ids, mask, _, _) in zip(records, _encode_rows(records, tokenizer, train_on_prompt)):
        longest = max(longest, len(ids))
        n_trained = int(mask.sum())
        ids, mask = ids[:max_length], mask[:max_length]  # cut from the right
        kept = int(mask.sum())
        if kept < n_trained:
            truncated_rows.append(record.where())
        if kept == 0:
            dropped_rows.append(record.where())
            continue
        labels = np.where(mask, np.asarray(ids, dtype=np.int64), IGNORE).tolist()
        examples.append({"input_ids": ids, "labels": labels})
        trained_total += kept

    lengths = [len(e["input_ids"]) for e in examples]
    stats = {
        "rows": len(records), "examples": len(examples),
        "tokens": sum(lengths), "trained_tokens": trained_total,
        "mean_tokens": round(sum(lengths) / len(lengths), 2) if lengths else 0.0,
        "max_tokens": max(lengths, default=0), "longest_row_tokens": longest,
        "truncated": len(truncated_rows), "dropped": len(dropped_rows),
        "max_length": max_length, "train_on_prompt": bool(train_on_prompt),
    }
    enc = Encoded(examples, len(truncated_rows), len(dropped_rows), stats,
                  truncated_rows, dropped_rows, fingerprint=fp)
    if cache_path is not None:
        _save_cache(cache_path, enc)
    return enc


def preview(record: Record, tokenizer, max_length: int, train_on_prompt: bool = False) -> list[tuple[str, bool]]:
    """One record as the model sees it: (token text, trained) pairs, cut at max_length.

    Token texts are slices of the rendered text, so joined they give it back exactly (a
    character split over several byte-level tokens shows on the first of them).
    """
    (ids, mask, text, offsets), = _encode_rows([record], tokenizer, train_on_prompt)
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
