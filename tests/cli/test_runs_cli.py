"""`tunestudio runs list | show | compare | rename | delete` on registry rows written directly (to pin
the output), unknown runs and an empty workspace."""

from __future__ import annotations

import json
import re

from helpers import run_cli

from tunestudio.runs import run_details, runs_table


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

