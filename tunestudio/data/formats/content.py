"""A chat message's content in the shapes other tools write, read into text, reasoning and media.

- content as a string, or as a list of parts (OpenAI, HF multimodal datasets, LLaMA-Factory):
  `{"type": "text", "text": …}` (also `input_text`/`output_text`, and `"value"` for `"text"`, as
  ShareGPT-minded tools write it); text parts are joined in order;
- image / audio / video / file parts, and `images` / `videos` / `audios` columns beside the chat,
  are counted, not silently dropped: tunestudio trains on text only, so `data check` warns once with
  the count and the first rows (and a message left with no text at all is an error);
- an assistant's reasoning: a `reasoning_content` or `reasoning` field (Qwen3 / DeepSeek API /
  vLLM shape), a `{"type": "reasoning"}` part, or a `<think>…</think>` block at the start of the
  content (DeepSeek-R1 and distills write it inline). It is kept apart from the answer, and
  `turns.template_messages` gives it back to each template the way that template takes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tunestudio.core.errors import CodedError

TEXT_PARTS = ("text", "input_text", "output_text")
REASONING_PARTS = ("reasoning", "thinking")
MEDIA_PARTS = {"image": "image", "image_url": "image", "input_image": "image", "audio": "audio",
               "input_audio": "audio", "video": "video", "video_url": "video", "file": "file",
               "input_file": "file"}
MEDIA_COLUMNS = {"images": "image", "image": "image", "videos": "video", "video": "video",
                 "audios": "audio", "audio": "audio"}
REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking")


class ContentError(CodedError, ValueError):
    """What is wrong with one message's content (the loader ties it to the row's line)."""


@dataclass
class Content:
    text: str
    reasoning: str = ""
    media: list[str] = field(default_factory=list)   # kinds of the non-text parts ("image", ...)


def _type_name(v) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


def _part_text(p: dict) -> str | None:
    for key in ("text", "value", "content", "reasoning"):
        if isinstance(p.get(key), str):
            return p[key]
    return None


def parse_content(v, n: int) -> Content:
    """Message `n`'s content: a string or a list of parts. Raises ContentError."""
    if isinstance(v, str):
        return Content(v)
    if v is None:
        raise ContentError(f"null content in message {n}", "content_null", n=n)
    if not isinstance(v, list):
        raise ContentError(f"wrong type: content of message {n} must be a string or a list of parts, "
                           f"found {_type_name(v)}", "content_wrong_type", n=n, found=_type_name(v))
    texts, reasoning, media = [], [], []
    for k, p in enumerate(v, start=1):
        if isinstance(p, str):  # a bare string in the list: a text part
            texts.append(p)
            continue
        if not isinstance(p, dict):
            raise ContentError(f"wrong type: part {k} of message {n}'s content must be an object, found {_type_name(p)}",
                               "part_wrong_type", k=k, n=n, found=_type_name(p))
        kind = p.get("type", "text")
        if kind in MEDIA_PARTS or (kind not in TEXT_PARTS + REASONING_PARTS and _part_text(p) is None):
            media.append(MEDIA_PARTS.get(kind, str(kind)))
            continue
        text = _part_text(p)
        if text is None:
            raise ContentError(f"part {k} of message {n} is of type '{kind}' but has no \"text\" (or \"value\") string",
                               "part_no_text", k=k, n=n, kind=kind)
        (reasoning if kind in REASONING_PARTS else texts).append(text)
    return Content("".join(texts), "\n".join(reasoning), media)


def split_think(text: str) -> tuple[str, str]:
    """(reasoning, answer) from content that opens with a closed `<think>…</think>` block."""
    body = text.lstrip()
    if body.startswith("<think>") and "</think>" in body:
        head, _, tail = body[len("<think>"):].partition("</think>")
        return head.strip(), tail.lstrip()
    return "", text


def parse_message(m: dict, content_key: str, n: int, role: str) -> Content:
    """Text, reasoning (assistant turns only) and media of message `n`. Raises ContentError."""
    c = parse_content(m[content_key], n)
    if role == "assistant":
        fields = [m.get(f) for f in REASONING_FIELDS if isinstance(m.get(f), str) and m.get(f).strip()]
        inline, answer = split_think(c.text)
        if inline:
            c.text = answer
        c.reasoning = "\n".join(x for x in [c.reasoning, *(fields[:1] or [inline])] if x).strip()
    if not c.text.strip() and c.media:
        kinds = sorted(set(c.media))
        raise ContentError(f"message {n} ({role}) has only {', '.join(kinds)} content: "
                           "tunestudio trains on text, and this message has none", "media_only", n=n, role=role, kinds=kinds)
    return c


def media_in_row(row: dict) -> list[str]:
    """Kinds of media named by `images` / `videos` / `audios` columns of a row (non-empty values)."""
    return [kind for col, kind in MEDIA_COLUMNS.items() if row.get(col) not in (None, "", [], {})]


def media_warning(counts: dict[str, list[int]], source: str, limit: int = 5) -> str:
    """'this is text-only training: 3 rows reference images, which are ignored (lines 2, 5, 9)'."""
    parts = []
    lines: list[int] = []
    for kind, rows in sorted(counts.items()):
        parts.append(f"{len(rows)} row{'s' if len(rows) != 1 else ''} reference {kind}s")
        lines += rows
    first = ", ".join(str(x) for x in sorted(set(lines))[:limit])
    return f"this is text-only training: {' and '.join(parts)}, which are ignored (first: {source} lines {first})"
