"""A full disk is refused before anything is written, and the read commands still work."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import run_cli
from workspaces import events, get_run

from tunestudio.core.workspace import Workspace
from tunestudio.train import checkpoint as ckpt

pytestmark = pytest.mark.usefixtures("one_thread")

ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def _fill(folder: Path) -> None:
    """Fill the file system of `folder` to the last byte (already full: even creating the filler
    file fails, and that is full too)."""
    try:
        with open(folder / "filler", "wb") as f:
            while True:
                f.write(b"\0" * (1 << 16))
                f.flush()
    except OSError:
        pass


def test_a_full_disk_is_refused_before_writing_and_read_commands_still_work(tiny_template, tmpfs):
    import shutil

    root = tmpfs(24) / "ws"
    shutil.copytree(tiny_template, root)
    out = run_cli("train", "--model", "tiny", "--dataset", "tiny.jsonl", "--method", "full", "--max-steps", "500",
                  "--save-steps", "1", "--keep-checkpoints", "500", "--val-split", "0", "--max-length", "64",
                  "--run-id", "full", ws=root, env=ONE_THREAD)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert "no space left on device" in out.stderr and "needs" in out.stderr and "GiB free" in out.stderr
    ws = Workspace(root)
    staging = ws.runs_dir / "full" / "checkpoints" / ckpt.STAGING
    assert not staging.exists() or not any(staging.iterdir())  # nothing half-written keeps the disk full
    run = get_run(ws, "full")
    assert run["status"] == "failed" and run["error"].startswith("no space left on device"), run["error"]
    assert events(ws.runs_dir / "full")[-1]["type"] == "failed"

    _fill(root)  # now truly full: listing and showing must not need to write
    for args in (["runs", "list"], ["runs", "show", "full"], ["runs", "list", "--json"]):
        out = run_cli(*args, ws=root)
        assert out.returncode == 0 and "full" in out.stdout and "Traceback" not in out.stderr, out.stderr[-2000:]
    r = subprocess.run(["mount", "-o", "remount,ro", str(root.parent)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = run_cli("runs", "show", "full", ws=root)  # and on a read-only disk
    assert out.returncode == 0 and "no space left on device" in out.stdout, out.stderr[-2000:]

