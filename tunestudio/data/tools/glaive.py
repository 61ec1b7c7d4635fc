"""glaive-function-calling-v2 rows (glaiveai/glaive-function-calling-v2): the conversation as one
string in a `chat` column, the function list as text in a `system` column.

    system: "SYSTEM: You are a helpful assistant with access to the following functions. Use them if required -\\n{...}"
    chat:   "USER: ...\\n\\n\\nASSISTANT: <functioncall> {"name": "f", "arguments": '{"a": 1}'} <|endoftext|>\\n\\n\\n"
            "FUNCTION RESPONSE: {...}\\n\\n\\nASSISTANT: ... <|endoftext|>\\n\\n\\n"

Read into chat messages (a call becomes the assistant's `tool_calls`, a `FUNCTION RESPONSE` a
`tool` message, the `<|endoftext|>` markers go: the template writes its own turn ends). The
function list stays in the system prompt as text, as in the Hermes files (toolcalls.py): listing
it again through `tools=` would declare every function twice.
"""

from __future__ import annotations

import json
import re

from tunestudio.core.errors import CodedError

SPEAKERS = {"USER": "user", "ASSISTANT": "assistant", "FUNCTION RESPONSE": "tool", "SYSTEM": "system"}
_TURN = re.compile(r"(?:\A|\n)[ \t]*(USER|ASSISTANT|FUNCTION RESPONSE|SYSTEM):[ \t]?")
_END = "<|endoftext|>"
_CALL = "<functioncall>"
# glaive writes the arguments as a single-quoted string holding JSON, which is not JSON itself.
_QUOTED_ARGS = re.compile(r'\A\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*\'(.*)\'\s*\}\Z', re.DOTALL)


class GlaiveError(CodedError, ValueError):
    """A `chat` string that is not in glaive's shape (the message says where; the code and fields
    let the web UI say it in its language)."""


def is_glaive_chat(value) -> bool:
    """Whether a `chat` value is glaive's one-string conversation."""
    return isinstance(value, str) and bool(re.match(r"\s*(USER|SYSTEM|ASSISTANT):", value))


def system_text(value: str) -> str:
    """A `system` column without glaive's leading "SYSTEM: "."""
    return re.sub(r"\A\s*SYSTEM:[ \t]?", "", value)


def _call(text: str, n: int) -> dict:
    """The `<functioncall>` of message `n` as {"name", "arguments"} (arguments: a JSON string or object)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        found = _QUOTED_ARGS.match(text)
        if not found:
            raise GlaiveError(f"the <functioncall> in message {n} is neither JSON nor "
                              "{\"name\": ..., \"arguments\": '...'}: " + text[:80], "glaive_call_unreadable",
                              n=n, text=text[:80]) from None
        value = {"name": json.loads(f'"{found.group(1)}"'), "arguments": found.group(2).replace("\\'", "'")}
    return value


def chat_messages(chat: str) -> list[dict]:
    """glaive's `chat` string as raw messages ({"role", "content"}, calls as "tool_calls":
    [{"name", "arguments"}]) for the chat reader. Raises GlaiveError."""
    parts = _TURN.split(chat)
    if parts[0].strip():
        raise GlaiveError(f"text before the first 'USER:' / 'ASSISTANT:': {parts[0].strip()[:60]!r}",
                          "glaive_text_before", text=repr(parts[0].strip()[:60]))
    messages = []
    for speaker, text in zip(parts[1::2], parts[2::2]):
        n = len(messages) + 1
        text = text.strip()
        if text.endswith(_END):
            text = text[:-len(_END)].rstrip()
        role = SPEAKERS[speaker]
        if role == "assistant" and _CALL in text:
            before, _, call = text.partition(_CALL)
            messages.append({"role": "assistant", "content": before.strip() or None,
                             "tool_calls": [_call(call.strip(), n)]})
        else:
            messages.append({"role": role, "content": text})
    return messages
