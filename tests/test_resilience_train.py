"""A model once trained is never lost: a killed resume keeps final/, a damaged checkpoint falls
back to the one before, a full disk is refused with a clear message and leaves no half-written
checkpoint, and a stopped run exits with its own code."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, run_cli
from workspaces import events, get_run, tiny_config

from tunestudio.core import registry
from tunestudio.core.errors import EXIT_STOPPED, UserError
from tunestudio.core.workspace import Workspace
from tunestudio.train import checkpoint as ckpt
from tunestudio.train.run import resume_run, train

pytestmark = pytest.mark.usefixtures("one_thread")
ONE_THREAD = {"OMP_NUM_THREADS": "1"}




def wait_for(predicate, proc, timeout=300):
    import time

    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return predicate()
        time.sleep(0.02)
    return False


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def start(ws: Workspace, *args) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tunestudio", *args, "--workspace", str(ws.root)]
    return subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **ONE_THREAD},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_killed_resume_keeps_final_and_a_later_resume_completes(tiny_ws):
    run_dir = tiny_ws.runs_dir / "r"
    proc = start(tiny_ws, "train", "--model", "tiny", "--dataset", "tiny.jsonl", "--method", "full",
                 "--max-steps", "200", "--save-steps", "5", "--val-split", "0", "--max-length", "64",
                 "--logging-steps", "5", "--run-id", "r", "--json")
    try:
        assert wait_for(lambda: (run_dir / "events.jsonl").is_file()
                        and any(e["type"] == "checkpoint" for e in events(run_dir)), proc)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    stop_code = proc.returncode
    assert json.loads(stdout)["status"] == "stopped", stderr[-2000:]
    before = digest(run_dir / "final")
    assert "model.safetensors" in before and get_run(tiny_ws, "r")["status"] == "stopped"

    proc = start(tiny_ws, "train", "--resume", "r")
    try:  # SIGKILL as soon as the resume has started training
        assert wait_for(lambda: sum(e["type"] == "started" for e in events(run_dir)) == 2, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert digest(run_dir / "final") == before  # the stopped run's model is still there, whole
    assert get_run(tiny_ws, "r")["status"] == "failed"  # the truth: that resume died
    out = run_cli("export", "r", "--output", tiny_ws.root / "exported", ws=tiny_ws.root, env=ONE_THREAD)
    assert out.returncode == 0, out.stderr[-2000:]  # and the model can still be used

    out = run_cli("train", "--resume", "r", "--json", ws=tiny_ws.root, env=ONE_THREAD)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["status"] == "completed" and result["metrics"]["steps"] == 200
    assert digest(run_dir / "final") != before and not (run_dir / ".final.old").exists()
    # a stopped run is not a completed one: its own exit code (it still printed its JSON object)
    assert stop_code == EXIT_STOPPED


def _damage(path: Path) -> None:
    """Same-size garbage: only a check of the content (not of the size) can notice it."""
    size = path.stat().st_size
    path.write_bytes(bytes((i * 7 + 13) % 256 for i in range(size)))


@pytest.mark.parametrize("damaged", ["model.safetensors", "trainer_state.json", "optimizer.pt"])
def test_a_damaged_last_checkpoint_falls_back_to_the_one_before(tiny_ws, one_thread, damaged):
    cfg = tiny_config(method="full", lr=3e-3, max_steps=12, save_steps=4, eval_steps=4, keep_checkpoints=3,
                      val_split=0.15)
    first = train(cfg, tiny_ws)
    run_id, run_dir = first["run_id"], tiny_ws.runs_dir / first["run_id"]
    ckpts = run_dir / "checkpoints"
    assert [p.name for p in ckpt.complete_checkpoints(ckpts)][-2:] == ["checkpoint-8", "checkpoint-12"]
    _damage(ckpts / "checkpoint-12" / damaged)
    conn = registry.connect(tiny_ws.db_path)  # as if the process had died after that save
    registry.update_run(conn, run_id, status="failed", error="killed")
    conn.close()

    result = resume_run(tiny_ws, run_id)
    assert result["status"] == "completed" and result["metrics"]["steps"] == 12
    evs = events(run_dir)
    warning = [e for e in evs if e["type"] == "warning" and e["code"] == "checkpoint_damaged"]
    assert len(warning) == 1 and "checkpoint-12" in warning[0]["message"] and damaged in warning[0]["message"]
    # its parts as fields too: the web UI words it in its language (webui/i18n.engine_warning)
    assert warning[0]["name"] == "checkpoint-12" and damaged in warning[0]["why"] and warning[0]["moved"].startswith("checkpoint-12.damaged-")
    assert [e for e in evs if e["type"] == "started"][-1]["resumed_from"].endswith("checkpoint-8")
    assert "checkpoint-8" in (run_dir / "train.log").read_text()
    moved = [p for p in ckpts.iterdir() if p.name.startswith("checkpoint-12.damaged-")]
    assert len(moved) == 1 and (moved[0] / damaged).is_file()  # kept aside, never deleted
    assert ckpt.verify(ckpts / "checkpoint-12") is None  # saved again, intact
    assert ckpt.verify(moved[0]) and ckpt.verify(ckpts / "checkpoint-8") is None


@pytest.fixture
def tmpfs(tmp_path):
    """A small real tmpfs (the disk that fills up); skipped where mounting is not allowed."""
    mounts = []

    def make(size_mib: int) -> Path:
        mnt = tmp_path / f"tmpfs{len(mounts)}"
        mnt.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(mnt)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounts.append(mnt)
        return mnt

    yield make
    for mnt in reversed(mounts):
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


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


def test_running_out_of_space_mid_save_cleans_up_and_says_so(tiny_template, tmpfs, one_thread, monkeypatch):
    """The estimate can be wrong (another writer fills the disk): the save itself then fails."""
    import shutil

    root = tmpfs(12) / "ws"
    shutil.copytree(tiny_template, root)
    ws = Workspace(root)
    monkeypatch.setattr(ckpt, "ensure_space", lambda *a, **k: None)  # no check before writing
    cfg = tiny_config(method="full", max_steps=500, save_steps=1, keep_checkpoints=500, val_split=0.0)
    with pytest.raises(UserError, match="no space left on device"):
        train(cfg, ws, run_id="midsave")
    staging = ws.runs_dir / "midsave" / "checkpoints" / ckpt.STAGING
    assert not staging.exists() or not any(staging.iterdir())
    run = get_run(ws, "midsave")
    assert run["status"] == "failed" and run["error"].startswith("no space left on device"), run["error"]
    assert all(ckpt.verify(p) is None for p in ckpt.complete_checkpoints(ws.runs_dir / "midsave" / "checkpoints"))
