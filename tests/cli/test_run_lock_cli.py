"""The run lock from the command line: `runs delete`, `export`, `eval --run` and `train --resume` of a
run another process holds are refused with one line naming it (exit 1, no traceback), the run intact."""

from __future__ import annotations

import pytest
from helpers import lock_held, run_cli
from workspaces import add_run, get_run

from tunestudio.core import registry
from tunestudio.core.workspace import Workspace


@pytest.fixture
def run_ws(workspace):
    ws = Workspace(workspace)
    conn = registry.connect(ws.db_path)
    add_run(conn, "r", "the-run", status="stopped")
    conn.close()
    folder = ws.runs_dir / "r"
    (folder / "final").mkdir(parents=True)
    (folder / "final" / "config.json").write_text("{}")
    return ws, folder


def refused(out, pid: int, holder: str, action: str) -> None:
    assert out.returncode == 1, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert f"cannot {action} run r now: process {pid} is using it ({holder} since " in out.stderr, out.stderr


def test_delete_during_a_serve_is_refused_naming_it_and_the_run_stays(run_ws):
    ws, folder = run_ws
    with lock_held(folder, "serve") as proc:
        out = run_cli("runs", "delete", "r", "--yes", "--delete-files", ws=ws.root)
        refused(out, proc.pid, "serve", "delete")
        assert (folder / "final" / "config.json").is_file() and get_run(ws, "r")["status"] == "stopped"
    out = run_cli("runs", "delete", "r", "--yes", "--delete-files", "--json", ws=ws.root)
    assert out.returncode == 0 and not folder.exists(), out.stderr


@pytest.mark.parametrize("command", [("export", "r", "--output", "out"), ("eval", "--run", "r"),
                                     ("train", "--resume", "r")])
def test_a_run_being_resumed_is_refused_to_export_eval_and_a_second_resume(run_ws, command):
    ws, folder = run_ws
    with lock_held(folder, "resume") as proc:
        out = run_cli(*command, ws=ws.root)
        refused(out, proc.pid, "resume", {"train": "resume"}.get(command[0], command[0]))
    assert get_run(ws, "r")["status"] == "stopped"   # the refused resume wrote nothing
    assert not (ws.root / "out").exists() and not (folder / "eval").exists()
