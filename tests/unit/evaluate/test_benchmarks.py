"""`eval --benchmark`: lm-evaluation-harness tasks on a run and its base. tunestudio's figures are
lm_eval.simple_evaluate's own for the same model, task and settings; the registry and the report
keep each metric with its standard error; a bad task is one clear error, never a traceback.

The demo workspace's local task (training/benchmarks/demo-mc.yaml over demo-mc.jsonl, a relative
data path) on the tiny demo model, at most 12 documents.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from eval_helpers import make_adapter_run, make_full_run

from tunestudio.core import registry
from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.evaluate import benchmarks as B
from tunestudio.evaluate.guard import benchmark_summary
from tunestudio.evaluate.harness import run_benchmarks

LIMIT = 12


def _reference(ws: Path, tmp_path: Path, **hflm) -> dict:
    """lm_eval's own figures: simple_evaluate on its HFLM loading the model itself, on a copy of the
    task file whose data path is absolute (lm-eval would read a relative one from the cwd)."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    config = yaml.safe_load((ws / "training/benchmarks/demo-mc.yaml").read_text())
    config["dataset_kwargs"]["data_files"]["test"] = str(ws / "training/benchmarks/demo-mc.jsonl")
    task = tmp_path / "ref" / "demo-mc.yaml"
    task.parent.mkdir()
    task.write_text(yaml.safe_dump(config))
    lm = HFLM(device="cpu", batch_size=4, dtype="float32", **hflm)
    out = simple_evaluate(model=lm, tasks=[str(task)], limit=LIMIT, batch_size=4, log_samples=False,
                          task_manager=TaskManager(include_defaults=False))
    return out["results"]["demo_mc"]


def test_a_full_runs_figures_are_lm_evals_own_and_are_recorded_with_their_errors(demo_ws, tmp_path):
    make_full_run(demo_ws)
    out = run_benchmarks(Workspace(demo_ws), "demo-mc.yaml", run="full-run", limit=LIMIT, batch_size=4)
    ref = _reference(demo_ws, tmp_path, pretrained=str(demo_ws / "training/runs/full-run/final"))
    got = out["results"]["demo_mc"]
    assert got["n"] == LIMIT
    for metric in ("acc", "acc_stderr", "acc_norm", "acc_norm_stderr"):
        assert got["metrics"][metric] == ref[f"{metric},none"], metric
    # the run's base is scored with the same settings; the full run holds the base's weights: Δ 0
    row = next(r for r in out["table"] if r["metric"] == "acc")
    assert row["base"] == row["tuned"] and row["delta"] == 0.0
    assert row["error"] == pytest.approx(math.sqrt(2) * ref["acc_stderr,none"])

    conn = registry.connect(demo_ws / "tunestudio.db")
    evals = registry.run_evaluations(conn, "full-run")
    conn.close()
    assert evals[0]["split"] == "benchmark" and evals[0]["dataset"] == "benchmark: demo_mc"
    assert evals[0]["metrics"]["demo_mc/acc"] == ref["acc,none"]
    assert evals[0]["metrics"]["demo_mc/acc_stderr"] == ref["acc_stderr,none"]
    assert evals[0]["base_metrics"]["demo_mc/acc_stderr"] == ref["acc_stderr,none"]
    saved = json.loads(Path(out["files"]["metrics"]).read_text())
    assert saved["results"]["demo_mc"]["metrics"]["acc_stderr"] == ref["acc_stderr,none"]
    page = Path(out["files"]["html"]).read_text()
    assert f"{ref['acc,none']:.4f} ± {ref['acc_stderr,none']:.4f}" in page


def test_an_adapter_run_is_its_base_plus_the_adapter_as_lm_eval_loads_it(demo_ws, tmp_path):
    make_adapter_run(demo_ws)
    out = run_benchmarks(Workspace(demo_ws), "demo-mc.yaml", run="lora-run", limit=LIMIT, batch_size=4,
                         save=False)
    ref = _reference(demo_ws, tmp_path, pretrained=str(demo_ws / "models/tiny-demo"),
                     peft=str(demo_ws / "training/runs/lora-run/final"))
    got = out["results"]["demo_mc"]["metrics"]
    assert (got["acc"], got["acc_stderr"], got["acc_norm"]) == (
        ref["acc,none"], ref["acc_stderr,none"], ref["acc_norm,none"])


def test_an_unknown_task_name_is_one_error_naming_it(demo_ws):
    with pytest.raises(UserError) as e:
        run_benchmarks(Workspace(demo_ws), "hellaswagg", model="tiny-demo")
    assert e.value.code == "benchmark_unknown_task" and "'hellaswagg'" in str(e.value)
    assert "hellaswag" in str(e.value).split("did you mean")[1]   # the close names
    assert "\n" not in str(e.value)


def test_a_task_whose_data_is_on_the_hub_fails_offline_with_one_line(demo_ws):
    with pytest.raises(UserError) as e:
        run_benchmarks(Workspace(demo_ws), "arc_easy", model="tiny-demo")
    assert e.value.code == "benchmark_task_unloadable" and "arc_easy" in str(e.value)
    assert "\n" not in str(e.value)


def test_a_task_files_data_resolves_next_to_it_and_stays_in_the_workspace(demo_ws, tmp_path):
    ws = Workspace(demo_ws)
    config = B.read_task_file(ws, "demo-mc.yaml")
    assert config["dataset_kwargs"]["data_files"]["test"] == str(ws.benchmarks_dir / "demo-mc.jsonl")
    outside = tmp_path / "secret.jsonl"
    outside.write_text('{"question": "q", "choices": ["a", "b"], "answer": 0}\n')
    (ws.benchmarks_dir / "leak.jsonl").symlink_to(outside)
    (ws.benchmarks_dir / "leak.yaml").write_text(
        (ws.benchmarks_dir / "demo-mc.yaml").read_text().replace("test: demo-mc.jsonl", "test: leak.jsonl"))
    with pytest.raises(UserError) as e:
        B.read_task_file(ws, "leak.yaml")
    assert e.value.code == "benchmark_data_outside"
    for written in (str(outside), f"../../{outside.relative_to(tmp_path.parent)}"):   # a path in the file: no way out
        (ws.benchmarks_dir / "out.yaml").write_text(
            (ws.benchmarks_dir / "demo-mc.yaml").read_text().replace("test: demo-mc.jsonl", f"test: {written}"))
        with pytest.raises(UserError) as e:
            B.read_task_file(ws, "out.yaml")
        assert e.value.code in ("benchmark_data_outside", "benchmark_data_missing"), e.value.code
    (ws.benchmarks_dir / "gone.yaml").write_text(
        (ws.benchmarks_dir / "demo-mc.yaml").read_text().replace("test: demo-mc.jsonl", "test: gone.jsonl"))
    with pytest.raises(UserError) as e:
        B.read_task_file(ws, "gone.yaml")
    assert e.value.code == "benchmark_data_missing" and "gone.jsonl" in str(e.value)
    (ws.benchmarks_dir / "code.yaml").write_text("task: x\nprocess_docs: !function utils.process\n")
    with pytest.raises(UserError) as e:
        B.read_task_file(ws, "code.yaml")
    assert e.value.code == "benchmark_file_invalid"


def test_a_local_task_with_bad_rows_names_its_file_not_the_network(demo_ws):
    ws = Workspace(demo_ws)
    (ws.benchmarks_dir / "bad.jsonl").write_text('{"question": "q", "choices": ["a", "b"], "answer": 0}\nnot json\n')
    (ws.benchmarks_dir / "bad.yaml").write_text(
        (ws.benchmarks_dir / "demo-mc.yaml").read_text().replace("test: demo-mc.jsonl", "test: bad.jsonl")
        .replace("task: demo_mc", "task: bad_mc"))
    with pytest.raises(UserError) as e:
        run_benchmarks(ws, "bad.yaml", model="tiny-demo", limit=2)
    assert e.value.code == "benchmark_local_unloadable" and "bad.jsonl" in str(e.value), str(e.value)
    assert "Hub" not in str(e.value)


def _table(base: float, tuned: float, se: float) -> list[dict]:
    side = lambda v: {"demo_mc": {"n": 60, "metrics": {"acc": v, "acc_stderr": se}, "higher_is_better": {"acc": True}}}  # noqa: E731
    return B.table(side(tuned), side(base))


def test_the_benchmark_guard_calls_forgetting_only_beyond_two_standard_errors():
    warnings: list = []
    # Δ -0.10 with error sqrt(2)·0.05 = 0.071: 1.4 errors, within chance
    kept = benchmark_summary("demo_mc", _table(0.80, 0.70, 0.05), warnings)
    assert kept["forgetting"] is False and not warnings
    # Δ -0.20: 2.8 errors
    lost = benchmark_summary("demo_mc", _table(0.80, 0.60, 0.05), warnings)
    assert lost["forgetting"] is True
    assert [w.code for w in warnings] == ["forgetting_benchmark"] and "-0.2000 ± 0.0707" in str(warnings[0])
    # a rise is never forgetting
    assert benchmark_summary("demo_mc", _table(0.60, 0.90, 0.05), [])["forgetting"] is False
