"""A killed resume keeps final/, and a later resume completes the run."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, run_cli
from workspaces import events, get_run

from tunestudio.core.errors import EXIT_STOPPED
from tunestudio.core.workspace import Workspace

pytestmark = pytest.mark.usefixtures("one_thread")

ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def wait_for(predicate, proc, timeout=300):
    import time

    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return predicate()
        time.sleep(0.02)
    return False


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def start(ws: Workspace, *args) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tunestudio", *args, "--workspace", str(ws.root)]
    return subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **ONE_THREAD},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_killed_resume_keeps_final_and_a_later_resume_completes(tiny_ws):
    run_dir = tiny_ws.runs_dir / "r"
    proc = start(tiny_ws, "train", "--model", "tiny", "--dataset", "tiny.jsonl", "--method", "full",
                 "--max-steps", "200", "--save-steps", "5", "--val-split", "0", "--max-length", "64",
                 "--logging-steps", "5", "--run-id", "r", "--json")
    try:
        assert wait_for(lambda: (run_dir / "events.jsonl").is_file()
                        and any(e["type"] == "checkpoint" for e in events(run_dir)), proc)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    stop_code = proc.returncode
    assert json.loads(stdout)["status"] == "stopped", stderr[-2000:]
    before = digest(run_dir / "final")
    assert "model.safetensors" in before and get_run(tiny_ws, "r")["status"] == "stopped"

    proc = start(tiny_ws, "train", "--resume", "r")
    try:  # SIGKILL as soon as the resume has started training
        assert wait_for(lambda: sum(e["type"] == "started" for e in events(run_dir)) == 2, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert digest(run_dir / "final") == before  # the stopped run's model is still there, whole
    assert get_run(tiny_ws, "r")["status"] == "failed"  # the truth: that resume died
    out = run_cli("export", "r", "--output", tiny_ws.root / "exported", ws=tiny_ws.root, env=ONE_THREAD)
    assert out.returncode == 0, out.stderr[-2000:]  # and the model can still be used

    out = run_cli("train", "--resume", "r", "--json", ws=tiny_ws.root, env=ONE_THREAD)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["status"] == "completed" and result["metrics"]["steps"] == 200
    assert digest(run_dir / "final") != before and not (run_dir / ".final.old").exists()
    # a stopped run is not a completed one: its own exit code (it still printed its JSON object)
    assert stop_code == EXIT_STOPPED

