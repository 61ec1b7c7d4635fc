"""Tool calls through the CLI: `data check` reports bad tool rows by file:line, `data preview` shows
calls and results."""

from __future__ import annotations

import json

from data_helpers import OPENAI_TOOL_ROW, write_jsonl
from helpers import run_cli


def test_data_check_cli_reports_tool_errors(tmp_path, workspace):
    wrong_id = json.loads(json.dumps(OPENAI_TOOL_ROW))
    wrong_id["messages"][2]["tool_call_id"] = "call_9"
    write_jsonl(workspace / "training" / "datasets" / "t.jsonl", [OPENAI_TOOL_ROW, OPENAI_TOOL_ROW, wrong_id])
    res = run_cli("data", "check", "t.jsonl", ws=workspace)
    assert res.returncode == 1
    assert "t.jsonl:3: message 3 answers tool call id 'call_9', but the call before it has id(s) call_1" in res.stderr + res.stdout
    assert "Traceback" not in res.stderr


def test_preview_shows_calls_and_results(demo_ws):
    write_jsonl(demo_ws / "training" / "datasets" / "tools.jsonl", [OPENAI_TOOL_ROW])
    res = run_cli("data", "preview", "tools.jsonl", "--model", "tiny-demo", ws=demo_ws)
    assert res.returncode == 0, res.stderr
    assert '[[<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>]]' in res.stdout
    assert "<tool_response>\n{\"temp\": 21}\n</tool_response>" in res.stdout
    assert "tools declared: get_weather; 1 tool call(s)" in res.stdout and "1 tool result(s) (not trained)" in res.stdout

