"""A row's content key: rows with the same key hold the same prompt and answer, up to case and
whitespace. Splits keep such rows on one side (no leakage), cleaning drops the repeats, and the
Arrow table stores each row's 16-byte digest."""

from __future__ import annotations

import hashlib
import json

from tunestudio.data.formats.records import Record


def _norm(text: str) -> str:
    return " ".join(str(text).lower().split())


def content_key(record: Record) -> str:
    """Rows with the same key hold the same prompt and answer, up to case and whitespace."""
    return _key(record.messages, record.text)


def _key(messages, text) -> str:
    if messages is not None:   # a turn's tool calls are part of it (sorted keys: same call, same key)
        return "\x1e".join(f"{m['role']}\x1f{_norm(m['content'])}"
                            + (f"\x1f{json.dumps(m['tool_calls'], sort_keys=True)}" if m.get("tool_calls") else "")
                            for m in messages)
    return "text\x1f" + _norm(text or "")


def content_digest(messages, text) -> bytes:
    """16 bytes standing for the content key of a row (its messages, or its text)."""
    return hashlib.blake2b(_key(messages, text).encode(), digest_size=16).digest()


def content_digests(records) -> list[bytes]:
    """A 16-byte digest of each row's `content_key` (a million keys as full strings would cost
    as much memory as the rows themselves). A RecordsView has them in its `key` column."""
    if hasattr(records, "keys"):
        return records.keys()
    return [content_digest(r.messages, r.text) for r in records]
