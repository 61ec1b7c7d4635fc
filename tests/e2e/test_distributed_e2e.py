"""Scale-out for real: the same `tunestudio train` under torchrun with 2 CPU processes (gloo) gives
ONE complete run, from the command line and from the job queue (the launcher configs: test_distributed.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import REPO

from tunestudio.core import registry
from tunestudio.core.workspace import Workspace


def test_two_cpu_processes_make_one_complete_run(demo_ws):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "tunestudio", "train", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl",
           "--method", "lora", "--max-steps", "2", "--batch-size", "4", "--max-length", "64",
           "--val-split", "0.01", "--test-split", "0", "--eval-steps", "2", "--name", "ddp-check",
           "--json", "--workspace", str(demo_ws)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=420, env=env, cwd=demo_ws)
    assert r.returncode == 0, r.stderr[-3000:]

    # The CLI contract holds under torchrun too: one JSON object on stdout (rank 0's).
    printed = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1, f"{len(printed)} JSON objects on stdout (one per rank?):\n{r.stdout}"
    result = printed[0]
    assert result["status"] == "completed" and result["metrics"]["steps"] == 2

    conn = registry.connect(Workspace(demo_ws).db_path)
    runs = registry.list_runs(conn)
    conn.close()
    assert [(run["id"], run["status"]) for run in runs] == [(result["run_id"], "completed")]

    run_dirs = [p for p in (demo_ws / "training" / "runs").iterdir() if p.is_dir()]
    assert [p.name for p in run_dirs] == [result["run_id"]]
    events = [json.loads(line) for line in (run_dirs[0] / "events.jsonl").read_text().splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds.count("started") == 1 and kinds.count("completed") == 1, kinds  # rank 0 alone wrote
    started = next(e for e in events if e["type"] == "started")
    assert started["world_size"] == 2  # both ranks took part
    final = run_dirs[0] / "final"
    assert (final / "adapter_config.json").is_file() and (final / "adapter_model.safetensors").is_file()


def _cfg(**kw):
    from tunestudio.config.run_config import RunConfig

    return RunConfig(model="tiny-demo", dataset="demo-reviews.jsonl", **kw)


def _one_completed_two_process_run(ws: Path) -> dict:
    conn = registry.connect(Workspace(ws).db_path)
    runs = registry.list_runs(conn)
    conn.close()
    assert [run["status"] for run in runs] == ["completed"], runs
    run_dir = ws / "training" / "runs" / runs[0]["id"]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds.count("started") == 1 and kinds.count("completed") == 1, kinds
    assert next(e for e in events if e["type"] == "started")["world_size"] == 2
    assert (run_dir / "final" / "adapter_model.safetensors").is_file()
    return runs[0]


def test_job_queue_launches_two_gloo_processes_as_one_run(demo_ws):
    """A run config with launcher ddp and 2 processes, submitted to the queue as the Training tab
    does, runs under accelerate launch (2 CPU processes over gloo) and makes one registry row."""
    from tunestudio.core import run_progress
    from tunestudio.jobs import queue as jobs

    ws = Workspace(demo_ws)
    cfg = _cfg(method="lora", max_steps=2, batch_size=4, max_length=64, val_split=0.01, test_split=0,
               eval_steps=2, name="queue-ddp", launcher="ddp", num_processes=2)
    job = jobs.submit(ws, cfg)
    assert job.command_line().startswith("accelerate launch --config_file ")
    assert job.command[job.command.index("--num_processes") + 1] == "2"
    done = jobs.wait(ws, job.id, timeout=420)
    assert done.status == "finished", run_progress.tail(done.log_path, 60)
    run = _one_completed_two_process_run(demo_ws)
    assert done.run_id == run["id"]          # the queue knows its run: the monitor follows rank 0's
    assert run["config"]["launcher"] == "ddp" and run["config"]["num_processes"] == 2   # saved with the run


def test_cli_train_with_a_launcher_relaunches_itself(demo_ws):
    """`tunestudio train --launcher ddp --num-processes 2` typed by hand becomes the same
    accelerate launch: one run, two processes, one JSON object on stdout."""
    from helpers import run_cli

    r = run_cli("train", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--method", "lora",
                "--max-steps", "2", "--batch-size", "4", "--max-length", "64", "--val-split", "0.01",
                "--test-split", "0", "--launcher", "ddp", "--num-processes", "2", "--json", ws=demo_ws, timeout=420)
    assert r.returncode == 0, r.stderr[-3000:]
    printed = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1 and printed[0]["status"] == "completed"
    assert _one_completed_two_process_run(demo_ws)["id"] == printed[0]["run_id"]

