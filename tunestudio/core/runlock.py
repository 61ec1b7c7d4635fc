"""One writer per run: a lock on the run folder, `<run>/.lock` (`fcntl.flock`).

Whoever writes into a run, or must not see it vanish, holds the lock for as long as it works on
the run; the kernel drops it when the process ends, however it ends (SIGKILL, a crash), so there
is never a stale lock to clean up. Two kinds:

- exclusive: `train` (from right after a new run's folder is made), `train --resume` (before it
  reads or writes anything), `runs delete` (the CLI and the Runs tab);
- shared: `export`, `eval --run` and `serve` of a run. They only read the run (an eval adds its own
  new folder under eval/ and a registry row), so several may run at once, but none while the run
  trains, resumes or is deleted, and a delete waits for none of them: it is refused.

A lock is never waited for (LOCK_NB): the second process is refused at once with a UserError that
names the holder, which each holder writes into the lock file as one JSON line (pid, what it does,
since when). Under `accelerate launch` only the main process takes it (train/run.py).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from pathlib import Path

from tunestudio.core import registry
from tunestudio.core.errors import UserError
from tunestudio.core.procs import is_alive, proc_start

LOCK_NAME = ".lock"

# the commands that take the lock, and whether they share it with one another
SHARED = ("export", "eval", "serve")
EXCLUSIVE = ("train", "resume", "delete")


_HELD: dict[str, int] = {}   # folder -> how many locks this process holds on it now


class RunLock:
    """A held lock on one run folder (release() or the process's end lets it go)."""

    def __init__(self, fd: int, folder: Path, what: str, shared: bool):
        self.fd, self.folder, self.what, self.shared = fd, folder, what, shared
        _HELD[str(folder)] = _HELD.get(str(folder), 0) + 1

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        _HELD[str(self.folder)] -= 1
        try:
            # the last holder leaves the file empty (a holder's line left behind names nobody: the
            # refusal reads only lines of live processes, but an empty file is plainer)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            os.close(fd)   # closing the last descriptor of the open file drops the lock

    def keep_across_exec(self) -> None:
        """Let a program this process becomes by os.exec* (vLLM) go on holding the lock."""
        if self.fd is not None:
            os.set_inheritable(self.fd, True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def acquire(folder: Path, what: str, run: str | None = None) -> RunLock | None:
    """Lock run folder `folder` for `what` (one of SHARED or EXCLUSIVE), or raise UserError
    (`run_in_use`) naming the process that holds it. None, and no lock, where there is nothing to
    lock or the file system cannot lock: a missing folder (the caller's own check says what is
    missing), a read-only one."""
    shared = what in SHARED
    folder = Path(folder)
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None   # a file system without locks (ENOLCK, EOPNOTSUPP): go on unlocked
        raise refusal(folder, what, run or folder.name) from None
    try:
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            raise FileNotFoundError(path)   # deleted (and perhaps made again) while we waited
        if not shared:
            os.ftruncate(fd, 0)   # the holders' lines: only ours now
        os.write(fd, (json.dumps({"pid": os.getpid(), "pid_start": proc_start(os.getpid()), "what": what,
                                  "since": time.time(), "shared": shared}) + "\n").encode())
    except FileNotFoundError:
        os.close(fd)
        raise UserError(f"run {run or folder.name} was deleted meanwhile: {folder} is gone", "run_folder_gone",
                        run=run or folder.name, folder=str(folder)) from None
    except OSError:
        pass   # the lock holds; only its holder's name is missing (a full disk)
    return RunLock(fd, folder, what, shared)


def holders(folder: Path) -> list[dict]:
    """The live processes that hold (or last held) the lock on `folder`, as they wrote themselves."""
    folder = Path(folder)
    try:
        text = (Path(folder) / LOCK_NAME).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            h = json.loads(line)
            if not isinstance(h.get("pid"), int) or not is_alive(h["pid"], h.get("pid_start")):
                continue
            if h["pid"] == os.getpid() and not _HELD.get(str(folder)):
                continue   # a lock this process held and let go (a reader's line stays behind)
            out.append(h)
    return out


def refusal(folder: Path, what: str, run: str) -> UserError:
    """The UserError for `what` refused on run `run` because another process holds its lock."""
    found = holders(folder)
    if not found:
        return UserError(f"cannot {what} run {run} now: another process is using it (its lock {folder / LOCK_NAME} "
                         "is held); wait for it to end or stop it, then try again", "run_in_use_unknown",
                         action=what, run=run, path=str(folder / LOCK_NAME))
    h = found[-1]
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h.get("since") or 0))
    more = f" and {len(found) - 1} other process(es)" if len(found) > 1 else ""
    return UserError(f"cannot {what} run {run} now: process {h['pid']} is using it ({h.get('what')} since {since})"
                     f"{more}; wait for it to end or stop it, then try again", "run_in_use", action=what, run=run,
                     pid=h["pid"], holder=str(h.get("what")), since=since, more=more)


def hold_run(ws, ref: str | None, what: str):
    """acquire() on the folder of run `ref` (id, name or id prefix, as the registry knows it, or a
    folder under training/runs), as a context manager; nothing is locked where `ref` names no run
    folder (a model folder, an unknown name: the command says so itself)."""
    folder, run = _run_folder(ws, ref)
    lock = acquire(folder, what, run) if folder is not None else None
    return lock if lock is not None else contextlib.nullcontext()


def _run_folder(ws, ref: str | None) -> tuple[Path | None, str | None]:
    if not ref:
        return None, None
    if ws.db_path.is_file():
        with contextlib.suppress(UserError):
            run_id = registry.lookup_run(ws.db_path, ref)["id"]
            folder = ws.runs_dir / run_id
            return (folder, run_id) if folder.is_dir() else (None, None)
    with contextlib.suppress(UserError, ValueError, OSError):
        folder = ws.safe_join(ws.runs_dir, ref)
        if folder.is_dir() and folder.parent == ws.runs_dir.resolve():
            return folder, ref
    return None, None
