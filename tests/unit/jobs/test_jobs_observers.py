"""Job outcomes are the job's own: every observer (a second UI in another process) sees the same
status and exit code, the launching process reaps its children, and a damaged queue.json is
rebuilt from the job files and live processes instead of being silently emptied."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from helpers import REPO
from workspaces import queue_job

from tunestudio.core import run_progress
from tunestudio.core.errors import EXIT_STOPPED
from tunestudio.core.workspace import Workspace
from tunestudio.jobs import job
from tunestudio.jobs import queue as jobs

OBSERVER = """
import sys
from pathlib import Path
from tunestudio.jobs import queue as jobs
from tunestudio.core.workspace import Workspace
job = jobs.get_job(Workspace(Path(sys.argv[1])), sys.argv[2])
print(job.status, job.returncode)
"""


def _proc_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def test_a_second_observer_sees_the_jobs_own_exit_status_and_no_child_is_left_defunct(workspace):
    ws = Workspace(workspace)
    # a training job that fails at once (its config file does not exist): exit code 1
    job = queue_job(ws, "fails", [sys.executable, "-m", "tunestudio", "train", "--config",
                                  str(workspace / "missing.yaml"), "--workspace", str(workspace)])
    assert job.status == "running" and job.pid
    exit_record = jobs.jobs_dir(ws) / f"{job.id}.exit.json"
    deadline = time.time() + 120
    while time.time() < deadline and _proc_state(job.pid) != "Z":  # ended, not yet waited for by us
        time.sleep(0.1)
    assert _proc_state(job.pid) == "Z" and exit_record.is_file()

    # another UI process notices the end first: it has no Popen handle, only the files
    seen = subprocess.run([sys.executable, "-c", OBSERVER, str(workspace), job.id], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert seen.returncode == 0, seen.stderr[-2000:]
    assert seen.stdout.split() == ["failed", "1"]
    mine = jobs.get_job(ws, job.id)  # the launching UI agrees, and has reaped its child
    assert (mine.status, mine.returncode) == ("failed", 1)
    assert _proc_state(job.pid) is None, "the ended child was left <defunct>"
    assert "config file" in run_progress.tail(mine.log_path)


def test_exit_codes_map_to_job_statuses():
    assert job.status_for(0) == "finished"
    assert job.status_for(EXIT_STOPPED) == "stopped"
    assert job.status_for(1) == "failed" and job.status_for(-9) == "failed" and job.status_for(None) == "failed"


def test_a_damaged_queue_is_kept_aside_and_rebuilt_from_the_live_job(workspace):
    ws = Workspace(workspace)
    first = queue_job(ws, "long", [sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert first.status == "running"
        queue = jobs.jobs_dir(ws) / "queue.json"
        queue.write_text('{"jobs": [ {"id": "half a fi')  # a damaged file (hand edit, disk fault)
        listed = jobs.list_jobs(ws)
        running = [j for j in listed if j.status == "running"]
        assert [(j.id, j.pid) for j in running] == [(first.id, first.pid)]  # still known, still running
        kept = [p for p in jobs.jobs_dir(ws).iterdir() if p.name.startswith("queue.json.damaged-")]
        assert len(kept) == 1 and "half a fi" in kept[0].read_text()
        second = queue_job(ws, "next", [sys.executable, "-c", "print('second')"])
        assert second.status == "queued"  # the device is still busy: no second job beside the first
    finally:
        jobs.stop(ws, grace=5)
    assert jobs.wait(ws, first.id, timeout=30).status == "failed"  # SIGTERM: -15


def test_a_starting_job_shows_its_data_stage_with_rate_and_eta(workspace, monkeypatch):
    """Before a run exists (a million rows take minutes to read and encode), the job's process
    writes each data stage's progress to the job folder and the Training tab draws it."""
    from tunestudio.core import progress as P
    from tunestudio.webui.tabs.training.tab import startup_progress

    ws = Workspace(workspace)
    job = jobs.Job(id="job-progress", config_path="")
    monkeypatch.setenv(jobs.JOB_ENV, job.id)
    monkeypatch.setattr(P, "LISTEN_EVERY", 0.0)
    monkeypatch.setattr(P, "_listeners", [])
    jobs.report_progress(ws)
    with P.progress(1_000_000, "encoding alpaca-1m.jsonl") as bar:
        bar.update(250_000)
        report = jobs.read_progress(ws, job)
        assert report["stage"] == "encoding alpaca-1m.jsonl"
        assert (report["done"], report["total"], report["unit"]) == (250_000, 1_000_000, "rows")
        assert report["rate"] > 0 and report["eta_s"] is not None
    shown = startup_progress(report, "en")
    assert 'width:25%' in shown and "encoding alpaca-1m.jsonl: 250,000 of 1,000,000 rows" in shown
    assert "rows/s" in shown and "left" in shown
    assert "husi 1,000,000" in startup_progress(report, "tet")
    # an old report (the process died long ago) is not shown as live progress
    report["at"] = time.time() - 3600
    jobs.write_json(jobs.progress_path(ws, job.id), report)
    assert jobs.read_progress(ws, job) is None


def test_a_resume_job_knows_its_run_and_a_completed_run_is_refused_before_queueing(workspace, monkeypatch):
    """Resume A on the Runs tab: the job follows run A's events from the start (its status is the
    run's, not "starting" forever); a completed run is refused at once, naming the UI's way on."""
    import pytest
    from workspaces import add_run

    from tunestudio.core import registry
    from tunestudio.core.errors import UserError

    ws = Workspace(workspace)
    conn = registry.connect(ws.db_path)
    add_run(conn, "run-done", "done", status="completed")
    add_run(conn, "run-stopped", "halted", status="stopped", t=10)
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="Parent run on the Training tab"):
        jobs.submit_resume(ws, "done")
    assert jobs.list_jobs(ws) == []
    monkeypatch.setattr(jobs, "advance", lambda ws: None)   # queued, not started: no real training here
    job = jobs.submit_resume(ws, "halted")
    assert job.run_id == "run-stopped" and job.command[-3:-2] == ["run-stopped"]
