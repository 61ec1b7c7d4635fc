"""Tool calls read back from a model's generated text, for scoring them.

Recognised, in this order (the first shape found wins):
- Hermes / Qwen: one or more `<tool_call>{json}</tool_call>` blocks (the closing tag may be
  missing when generation stopped on the turn end right after the JSON);
- Mistral: `[TOOL_CALLS]` followed by a JSON list (or object);
- plain JSON: the text is (or, after any leading words, ends with) a JSON object with a "name" and
  "arguments" (or "parameters", as Llama 3.1 writes them), a list of such objects, or OpenAI's
  `{"function": {"name", "arguments"}}`;
- Python call syntax, as ToolACE-trained and BFCL "pythonic" models answer: the whole text is
  `[get_weather(city="Paris"), ...]` with keyword arguments (data/tools/pycalls.py).

Each call comes back in our form (data/tools/toolcalls.py): `{"type": "function", "function": {"name",
"arguments": dict}}`; arguments written as a JSON string inside the JSON are parsed too. Text
that holds no well-formed call gives [].
"""

from __future__ import annotations

import json
import re

from tunestudio.data.tools.pycalls import python_calls

_HERMES = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_DECODER = json.JSONDecoder()


def as_call(obj) -> dict | None:
    """One call, `{"name", "arguments" | "parameters"}` or OpenAI's `{"function": {...}}` with
    arguments as an object or a JSON string, in our form; None when `obj` is not such a call."""
    if not isinstance(obj, dict):
        return None
    fn = obj["function"] if isinstance(obj.get("function"), dict) else obj
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        return None
    args = fn.get("arguments", fn.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return None
    if not isinstance(args, dict):
        return None
    return {"type": "function", "function": {"name": name, "arguments": args}}


def _calls_in(value) -> list[dict] | None:
    """A JSON value as calls: an object, or a list of objects (None if any is not a call)."""
    items = value if isinstance(value, list) else [value]
    calls = [as_call(v) for v in items]
    return calls if calls and all(calls) else None


def _json_at(text: str, start: int):
    """The JSON value starting at `text[start]`, or None."""
    try:
        return _DECODER.raw_decode(text, start)[0]
    except json.JSONDecodeError:
        return None


def parse_tool_calls(text: str) -> list[dict]:
    """Every tool call in `text` (see the module docstring); [] when there is none."""
    if not text:
        return []
    if "<tool_call>" in text:
        calls = []
        for block in _HERMES.findall(text):
            value = _json_at(block, 0) if block.startswith(("{", "[")) else None
            found = _calls_in(value) if value is not None else None
            if found is None:
                return []   # a malformed block: the call as a whole is wrong
            calls += found
        return calls
    if "[TOOL_CALLS]" in text:
        rest = text.split("[TOOL_CALLS]", 1)[1].lstrip()
        value = _json_at(rest, 0)
        return _calls_in(value) or [] if value is not None else []
    stripped = text.strip()
    for start in [0, *[m.start() for m in re.finditer(r"[\[{]", stripped)]]:
        if start < len(stripped) and stripped[start] in "[{":
            try:
                value, end = _DECODER.raw_decode(stripped, start)
            except json.JSONDecodeError:
                continue
            if not stripped[end:].strip():   # the JSON runs to the end of the answer
                found = _calls_in(value)
                if found:
                    return found
    return _calls_in(python_calls(stripped)) or [] if stripped.endswith(")]") else []
