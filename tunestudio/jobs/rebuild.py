"""Rebuilding a damaged job queue (training/jobs/queue.json) from what cannot lie.

queue.json is written atomically, so a damaged one means a hand edit or a disk fault. Emptying it
would forget a running job, and the next Start would run a second job beside it. Instead the file
is moved aside and each job comes back from its own files: `<job>.yaml` (its config),
`<job>.log` (it was launched), `<job>.exit.json` (how it ended, written by the job itself), and
the live processes that carry its id in their environment ($TUNESTUDIO_JOB_ID, for this
workspace). A job that never started is marked cancelled rather than started behind the user's back.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from tunestudio.core.procs import proc_start
from tunestudio.core.statefiles import NOTICES, move_aside, read_json_or_none
from tunestudio.core.workspace import Workspace
from tunestudio.jobs.job import JOB_ENV, JOB_WS_ENV, Job, apply_exit, jobs_dir


def rebuild(ws: Workspace, path: Path, why: Exception) -> list[Job]:
    """The queue from what is on disk and alive, after moving the damaged `path` aside."""
    moved = move_aside(path)
    d = jobs_dir(ws)
    live = live_job_processes(ws)
    ids = {p.name[: -len(".exit.json")] for p in d.glob("*.exit.json")} | set(live)
    ids |= {p.stem for p in d.glob("*.log")} | {p.stem for p in d.glob("*.yaml")}
    rebuilt = []
    for job_id in sorted(ids):
        config = d / f"{job_id}.yaml"
        log = d / f"{job_id}.log"
        job = Job(id=job_id, config_path=str(config) if config.is_file() else "", log_path=str(log),
                  created_at=(config if config.is_file() else log).stat().st_mtime
                  if (config.is_file() or log.is_file()) else time.time())
        if config.is_file():
            job.command = [sys.executable, "-m", "tunestudio", "train", "--config", str(config),
                           "--workspace", str(ws.root)]
        exit_record = read_json_or_none(d / f"{job_id}.exit.json")
        if job_id in live:
            job.pid, job.command = live[job_id]
            job.pid_start, job.status, job.started_at = proc_start(job.pid), "running", job.created_at
        elif exit_record is not None:
            apply_exit(job, exit_record)
            job.started_at = job.created_at
        elif log.is_file():  # it ran, and ended without a record (killed)
            job.status, job.started_at, job.finished_at = "failed", job.created_at, log.stat().st_mtime
        else:  # never started: the queue that held it is gone, so it is not started behind the user's back
            job.status, job.finished_at = "cancelled", time.time()
        rebuilt.append(job)
    notice = (f"the job queue {path} was damaged ({type(why).__name__}: {str(why)[:120]}): kept as {moved.name} "
              f"and rebuilt from the job files ({len(rebuilt)} job(s), {len(live)} running)")
    NOTICES.append(notice)
    print(f"notice: {notice}", file=sys.stderr, flush=True)
    return sorted(rebuilt, key=lambda j: j.created_at)


def live_job_processes(ws: Workspace) -> dict[str, tuple[int, list[str]]]:
    """{job id: (pid, command)} of the job processes of this workspace that are alive (each
    job is a process-group leader carrying $TUNESTUDIO_JOB_ID)."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(proc.name)
            env = dict(e.split(b"=", 1) for e in (proc / "environ").read_bytes().split(b"\0") if b"=" in e)
            if env.get(JOB_WS_ENV.encode()) != str(ws.root).encode() or os.getpgid(pid) != pid:
                continue
            argv = [a.decode("utf-8", "replace") for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError):
            continue
        job_id = env.get(JOB_ENV.encode(), b"").decode("utf-8", "replace")
        if job_id and state not in ("Z", "X"):
            found[job_id] = (pid, argv)
    return found
