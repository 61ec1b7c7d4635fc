"""Tool calls through the CLI: `data check` reports bad tool rows by file:line, `data preview` shows
calls and results."""

from __future__ import annotations

import json

from helpers import run_cli

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


OPENAI_ROW = {"tools": [WEATHER], "messages": [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"},
    {"role": "assistant", "content": "It is 21 degrees in Paris."}]}


def test_data_check_cli_reports_tool_errors(tmp_path, workspace):
    wrong_id = json.loads(json.dumps(OPENAI_ROW))
    wrong_id["messages"][2]["tool_call_id"] = "call_9"
    _write(workspace / "training" / "datasets" / "t.jsonl", [OPENAI_ROW, OPENAI_ROW, wrong_id])
    res = run_cli("data", "check", "t.jsonl", ws=workspace)
    assert res.returncode == 1
    assert "t.jsonl:3: message 3 answers tool call id 'call_9', but the call before it has id(s) call_1" in res.stderr + res.stdout
    assert "Traceback" not in res.stderr


def test_preview_shows_calls_and_results(demo_ws):
    _write(demo_ws / "training" / "datasets" / "tools.jsonl", [OPENAI_ROW])
    res = run_cli("data", "preview", "tools.jsonl", "--model", "tiny-demo", ws=demo_ws)
    assert res.returncode == 0, res.stderr
    assert '[[<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>]]' in res.stdout
    assert "<tool_response>\n{\"temp\": 21}\n</tool_response>" in res.stdout
    assert "tools declared: get_weather; 1 tool call(s)" in res.stdout and "1 tool result(s) (not trained)" in res.stdout

