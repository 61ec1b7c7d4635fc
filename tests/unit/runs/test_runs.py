"""The runs table, lineage, details, compare, rename and delete on registry rows written directly
(the commands: test_runs_cli.py; runs made by `tunestudio train`: test_runs_e2e.py)."""

from __future__ import annotations

import json
import os

import pytest
from workspaces import add_run

from tunestudio.core import registry
from tunestudio.runs import compare_runs, lineage, run_details, runs_table


def test_runs_table_has_every_column(ws_with_runs):
    rows = runs_table(ws_with_runs)["runs"]
    assert [r["id"] for r in rows] == ["run-d", "run-c", "run-b", "run-a"]  # newest first
    b = rows[2]
    assert b["best_eval_loss"] == 2.4 and b["parent_id"] == "run-a" and b["method"] == "lora"
    assert b["metrics"]["train_loss"] == 2.0 and b["metrics"]["test_exact_match"] == 0.9
    assert rows[0]["status"] == "failed"  # the dead "running" process was reaped


def test_a_newer_benchmark_keeps_the_held_out_scores_in_the_runs_table(ws_with_runs):
    conn = registry.connect(ws_with_runs.db_path)
    conn.execute("INSERT INTO evaluations (created_at, run_id, dataset, split, n, metrics) VALUES (?,?,?,?,?,?)",
                 (1_700_000_200, "run-b", "benchmark: demo_mc", "benchmark", 60,
                  json.dumps({"demo_mc/acc": 0.5, "demo_mc/acc_stderr": 0.06})))
    conn.close()
    b = next(r for r in runs_table(ws_with_runs)["runs"] if r["id"] == "run-b")
    assert b["metrics"]["test_exact_match"] == 0.9


def test_lineage_and_details(ws_with_runs):
    family = lineage(ws_with_runs, "third")
    assert [p["id"] for p in family["parents"]] == ["run-b", "run-a"]
    assert lineage(ws_with_runs, "run-a")["children"] == [{"id": "run-b", "name": "second", "status": "completed"}]
    d = run_details(ws_with_runs, "second")
    assert d["id"] == "run-b" and d["config"]["lr"] == 5e-4 and d["duration_s"] == 60.0
    assert d["split"]["rows"] == {"train": 8, "val": 1, "test": 1} and d["split"]["seed"] == 42
    assert "row ids" not in json.dumps(d["split"]) and "all:1" not in json.dumps(d["split"])
    assert d["evaluations"][0]["metrics"]["f1"] == 0.95
    assert [c["id"] for c in d["lineage"]["children"]] == ["run-c"]
    assert run_details(ws_with_runs, "run-c")["error"] == "dataset row 7: empty answer"


def test_compare(ws_with_runs):
    c = compare_runs(ws_with_runs, "run-a", "run-b")
    diffs = {d["key"]: (d["a"], d["b"]) for d in c["config_differences"]}
    assert diffs == {"lr": (1e-3, 5e-4), "epochs": (1.0, 2.0), "name": ("first", "second")}
    assert c["same_config_keys"] == 2 and c["same_data"] is True
    metrics = {m["key"]: m for m in c["metrics"]}
    assert metrics["eval_loss"]["a"] == 2.7 and metrics["eval_loss"]["b"] == 2.4
    assert metrics["eval_loss"]["delta"] == pytest.approx(-0.3)
    assert {m["key"]: m["b"] for m in c["evaluation"]} == {"exact_match": 0.9, "f1": 0.95}


def test_rename_and_delete_a_run(ws_with_runs):
    """Rename keeps names unique; delete removes the row (and its evaluations) but keeps the
    run's folder unless asked, and the lineage of a child shows the parent as missing."""
    from tunestudio.core.errors import UserError
    from tunestudio.runs.manage import delete_run, rename_run

    assert rename_run(ws_with_runs, "run-b", "  better  ")["name"] == "better"
    assert run_details(ws_with_runs, "better")["id"] == "run-b"
    for bad in ("", "x" * 121, "two\nlines", "first"):   # "first" is run-a's name
        with pytest.raises(UserError):
            rename_run(ws_with_runs, "run-b", bad)
    folder = ws_with_runs.runs_dir / "run-b"
    (folder / "final").mkdir(parents=True)
    conn = registry.connect(ws_with_runs.db_path)   # an LLM judge's verdict on it goes with it
    conn.execute("INSERT INTO judgements (created_at, run_id, mode, n) VALUES (0, 'run-b', 'single', 1)")
    out = delete_run(ws_with_runs, "better")
    assert conn.execute("SELECT count(*) FROM judgements WHERE run_id = 'run-b'").fetchone()[0] == 0
    conn.close()
    assert out == {"id": "run-b", "name": "better", "folder": str(folder), "files_deleted": False}
    assert folder.is_dir() and "run-b" not in [r["id"] for r in runs_table(ws_with_runs)["runs"]]
    with pytest.raises(UserError):
        run_details(ws_with_runs, "run-b")
    assert lineage(ws_with_runs, "run-c")["parents"][0]["status"] == "missing"
    assert delete_run(ws_with_runs, "run-a", delete_files=True)["files_deleted"] is False  # it had no folder
    (ws_with_runs.runs_dir / "run-c").mkdir()
    assert delete_run(ws_with_runs, "run-c", delete_files=True)["files_deleted"] is True
    assert not (ws_with_runs.runs_dir / "run-c").exists()


def test_a_training_run_cannot_be_deleted(ws_with_runs):
    from tunestudio.core.errors import UserError
    from tunestudio.runs.manage import delete_run

    conn = registry.connect(ws_with_runs.db_path)
    add_run(conn, "run-e", "live", status="running", pid=os.getpid(), t=40, metrics=None, finished_at=None)
    conn.close()
    with pytest.raises(UserError, match="training"):
        delete_run(ws_with_runs, "run-e")




def test_split_summary_keeps_token_statistics_and_counts_replay_rows():
    """The engine records {"train": {...}, "val": None, "replay": 24}: `runs show` printed each entry
    as token statistics and failed on the count ('int' object has no attribute 'get')."""
    from tunestudio.runs.query import split_summary

    train = {"tokens": 1000, "trained_tokens": 600, "longest_row_tokens": 90, "truncated": 0, "dropped": 0}
    summary = split_summary({"counts": {"train": 80}, "encoded": {"train": train, "val": None, "replay": 24}})
    assert summary["tokens"] == {"train": train} and summary["replay_rows"] == 24
    assert split_summary({"counts": {"train": 80}, "encoded": {"train": train}})["replay_rows"] == 0
