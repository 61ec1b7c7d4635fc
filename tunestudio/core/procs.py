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
