"""What every encoder shares: the label the loss skips, the encoded result, and the fingerprints
that key the encoding cache (encode.py for chat and instruction rows, stream.py for plain text,
pref_encode.py for preference rows)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

IGNORE = -100   # label of a token the loss skips (the value transformers expects)


@dataclass
class Encoded:
    examples: "EncodedExamples"          # {"input_ids": [...], "labels": [...]} per kept row (encoded.py)
    truncated: int                       # rows whose trained tokens were cut at max_length
    dropped: int                         # rows with nothing left to train on (not in examples)
    stats: dict                          # rows, examples, tokens, trained_tokens, mean/max tokens...
    truncated_rows: list[str] = field(default_factory=list)  # Record.where() of each truncated row
    dropped_rows: list[str] = field(default_factory=list)
    refused_rows: list[str] = field(default_factory=list)   # "file:line: the chat template refused ..." (skipped)
    fingerprint: str = ""
    from_cache: bool = False


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


def fingerprint_lines(records):
    """One line of bytes per row: `json.dumps([messages, text, where])` (and the row's tools after
    them when it has some). A RecordsView gives it
    from its stored JSON without building Records (the same bytes: its messages column is
    `json.dumps(messages, ensure_ascii=False)`)."""
    if hasattr(records, "columns"):
        dumps = json.dumps
        for cols in records.columns(("line", "messages", "text", "tools")):
            for line, m, t, tools in zip(cols["line"], cols["messages"], cols["text"], cols["tools"]):
                where = dumps(f"{records.source}:{line}", ensure_ascii=False)
                more = f", {tools}" if tools else ""
                yield f"[{'null' if m is None else m}, {dumps(t, ensure_ascii=False)}, {where}{more}]\n".encode()
        return
    for r in records:
        yield json.dumps([r.messages, r.text, r.where(), *([r.tools] if r.tools else [])],
                         ensure_ascii=False).encode() + b"\n"


def quiet_length_warning(tokenizer) -> None:
    """transformers warns (once per tokenizer) that a text is longer than the model's maximum: a
    streamed document may be, it is cut into blocks; the warning would only mislead."""
    warned = getattr(tokenizer, "deprecation_warnings", None)
    if isinstance(warned, dict):
        warned["sequence-length-is-longer-than-the-specified-maximum"] = True
