"""Detached processes known by pid: starting one, whether it is still running, stopping it.

Training jobs (jobs/queue.py), exports and servers (ship/background.py) and sweeps
(sweeps/background.py) each start a `tunestudio ...` command with `start_detached`, keep their own
record of it (pid, start time, log) and their own Popen handles, and stop it with `stop_group`.

A pid alone does not name a process: once it ends the system may hand its pid to another one, and
a child that has exited stays a zombie (`kill(pid, 0)` says it is alive) until its parent waits for
it. So a process is named by its pid and its start time, and our own children are asked through
their Popen handle.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# What every detached tunestudio process gets over the starter's environment: its output is
# written as it comes (a log being followed), and it never reports analytics.
DETACHED_ENV = {"PYTHONUNBUFFERED": "1", "GRADIO_ANALYTICS_ENABLED": "False"}


@dataclass(frozen=True)
class Started:
    pid: int                    # also its process-group id (a new session)
    pid_start: str | None       # proc_start(pid): with the pid, what names the process later
    popen: subprocess.Popen     # for the starter to keep: polling it reaps the child


def start_detached(command: Sequence[str], log_path: Path, *, cwd: Path, env: dict[str, str] | None = None,
                   stdout_path: Path | None = None) -> Started:
    """Start `command` in `cwd` as a process of its own: a new session (it outlives its starter, and
    its whole process group can be signalled), stdin from /dev/null, its output appended to
    `log_path`; with `stdout_path`, its stdout goes there (written afresh) and only its stderr to
    the log. `env`: variables set over the starter's environment and DETACHED_ENV."""
    full_env = {**os.environ, **DETACHED_ENV, **(env or {})}
    with open(log_path, "ab") as log, \
            (open(stdout_path, "wb") if stdout_path is not None else contextlib.nullcontext()) as out:
        popen = subprocess.Popen(command, cwd=str(cwd), env=full_env, stdin=subprocess.DEVNULL,
                                 stdout=log if out is None else out, stderr=subprocess.STDOUT if out is None else log,
                                 start_new_session=True)
    return Started(popen.pid, proc_start(popen.pid), popen)


def stop_group(pid: int, alive: Callable[[], bool], wait: float = 0.0, kill: bool = False,
               sig: signal.Signals | None = signal.SIGTERM) -> None:
    """Send `sig` (SIGTERM; None: none) to the process group `pid` leads (a process from
    `start_detached`), wait up to `wait` seconds while `alive()`, then, with `kill`, SIGKILL the
    group if it is alive still. A group already gone, or not ours to signal, is left be."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if sig is not None:
            os.killpg(pid, sig)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and alive():
        time.sleep(0.2)
    if kill and alive():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (field 3 onwards); None where /proc is missing."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def proc_start(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks); None where /proc is missing."""
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else None


def is_alive(pid: int | None, pid_start: str | None, child: subprocess.Popen | None = None) -> bool:
    """Whether process `pid`, started at `pid_start` (proc_start's value; None: not recorded), still
    runs. `child`: its Popen when this process launched it (polling it also reaps it). A zombie is
    not alive; where /proc cannot tell, a process that answers kill(pid, 0) is."""
    if not pid:
        return False
    if child is not None:
        return child.returncode is None and child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat_fields(pid)   # read once: the state (zombie?) and the start time
    if fields and fields[0] in ("Z", "X"):
        return False
    start = fields[19] if fields and len(fields) > 19 else None
    return pid_start is None or start is None or start == pid_start
