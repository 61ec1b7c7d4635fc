"""Checkpoints on disk: written whole or not at all, found again on resume, pruned as training goes.

The Trainer writes a checkpoint into `checkpoints/.staging/checkpoint-N`; only when every file is
there do we add a marker file and rename the folder to `checkpoints/checkpoint-N` (a rename is
atomic). A folder without the marker (a crash mid-write, a copy cut short) is never resumed from.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

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


def find_step(folder: Path, step: int) -> Path | None:
    p = folder / f"checkpoint-{step}"
    return p if (p / MARKER).is_file() else None


def publish(staged: Path, folder: Path, info: dict) -> Path:
    """Mark the fully written `staged` checkpoint complete and move it into `folder`."""
    (staged / MARKER).write_text(json.dumps({**info, "time": time.time()}), encoding="utf-8")
    _fsync_tree(staged)
    dest = folder / staged.name
    if dest.exists():  # the same step saved again (e.g. after a resume): the new one wins
        shutil.rmtree(dest)
    os.replace(staged, dest)
    return dest


def _fsync_tree(folder: Path) -> None:
    """Flush the files to disk before the rename makes them look complete."""
    for p in folder.iterdir():
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


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
