"""The training engine end to end: full fine-tuning learns the demo task, a run killed with SIGKILL
resumes to the same result as an uninterrupted one, SIGTERM saves a checkpoint and marks the run stopped."""

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

ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # see one_thread in conftest.py


def test_full_finetuning_learns_the_demo_task(demo_ws):
    out = run_cli("train", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--method", "full",
                  "--lr", "1e-3", "--max-steps", "40", "--batch-size", "8", "--max-length", "96",
                  "--val-split", "0.03", "--test-split", "0.05", "--eval-steps", "20", "--logging-steps", "10",
                  "--json", ws=demo_ws, env=ONE_THREAD)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)  # exactly one JSON object on stdout
    assert set(result) >= {"run_id", "status", "output_dir", "metrics"} and result["status"] == "completed"
    m = result["metrics"]
    assert m["steps"] == 40 and m["best_step"] == 40
    # held-out loss well below the untrained model's (random init: ~7.6 = ln 2048)
    assert m["eval_loss"] < 0.5 * m["initial_eval_loss"], m
    run_dir = demo_ws / "training" / "runs" / result["run_id"]
    assert {p.name for p in run_dir.iterdir()} >= {"config.yaml", "split.json", "events.jsonl", "train.log",
                                                   "checkpoints", "final", "metrics.json"}
    types = [e["type"] for e in events(run_dir)]
    assert types[0] == "started" and types[-1] == "completed" and "eval" in types and "checkpoint" in types
    train_events = [e for e in events(run_dir) if e["type"] == "train"]
    assert all(e["tokens_per_second"] > 0 and e["lr"] is not None and e["token_accuracy"] is not None
               for e in train_events)
    assert "step 40/40" in (run_dir / "train.log").read_text()
    run = get_run(Workspace(demo_ws), result["run_id"])
    assert run["status"] == "completed" and run["metrics"]["eval_loss"] == m["eval_loss"]
    assert run["dataset_hash"] and run["base_revision"].startswith("weights-sha256:")
    assert run["config"]["lr"] == 1e-3 and run["output_dir"] == result["output_dir"]


def wait_for(predicate, timeout=300, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return predicate()
        time.sleep(0.02)
    return False


RESUME_ARGS = ["--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--method", "lora", "--lr", "2e-3",
               "--max-steps", "30", "--batch-size", "8", "--max-length", "64", "--val-split", "0.02",
               "--test-split", "0", "--eval-steps", "10", "--save-steps", "5", "--logging-steps", "5"]


def test_resume_after_sigkill_matches_an_uninterrupted_run(demo_ws):
    ws = Workspace(demo_ws)
    twin = run_cli("train", *RESUME_ARGS, "--name", "twin", "--json", ws=demo_ws, env=ONE_THREAD)
    assert twin.returncode == 0, twin.stderr[-3000:]
    twin = json.loads(twin.stdout)

    cmd = [sys.executable, "-m", "tunestudio", "train", *RESUME_ARGS, "--run-id", "killed",
           "--workspace", str(demo_ws)]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **ONE_THREAD},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = ws.runs_dir / "killed"
    checkpoints = lambda: run_dir.joinpath("events.jsonl").is_file() and \
        sum(e["type"] == "checkpoint" for e in events(run_dir)) >= 2  # noqa: E731
    try:
        assert wait_for(checkpoints, proc=proc), "the run never wrote two checkpoints"
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (run_dir / "final").exists()
    assert get_run(ws, "killed")["status"] == "failed"  # the dead process does not stay "running"

    out = run_cli("train", "--resume", "killed", "--json", ws=demo_ws, env=ONE_THREAD)
    assert out.returncode == 0, out.stderr[-3000:]
    resumed = json.loads(out.stdout)
    assert resumed["run_id"] == "killed" and resumed["status"] == "completed"
    assert resumed["metrics"]["steps"] == twin["metrics"]["steps"] == 30
    assert resumed["metrics"]["eval_loss"] == pytest.approx(twin["metrics"]["eval_loss"], rel=0.02)
    started = [e for e in events(run_dir) if e["type"] == "started"]
    assert len(started) == 2 and started[1]["resumed_from"].split("-")[-1].isdigit()
    assert get_run(ws, "killed")["status"] == "completed"
    assert sorted(p.name for p in ws.runs_dir.iterdir()) == sorted(["killed", twin["run_id"]])


def test_sigterm_saves_a_checkpoint_and_marks_the_run_stopped(tiny_ws):
    cmd = [sys.executable, "-m", "tunestudio", "train", "--model", "tiny", "--dataset", "tiny.jsonl",
           "--max-steps", "100000", "--save-steps", "20", "--val-split", "0", "--max-length", "64",
           "--run-id", "stopme", "--json", "--workspace", str(tiny_ws.root)]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **ONE_THREAD},
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    run_dir = tiny_ws.runs_dir / "stopme"
    try:
        assert wait_for(lambda: run_dir.joinpath("events.jsonl").is_file() and any(
            e["type"] == "checkpoint" for e in events(run_dir)), proc=proc)
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    result = json.loads(stdout)
    assert result["status"] == "stopped" and 20 <= result["metrics"]["steps"] < 100000
    last = events(run_dir)[-1]
    assert last["type"] == "stopped" and last["reason"] == "SIGTERM"
    assert (run_dir / "checkpoints" / f"checkpoint-{result['metrics']['steps']}" / "tunestudio-complete.json").is_file()
    assert get_run(tiny_ws, "stopme")["status"] == "stopped"

