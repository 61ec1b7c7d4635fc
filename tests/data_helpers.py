"""Dataset files and rows that the data tests write and read back, shared by the in-process tests and
the CLI's.

- files: write_jsonl, read_jsonl (a report or dataset, one JSON object a line), file_sha256 (the
  input a command must never change);
- rows: chat_row (one user/assistant exchange), stream_documents (plain-text documents for the
  token stream);
- tool calling: WEATHER_TOOL (an OpenAI tool spec), OPENAI_TOOL_ROW (a row that calls it and uses
  the result), tool_call (one call as a row or a parser writes it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def chat_row(user, answer):
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def stream_documents(n: int) -> list[str]:
    # lengths from a few tokens to several blocks, so blocks start mid-document and span documents
    return [f"Document {i} about {'the weather in Lisbon and Oslo ' * (1 + (i * 7) % 23)}ends here."
            for i in range(n)]


WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                                 "parameters": {"type": "object",
                                                                "properties": {"city": {"type": "string"}}}}}

OPENAI_TOOL_ROW = {"tools": [WEATHER_TOOL], "messages": [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"},
    {"role": "assistant", "content": "It is 21 degrees in Paris."}]}


def tool_call(name, args, cid=None):
    c = {"type": "function", "function": {"name": name, "arguments": args}}
    return {**c, "id": cid} if cid else c
