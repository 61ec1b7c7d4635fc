"""`tunestudio runs list | show | compare`: registry rows written directly (to pin the output),
and runs made by the real `tunestudio train` (to check the two fit together)."""

from __future__ import annotations

import json
import os
import re
import time

import pytest
from helpers import run_cli
from workspaces import add_run

from tunestudio.core import registry
from tunestudio.core.workspace import Workspace
from tunestudio.runs import compare_runs, lineage, run_details, runs_table


@pytest.fixture
def ws_with_runs(workspace):
    ws = Workspace(workspace)
    conn = registry.connect(ws.db_path)
    add_run(conn, "run-a", "first", t=0)
    add_run(conn, "run-b", "second", parent="run-a", t=10,
            config={"model": "tiny-demo", "method": "lora", "lr": 5e-4, "epochs": 2.0, "name": "second"},
            metrics={"steps": 40, "train_loss": 2.0, "eval_loss": 2.4, "best_step": 30})
    add_run(conn, "run-c", "third", parent="run-b", t=20, status="failed", metrics=None,
            error="dataset row 7: empty answer", finished_at=None)
    # A run marked running whose process is gone must show as failed, not running forever.
    add_run(conn, "run-d", "ghost", status="running", pid=2**22 + 12345, t=30, metrics=None, finished_at=None)
    conn.execute("INSERT INTO evaluations (created_at, run_id, dataset, split, n, metrics) VALUES (?,?,?,?,?,?)",
                 (1_700_000_100, "run-b", "reviews.jsonl", "test", 10, json.dumps({"exact_match": 0.9, "f1": 0.95})))
    conn.close()
    return ws


def test_runs_table_has_every_column(ws_with_runs):
    rows = runs_table(ws_with_runs)["runs"]
    assert [r["id"] for r in rows] == ["run-d", "run-c", "run-b", "run-a"]  # newest first
    b = rows[2]
    assert b["best_eval_loss"] == 2.4 and b["parent_id"] == "run-a" and b["method"] == "lora"
    assert b["metrics"]["train_loss"] == 2.0 and b["metrics"]["test_exact_match"] == 0.9
    assert rows[0]["status"] == "failed"  # the dead "running" process was reaped


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


def test_a_resumed_run_reports_the_time_of_every_segment(ws_with_runs):
    """Stopped after 100 s of training, resumed: its duration is both processes' time, not the last's."""
    run_dir = ws_with_runs.runs_dir / "run-b"
    run_dir.mkdir(parents=True)
    t0 = 1_699_999_000
    events = [{"type": "started", "time": t0}, {"type": "train", "time": t0 + 50, "step": 5},
              {"type": "stopped", "time": t0 + 100, "step": 10},
              {"type": "started", "time": 1_700_000_010, "resumed_from": "checkpoint-10"},
              {"type": "completed", "time": 1_700_000_070}]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    d = run_details(ws_with_runs, "run-b")
    assert d["duration_s"] == 160.0 and d["last_segment_s"] == 60.0 and d["segments"] == 2
    assert run_details(ws_with_runs, "run-a")["segments"] == 1   # no events file: one segment
    out = run_cli("runs", "show", "run-b", ws=ws_with_runs.root)
    assert re.search(r"duration \(s\) +160\n", out.stdout) and "2 (resumed; the last took 60.0 s)" in out.stdout, out.stdout


def test_compare(ws_with_runs):
    c = compare_runs(ws_with_runs, "run-a", "run-b")
    diffs = {d["key"]: (d["a"], d["b"]) for d in c["config_differences"]}
    assert diffs == {"lr": (1e-3, 5e-4), "epochs": (1.0, 2.0), "name": ("first", "second")}
    assert c["same_config_keys"] == 2 and c["same_data"] is True
    metrics = {m["key"]: m for m in c["metrics"]}
    assert metrics["eval_loss"]["a"] == 2.7 and metrics["eval_loss"]["b"] == 2.4
    assert metrics["eval_loss"]["delta"] == pytest.approx(-0.3)
    assert {m["key"]: m["b"] for m in c["evaluation"]} == {"exact_match": 0.9, "f1": 0.95}


def test_cli_list_show_compare(ws_with_runs):
    ws = ws_with_runs.root
    r = run_cli("runs", "list", ws=ws)
    assert r.returncode == 0, r.stderr
    header, *lines = r.stdout.splitlines()
    for col in ("ID", "NAME", "STATUS", "BASE", "METHOD", "DATASET", "BEST VAL LOSS", "METRICS", "PARENT", "CREATED"):
        assert col in header
    assert len(lines) == 4 and "tiny-demo" in lines[2] and "/ws/models" not in r.stdout
    assert "test_exact_match=0.9" in lines[2]

    r = run_cli("runs", "list", "--json", ws=ws)
    assert r.returncode == 0 and len(json.loads(r.stdout)["runs"]) == 4

    r = run_cli("runs", "show", "third", ws=ws)
    assert r.returncode == 0, r.stderr
    assert "status: failed" in r.stdout and "error: dataset row 7: empty answer" in r.stdout
    assert "run-b (second) <- run-a (first)" in r.stdout
    r = run_cli("runs", "show", "run-b", "--json", ws=ws)
    assert json.loads(r.stdout)["lineage"]["parents"][0]["id"] == "run-a"

    r = run_cli("runs", "compare", "run-a", "run-b", ws=ws)
    assert r.returncode == 0, r.stderr
    assert "3 difference(s)" in r.stdout and "lr" in r.stdout and "0.0005" in r.stdout
    r = run_cli("runs", "compare", "run-a", "run-b", "--json", ws=ws)
    assert json.loads(r.stdout)["same_data"] is True


def test_unknown_run_is_a_user_error(ws_with_runs, workspace):
    for args in (("show", "nope"), ("compare", "run-a", "nope")):
        r = run_cli("runs", *args, ws=ws_with_runs.root)
        assert r.returncode == 1 and r.stderr.startswith("error: no run 'nope'") and "Traceback" not in r.stderr
    r = run_cli("runs", "show", "run-", ws=ws_with_runs.root)  # an ambiguous id beginning
    assert r.returncode == 1 and "matches several runs" in r.stderr
    assert run_details(ws_with_runs, "run-c")["id"] == "run-c"


def test_an_empty_workspace_has_no_runs_and_gets_no_registry(tmp_path):
    r = run_cli("runs", "list", "--json", ws=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout) == {"runs": []}
    assert not (tmp_path / "tunestudio.db").exists()
    r = run_cli("runs", "show", "x", ws=tmp_path)
    assert r.returncode == 1 and "no runs" in r.stderr


# ---- with the real training command ----------------------------------------------------------

# Few steps and a small validation split: this checks the wiring, not learning (kept fast).
TRAIN = ("--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--method", "lora", "--max-steps", "1",
         "--batch-size", "4", "--max-length", "64", "--val-split", "0.01", "--test-split", "0",
         "--eval-steps", "1", "--json")


def test_runs_made_by_train(demo_ws):
    first = run_cli("train", *TRAIN, "--name", "base-run", ws=demo_ws, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    first = json.loads(first.stdout)
    second = run_cli("train", *TRAIN, "--lr", "5e-4", "--from-run", first["run_id"], ws=demo_ws, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    second = json.loads(second.stdout)

    ws = Workspace(demo_ws)
    rows = {r["id"]: r for r in runs_table(ws)["runs"]}
    assert rows[first["run_id"]]["status"] == "completed" and rows[first["run_id"]]["name"] == "base-run"
    assert rows[second["run_id"]]["parent_id"] == first["run_id"]
    d = run_details(ws, first["run_id"])
    assert d["final_dir"] and os.path.isdir(d["final_dir"])
    assert d["split"]["rows"]["train"] > 0 and d["config"]["method"] == "lora"
    assert d["started"] is not None and d["lineage"]["children"][0]["id"] == second["run_id"]
    c = compare_runs(ws, first["run_id"], second["run_id"])
    keys = {x["key"] for x in c["config_differences"]}
    assert {"lr", "from_run"} <= keys and c["same_data"]
    assert any(m["key"] == "train_loss" and m["a"] is not None and m["b"] is not None for m in c["metrics"])
    r = run_cli("runs", "show", "base-run", ws=demo_ws)
    assert r.returncode == 0 and "status: completed" in r.stdout and time.strftime("%Y") in r.stdout

    # The exported model card tells where the model came from: data rows per split and the parent run.
    out = demo_ws / "exported"
    e = run_cli("export", second["run_id"], "--output", out, ws=demo_ws, timeout=300)
    assert e.returncode == 0, e.stderr[-2000:]
    card = (out / "README.md").read_text()
    train_rows = d["split"]["rows"]["train"]
    assert f'"train": {train_rows}' in card and first["run_id"] in card


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
    out = delete_run(ws_with_runs, "better")
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


def _cli_with_input(ws, text: str, *args):
    """`tunestudio ARGS` with `text` on stdin (the answer to a confirmation)."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "tunestudio", *args, "--workspace", str(ws)], input=text,
                          capture_output=True, text=True, timeout=120, cwd=ws)


def test_cli_rename_and_delete(ws_with_runs):
    """`runs rename` / `runs delete` are the Runs tab's code: names stay unique, delete asks first
    (no answer or "n" deletes nothing), keeps the folder unless --delete-files, and a bad name or
    unknown run is a one-line error with exit 1."""
    ws = ws_with_runs.root
    r = run_cli("runs", "rename", "run-b", "better", ws=ws)
    assert r.returncode == 0 and "run-b is now called 'better'" in r.stdout, r.stderr
    r = run_cli("runs", "rename", "better", "first", ws=ws)       # run-a's name
    assert r.returncode == 1 and r.stderr.startswith("error: another run (run-a)") and "Traceback" not in r.stderr
    r = run_cli("runs", "rename", "nope", "x", ws=ws)
    assert r.returncode == 1 and r.stderr.startswith("error: no run 'nope'")
    r = run_cli("runs", "rename", "run-a", "renamed", "--json", ws=ws)
    assert json.loads(r.stdout)["name"] == "renamed"

    folder = ws_with_runs.runs_dir / "run-b"
    (folder / "final").mkdir(parents=True)
    for answer in ("", "n\n", "nein\n"):
        r = _cli_with_input(ws, answer, "runs", "delete", "better")
        assert r.returncode == 1 and "not deleted" in r.stderr, (answer, r.stderr)
        assert "delete run run-b ('better', completed)" in r.stdout and str(folder) in r.stdout
    assert "run-b" in [x["id"] for x in runs_table(ws_with_runs)["runs"]]
    r = _cli_with_input(ws, "y\n", "runs", "delete", "better")
    assert r.returncode == 0 and "its files stay in" in r.stdout, r.stderr
    assert folder.is_dir() and "run-b" not in [x["id"] for x in runs_table(ws_with_runs)["runs"]]

    (ws_with_runs.runs_dir / "run-c").mkdir()
    r = run_cli("runs", "delete", "run-c", "--yes", "--delete-files", "--json", ws=ws)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"id": "run-c", "name": "third", "folder": str(ws_with_runs.runs_dir / "run-c"),
                                    "files_deleted": True}
    assert not (ws_with_runs.runs_dir / "run-c").exists()
    r = run_cli("runs", "delete", "run-c", "--yes", ws=ws)
    assert r.returncode == 1 and r.stderr.startswith("error: no run 'run-c'") and "Traceback" not in r.stderr
