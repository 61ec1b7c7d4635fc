"""Checkpoints on disk: written whole or not at all, found again on resume, pruned as training goes.

The Trainer writes a checkpoint into `checkpoints/.staging/checkpoint-N`; only when every file is
there do we add a marker file and rename the folder to `checkpoints/checkpoint-N` (a rename is
atomic). A folder without the marker (a crash mid-write, a copy cut short) is never resumed from.
The marker records each file's size; `verify` checks them and each file's format again before a
resume trusts a checkpoint (a disk error or a stray write can damage one after it was published),
and `newest_intact` falls back to an older checkpoint, moving the damaged one aside.

`replace_dir` publishes final/ the same way: the new folder is written beside, and the old one
goes only once the new one is complete, so no crash can leave a run without its model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import time
import zipfile
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.core.statefiles import free_bytes, fsync_tree, gib, move_aside

MARKER = "tunestudio-complete.json"
STAGING = ".staging"
# What a checkpoint holds beside the model itself: training state that final/ does not need.
TRAINING_STATE = re.compile(r"^(optimizer\.pt|scheduler\.pt|scaler\.pt|rng_state.*\.pth|trainer_state\.json|"
                            r"training_args\.bin|" + re.escape(MARKER) + r")$")


def step_of(path: Path) -> int:
    return int(path.name.rsplit("-", 1)[1])


def complete_checkpoints(folder: Path) -> list[Path]:
    """The finished checkpoints in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir()
             if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name) and (p / MARKER).is_file()]
    return sorted(found, key=step_of)


def last_checkpoint(folder: Path) -> Path | None:
    done = complete_checkpoints(folder)
    return done[-1] if done else None


def stop_point(folder: Path, step: int, save_every: int | None = None) -> dict:
    """Where a run stopped at `step` stands, read from its checkpoint folders on disk (never from
    what a stop meant to save): {step, checkpoint_step (the newest complete checkpoint's step, or
    None), first_save (the step its first checkpoint is due at, when it has none and the interval
    `save_every` is known, else None)}. A resume goes on from checkpoint_step, else from step 0."""
    last = last_checkpoint(folder)
    saved = step_of(last) if last is not None else None
    first = save_every if saved is None and save_every and save_every > step else None
    return {"step": step, "checkpoint_step": saved, "first_save": first}


def find_step(folder: Path, step: int) -> Path | None:
    p = folder / f"checkpoint-{step}"
    return p if (p / MARKER).is_file() else None


def publish(staged: Path, folder: Path, info: dict) -> Path:
    """Mark the fully written `staged` checkpoint complete and move it into `folder`."""
    sizes = {p.name: p.stat().st_size for p in staged.iterdir() if p.is_file()}
    (staged / MARKER).write_text(json.dumps({**info, "time": time.time(), "files": sizes}), encoding="utf-8")
    fsync_tree(staged)
    dest = folder / staged.name
    if dest.exists():  # the same step saved again (e.g. after a resume): the new one wins
        shutil.rmtree(dest)
    os.replace(staged, dest)
    return dest


def rotate(folder: Path, keep: int, protect: set[int]) -> list[Path]:
    """Delete all but the newest `keep` complete checkpoints, never those whose step is in `protect`."""
    done = complete_checkpoints(folder)
    removed = []
    for p in done[:-keep] if keep else done:
        if step_of(p) not in protect:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def clear_staging(folder: Path) -> None:
    shutil.rmtree(folder / STAGING, ignore_errors=True)


def copy_model(checkpoint: Path, dest: Path) -> None:
    """The model (or adapter) files of `checkpoint` into `dest`, without the training state."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in checkpoint.iterdir():
        if p.is_file() and not TRAINING_STATE.match(p.name):
            shutil.copy2(p, dest / p.name)


# ---- verification and fallback on resume ---------------------------------------------------------

def verify(checkpoint: Path) -> str | None:
    """None when `checkpoint` looks intact, else why not (one line).

    Checks the sizes the marker recorded, that JSON files parse, that safetensors files have a
    valid header whose tensors fill the file exactly, and that torch's zip files (optimizer.pt,
    scheduler.pt, rng_state*.pth, training_args.bin) pass their CRC checks. Reads every byte of
    the zip files (a few seconds for a large optimizer state); the weights only by their header.
    """
    try:
        marker = json.loads((checkpoint / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return f"its completion marker is unreadable ({e})"
    recorded = marker.get("files") if isinstance(marker, dict) else None
    for name, size in (recorded or {}).items():
        p = checkpoint / name
        if not p.is_file():
            return f"{name} is missing"
        if p.stat().st_size != size:
            return f"{name} has {p.stat().st_size} bytes, {size} were written"
    if not (checkpoint / "trainer_state.json").is_file():
        return "trainer_state.json is missing"
    for p in sorted(checkpoint.iterdir()):
        if not p.is_file() or p.name == MARKER:
            continue
        why = _check_file(p)
        if why:
            return f"{p.name} is damaged ({why})"
    return None


def _check_file(p: Path) -> str | None:
    try:
        if p.suffix == ".json":
            value = json.loads(p.read_text(encoding="utf-8"))
            if p.name == "trainer_state.json" and not (isinstance(value, dict) and "global_step" in value):
                return "no global_step"
        elif p.suffix == ".safetensors":
            return _check_safetensors(p)
        elif p.suffix in (".pt", ".pth", ".bin"):
            if not zipfile.is_zipfile(p):
                return "not a torch zip file"
            with zipfile.ZipFile(p) as z:
                bad = z.testzip()
            if bad is not None:
                return f"CRC error in {bad}"
    except (OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        return str(e).splitlines()[0][:200] if str(e) else type(e).__name__
    return None


def _check_safetensors(p: Path) -> str | None:
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return "shorter than a safetensors header"
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, 100 << 20):
            return "invalid header length"
        header = json.loads(f.read(n).decode("utf-8"))
    if not isinstance(header, dict):
        return "invalid header"
    ends = [t["data_offsets"][1] for k, t in header.items()
            if k != "__metadata__" and isinstance(t, dict) and "data_offsets" in t]
    if len(ends) != len(header) - ("__metadata__" in header) or 8 + n + max(ends, default=0) != size:
        return "tensor data does not match its header (truncated or overwritten)"
    return None


def newest_intact(folder: Path, on_damaged=None) -> Path | None:
    """The newest complete checkpoint that passes `verify`. Damaged ones on the way are moved
    aside (renamed `checkpoint-N.damaged-...`, kept for inspection) and reported through
    `on_damaged(path, reason, moved_to)`."""
    for p in reversed(complete_checkpoints(folder)):
        why = verify(p)
        if why is None:
            return p
        moved = move_aside(p)
        if on_damaged is not None:
            on_damaged(p, why, moved)
    return None


# ---- disk space and final/ -------------------------------------------------------------------------

class NoSpace(UserError):
    """Not enough free disk space for a save (checked before writing, or the save ran out)."""


def ensure_space(folder: Path, needed: int, what: str) -> None:
    """Raise NoSpace ("needs N GiB, M free") unless `folder`'s file system can hold `needed`
    bytes plus a small margin (file system overhead, the marker, events)."""
    free = free_bytes(folder)
    margin = max(8 << 20, needed // 50)
    if free < needed + margin:
        raise NoSpace(f"no space left on device for {what} in {folder}: needs {gib(needed + margin)}, "
                      f"{gib(free)} free; free some space (or lower --keep-checkpoints) and resume the run")


def out_of_space(e: BaseException, folder: Path) -> bool:
    """Whether a failed write ran out of space: ENOSPC, or (torch's zip writer reports only
    "unexpected pos") a file system with next to nothing left."""
    import errno

    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(e).lower()
    if "no space left" in text or "disk is full" in text or "disk quota" in text:
        return True
    try:
        return free_bytes(folder) < (4 << 20)
    except OSError:
        return False


def folder_bytes(folder: Path, model_only: bool = False) -> int:
    """Bytes of the files in `folder` (without the training state when `model_only`)."""
    if not folder or not Path(folder).is_dir():
        return 0
    return sum(p.stat().st_size for p in Path(folder).iterdir()
               if p.is_file() and not (model_only and TRAINING_STATE.match(p.name)))
