"""One writer per run, for real: two `train --resume RUN` started together on a tiny model: one
trains, the other is refused at once naming it, and events.jsonl holds each step once; a delete
while the run trains is refused and the run carries on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import REPO, run_cli
from workspaces import events, get_run

from tunestudio.core.workspace import Workspace

pytestmark = pytest.mark.usefixtures("one_thread")

ONE_THREAD = {"OMP_NUM_THREADS": "1"}
STEPS = 80


def start(ws: Workspace, *args) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tunestudio", *args, "--workspace", str(ws.root)]
    return subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **ONE_THREAD},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stopped_run(ws: Workspace) -> None:
    """Run `r`, stopped (SIGTERM) once it has a checkpoint: a run to resume."""
    run_dir = ws.runs_dir / "r"
    proc = start(ws, "train", "--model", "tiny", "--dataset", "tiny.jsonl", "--method", "full",
                 "--max-steps", str(STEPS), "--save-steps", "5", "--val-split", "0", "--max-length", "64",
                 "--logging-steps", "1", "--run-id", "r", "--json")
    try:
        end = time.time() + 300
        while not ((run_dir / "events.jsonl").is_file() and any(e["type"] == "checkpoint" for e in events(run_dir))):
            assert proc.poll() is None and time.time() < end, proc.stderr.read()[-2000:] if proc.stderr else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert get_run(ws, "r")["status"] == "stopped"


def test_two_resumes_at_once_one_trains_the_other_is_refused_naming_it(tiny_ws):
    stopped_run(tiny_ws)
    run_dir = tiny_ws.runs_dir / "r"
    procs = [start(tiny_ws, "train", "--resume", "r", "--json") for _ in range(2)]
    try:
        outs = [p.communicate(timeout=400) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 1], [o[1][-2000:] for o in outs]
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    stderr = outs[loser][1]
    assert "Traceback" not in stderr and outs[loser][0] == ""
    assert f"cannot resume run r now: process {procs[winner].pid} is using it (resume since " in stderr, stderr
    assert json.loads(outs[winner][0])["status"] == "completed"
    assert get_run(tiny_ws, "r")["status"] == "completed" and get_run(tiny_ws, "r")["pid"] == procs[winner].pid

    # events.jsonl: the first process, then one resume, never two; the resume logs each step once
    evs = events(run_dir)
    starts = [i for i, e in enumerate(evs) if e["type"] == "started"]
    assert len(starts) == 2, [e["type"] for e in evs]
    resumed = [e["step"] for e in evs[starts[1]:] if e["type"] == "train"]
    assert resumed == sorted(set(resumed)) and resumed[-1] == STEPS, resumed
    assert sum(e["type"] == "completed" for e in evs) == 1


def test_a_delete_while_the_run_trains_is_refused_and_the_run_completes(tiny_ws):
    stopped_run(tiny_ws)
    run_dir = tiny_ws.runs_dir / "r"
    proc = start(tiny_ws, "train", "--resume", "r", "--json")
    try:
        end = time.time() + 300
        while sum(e["type"] == "started" for e in events(run_dir)) < 2:   # the resume is training
            assert proc.poll() is None and time.time() < end, proc.stderr.read()[-2000:]
            time.sleep(0.05)
        # refused by the registry's "is it training?" check, or by the lock in the window before the
        # resume writes its status: either way one line, the run untouched
        out = run_cli("runs", "delete", "r", "--yes", "--delete-files", ws=tiny_ws.root)
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        assert "run r" in out.stderr and (str(proc.pid) in out.stderr or "training" in out.stderr), out.stderr
        stdout, stderr = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-2000:]
    assert json.loads(stdout)["status"] == "completed" and (run_dir / "final").is_dir()
