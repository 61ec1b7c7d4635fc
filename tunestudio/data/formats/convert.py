"""One raw row (a dict read from a file) -> a Record, by format: text, alpaca or chat.

What is wrong with a row raises RowError with a message a user can act on; load.py turns it into a
Problem at that row's line, so one bad row never stops a file from loading.
"""

from __future__ import annotations

import json

from tunestudio.core.errors import CodedError, CodedText
from tunestudio.data.formats.content import ContentError, parse_message
from tunestudio.data.formats.readers import type_name
from tunestudio.data.formats.records import Record
from tunestudio.data.tools import glaive, toolcalls
from tunestudio.data.tools.pycalls import python_calls

ROLE_NAMES = {
    "system": "system", "developer": "system",   # OpenAI's newer name for the system turn
    "user": "user", "human": "user", "prompter": "user",
    "assistant": "assistant", "gpt": "assistant", "bot": "assistant", "model": "assistant",
    "chatgpt": "assistant", "ai": "assistant",
}


class RowError(CodedError):
    """What is wrong with one row (becomes a Problem at that row's line, with its code and fields)."""

    @classmethod
    def of(cls, e: CodedError) -> "RowError":
        """A content or tool-call error as the row's error, code and fields kept."""
        return cls(str(e), e.code, **e.fields)


def _string(row: dict, col: str, what: str, required: bool = True) -> str:
    if col not in row:
        if required:
            raise RowError(f"missing column '{col}' ({what})", "missing_column_for", col=col, what=what)
        return ""
    v = row[col]
    if v is None:
        if required:
            raise RowError(f"null value in '{col}' ({what})", "null_value_for", col=col, what=what)
        return ""
    if not isinstance(v, str):
        raise RowError(f"wrong type: '{col}' ({what}) must be a string, found {type_name(v)}", "not_a_string",
                       col=col, what=what, found=type_name(v))
    if required and not v.strip():
        raise RowError(f"empty {what} in '{col}'", "empty_value", col=col, what=what)
    return v


def text_record(row, fields) -> Record:
    """A text row: the column `fields["text"]` as Record.text. Raises RowError."""
    return Record("", 0, text=_string(row, fields["text"], "text"))


def alpaca_record(row, fields) -> Record:
    """An instruction row as a chat: [system?, user (instruction, then input after a blank line),
    assistant (output)], read from the columns `fields` names. With a `calls` field (xLAM's
    {"query", "tools", "answers"}) the response is the row's tool calls and the row declares its
    tools. Raises RowError."""
    instruction = _string(row, fields["instruction"], "instruction")
    if "calls" in fields:
        return _calls_record(row, fields, instruction)
    output = _string(row, fields["output"], "response")
    inp = _string(row, fields["input"], "input", required=False) if "input" in fields else ""
    system = _string(row, fields["system"], "system prompt", required=False) if "system" in fields else ""
    user = instruction + "\n\n" + inp if inp.strip() else instruction
    messages = [{"role": "system", "content": system}] if system.strip() else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
    return Record("", 0, messages=messages)


def _calls_record(row, fields, instruction: str) -> Record:
    """A request answered by tool calls: [system?, user, assistant calling]. Raises RowError."""
    col = fields["calls"]
    if row.get(col) in (None, "", [], "[]"):   # xLAM irrelevance rows: no call, and no text answer either
        raise RowError(f"'{col}' holds no tool call: the row has no answer to train on", "calls_missing", col=col)
    tools = _row_tools(row, None)
    try:
        calls = toolcalls.parse_calls(row[col], 2)
        system = _string(row, fields["system"], "system prompt", required=False) if "system" in fields else ""
        messages = [{"role": "system", "content": system}] if system.strip() else []
        messages += [{"role": "user", "content": instruction}, {"role": "assistant", "content": "", "tool_calls": calls}]
        toolcalls.check_conversation(messages, tools)
    except toolcalls.ToolError as e:
        raise RowError(f"'{col}': {e}", "calls_invalid", col=col,
                       problem={"code": e.code, "message": str(e), **e.fields}) from None
    return Record("", 0, messages=messages, tools=tools)


CHAT_COLUMNS = ("messages", "conversations", "conversation", "chat")


def _message_text(m: dict, key: str, role: str, n: int) -> tuple[str, list]:
    try:
        c = parse_message(m, key, n, role)
    except ContentError as e:
        raise RowError.of(e) from None
    return c.text, c.media


def _row_tools(row: dict, file_tools):
    """The row's tools column (or the file's), in our form. Raises RowError."""
    col = next((k for k in toolcalls.TOOLS_COLUMNS if row.get(k) not in (None, "", [])), None)
    try:
        return toolcalls.parse_tools(row[col] if col else file_tools, col)
    except toolcalls.ToolError as e:
        raise RowError.of(e) from None


def _weighted(msg: dict, raw: dict, n: int) -> dict:
    """`msg` with OpenAI's fine-tuning `weight` of assistant message `n` (0: shown to the model as
    context, not trained on; 1 or absent: trained). Raises RowError for any other value."""
    if msg["role"] != "assistant" or "weight" not in raw:
        return msg
    w = raw["weight"]
    if isinstance(w, bool) or w not in (0, 1):
        raise RowError(f"\"weight\" of message {n} must be 0 or 1, found {json.dumps(w)}", "bad_weight",
                       n=n, value=json.dumps(w))
    return {**msg, "weight": 0} if w == 0 else msg


def chat_record(row, fields, fmt, file_tools=None) -> tuple[Record, str | None, list[str]]:
    """The row's conversation, a warning for the row (or None), and the
    media kinds its parts name."""
    col = fields.get("messages") or fields.get("conversations")
    if col not in row:   # files mixing OpenAI and ShareGPT rows: take the row's own column
        col = next((c for c in CHAT_COLUMNS if c in row), col)
    if col not in row:
        raise RowError(f"missing column '{col}'", "missing_column", col=col)
    turns = row[col]
    if turns is None:
        raise RowError(f"null value in '{col}'", "null_value", col=col)
    from_glaive = glaive.is_glaive_chat(turns)
    if from_glaive:
        try:
            turns = glaive.chat_messages(turns)
        except glaive.GlaiveError as e:
            # the detail as its own coded part, so a Tetum screen says it in Tetum too
            raise RowError(f"'{col}' is glaive's 'USER: ... ASSISTANT: ...' text, but {e}", "glaive_chat",
                           col=col, detail={"code": e.code, "message": str(e), **e.fields}) from None
    if not isinstance(turns, list):
        if isinstance(turns, str):   # the one text shape read: glaive's, which starts with a speaker
            raise RowError(f"wrong type: '{col}' must be a list of messages, found a string (a conversation "
                           "written as text must start with 'USER:', as glaive's does)", "messages_text", col=col)
        raise RowError(f"wrong type: '{col}' must be a list of messages, found {type_name(turns)}",
                       "messages_not_list", col=col, found=type_name(turns))
    if not turns:
        raise RowError(f"empty conversation in '{col}'", "empty_conversation", col=col)
    role_key_pref = fields.get("role")
    content_key_pref = fields.get("content")
    messages, media = [], []
    for n, m in enumerate(turns, start=1):
        if not isinstance(m, dict):
            raise RowError(f"wrong type: message {n} must be an object, found {type_name(m)}",
                           "message_not_object", n=n, found=type_name(m))
        role_key = role_key_pref or ("role" if "role" in m else "from")
        content_key = content_key_pref or next((k for k in ("content", "value", "text") if k in m), "content")
        if role_key not in m:
            raise RowError(f"message {n} has no '{role_key}' (the speaker)", "no_role", n=n, key=role_key)
        raw_role = m[role_key]
        key = raw_role.strip().lower() if isinstance(raw_role, str) else None
        role = ROLE_NAMES.get(key) if key else None
        if key is not None and toolcalls.is_tool_message(m, key):
            try:
                msg = toolcalls.tool_message(m, key, content_key, n,
                                             lambda mm, k, r: _message_text(mm, k, r, n)[0])
            except toolcalls.ToolError as e:
                raise RowError.of(e) from None
            messages.append(_weighted(msg, m, n))
            continue
        if role is None:
            raise RowError(f"unknown role {json.dumps(raw_role)} in message {n} (expected system, user, "
                           "assistant or tool; human, gpt, bot, function_call and observation also work)",
                           "unknown_role", role=json.dumps(raw_role), n=n)
        if content_key not in m:
            raise RowError(f"message {n} ({role}) has no '{content_key}'", "no_content", n=n, role=role, key=content_key)
        try:
            c = parse_message(m, content_key, n, role)
        except ContentError as e:
            raise RowError.of(e) from None
        if not c.text.strip() and role != "system" and not c.reasoning:
            raise RowError(f"empty content in message {n} ({role})", "empty_content", n=n, role=role)
        msg = {"role": role, "content": c.text, **({"reasoning": c.reasoning} if c.reasoning else {})}
        if role == "assistant" and "<tool_call>" in c.text:   # Hermes: calls written as text
            try:
                found = toolcalls.text_calls(c.text, n)
            except toolcalls.ToolError as e:
                raise RowError.of(e) from None
            if found:
                msg["content"], msg["tool_calls"] = found
        messages.append(_weighted(msg, m, n))
        media += c.media
    system_col = fields.get("system")
    if system_col and isinstance(row.get(system_col), str) and row[system_col].strip() \
            and not any(m["role"] == "system" for m in messages):
        system = glaive.system_text(row[system_col]) if from_glaive else row[system_col]
        messages.insert(0, {"role": "system", "content": system})
    if not any(m["role"] == "assistant" for m in messages):
        raise RowError("no assistant turn: nothing for the model to learn from", "no_assistant_turn")
    if all(m.get("weight") == 0 for m in messages if m["role"] == "assistant"):
        raise RowError("every assistant turn has \"weight\": 0: nothing for the model to learn from", "all_weight_zero")
    tools = _row_tools(row, file_tools)
    _read_python_calls(messages, tools)
    try:
        toolcalls.check_conversation(messages, tools)
    except toolcalls.ToolError as e:
        raise RowError.of(e) from None
    toolcalls.results_in_call_order(messages)
    if all(m["role"] != "user" for m in messages):
        raise RowError("no user turn: the conversation has nothing to answer", "no_user_turn")
    warning = toolcalls.call_warning(messages, tools)
    if messages[-1]["role"] != "assistant" and warning is None:
        warning = CodedText("the turns after the last assistant reply are not trained on", "turns_after_answer")
    return Record("", 0, messages=messages, tools=tools), warning, media


def _read_python_calls(messages: list[dict], tools) -> None:
    """ToolACE: an assistant turn written as `[f(a=1), g(b="x")]` becomes that turn's calls, when
    the row shows it is one: a tool result follows it, or every function it names is declared in
    the row's tools or named in its system prompt (where ToolACE lists them)."""
    known = set(toolcalls.tool_names(tools))
    system = " ".join(m["content"] for m in messages if m["role"] == "system")
    for n, m in enumerate(messages):
        if m["role"] != "assistant" or m.get("tool_calls") or not m["content"].rstrip().endswith(")]"):
            continue
        calls = python_calls(m["content"])
        if not calls:
            continue
        answered = n + 1 < len(messages) and messages[n + 1]["role"] == "tool"
        if answered or all(c["name"] in known or f'"{c["name"]}"' in system for c in calls):
            try:
                m["tool_calls"] = toolcalls.parse_calls(calls, n + 1)
            except toolcalls.ToolError as e:
                raise RowError.of(e) from None
            m["content"] = ""
