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

from tunestudio.data import turns
from tunestudio.data.records import Record
from tunestudio.errors import UserError

IGNORE = -100          # label of a token the loss skips (the value transformers expects)
ENCODER_VERSION = 2    # bump when the encoding changes, so old caches are not reused


@dataclass
class Encoded:
    examples: list[dict]                 # {"input_ids": [...], "labels": [...]}, one per kept row
    truncated: int                       # rows whose trained tokens were cut at max_length
    dropped: int                         # rows with nothing left to train on (not in examples)
    stats: dict                          # rows, examples, tokens, trained_tokens, mean/max tokens...
    truncated_rows: list[str] = field(default_factory=list)  # Record.where() of each truncated row
    dropped_rows: list[str] = field(default_factory=list)
    refused_rows: list[str] = field(default_factory=list)   # "file:line: the chat template refused ..." (skipped)
    fingerprint: str = ""
    from_cache: bool = False


# ---- rendering: a record -> (text, character spans to train on) ----

REFUSED = "the chat template refused this row"


@dataclass
class Refused:
    """A row the chat template raised on: not encoded, listed with the template's own message."""
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {REFUSED}: {self.message}"


def assistant_spans(tokenizer, messages: list[dict], full: str, reasoning: str = "keep") -> list[tuple[int, int]]:
    """Character spans of each assistant turn in `full`: its reasoning where the template renders
    it, its content, and the end-of-turn token after it (turns.answer_span); a template that renders
    a turn differently with other text in it falls back to finding the content itself."""
    style = turns.reasoning_style(tokenizer)
    try:  # only the template's own turn end closes an answer (not, say, the next turn's header)
        specials = [turns.probe(tokenizer).turn_end] if turns.probe(tokenizer).turn_end else []
    except turns.TemplateRefused:
        specials = turns.special_strings(tokenizer)
    spans, searched_to = [], 0
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        span = turns.answer_span(tokenizer, messages, i, full, style, reasoning, specials)
        if span is None or span[0] < searched_to:
            content = m["content"].strip()
            start = full.find(content, searched_to) if content else -1
            if start < 0:
                continue  # the template dropped this turn: nothing of it is in the text
            end = start + len(content)
            closing = turns.leading_turn_end(full[end:], specials)
            span = (start, end + len(closing) if closing else end)
        spans.append(span)
        searched_to = max(searched_to, span[1])
    return spans


def _needs_eos(tokenizer) -> bool:
    """A template that closes answers with no special token gives the model nothing to stop on:
    train the tokenizer's eos after each answer instead (what TRL and LLaMA-Factory do), so the
    fine-tuned model stops where generation and every runtime already stop."""
    try:
        return turns.probe(tokenizer).turn_end is None and bool(tokenizer.eos_token)
    except turns.TemplateRefused:
        return False


def _with_eos_after(full: str, spans: list, eos: str) -> tuple[str, list]:
    out, new_spans, at, shift = [], [], 0, 0
    for a, b in spans:
        out.append(full[at:b] + eos)
        new_spans.append((a + shift, b + shift + len(eos)))
        shift += len(eos)
        at = b
    out.append(full[at:])
    return "".join(out), new_spans


def render_record(record: Record, tokenizer, train_on_prompt: bool = False,
                  reasoning: str = "keep") -> tuple[str, list, bool]:
    """(text, spans to train on, is_chat). Plain text trains on everything.

    Raises turns.TemplateRefused when the chat template raises on the row."""
    if record.is_chat:
        if not getattr(tokenizer, "chat_template", None):
            raise UserError("the tokenizer has no chat template: give it one with "
                            "template.ensure_chat_template(tokenizer) (or --template chatml|plain)")
        style = turns.reasoning_style(tokenizer)
        full = turns.render(tokenizer, turns.template_messages(record.messages, style, reasoning))
        spans = assistant_spans(tokenizer, record.messages, full, reasoning)
        if _needs_eos(tokenizer):
            full, spans = _with_eos_after(full, spans, tokenizer.eos_token)
        return full, [(0, len(full))] if train_on_prompt else spans, True
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


def _render_or_refuse(record, tokenizer, train_on_prompt, reasoning):
    try:
        return render_record(record, tokenizer, train_on_prompt, reasoning)
    except turns.TemplateRefused as e:
        return Refused(record.where(), str(e))


def _encode_rows(records, tokenizer, train_on_prompt, reasoning: str = "keep"):
    """For each record: (ids, trained mask as a bool array, text, offsets), or Refused."""
    rendered = [_render_or_refuse(r, tokenizer, train_on_prompt, reasoning) for r in records]
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


def fingerprint(records, tokenizer, max_length: int, train_on_prompt: bool, reasoning: str = "keep",
                skip_bad_rows: bool = False) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": ENCODER_VERSION, "max_length": max_length, "train_on_prompt": bool(train_on_prompt),
                         "reasoning": reasoning, "skip_bad_rows": bool(skip_bad_rows)}).encode())
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
                                      "truncated_rows", "dropped_rows", "refused_rows", "fingerprint")}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(d, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader never sees half a cache file


# ---- public ----

def refused_rows(records: list[Record], tokenizer, reasoning: str = "keep") -> list[Refused]:
    """The chat rows the template raises on, found by rendering alone (no tokenising): for the rows
    training does not encode (the test split) and for evaluation."""
    style = turns.reasoning_style(tokenizer) if any(r.is_chat for r in records) else "inline"
    out = []
    for r in records:
        if r.is_chat:
            try:
                turns.render(tokenizer, turns.template_messages(r.messages, style, reasoning))
            except turns.TemplateRefused as e:
                out.append(Refused(r.where(), str(e)))
    return out


def refusal_error(refused: list, limit: int = 10) -> str:
    """One message listing the rows a chat template refused (first `limit`)."""
    listed = "\n".join(f"  {r}" for r in refused[:limit])
    more = f"\n  ... and {len(refused) - limit} more" if len(refused) > limit else ""
    return (f"the model's chat template refused {len(refused)} row(s):\n{listed}{more}\n"
            "fix those rows, or pass --skip-bad-rows to train without them")


def encode(records: list[Record], tokenizer, max_length: int, train_on_prompt: bool = False,
           cache_dir: str | Path | None = None, reasoning: str = "keep", skip_bad_rows: bool = False) -> Encoded:
    """Token ids and labels for training (labels -100 where the loss is not taken).

    `reasoning`: "keep" trains on assistants' reasoning where the template renders it, "drop" leaves
    it out. Rows the chat template raises on are a UserError listing them, or with `skip_bad_rows`
    are left out and listed in `refused_rows`."""
    if max_length < 1:
        raise UserError(f"max length must be at least 1 token, got {max_length}")
    if reasoning not in turns.REASONING_MODES:
        raise UserError(f"--reasoning must be one of {', '.join(turns.REASONING_MODES)} (got {reasoning!r})")
    fp = fingerprint(records, tokenizer, max_length, train_on_prompt, reasoning, skip_bad_rows)
    cache_path = Path(cache_dir) / f"{fp}.json" if cache_dir else None
    if cache_path is not None and cache_path.is_file():
        cached = _load_cache(cache_path)
        if cached is not None:
            return cached

    rows = _encode_rows(records, tokenizer, train_on_prompt, reasoning)
    refused = [str(r) for r in rows if isinstance(r, Refused)]
    if refused and not skip_bad_rows:
        raise UserError(refusal_error(refused))
    examples, truncated_rows, dropped_rows = [], [], []
    longest = trained_total = 0
    for record, row in zip(records, rows):
        if isinstance(row, Refused):
            continue
        ids, mask, _, _ = row
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
        "max_length": max_length, "train_on_prompt": bool(train_on_prompt), "refused": len(refused),
        "reasoning": reasoning,
        "reasoning_rows": sum(1 for r in records if r.is_chat and any(m.get("reasoning") for m in r.messages)),
    }
    enc = Encoded(examples, len(truncated_rows), len(dropped_rows), stats,
                  truncated_rows, dropped_rows, refused, fingerprint=fp)
    if cache_path is not None:
        _save_cache(cache_path, enc)
    return enc


def last_answer_tokens(tokenizer, messages: list[dict], reasoning: str = "keep") -> tuple[list[int], int, int]:
    """(ids of the conversation's training rendering, first and end token index of its last assistant
    turn): the same tokens training takes its loss on, for scoring a reference answer.

    Raises turns.TemplateRefused (a UserError) when the template refuses the conversation."""
    (row,) = _encode_rows([Record("", 0, messages=messages)], tokenizer, False, reasoning)
    if isinstance(row, Refused):
        raise turns.TemplateRefused(row.message)
    ids, mask = row[0], row[1]
    end = len(mask)
    while end and not mask[end - 1]:
        end -= 1
    start = end
    while start and mask[start - 1]:
        start -= 1
    return ids, start, end


def preview(record: Record, tokenizer, max_length: int, train_on_prompt: bool = False,
            reasoning: str = "keep") -> list[tuple[str, bool]]:
    """One record as the model sees it: (token text, trained) pairs, cut at max_length.

    Token texts are slices of the rendered text, so joined they give it back exactly (a
    character split over several byte-level tokens shows on the first of them).
    Raises UserError when the chat template refuses the row.
    """
    (row,) = _encode_rows([record], tokenizer, train_on_prompt, reasoning)
    if isinstance(row, Refused):
        raise UserError(str(row))
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
