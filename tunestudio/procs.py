"""Detached processes known by pid: whether the one we started is still running.

A pid alone does not name a process: once it ends the system may hand its pid to another one, and
a child that has exited stays a zombie (`kill(pid, 0)` says it is alive) until its parent waits for
it. So a process is named by its pid and its start time, and our own children are asked through
their Popen handle.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def proc_start(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks); None where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 else None


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
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return False
    except OSError:
        pass
    start = proc_start(pid)
    return pid_start is None or start is None or start == pid_start
