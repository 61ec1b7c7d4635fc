"""Standard benchmarks from the command line: `eval --benchmark` printing the base | tuned | Δ ± error
table, `eval --guard-benchmark` as the forgetting check beside a held-out evaluation,
`bench-models --benchmark` with the benchmark columns, and a missing or unknown task as one error line
(the figures against lm_eval's own: tests/unit/evaluate/test_benchmarks.py)."""

from __future__ import annotations

import json
from pathlib import Path

from eval_helpers import make_adapter_run, make_full_run
from helpers import one_error, run_cli


def test_eval_benchmark_prints_the_table_with_errors_and_the_report(demo_ws):
    make_adapter_run(demo_ws)
    r = run_cli("eval", "--run", "lora-run", "--benchmark", "demo-mc.yaml", "--limit", "8", "--batch-size", "4",
                ws=demo_ws)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    assert "task" in lines[1] and "Δ ± error" in lines[1]
    acc = next(x for x in lines if x.split()[:2] == ["demo_mc", "acc"])
    assert acc.count("±") == 3   # base ± se, tuned ± se, Δ ± error
    assert lines[-1].startswith("report: ") and Path(lines[-1].removeprefix("report: ")).is_file()


def test_the_benchmark_guard_reports_beside_a_held_out_eval(demo_ws):
    make_full_run(demo_ws)
    r = run_cli("eval", "--run", "full-run", "--limit", "4", "--max-new-tokens", "4", "--metrics", "exact_match",
                "--guard-benchmark", "demo-mc.yaml", "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr[-3000:]
    g = json.loads(r.stdout)["guard"]
    # the full run holds the base's weights: Δ 0, nothing forgotten
    assert g["kind"] == "benchmark" and g["forgetting"] is False and g["threshold_se"] == 2.0
    (row,) = g["rows"]
    assert row["metric"] == "acc" and row["delta"] == 0.0 and row["error"] > 0


def test_bench_models_gets_the_benchmark_columns(demo_ws):
    r = run_cli("bench-models", "--models", "tiny-demo", "--benchmark", "demo-mc.yaml", "--limit", "8", "--json",
                ws=demo_ws)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["benchmark_columns"] == ["demo_mc/acc", "demo_mc/acc_norm"]
    m = out["leaderboard"][0]["metrics"]
    assert 0 <= m["demo_mc/acc"] <= 1 and m["demo_mc/acc_stderr"] > 0


def test_a_missing_task_file_or_unknown_task_is_one_error(demo_ws):
    assert "demo-mx.yaml" in one_error(run_cli("eval", "--model", "tiny-demo", "--benchmark", "demo-mx.yaml",
                                               ws=demo_ws))
    assert "unknown lm-eval task 'no_such_task'" in one_error(
        run_cli("eval", "--model", "tiny-demo", "--benchmark", "no_such_task", ws=demo_ws,
                env={"HF_HUB_OFFLINE": "1"}))
