"""Tool calling in the shapes other tools write, read into one form: OpenAI's.

Our form (what Records hold, and what `apply_chat_template(..., tools=)` takes):
- `Record.tools`: the functions the model may call, each `{"type": "function", "function":
  {"name", "description"?, "parameters"?}}`, or None when the row declares none;
- an assistant turn that calls: `{"role": "assistant", "content": "...", "tool_calls": [{"type":
  "function", "function": {"name": str, "arguments": dict}, "id"?: str}]}` (arguments parsed: the
  templates of Qwen, Llama 3.1 and Hermes write them with `| tojson`);
- a tool result: `{"role": "tool", "content": "...", "tool_call_id"?: str, "name"?: str}`.

Read from:
- OpenAI: a `tools` (or legacy `functions`) column per row, or per file (a JSON file
  `{"tools": [...], "data": [...]}`, or a JSON Lines line holding only `{"tools": [...]}`, which
  applies to the rows after it); assistant `tool_calls` with `function.name` and
  `function.arguments` (a JSON string or an object); legacy assistant `function_call`; `tool` (and
  legacy `function`) messages;
- ShareGPT (LLaMA-Factory): `function_call` turns whose value is the call as JSON
  (`{"name", "arguments"}`, or a list of them for parallel calls), `observation` turns holding the
  result, and a `tools` column as a JSON string or a list of bare `{"name", "parameters"}` objects;
- Hermes (NousResearch hermes-function-calling, and files written for Qwen's template): calls
  written in an assistant turn's text as `<tool_call>\n{"name", "arguments"}\n</tool_call>` blocks
  (JSON, or the Python dict repr `{'arguments': ..., 'name': ...}` that hermes-function-calling-v1
  uses) are read as calls, and a tool result's `<tool_response>...</tool_response>` wrapper is
  removed (the model's template writes its own). The tool list such files keep inside the system
  prompt stays there, as text: declaring it again through `tools=` would list every function twice.

Checked (a ToolError names the message; the loader adds file:line): every call names a declared
function when the row declares tools, its arguments parse as a JSON object, a tool result follows
a call (and its `tool_call_id`, when given, is one of that call's ids).
"""

from __future__ import annotations

import ast
import json
import re

from tunestudio.core.errors import CodedError, CodedText

TOOL_ROLES = {"tool": "tool", "function": "tool", "observation": "tool", "ipython": "tool",
              "function_response": "tool", "tool_response": "tool"}
CALL_ROLES = ("function_call", "tool_call", "tool_calls")
TOOLS_COLUMNS = ("tools", "functions")


class ToolError(CodedError, ValueError):
    """What is wrong with a row's tools or calls (the loader ties it to the row's line); `code`
    and `fields` word it in the web UI's language (a field that is itself {code, message, ...}:
    a place, such as "tool call 2 of message 3", worded the same way)."""


def _place(code: str, message: str, **fields) -> dict:
    """A place in a row (what an error is about) as the error's English and its parts."""
    return {"code": code, "message": message, **fields}


def _tools_place(col: str | None) -> dict:
    return (_place("where_tools_column", f"'{col}'", col=col) if col
            else _place("where_file_tools", "the file's 'tools'"))


def _call_place(k: int, n: int) -> dict:
    return _place("where_tool_call", f"tool call {k} of message {n}", k=k, n=n)


_CALL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
_RESPONSE = re.compile(r"\A\s*<tool_response>\s*(.*?)\s*</tool_response>\s*\Z", re.DOTALL)


def _type_name(v) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


def _json(value, what: dict):
    """`value` parsed when it is a JSON string, else as is; `what`: its place (`_place`). Raises ToolError."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        raise ToolError(f"{what['message']} is not valid JSON: {e.msg} (column {e.colno})", "tool_invalid_json",
                        what=what, detail=e.msg, column=e.colno) from None


def parse_tools(value, col: str | None = "tools") -> list[dict] | None:
    """A tools column (a list, or a JSON string of one; empty: None) in our form; `col`: the
    column it was read from (None: the file's tool list). Raises ToolError."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    what = _tools_place(col)
    value = _json(value, what)
    if isinstance(value, dict):   # a single function
        value = [value]
    if not isinstance(value, list):
        raise ToolError(f"wrong type: {what['message']} must be a list of functions, found {_type_name(value)}",
                        "tools_not_list", what=what, found=_type_name(value))
    out = []
    for k, t in enumerate(value, start=1):
        fn = t.get("function") if isinstance(t, dict) and isinstance(t.get("function"), dict) else t
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"].strip():
            raise ToolError(f"tool {k} of {what['message']} has no \"name\" (expected {{\"name\", \"description\", "
                            "\"parameters\"}, or OpenAI's {\"type\": \"function\", \"function\": {...}})",
                            "tool_no_name", what=what, k=k)
        out.append({"type": "function", "function": _schema_parameters(fn)})
    return out or None


def _schema_parameters(fn: dict) -> dict:
    """`fn` with xLAM-style parameters (`{"city": {"type": "str", "description": ...}}`, no JSON
    Schema wrapper) wrapped as JSON Schema's `{"type": "object", "properties": {...}}`, which the
    chat templates and our tool lists read; anything else unchanged."""
    params = fn.get("parameters")
    if not isinstance(params, dict) or not params:
        return fn
    # A schema says `"type": "object"` or holds `properties` of schemas; xLAM names parameters
    # directly, and a parameter may itself be called "type" or "properties" (its value a dict).
    schema = isinstance(params.get("type"), str) or (
        isinstance(params.get("properties"), dict) and not isinstance(params["properties"].get("type"), str))
    if not schema and all(isinstance(v, dict) and "type" in v for v in params.values()):
        return {**fn, "parameters": {"type": "object", "properties": params}}
    return fn


def tool_names(tools: list[dict] | None) -> list[str]:
    return [t["function"]["name"] for t in tools or []]


def _call(raw, k: int, n: int) -> dict:
    """Call `k` of message `n` ({"name", "arguments"} or OpenAI's {"function": {...}}) in our form."""
    where = _call_place(k, n)
    if not isinstance(raw, dict):
        raise ToolError(f"wrong type: {where['message']} must be an object, found {_type_name(raw)}",
                        "call_not_object", what=where, found=_type_name(raw))
    fn = raw["function"] if isinstance(raw.get("function"), dict) else raw
    name = fn.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ToolError(f"{where['message']} has no function name (\"name\")", "call_no_name", what=where)
    args = fn.get("arguments", fn.get("parameters", {}))
    if args is None or (isinstance(args, str) and not args.strip()):
        args = {}   # a function without parameters
    of_call = _place("where_call_arguments", f"the arguments of {where['message']} ({name})", k=k, n=n, name=name)
    args = _json(args, of_call)
    if not isinstance(args, dict):
        raise ToolError(f"{of_call['message']} must be a JSON object, found {_type_name(args)}",
                        "call_arguments_not_object", what=of_call, found=_type_name(args))
    call = {"type": "function", "function": {"name": name, "arguments": args}}
    if isinstance(raw.get("id"), str) and raw["id"]:
        call["id"] = raw["id"]
    return call


def parse_calls(value, n: int) -> list[dict]:
    """The calls of message `n`: a list of calls, one call, or a JSON string of either (or its
    Python repr, `{'name': 'f', 'arguments': {...}}`, as some ShareGPT conversions write it)."""
    value = _literal(value, _place("where_call_in_message", f"the tool call in message {n}", n=n)) \
        if isinstance(value, str) else value
    calls = value if isinstance(value, list) else [value]
    if not calls:
        raise ToolError(f"message {n} holds an empty list of tool calls", "calls_empty", n=n)
    return [_call(c, k, n) for k, c in enumerate(calls, start=1)]


def _literal(block: str, what: dict):
    """A call block's value: JSON, else a Python literal (hermes-function-calling-v1 writes
    `{'arguments': {...}, 'name': ...}`). Raises ToolError."""
    try:
        return _json(block, what)
    except ToolError as e:   # JSON's own message is the one to show when neither reads it
        not_json = e
    try:
        return ast.literal_eval(block)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise not_json from None


def text_calls(content: str, n: int) -> tuple[str, list[dict]] | None:
    """Hermes-format calls in the text of assistant message `n`: (the text outside the
    `<tool_call>` blocks, stripped; the calls in our form), or None when the text holds no
    complete block. Raises ToolError for a block that is not a call."""
    blocks = _CALL_BLOCK.findall(content) if "</tool_call>" in content else []
    if not blocks:
        return None
    calls = []
    for block in blocks:
        k = len(calls) + 1
        value = _literal(block, _place("where_call_block", f"the <tool_call> block {k} of message {n}", k=k, n=n))
        for raw in (value if isinstance(value, list) else [value]):
            calls.append(_call(raw, len(calls) + 1, n))
    return _CALL_BLOCK.sub("", content).strip(), calls


def result_text(content: str) -> str:
    """A tool result without the `<tool_response>` wrapper that Hermes-format files put around it."""
    found = _RESPONSE.match(content) if isinstance(content, str) else None
    return found.group(1) if found else content


def is_tool_message(m: dict, raw_role: str) -> bool:
    """Whether message `m` (with role `raw_role`, lower case) is a call or a result."""
    return (raw_role in TOOL_ROLES or raw_role in CALL_ROLES
            or bool(m.get("tool_calls")) or isinstance(m.get("function_call"), dict))


def tool_message(m: dict, raw_role: str, content_key: str, n: int, text) -> dict:
    """Message `n` in our form. `text(m, key, role)` gives a content's text (the loader's parser)."""
    if raw_role in TOOL_ROLES:
        content = m.get(content_key)
        if not isinstance(content, str) and content is not None and not isinstance(content, list):
            content = json.dumps(content, ensure_ascii=False)   # a result given as JSON
            out = {"role": "tool", "content": content}
        else:
            out = {"role": "tool", "content": result_text(text(m, content_key, "tool")) if content is not None else ""}
        for key in ("tool_call_id", "name"):
            if isinstance(m.get(key), str) and m[key]:
                out[key] = m[key]
        return out
    if raw_role in CALL_ROLES:   # ShareGPT: the value is the call
        if content_key not in m:
            raise ToolError(f"message {n} ({raw_role}) has no '{content_key}' (the call)", "call_missing",
                            n=n, role=raw_role, key=content_key)
        return {"role": "assistant", "content": "", "tool_calls": parse_calls(m[content_key], n)}
    raw = m.get("tool_calls") or [m["function_call"]]
    if not isinstance(raw, list):
        raise ToolError(f"wrong type: 'tool_calls' of message {n} must be a list, found {_type_name(raw)}",
                        "tool_calls_not_list", n=n, found=_type_name(raw))
    content = text(m, content_key, "assistant") if m.get(content_key) is not None else ""
    return {"role": "assistant", "content": content, "tool_calls": [_call(c, k, n) for k, c in enumerate(raw, 1)]}


def check_conversation(messages: list[dict], tools: list[dict] | None) -> None:
    """Calls name declared functions (when there are declarations); results follow calls.
    Raises ToolError naming the message."""
    declared = set(tool_names(tools))
    pending: list[str | None] | None = None   # ids of the calls of the latest calling turn
    for n, m in enumerate(messages, start=1):
        if m["role"] == "assistant" and m.get("tool_calls"):
            pending = []
            for k, c in enumerate(m["tool_calls"], start=1):
                name = c["function"]["name"]
                if declared and name not in declared:
                    raise ToolError(f"tool call {k} of message {n} calls '{name}', which the row does not "
                                    f"declare (declared: {', '.join(sorted(declared))})", "call_undeclared",
                                    k=k, n=n, name=name, declared=", ".join(sorted(declared)))
                pending.append(c.get("id"))
        elif m["role"] == "tool":
            if pending is None:
                if n > 1 and messages[n - 2]["role"] == "assistant":   # the call is likely there, as text
                    raise ToolError(f"message {n} is a tool result with no tool call before it: message {n - 1} is "
                                    "plain text; a call is read from 'tool_calls', a function_call turn, "
                                    "<tool_call> blocks or [f(a=1)] syntax", "result_after_text", n=n, m=n - 1)
                raise ToolError(f"message {n} is a tool result with no tool call before it",
                                "result_without_call", n=n)
            ref = m.get("tool_call_id")
            ids = [i for i in pending if i]
            if ref and ids and ref not in ids:
                raise ToolError(f"message {n} answers tool call id '{ref}', but the call before it has "
                                f"id(s) {', '.join(ids)}", "result_wrong_id", n=n, ref=ref, ids=", ".join(ids))
        elif m["role"] != "system":
            pending = None


def calls_text(calls: list[dict]) -> str:
    """Calls as text in the Hermes / Qwen format that the fallback templates write (and
    evaluate/toolparse.py reads): `<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`."""
    return "\n".join("<tool_call>\n" + json.dumps({"name": c["function"]["name"], "arguments": c["function"]["arguments"]},
                                                  ensure_ascii=False) + "\n</tool_call>" for c in calls)


def message_text(m: dict) -> str:
    """A message's content with its calls written out (for lengths, keys and tables)."""
    calls = m.get("tool_calls")
    if not calls:
        return m["content"]
    return (m["content"] + "\n" if m["content"] else "") + calls_text(calls)


def results_in_call_order(messages: list[dict]) -> None:
    """Put the results that answer a turn's parallel calls in the order of the calls, when every
    result names its call's id. Most templates (Qwen2.5's, Hermes', the fallbacks) render results
    without their ids, so their order is all that tells the model which result answers which call."""
    n = 0
    while n < len(messages):
        ids = [c.get("id") for c in messages[n].get("tool_calls") or []]
        end = n + 1
        while end < len(messages) and messages[end]["role"] == "tool":
            end += 1
        results = messages[n + 1:end]
        if len(ids) > 1 and all(ids) and results and all(r.get("tool_call_id") in ids for r in results):
            messages[n + 1:end] = sorted(results, key=lambda r: ids.index(r["tool_call_id"]))   # stable
        n = end if results else n + 1


def call_warning(messages: list[dict], tools: list[dict] | None) -> CodedText | None:
    """What to tell the user about a row whose calls are readable but doubtful, or None:
    - it calls functions it never declares (no tools, and their names nowhere in the system
      prompt, where Hermes, glaive and ToolACE files list them): the model learns to call functions
      it is never shown;
    - a turn's calls carry ids and some id gets no result before the conversation goes on (a lost
      result: the templates render the rest as if the call had never been answered)."""
    calls = [(n, c) for n, m in enumerate(messages, start=1) for c in m.get("tool_calls") or []]
    if not calls:
        return None
    if not tools:
        system = " ".join(m["content"] for m in messages if m["role"] == "system")
        unseen = sorted({c["function"]["name"] for _, c in calls if c["function"]["name"] not in system})
        if unseen:
            names = ", ".join(unseen)
            return CodedText(f"the row calls {names} but declares no tools (no 'tools' column, and not named in the "
                             "system prompt): the model would learn to call functions it is never shown; add the "
                             "functions as a 'tools' column", "calls_without_tools", names=names)
    for n, m in enumerate(messages, start=1):
        ids = [c.get("id") for c in m.get("tool_calls") or []]
        if not ids or not all(ids) or n == len(messages):
            continue
        answered = set()
        for later in messages[n:]:
            if later["role"] != "tool":
                break
            answered.add(later.get("tool_call_id"))
        if n < len(messages) and messages[n]["role"] == "tool" and not answered >= set(ids) \
                and any(a in ids for a in answered):
            missing = ", ".join(i for i in ids if i not in answered)
            return CodedText(f"message {n} calls with id(s) {missing} that no tool result answers before the "
                             "conversation goes on", "call_unanswered", n=n, ids=missing)
    return None
