"""Training jobs: detached `tunestudio train --config FILE` processes, one at a time per device.

The web UI never trains in its own process (docs/dev/architecture.md). It writes a run config, asks this
module to submit it, and follows the run's events.jsonl. Everything a UI needs to re-attach lives
on disk, in `training/jobs/`:

    queue.json        every job: queued | running | finished | stopped | failed | cancelled, its pid,
                      run, log
    <job>.yaml        the run config the job was started with (what `--config` gets)
    <job>.log         the process's stdout and stderr
    <job>.exit.json   the job's own record of how it ended ({returncode, time, argv, error}), written by
                      the training process itself (it knows its job from $TUNESTUDIO_JOB_ID), so
                      every observer, not only the UI that launched it, sees the same outcome

so a reloaded page, a second browser or a restarted UI reads the same state. A job is launched
with `start_new_session=True`: closing the UI does not kill it, and Stop can signal its whole
process group (SIGTERM: the engine saves a checkpoint and marks the run stopped).

Queued jobs start when `advance(ws)` sees the device free; the UI calls it from a background
thread and on every poll, so the queue moves while any UI is open; it also reaps this process's
ended children (no <defunct> left behind). A damaged queue.json is moved aside and rebuilt from
the job files, the exit records and the live job processes, never silently emptied.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from tunestudio.config.run_config import load_config, save_config
from tunestudio.core import registry
from tunestudio.core.errors import UserError
from tunestudio.core.procs import is_alive, start_detached, stop_group
from tunestudio.core.progress import listen
from tunestudio.core.statefiles import read_json_or_none, write_json
from tunestudio.core.workspace import Workspace
from tunestudio.jobs.duplicates import find_duplicate, refuse_duplicate
from tunestudio.jobs.job import ACTIVE, ENDED, JOB_ENV, JOB_WS_ENV, Job, apply_exit, jobs_dir
from tunestudio.jobs.job_run import find_run
from tunestudio.jobs.rebuild import rebuild
from tunestudio.train import checkpoint as ckpt
from tunestudio.train.config_check import check_device
from tunestudio.train.launch import launch_command

# Popen handles of the jobs this process launched: a child that exited stays a zombie (and
# `kill(pid, 0)` says it is alive) until someone waits for it, so we poll our own children.
_children: dict[int, subprocess.Popen] = {}
# What the engine's StopFlag (train/callbacks.py) reads: stop with a checkpoint, or at once without one.
STOP_CHECKPOINT, STOP_NOW = signal.SIGTERM, signal.SIGUSR1


# ---- on-disk state --------------------------------------------------------------------------

def _lock_file(d: Path):
    try:
        return open(d / ".lock", "a+")
    except OSError:  # a read-only workspace: reading still works (and any write will say why not)
        return open(d / ".lock" if (d / ".lock").is_file() else os.devnull)


@contextlib.contextmanager
def _locked(ws: Workspace):
    """Read-modify-write of queue.json under an exclusive lock (several UIs may share a workspace).
    Written only when something changed: a UI's poll that finds nothing new writes nothing (so it
    also works on a full or read-only disk)."""
    d = jobs_dir(ws)
    with _lock_file(d) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            jobs = _read(ws)
            before = [asdict(j) for j in jobs]
            yield jobs
            if [asdict(j) for j in jobs] != before or not (d / "queue.json").is_file() and jobs:
                _write(ws, jobs)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read(ws: Workspace) -> list[Job]:
    path = jobs_dir(ws) / "queue.json"
    if not path.is_file():
        return []
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        known = set(Job.__dataclass_fields__)
        return [Job(**{k: v for k, v in j.items() if k in known}) for j in raw["jobs"]]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
        # Written atomically, so a hand edit or a disk fault: keep the file, rebuild the queue
        # from what is on disk and alive, so a running job is never forgotten (and doubled).
        return rebuild(ws, path, e)


def _write(ws: Workspace, jobs: list[Job]) -> None:
    write_json(jobs_dir(ws) / "queue.json", {"jobs": [asdict(j) for j in jobs]})  # atomic: never half a file


def list_jobs(ws: Workspace) -> list[Job]:
    """All jobs, oldest first, with finished processes noticed (see `advance`)."""
    advance(ws)
    return _read(ws)


def get_job(ws: Workspace, job_id: str) -> Job:
    for j in list_jobs(ws):
        if j.id == job_id:
            return j
    raise UserError(f"no job '{job_id}' in this workspace", "job_not_found", job=job_id)


def current_job(ws: Workspace, device: str | None = None) -> Job | None:
    """The running job (on `device`, or on any device), else None."""
    for j in list_jobs(ws):
        if j.status == "running" and (device is None or j.device == device):
            return j
    return None


def latest_job(ws: Workspace, jobs: list[Job] | None = None) -> Job | None:
    """The job a freshly opened page should show: the running one, else the newest started one
    (of `jobs`, a `list_jobs` result the caller already has, else of a fresh one)."""
    jobs = list_jobs(ws) if jobs is None else jobs
    running = [j for j in jobs if j.status == "running"]
    if running:
        return running[0]
    started = [j for j in jobs if j.started_at]
    return max(started, key=lambda j: j.started_at) if started else None


def queued_jobs(ws: Workspace, jobs: list[Job] | None = None) -> list[Job]:
    return [j for j in (list_jobs(ws) if jobs is None else jobs) if j.status == "queued"]


# ---- processes ------------------------------------------------------------------------------

def _reap_children() -> None:
    """Wait for every child of this process that has ended, whatever the queue says about it
    (another UI may have recorded its end first): an unwaited child stays <defunct>."""
    for child in list(_children.values()):
        child.poll()


def _alive(job: Job) -> bool:
    return is_alive(job.pid, job.pid_start, _children.get(job.pid) if job.pid else None)


def _launch(ws: Workspace, job: Job) -> None:
    # its own session: it survives the UI, and Stop signals its group; launched from the web UI,
    # the job reads only inside the workspace, as the UI does (ws.child_env)
    env = {"TOKENIZERS_PARALLELISM": "false", JOB_ENV: job.id, JOB_WS_ENV: str(ws.root), **ws.child_env()}
    started = start_detached(job.command, Path(job.log_path), cwd=ws.root, env=env)
    _children[started.pid] = started.popen
    job.pid, job.pid_start = started.pid, started.pid_start
    job.status, job.started_at = "running", time.time()


def _finish(ws: Workspace, job: Job) -> None:
    """Record a job's end: the exit code from our own child when we launched it, else the job's
    own exit record, else (killed before it could write one) failed with no code."""
    child = _children.pop(job.pid, None) if job.pid else None
    record = read_json_or_none(jobs_dir(ws) / f"{job.id}.exit.json") or {}
    # under accelerate launch the launcher's code says only "a rank failed or was signalled";
    # rank 0's own record tells stopped (checkpointed on SIGTERM) from failed
    launched = job.command[1:3] == ["-m", "accelerate.commands.launch"]
    if child is not None and not (launched and isinstance(record.get("returncode"), int)):
        record = {**record, "returncode": child.returncode}
    apply_exit(job, record)


def progress_path(ws: Workspace, job_id: str) -> Path:
    """Where a job's process writes the progress of its start-up (reading, encoding the data)."""
    return jobs_dir(ws) / f"{job_id}.progress.json"


def report_progress(ws: Workspace) -> None:
    """In a job's own process: each data-stage report (tunestudio/core/progress.py: stage, done,
    total, unit, rate, eta_s) goes to the job's progress file, so the Training tab shows what a
    run is doing before it has a run folder (a million rows take minutes to prepare)."""
    job_id = os.environ.get(JOB_ENV)
    if not job_id:
        return

    path = progress_path(ws, job_id)

    def write(report: dict) -> None:
        with contextlib.suppress(OSError):   # progress is a courtesy: never fail a run for it
            write_json(path, {**report, "at": time.time()})
    listen(write)


def read_progress(ws: Workspace, job: Job, max_age: float = 30.0) -> dict | None:
    """The job's latest start-up progress report, when it is recent (else None)."""
    got = read_json_or_none(progress_path(ws, job.id))
    if not isinstance(got, dict) or time.time() - float(got.get("at", 0)) > max_age:
        return None
    return got


def record_exit(ws: Workspace, job_id: str, returncode: int, run_id: str | None = None,
                error: dict | None = None) -> None:
    """Called by the job's own process as it exits: how it ended, for every observer; `error`: the
    UserError it ended on (errors.error_record), which the web UI words in its language."""
    write_json(jobs_dir(ws) / f"{job_id}.exit.json",
               {"returncode": returncode, "time": time.time(), "run_id": run_id, "argv": sys.argv, "error": error})


def advance(ws: Workspace) -> None:
    """Reap ended children, notice finished jobs, find the runs of running ones, and start queued
    jobs on free devices."""
    _reap_children()
    with _locked(ws) as jobs:
        for j in jobs:
            if j.status == "running" and not _alive(j):
                _finish(ws, j)
        for j in jobs:
            if j.status in ("running", *ENDED) and not j.run_id:
                j.run_id = find_run(ws, j)
        busy = {j.device for j in jobs if j.status == "running"}
        for j in jobs:
            if j.status == "queued" and j.device not in busy:
                _launch(ws, j)
                busy.add(j.device)


# ---- submit, stop, cancel -------------------------------------------------------------------

def submit(ws: Workspace, cfg, name: str = "", device: str = "default", allow_duplicate: bool = False) -> Job:
    """Queue a training job for `cfg` (a RunConfig, or the path of a run-config YAML file).

    The job runs `python -m tunestudio train --config <file> --workspace <ws>`: the command a
    user could type, so a run from the UI and one from the CLI are the same run. It starts at
    once when `device` is free, otherwise it waits in the queue. A config that a queued or
    running job (or a running run) already trains is refused (UserError duplicate_run, from
    jobs/duplicates.py) unless `allow_duplicate`: a second Start is asked about, never a silent copy.
    """
    job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    d = jobs_dir(ws)
    if isinstance(cfg, (str, Path)):
        config_path = Path(cfg).resolve()
    else:
        config_path = d / f"{job_id}.yaml"
        save_config(cfg, config_path)
        name = name or str(getattr(cfg, "name", "") or "")
    launch_cfg = cfg if not isinstance(cfg, (str, Path)) else _config_or_none(config_path)
    try:
        return _enqueue(ws, job_id, ["--config", str(config_path)], str(config_path), name, device,
                        launch_cfg=launch_cfg, unique=launch_cfg if not allow_duplicate else None)
    except UserError:
        if not isinstance(cfg, (str, Path)):   # the config file written for a job that was never queued
            config_path.unlink(missing_ok=True)
        raise


def submit_resume(ws: Workspace, run: str, device: str = "default") -> Job:
    """Queue `tunestudio train --resume RUN`: a stopped or crashed run goes on from its last checkpoint.

    A run that cannot be resumed (completed, running, unknown) is refused here, before a job is
    queued; the job knows its run from the start, so its monitor follows that run's events."""

    found = registry.lookup_run(ws.db_path, run)   # UserError for an unknown run; a dead process -> failed
    if found["status"] == "completed":
        raise UserError(f"run {found['name']} already completed, so there is nothing to resume: to train it "
                        f"further, start a new run with it as Parent run on the Training tab "
                        f"(`--from-run {found['id']}`)", "run_already_completed", run=found["name"])
    if found["status"] == "running":
        raise UserError(f"run {found['name']} is still running: stop it first (Training tab, Stop)", "resume_running",
                        run=found["name"])
    job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    return _enqueue(ws, job_id, ["--resume", found["id"]], "", f"resume {found['name']}", device,
                    run_id=found["id"], launch_cfg=_config_or_none(ws.runs_dir / found["id"] / "config.yaml"))


def check_duplicate(ws: Workspace, cfg, flag: str = "--allow-duplicate", queue: list[Job] | None = None) -> None:
    """Refuse (UserError duplicate_run) a new run of `cfg` that a queued or running job, or a run
    started from a shell, already trains; `flag`: how the caller starts a copy anyway; `queue`: the
    jobs as read under the queue's lock (else read here). Reads the queue without moving it (a
    `tunestudio train` in a shell starts no queued job), and a job's own process is not its own
    duplicate."""
    own = os.environ.get(JOB_ENV)
    live = [j for j in (_read(ws) if queue is None else queue)
            if j.status == "queued" or j.status == "running" and _alive(j)]
    found = find_duplicate(ws, cfg, live, skip_job=own)
    if found:
        raise refuse_duplicate(found, flag)


def resume_start(ws: Workspace, run: str) -> int:
    """The step a resume of `run` (id or name) goes on from: its newest complete checkpoint's, or 0
    when it has none (it stopped before its first was saved): the UI says so before it queues."""
    found = registry.lookup_run(ws.db_path, run)
    last = ckpt.last_checkpoint(ws.runs_dir / found["id"] / "checkpoints")
    return ckpt.step_of(last) if last is not None else 0


def _config_or_none(path: Path):
    """The run config in `path`, or None when it cannot be read (the job itself then says why)."""

    try:
        return load_config(path)
    except UserError:
        return None


def _enqueue(ws: Workspace, job_id: str, train_args: list[str], config_path: str, name: str, device: str,
             run_id: str | None = None, launch_cfg=None, unique=None) -> Job:
    """Queue the job; a config whose `launcher` is not single runs under `accelerate launch`
    (tunestudio/train/launch.py), one job for all its processes (rank 0 writes the run)."""

    train_args = [*train_args, "--workspace", str(ws.root)]
    command = [sys.executable, "-m", "tunestudio", "train", *train_args]
    if launch_cfg is not None and launch_cfg.launcher != "single":
        check_device(launch_cfg)   # a launch this machine cannot do is refused before it is queued
        command = launch_command(launch_cfg, train_args)
    job = Job(id=job_id, config_path=config_path, name=name, device=device, run_id=run_id,
              log_path=str(jobs_dir(ws) / f"{job_id}.log"), command=command)
    with _locked(ws) as jobs:
        if unique is not None:   # checked under the lock: two Starts at once queue one job, not two
            check_duplicate(ws, unique, flag="allow_duplicate=True", queue=jobs)
        jobs.append(job)
    advance(ws)
    return get_job(ws, job_id)


def stop(ws: Workspace, job_id: str | None = None, grace: float = 0.0, now: bool = False) -> Job | None:
    """Ask the running job (`job_id`, else the one running) to stop; None when nothing was running.

    The first Stop sends SIGTERM: the engine saves a checkpoint at the end of the step it is in and
    marks the run stopped; the job records the request and shows as stopping. Another Stop while
    it is stopping is ignored (a double click, a second page): it never turns the promised
    checkpoint into a kill. `now` is the separate, worded action "stop now, without a checkpoint"
    (SIGUSR1: the engine ends the run at once and records that nothing was saved since its last
    checkpoint). With `grace` > 0, wait that many seconds and SIGKILL the group if it is still there.
    """
    advance(ws)
    sig = None
    with _locked(ws) as all_jobs:
        running = [j for j in all_jobs if j.status == "running" and (job_id is None or j.id == job_id)]
        if not running:
            if job_id and not any(j.id == job_id for j in all_jobs):
                raise UserError(f"no job '{job_id}' in this workspace", "job_not_found", job=job_id)
            return None
        job = running[0]
        if now and job.stop_now_at is None:
            job.stop_now_at, sig = time.time(), STOP_NOW
        elif not now and job.stop_requested_at is None and job.stop_now_at is None:
            job.stop_requested_at, sig = time.time(), STOP_CHECKPOINT
    if sig is not None or grace:
        stop_group(job.pid, lambda: _alive(job), wait=grace, kill=bool(grace), sig=sig)
    return job


def cancel(ws: Workspace, job_id: str) -> Job:
    """Take a queued job out of the queue (a running one is stopped with `stop`)."""
    with _locked(ws) as jobs:
        for j in jobs:
            if j.id == job_id:
                if j.status != "queued":
                    raise UserError(f"job {job_id} is {j.status}, not queued: only queued jobs can be cancelled", "job_not_queued",
                        job=job_id, status=j.status)
                j.status, j.finished_at = "cancelled", time.time()
                return j
    raise UserError(f"no job '{job_id}' in this workspace", "job_not_found", job=job_id)


def wait(ws: Workspace, job_id: str, timeout: float = 600, poll: float = 0.5) -> Job:
    """Block until the job has ended (used by tests and scripts)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = get_job(ws, job_id)
        if job.status not in ACTIVE:
            return job
        time.sleep(poll)
    raise TimeoutError(f"job {job_id} still {job.status} after {timeout:.0f}s")
