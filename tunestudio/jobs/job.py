"""A training job as the queue records it (training/jobs/queue.json), and how its end is read from
its exit record. Shared by the queue (queue.py) and its rebuilding after damage (rebuild.py)."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from tunestudio.core.errors import EXIT_INTERRUPTED, EXIT_STOPPED
from tunestudio.core.workspace import Workspace

ACTIVE = ("queued", "running")
ENDED = ("finished", "stopped", "failed")
JOB_ENV = "TUNESTUDIO_JOB_ID"   # set in a job's environment: the process records its own exit
JOB_WS_ENV = "TUNESTUDIO_JOB_WORKSPACE"   # and the workspace it belongs to (to find live jobs again)


@dataclass
class Job:
    id: str
    config_path: str                   # the run config file passed to --config
    name: str = ""                     # what the user called the run (shown in the queue)
    device: str = "default"            # one running job per device key
    status: str = "queued"             # queued | running | finished | stopped | failed | cancelled
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    pid: int | None = None             # also the process-group id (start_new_session)
    pid_start: str | None = None       # the process start time, so a reused pid is not mistaken for ours
    run_id: str | None = None          # known once the engine has created the run
    log_path: str = ""
    returncode: int | None = None
    command: list[str] = field(default_factory=list)
    error: dict | None = None          # a failed job's UserError ({message, code, fields}: errors.error_record)
    stop_requested_at: float | None = None   # Stop asked (it saves a checkpoint): shown as "stopping"
    stop_now_at: float | None = None         # "Stop now" asked: ends at once, without a checkpoint

    @property
    def stopping(self) -> bool:
        """Running, and asked to stop: a second Stop changes nothing (queue.stop)."""
        return self.status == "running" and (self.stop_requested_at is not None or self.stop_now_at is not None)

    def command_line(self) -> str:
        """The command as a user would type it (shown in the UI)."""
        args = self.command
        if self.command[1:3] == ["-m", "tunestudio"]:
            args = ["tunestudio", *self.command[3:]]
        elif self.command[1:3] == ["-m", "accelerate.commands.launch"]:  # a multi-process run
            args = ["accelerate", "launch", *self.command[3:]]
        return shlex.join(args)


def jobs_dir(ws: Workspace) -> Path:
    d = ws.jobs_dir
    d.mkdir(parents=True, exist_ok=True)
    return d


def status_for(returncode: int | None) -> str:
    """A job's status from its exit code: 0 finished, EXIT_STOPPED or EXIT_INTERRUPTED stopped
    (on request), else failed (None too: the process ended without anyone learning how, e.g.
    killed with SIGKILL)."""
    if returncode == 0:
        return "finished"
    return "stopped" if returncode in (EXIT_STOPPED, EXIT_INTERRUPTED) else "failed"


def apply_exit(job: Job, record: dict) -> None:
    job.returncode = record.get("returncode") if isinstance(record.get("returncode"), int) else None
    job.finished_at = record.get("time") or time.time()
    job.status = status_for(job.returncode)
    job.run_id = job.run_id or record.get("run_id")
    job.error = record.get("error") if isinstance(record.get("error"), dict) else None
