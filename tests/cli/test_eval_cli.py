"""`tunestudio eval` on runs made without training: files, registry, custom metrics, errors.

(The learning itself is checked in test_eval_e2e.py, on a run trained by `tunestudio train`.)
"""

from __future__ import annotations

import csv
import json

from eval_helpers import make_full_run
from helpers import run_cli

from tunestudio.core.workspace import Workspace
from tunestudio.evaluate.run_eval import list_evaluations

SHORT = "def score(prediction, reference, example):\n" \
        "    # 1 when the answer is at most as long as the reference, as a check of example access\n" \
        "    assert example['messages'][-1]['content'] == reference\n" \
        "    return float(len(prediction.split()) <= len(reference.split()))\n"


def test_eval_run_compare_base_with_custom_metric_and_guard(demo_ws, tmp_path):
    make_full_run(demo_ws, "full-run")
    metric = tmp_path / "short_answer.py"
    metric.write_text(SHORT)
    r = run_cli("eval", "--run", "full-run", "--compare-base", "--limit", "12", "--max-new-tokens", "4",
                "--metric-file", metric, "--guard-dataset", "demo-guard.txt", "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr
    assert "generating" in r.stderr  # the progress bar
    out = json.loads(r.stdout)
    assert out["n"] == 12
    # one-word labels: exact match and F1 (metric_choice.py), the loss, the custom metric
    expected = {"exact_match", "f1", "loss", "perplexity", "short_answer", "stopped"}
    assert set(out["metrics"]) == expected and set(out["base_metrics"]) == expected
    # the "fine-tuned" weights are the base weights here: identical scores, zero deltas
    assert out["metrics"] == out["base_metrics"]
    assert all(abs(v) < 1e-9 for v in out["deltas"].values())
    assert out["guard"]["base"] == out["guard"]["evaluated"] and not out["guard"]["forgetting"]
    assert out["primary_metric"] == "short_answer"

    folder = demo_ws / "training/runs/full-run/eval"
    (run_eval_dir,) = list(folder.iterdir())
    assert out["output_dir"] == str(run_eval_dir)
    rows = [json.loads(l) for l in (run_eval_dir / "examples.jsonl").read_text().splitlines()]
    assert len(rows) == 12  # one row per test example
    for row in rows:  # the custom metric really ran on each example
        want = float(len(row["prediction"].split()) <= len(row["reference"].split()))
        assert row["scores"]["short_answer"] == want
        assert {"input", "reference", "prediction", "base_prediction", "base_scores", "loss"} <= set(row)
    scores = [r["scores"]["short_answer"] for r in rows]
    assert scores == sorted(scores)  # worst first
    with open(run_eval_dir / "examples.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 12 and {"prediction", "base_prediction", "short_answer", "base_short_answer"} <= set(table[0])
    html = (run_eval_dir / "report.html").read_text()
    assert html.count("<svg") >= 2 and "Confusion table" in html and "<script" not in html
    saved = json.loads((run_eval_dir / "metrics.json").read_text())
    assert saved["confusion"]["labels"] == ["negative", "neutral", "positive"]
    (ev,) = list_evaluations(Workspace(demo_ws), "full-run")
    assert ev["n"] == 12 and ev["metrics"] == out["metrics"] and ev["base_metrics"] == out["base_metrics"]


def test_metric_file_that_raises_is_named(demo_ws, tmp_path):
    bad = tmp_path / "exploding_metric.py"
    bad.write_text("def score(prediction, reference, example):\n    return 1 / 0\n")
    r = run_cli("eval", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--limit", "3",
                "--max-new-tokens", "2", "--metric-file", bad, ws=demo_ws)
    assert r.returncode == 1
    assert "exploding_metric.py" in r.stderr and "ZeroDivisionError" in r.stderr
    assert "demo-reviews.jsonl:" in r.stderr  # which example
    assert "Traceback" not in r.stderr


def test_usage_errors(demo_ws):
    r = run_cli("eval", "--model", "tiny-demo", ws=demo_ws)
    assert r.returncode == 1 and "--dataset" in r.stderr
    r = run_cli("eval", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--compare-base", ws=demo_ws)
    assert r.returncode == 1 and "--compare-base needs --run" in r.stderr
    r = run_cli("eval", "--run", "nope", "--metrics", "accuracy", ws=demo_ws)
    assert r.returncode == 1 and "unknown metric accuracy" in r.stderr


def test_tool_metrics_on_a_split_without_calls_say_why_nothing_was_scored(demo_ws):
    make_full_run(demo_ws, "full-run")
    r = run_cli("eval", "--run", "full-run", "--metrics", "tool_call_match,tool_name_match", "--limit", "5",
                "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["metrics"] == {} and out["primary_metric"] is None
    (w,) = out["warnings"]
    assert w.startswith("tool_call_match, tool_name_match: no reference holds a tool call in the test split of "
                        "demo-reviews.jsonl (5 conversation(s) answered in words)")
    assert "nothing was scored" in w
    html = (demo_ws / "training/runs/full-run/eval").glob("*/report.html")
    assert w.split(" (")[0] in next(html).read_text()   # the report says it too
