"""`tunestudio eval --predictions FILE.jsonl`: outputs of any system scored with the same metrics
and report, no model; a bad row is named by file:line, exit 1, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli


def _write(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def test_scores_a_predictions_file_with_the_same_metrics_and_report(workspace):
    _write(workspace / "preds.jsonl", [
        {"prediction": "positive", "reference": "positive", "prompt": "Great film!"},
        {"prediction": "negative", "reference": "positive", "prompt": "Loved it"},
        "",   # blank lines are skipped
        {"prediction": "我喜欢猫", "reference": "我喜欢狗",
         "prompt": [{"role": "user", "content": "你喜欢什么？"}], "id": 7},
        {"prediction": "call", "reference": "call", "tool_calls": [{"name": "get_weather", "arguments": {}}]},
    ])
    p = run_cli("eval", "--predictions", "preds.jsonl", "--json", ws=workspace, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    m = out["metrics"]
    assert out["n"] == 4 and out["split"] == "predictions"
    # exact match: rows 1 and 4 -> 2/4; f1: 1, 0, 0.75 (3 of 4 characters), 1 -> 2.75/4
    assert m["exact_match"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(2.75 / 4)
    assert set(m) == {"exact_match", "f1"}   # short answers: no BLEU or ROUGE-2 (metric_choice.py)
    folder = Path(out["output_dir"])
    assert {p.name for p in folder.iterdir()} == {"metrics.json", "examples.jsonl", "examples.csv", "report.html"}
    rows = [json.loads(line) for line in (folder / "examples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows[0]["where"] == "preds.jsonl:2"   # worst first: the wrong label
    by_where = {r["where"]: r for r in rows}
    assert by_where["preds.jsonl:4"]["meta"] == {"id": 7} and by_where["preds.jsonl:4"]["input"] == "你喜欢什么？"
    assert by_where["preds.jsonl:5"]["tool_calls"] == [{"name": "get_weather", "arguments": {}}]
    # the registry has it, like any evaluation
    p = run_cli("eval", "--predictions", str(workspace / "preds.jsonl"), "--metrics", "exact_match", ws=workspace)
    assert p.returncode == 0, p.stderr
    assert "exact_match" in p.stdout and "preds.jsonl:2: expected 'positive', got 'negative'" in p.stdout


def test_tool_calls_are_scored_from_the_reference_and_the_prediction(workspace):
    call = '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>'
    _write(workspace / "calls.jsonl", [
        {"prediction": call, "reference": call.replace("1}", "1.0}")},           # 1 == 1.0: a match
        {"prediction": '{"name": "f", "arguments": {"a": 2}}', "reference": call},  # right name, wrong value
        # calls that came with the prediction (arguments as OpenAI's JSON string) win over its text
        {"prediction": "", "reference": '{"name": "g", "arguments": {"x": "y"}}',
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "g", "arguments": "{\"x\": \"y\"}"}}]},
        {"prediction": "Hello", "reference": "Hello"},   # answered in words: no tool score
    ])
    p = run_cli("eval", "--predictions", "calls.jsonl", "--json", ws=workspace, timeout=120)
    assert p.returncode == 0, p.stderr
    m = json.loads(p.stdout)["metrics"]
    assert m["tool_call_match"] == pytest.approx(2 / 3) and m["tool_name_match"] == pytest.approx(1.0)
    # asked for by name on a file without calls: said, not a silent blank
    _write(workspace / "words.jsonl", [{"prediction": "a", "reference": "a"}])
    p = run_cli("eval", "--predictions", "words.jsonl", "--metrics", "exact_match,tool_call_match", ws=workspace)
    assert p.returncode == 0 and "tool_call_match: no reference holds a tool call" in p.stderr

def test_a_metric_file_sees_the_row(workspace):
    _write(workspace / "preds.jsonl", [{"prediction": "a", "reference": "b", "tool_calls": [{"name": "f"}]}])
    (workspace / "calls.py").write_text(
        "def score(prediction, reference, example):\n    return len(example.get('tool_calls') or [])\n")
    p = run_cli("eval", "--predictions", "preds.jsonl", "--metric-file", "calls.py", "--metrics", "f1",
                "--json", "--no-save", ws=workspace)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["metrics"] == {"f1": 0.0, "calls": 1.0}


def test_a_metric_file_runs_in_the_process_box(workspace):
    """`eval --metric-file` runs the file in a process group of its own, without the tokens in
    tunestudio's environment, in the workspace (rewards/process_box.py)."""
    _write(workspace / "preds.jsonl", [{"prediction": "a", "reference": "a"}])
    (workspace / "boxed.py").write_text(
        "import os\n\ndef score(prediction, reference, example):\n"
        "    own_group = os.getpgid(0) == os.getpid()\n"
        "    no_keys = 'HF_TOKEN' not in os.environ and 'OPENAI_API_KEY' not in os.environ\n"
        "    return float(own_group and no_keys and os.path.samefile(os.getcwd(), os.environ['WS']))\n"
        .replace("os.environ['WS']", repr(str(workspace))))
    p = run_cli("eval", "--predictions", "preds.jsonl", "--metric-file", "boxed.py", "--metrics", "exact_match",
                "--json", "--no-save", ws=workspace, env={"HF_TOKEN": "hf_x", "OPENAI_API_KEY": "sk-x"})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["metrics"] == {"exact_match": 1.0, "boxed": 1.0}


def test_bad_rows_are_named_by_file_and_line(workspace):
    _write(workspace / "bad.jsonl", [
        {"prediction": "ok", "reference": "ok"},
        '{"prediction": "x", "reference": ',
        {"prediction": "x"},
        {"prediction": 3, "reference": "3"},
        '["a", "b"]',
        {"prediction": "x", "reference": "y", "prompt": 5},
    ])
    p = run_cli("eval", "--predictions", "bad.jsonl", ws=workspace)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    err = p.stderr
    assert "bad.jsonl has 5 bad row(s)" in err
    assert "bad.jsonl:2: not valid JSON" in err
    assert 'bad.jsonl:3: no "reference"' in err
    assert 'bad.jsonl:4: "prediction" must be a string (got int)' in err
    assert "bad.jsonl:5: a row must be a JSON object" in err
    assert 'bad.jsonl:6: "prompt" must be a string or a list' in err


@pytest.mark.parametrize("args, message", [
    (["--metrics", "loss"], "loss need(s) the model's probabilities"),
    (["--dataset", "x.jsonl"], "--dataset apply to a model's answers"),
    (["--temperature", "0.5"], "--temperature apply to a model's answers"),
])
def test_options_that_need_a_model_are_refused(workspace, args, message):
    _write(workspace / "p.jsonl", [{"prediction": "a", "reference": "a"}])
    p = run_cli("eval", "--predictions", "p.jsonl", *args, ws=workspace)
    assert p.returncode == 1 and message in p.stderr and "Traceback" not in p.stderr


def test_missing_and_empty_files(workspace):
    p = run_cli("eval", "--predictions", "nope.jsonl", ws=workspace)
    assert p.returncode == 1 and "predictions file 'nope.jsonl' not found" in p.stderr
    (workspace / "empty.jsonl").write_text("\n\n", encoding="utf-8")
    p = run_cli("eval", "--predictions", "empty.jsonl", ws=workspace)
    assert p.returncode == 1 and "empty.jsonl: no rows" in p.stderr


def test_primary_metric_is_chosen_as_for_a_run(workspace):
    # references that call tools: judged by tool_call_match, as `eval --run` judges a tool-use set;
    # a row answered in words has no tool score and is not listed among the worst calls
    call = '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>'
    _write(workspace / "calls.jsonl", [
        {"prediction": "Hello", "reference": "Hello"},
        {"prediction": call, "reference": call},
        {"prediction": call.replace("1}", "2}"), "reference": call},
    ])
    p = run_cli("eval", "--predictions", "calls.jsonl", "--json", "--no-save", ws=workspace, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["primary_metric"] == "tool_call_match"
    p = run_cli("eval", "--predictions", "calls.jsonl", "--no-save", ws=workspace, timeout=120)
    lines = p.stdout.split("worst examples by tool_call_match:\n")[1].splitlines()
    assert lines[0].startswith("  calls.jsonl:3: expected") and "calls.jsonl:1" not in p.stdout.split("worst")[1]
    # a file has no loss: no "worst examples by loss" when nothing else was scored per row
    _write(workspace / "words.jsonl", [{"prediction": "a", "reference": "b"}])
    p = run_cli("eval", "--predictions", "words.jsonl", "--metrics", "tool_call_match", "--no-save", ws=workspace)
    assert p.returncode == 0, p.stderr
    assert "worst examples" not in p.stdout and "nothing was scored" in p.stderr


def test_a_json_array_with_several_references(workspace):
    rows = [{"prediction": "Paris", "references": ["paris, France", "Paris"], "prompt": "Capital of France?"},
            {"prediction": "the big cat", "references": ["a small cat", "big cat sat"]},
            {"prediction": "ＡＢＣ１２３", "reference": "abc123"}]
    (workspace / "preds.json").write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    p = run_cli("eval", "--predictions", "preds.json", "--json", ws=workspace, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["n"] == 3
    # best over each row's references; NFKC makes the full-width answer an exact match
    assert out["metrics"]["exact_match"] == pytest.approx(2 / 3)
    assert out["metrics"]["f1"] == pytest.approx((1 + 0.8 + 1) / 3)
    saved = [json.loads(line) for line in Path(out["files"]["examples_jsonl"]).read_text(encoding="utf-8").splitlines()]
    first = next(r for r in saved if r["where"] == "preds.json:2")   # each row named by the line it starts on
    assert first["references"] == ["paris, France", "Paris"] and first["reference"] == "paris, France"
    # bad rows of an array are named by their line
    bad = '[\n  {"prediction": "a", "reference": "a"},\n  {"prediction": "b"},\n' \
          '  {"prediction": "c", "references": []},\n  {"prediction": "d", "reference": "d", "references": ["d"]}\n]\n'
    (workspace / "bad.json").write_text(bad, encoding="utf-8")
    p = run_cli("eval", "--predictions", "bad.json", ws=workspace)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert 'bad.json:3: no "reference"' in p.stderr
    assert 'bad.json:4: "references" must be a non-empty list of strings' in p.stderr
    assert 'bad.json:5: give "reference" or "references", not both' in p.stderr
    (workspace / "broken.json").write_text('[\n  {"prediction": "a", "reference": "a"}\n  {"prediction": "b"}\n]',
                                           encoding="utf-8")
    p = run_cli("eval", "--predictions", "broken.json", ws=workspace)
    assert p.returncode == 1 and "broken.json:3: not valid JSON" in p.stderr
