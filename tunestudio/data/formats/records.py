"""The one record type every format is read into.

A record is either a conversation (`messages`: a list of {"role", "content"} with roles
system / user / assistant / tool; an assistant message may also hold its "reasoning", the thinking
that came before the answer, and its "tool_calls"; `tools`: the functions it may call, in OpenAI's
form, see toolcalls.py) or plain text (`text`, for language-model training). It remembers the
file and the line (or row) it came from, so every message about it can point the user there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tunestudio.data.tools.toolcalls import message_text

ROLES = ("system", "user", "assistant", "tool")


@dataclass
class Record:
    source: str                          # the file it came from (as shown to the user)
    line: int                            # 1-based line in that file (row for CSV/Parquet, counting the header as line 1)
    messages: list[dict] | None = None   # [{"role": "user", "content": "..."}, ...]
    text: str | None = None              # plain-text records
    meta: dict = field(default_factory=dict)  # other columns kept for grouping (e.g. a label)
    tools: list[dict] | None = None      # [{"type": "function", "function": {"name", ...}}] or None

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def where(self) -> str:
        return f"{self.source}:{self.line}"

    def prompt(self) -> list[dict]:
        """The conversation up to (not including) the last assistant turn: what a model is asked."""
        msgs = self.messages or []
        last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=len(msgs))
        return msgs[:last]

    def reference(self) -> str:
        """The last assistant turn: what a model should answer (the evaluation reference). Its tool
        calls, if any, are written after its content in the fallback templates' format."""
        for m in reversed(self.messages or []):
            if m["role"] == "assistant":
                return message_text(m)
        return self.text or ""

    def reference_message(self) -> dict | None:
        """The last assistant message itself (with its tool calls), None for plain text."""
        return next((m for m in reversed(self.messages or []) if m["role"] == "assistant"), None)

    def reference_calls(self) -> list[dict] | None:
        """The tool calls of the last assistant turn (None when it makes none)."""
        m = self.reference_message()
        return (m or {}).get("tool_calls") or None

    def reference_reasoning(self) -> str:
        """The reasoning that came with the last assistant turn ("" when none)."""
        for m in reversed(self.messages or []):
            if m["role"] == "assistant":
                return m.get("reasoning") or ""
        return ""

    def to_dict(self) -> dict:
        d = {"source": self.source, "line": self.line}
        if self.messages is not None:
            d["messages"] = self.messages
        if self.text is not None:
            d["text"] = self.text
        if self.meta:
            d["meta"] = self.meta
        if self.tools:
            d["tools"] = self.tools
        return d


def unique_wheres(records) -> list[str]:
    """Each record's `where()`, with '#k' on the k-th later row that shares its file:line (the rows
    of a JSON array written on one line all start on line 1), so that it can key a dict or a set;
    split ids number such rows the same way."""
    out, seen = [], {}
    for r in records:
        where = r.where()
        k = seen.get(where, 0)
        seen[where] = k + 1
        out.append(where + (f"#{k}" if k else ""))
    return out
