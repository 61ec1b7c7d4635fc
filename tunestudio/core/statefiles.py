"""Reading the tool's own state files defensively, and setting damaged ones aside.

State files (events.jsonl, metrics.json, split.json, queue.json, the registry) can be damaged by
a crash, a full disk or a hand edit. Whoever reads them goes through here, so a bad line is
skipped and counted, a bad file becomes one clear message naming it, and a damaged file is moved
aside (kept for inspection), never deleted: no traceback reaches a user from a state file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

from tunestudio.core.errors import UserError

NOTICES: list[str] = []   # repairs this process made (a rebuilt registry or queue), shown by the web UI


def read_jsonl(path: Path, offset: int = 0) -> tuple[list[dict], int, int]:
    """The JSON-object lines of `path` from byte `offset`: (records, offset after the last complete
    line, number of bad lines skipped).

    A line still being written (no newline yet) is left for the next call, so a follower never
    sees half a record. A line that is not UTF-8, not JSON, or not a JSON object is skipped and
    counted. A missing or unreadable file reads as nothing.
    """
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            chunk = f.read()
    except OSError:
        return [], offset, 0
    end = chunk.rfind(b"\n")
    if end < 0:
        return [], offset, 0
    records, bad = [], 0
    for line in chunk[: end + 1].splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            value = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            bad += 1
            continue
        if isinstance(value, dict):
            records.append(value)
        else:
            bad += 1
    return records, offset + end + 1, bad


def read_json(path: Path, what: str = "file") -> dict:
    """A JSON object file, or a UserError naming the file and what is wrong with it."""
    path = Path(path)
    # `what` as a coded text where it is one the locale files word (else the caller's English)
    named = {"code": _WHAT[what], "message": what} if what in _WHAT else what
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what} {path} is missing", "state_file_missing", what=named, path=str(path)) from None
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror or e}", "state_file_unreadable", what=named,
                        path=str(path), detail=str(e.strerror or e)) from None
    except (UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{what} {path} is damaged (not JSON: {e})", "state_file_not_json", what=named,
                        path=str(path), detail=str(e)) from None
    if not isinstance(value, dict):
        raise UserError(f"{what} {path} is damaged (expected a JSON object, got {type(value).__name__})",
                        "state_file_not_object", what=named, path=str(path), found=type(value).__name__)
    return value


# what read_json's callers call their file -> its engine.<code> text (webui/i18n/locales)
_WHAT = {"file": "what_file", "the run's split file": "what_split_file"}


def read_json_or_none(path: Path) -> dict | None:
    """A JSON object file, or None when it is missing or damaged (for optional information)."""
    try:
        return read_json(path)
    except UserError:
        return None


@contextlib.contextmanager
def locked(folder: Path):
    """An exclusive lock on `folder` (a cache two processes may fill at once: one fetches, the other
    waits and reuses it), released when the block or the process ends, whatever happens."""
    import fcntl

    with open(folder / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def write_json(path: Path, obj, indent: int = 1) -> None:
    """Write a state file whole or not at all: beside it, flushed to disk, then renamed over `path`.
    The one writer of the tool's own JSON state (queue, job and export records, a run's split.json,
    metrics.json and trackers.json); `indent` keeps each file as it has always been laid out."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(obj, indent=indent, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def move_aside(path: Path, tag: str = "damaged") -> Path:
    """Rename a damaged `path` to `path.damaged-YYYYmmdd-HHMMSS` (never deleted) and return the new path."""
    path = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{tag}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{tag}-{stamp}-{n}")
    os.replace(path, target)
    return target


def free_bytes(folder: Path) -> int:
    """Free space for an unprivileged writer on the file system holding `folder` (or its nearest
    existing parent)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def gib(n: float) -> str:
    """Bytes as GiB, with enough digits that small sizes do not read as 0.00."""
    v = n / 2**30
    return f"{v:.2f} GiB" if v >= 0.1 else f"{v:.3f} GiB"


def describe_os_error(e: OSError) -> str:
    """One line for an OSError about a file: what failed, on which file, and the cause."""
    import errno

    where = f" {e.filename}" if getattr(e, "filename", None) else ""
    if e.errno == errno.ENOSPC:
        return f"no space left on device{(' writing' + where) if where else ''}: free some space and try again"
    if e.errno == errno.EROFS:
        return f"read-only file system{(':' + where) if where else ''}: the workspace must be writable for this"
    if e.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied{(' on' + where) if where else ''} ({e.strerror}): check that the workspace is writable"
    return f"{e.strerror or e}{(':' + where) if where else ''}"


def fsync_tree(folder: Path) -> None:
    """Flush the files to disk before the rename makes them look complete."""
    for p in folder.iterdir():
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def replace_dir(new: Path, dest: Path) -> None:
    """Put the complete folder `new` at `dest`. The old `dest` is first renamed to a backup and
    deleted only after the new one is in place; `recover_dir` undoes a crash in between."""
    fsync_tree(new)
    backup = dest.with_name(f".{dest.name}.old")
    if backup.exists() and dest.exists():
        shutil.rmtree(backup)
    if dest.exists():
        os.replace(dest, backup)
    os.replace(new, dest)
    shutil.rmtree(backup, ignore_errors=True)


def recover_dir(dest: Path) -> None:
    """After a crash inside `replace_dir`: the backup becomes `dest` again if `dest` is missing."""
    backup = dest.with_name(f".{dest.name}.old")
    if backup.is_dir() and not dest.exists():
        os.replace(backup, dest)
