"""Calls written in Python syntax (ToolACE's shape) are scored by `tunestudio eval --predictions`."""

from __future__ import annotations

import json

from data_helpers import tool_call, write_jsonl
from helpers import run_cli

from tunestudio.evaluate.toolparse import parse_tool_calls


def test_python_calls_are_scored(tmp_path, workspace):
    assert parse_tool_calls('[get_weather(city="Paris")]') == [tool_call("get_weather", {"city": "Paris"})]
    rows = [{"prediction": '[get_weather(city="Paris")]', "reference": '[get_weather(city="Paris")]'},
            {"prediction": "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>",
             "reference": '[get_weather(city="Lima")]'}]
    write_jsonl(tmp_path / "p.jsonl", rows)
    res = run_cli("eval", "--predictions", tmp_path / "p.jsonl", "--metrics", "tool_call_match,tool_name_match",
                  "--json", ws=workspace)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["metrics"] == {"tool_call_match": 0.5, "tool_name_match": 1.0}

