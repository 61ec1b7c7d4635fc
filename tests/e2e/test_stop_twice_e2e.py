"""Stop for real, on a training process: a second SIGTERM (Stop pressed twice) still ends with the
checkpoint the first promised; SIGUSR1 ("Stop now") ends at once, and the run's registry row says
no checkpoint was saved and when the first was due; resuming it says it starts again from step 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import REPO
from workspaces import events, get_run

from tunestudio.core.errors import EXIT_INTERRUPTED, EXIT_STOPPED

pytestmark = pytest.mark.usefixtures("one_thread")

ARGS = ["--model", "tiny", "--dataset", "tiny.jsonl", "--method", "full", "--max-steps", "400",
        "--val-split", "0", "--max-length", "64", "--logging-steps", "1"]


def start(ws, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tunestudio", *args, "--workspace", str(ws.root)], cwd=REPO,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(predicate, proc, timeout=300) -> bool:
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _trained(run_dir) -> bool:
    return (run_dir / "events.jsonl").is_file() and any(e["type"] == "train" for e in events(run_dir))


def test_a_second_sigterm_still_saves_the_checkpoint(tiny_ws):
    run_dir = tiny_ws.runs_dir / "twice"
    proc = start(tiny_ws, "train", *ARGS, "--save-steps", "1000", "--run-id", "twice")
    try:
        assert wait_for(lambda: _trained(run_dir), proc)
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: False, proc, timeout=0.5)   # two signals sent at once arrive as one
        proc.send_signal(signal.SIGTERM)   # Stop pressed twice
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT_STOPPED, stderr[-2000:]
    (stopped,) = [e for e in events(run_dir) if e["type"] == "stopped"]
    assert stopped["checkpoint_step"] == stopped["step"] and stopped["reason"] == "SIGTERM"
    assert (run_dir / "checkpoints" / f"checkpoint-{stopped['step']}").is_dir()


def test_stop_now_says_no_checkpoint_was_saved_and_resume_says_it_starts_over(tiny_ws):
    run_dir = tiny_ws.runs_dir / "now"
    proc = start(tiny_ws, "train", *ARGS, "--save-steps", "1000", "--run-id", "now")
    try:
        assert wait_for(lambda: _trained(run_dir), proc)
        proc.send_signal(signal.SIGUSR1)   # "Stop now (no checkpoint)"
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED, stderr[-2000:]
    row = get_run(tiny_ws, "now")
    assert row["status"] == "stopped" and not any((run_dir / "checkpoints").glob("checkpoint-*"))
    assert "no checkpoint was saved (the first is saved at step 1000), so a resume starts again from step 0" \
        in row["error"], row["error"]
    (stopped,) = [e for e in events(run_dir) if e["type"] == "stopped"]
    assert stopped["checkpoint_step"] is None and stopped["first_save"] == 1000

    # the resume says, in words, that it starts from step 0 (then it is stopped again: enough)
    proc = start(tiny_ws, "train", "--resume", "now")
    try:
        assert wait_for(lambda: any(e.get("code") == "resume_from_start" for e in events(run_dir)), proc)
        proc.send_signal(signal.SIGUSR1)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "resuming starts again from step 0" in stderr
