"""Training jobs: detached processes, one at a time, a visible queue with cancel, stop by SIGTERM,
and state on disk that a second reader (a reloaded page, a restarted UI) sees the same way (a real
training job: test_jobs_e2e.py)."""

from __future__ import annotations

import json
import sys
import time

import pytest
from workspaces import queue_job

from tunestudio.core import run_progress
from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.jobs import queue as jobs


def _sleeper(ws: Workspace, seconds: float, name: str) -> jobs.Job:
    """A job whose command is a plain sleep: tests the queue without training anything."""
    return queue_job(ws, name, [sys.executable, "-c", f"import time; print('hi', flush=True); time.sleep({seconds})"])


def test_one_job_at_a_time_then_the_queue_moves(workspace):
    ws = Workspace(workspace)
    first = _sleeper(ws, 1.5, "first")
    second = _sleeper(ws, 0.1, "second")
    assert first.status == "running" and first.pid
    assert second.status == "queued"
    assert [j.id for j in jobs.queued_jobs(ws)] == [second.id]
    done = jobs.wait(ws, first.id, timeout=30)
    assert done.status == "finished" and done.returncode == 0
    jobs.advance(ws)  # what the UI's background thread does
    assert jobs.get_job(ws, second.id).status in ("running", "finished")
    assert jobs.wait(ws, second.id, timeout=30).status == "finished"
    assert "hi" in run_progress.tail(done.log_path)


def test_cancel_a_queued_job_and_stop_the_running_one(workspace):
    ws = Workspace(workspace)
    running = _sleeper(ws, 60, "long")
    queued = _sleeper(ws, 60, "waiting")
    assert jobs.cancel(ws, queued.id).status == "cancelled"
    with pytest.raises(UserError):
        jobs.cancel(ws, running.id)  # running jobs are stopped, not cancelled
    t0 = time.time()
    assert jobs.stop(ws, grace=10).id == running.id
    ended = jobs.wait(ws, running.id, timeout=15)
    assert time.time() - t0 < 15
    assert ended.status == "failed" and ended.returncode == -15  # SIGTERM reached the process group
    assert jobs.get_job(ws, queued.id).status == "cancelled"   # a cancelled job never starts
    assert jobs.current_job(ws) is None


def test_state_is_on_disk_for_another_reader(workspace):
    ws = Workspace(workspace)
    job = _sleeper(ws, 30, "visible")
    saved = json.loads((ws.jobs_dir / "queue.json").read_text())
    assert [j["id"] for j in saved["jobs"]] == [job.id]
    # A second UI process has no Popen handle: it must still see the job as running.
    jobs._children.clear()
    assert jobs.latest_job(ws).id == job.id and jobs.latest_job(ws).status == "running"
    jobs.stop(ws, grace=5)


def test_follow_reads_only_complete_new_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "started", "time": 100, "total_steps": 10}\n{"type": "train", "st')
    f = run_progress.Follower(path)
    assert [e["type"] for e in f.poll()] == ["started"]
    with open(path, "a") as out:
        out.write('ep": 5, "loss": 2.0, "lr": 0.001, "time": 105}\n'
                  '{"type": "eval", "step": 5, "eval_loss": 2.5}\n')
    assert [e["type"] for e in f.poll()] == ["train", "eval"]
    assert f.poll() == []
    s = run_progress.summarize(f.events, now=106)
    assert s["status"] == "running" and s["step"] == 5 and s["progress"] == 0.5
    assert s["train"] == [(5, 2.0)] and s["val"] == [(5, 2.5)] and s["eta_s"] is not None
    with open(path, "a") as out:
        out.write('{"type": "warning", "code": "overfitting", "message": "validation loss rising"}\n'
                  '{"type": "early_stop", "step": 8, "best_step": 5, "patience": 2}\n'
                  '{"type": "completed", "metrics": {"train_loss": 1.5}}\n')
    f.poll()
    s = run_progress.summarize(f.events)
    assert s["status"] == "completed" and s["progress"] == 1.0 and s["eta_s"] is None
    assert s["warnings"] == ["validation loss rising"] and s["early_stop"]["best_step"] == 5


def test_summary_has_the_device_precision_and_live_memory_of_the_latest_process():
    """The monitor's device line comes from the events: the latest "started" (a resumed run may
    move to another device) and the latest logged step's memory."""
    from tunestudio.core.run_progress import summarize

    events = [{"type": "started", "time": 1, "device": "cpu", "precision": "fp32"},
              {"type": "train", "time": 2, "step": 1, "loss": 2.0, "rss_mb": 500.0, "gpu_mb": None},
              {"type": "started", "time": 3, "device": "NVIDIA H200", "precision": "bf16"},
              {"type": "train", "time": 4, "step": 2, "loss": 1.5, "rss_mb": 800.5, "gpu_mb": 1024.0,
               "peak_memory_mb": 2048.0},
              {"type": "train", "time": 5, "step": 3, "loss": 1.4, "rss_mb": "damaged"}]
    s = summarize(events)
    assert (s["device"], s["precision"]) == ("NVIDIA H200", "bf16")
    assert (s["rss_mb"], s["gpu_mb"], s["peak_memory_mb"]) == (800.5, 1024.0, 2048.0)
    from tunestudio.webui.tabs.training.tab import device_line

    line = device_line("en", s)
    assert "NVIDIA H200" in line and "bf16" in line and "800.5 MiB" in line and "1.0 GiB" in line, line
    assert "la iha GPU" in device_line("tet", {**s, "gpu_mb": None})
