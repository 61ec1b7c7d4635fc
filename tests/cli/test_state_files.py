"""Damaged state files never end in a traceback: the registry is rebuilt from the run folders
(a damaged one kept aside), bad event lines are skipped and counted, a read-only registry or runs
folder is one clear message with nothing left behind, and the web UI starts (and refuses other
sites' Host headers)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from helpers import REPO, run_cli
from workspaces import tiny_config

from tunestudio.core import run_progress
from tunestudio.core.workspace import Workspace
from tunestudio.train.run import train


@pytest.fixture(scope="module")
def ran(tiny_template, tmp_path_factory):
    """A workspace with one real, completed run."""
    root = tmp_path_factory.mktemp("ran") / "ws"
    shutil.copytree(tiny_template, root)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(tiny_config(method="full", max_steps=2, val_split=0.0, save_steps=2, name="first"), Workspace(root))
    finally:
        torch.set_num_threads(threads)
    return root, result["run_id"]


@pytest.fixture
def ws(ran, tmp_path):
    shutil.copytree(ran[0], tmp_path / "ws")
    return Workspace(tmp_path / "ws"), ran[1]


def no_traceback(out) -> None:
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout, out.stderr[-3000:]


def test_a_zero_byte_registry_is_rebuilt_from_the_run_folders(ws):
    ws, run_id = ws
    ws.db_path.write_bytes(b"")
    out = run_cli("runs", "list", ws=ws.root)
    no_traceback(out)
    assert out.returncode == 0 and run_id in out.stdout and "completed" in out.stdout
    assert "notice:" in out.stderr and "rebuilt from the run folders" in out.stderr
    shown = run_cli("runs", "show", run_id, "--json", ws=ws.root)
    assert shown.returncode == 0, shown.stderr
    d = json.loads(shown.stdout)
    assert d["status"] == "completed" and d["metrics"]["steps"] == 2 and d["name"] == "first"
    assert d["final_dir"] and d["split"]["rows"]["train"] > 0


def test_a_garbage_registry_is_kept_aside_and_rebuilt(ws):
    ws, run_id = ws
    for extra in ("-wal", "-shm"):
        ws.db_path.with_name(ws.db_path.name + extra).unlink(missing_ok=True)
    garbage = b"this is not a database at all\n" * 200
    ws.db_path.write_bytes(garbage)
    out = run_cli("runs", "list", "--json", ws=ws.root)
    no_traceback(out)
    assert out.returncode == 0 and [r["id"] for r in json.loads(out.stdout)["runs"]] == [run_id]
    kept = [p for p in ws.root.iterdir() if p.name.startswith("tunestudio.db.damaged-")]
    assert len(kept) == 1 and kept[0].read_bytes() == garbage and kept[0].name in out.stderr
    again = run_cli("runs", "reindex", "--json", ws=ws.root)  # healthy now: nothing to add
    assert again.returncode == 0 and json.loads(again.stdout)["added"] == [] and json.loads(again.stdout)["kept"] == 1


def test_reindex_adds_a_run_folder_the_registry_lost(ws):
    import sqlite3

    ws, run_id = ws
    conn = sqlite3.connect(ws.db_path)
    conn.execute("DELETE FROM runs")  # a registry that lost its rows (the folders are intact)
    conn.commit()
    conn.close()
    out = run_cli("runs", "reindex", "--json", ws=ws.root)
    no_traceback(out)
    result = json.loads(out.stdout)
    assert out.returncode == 0 and (result["added"] == [run_id] or "1 run(s) restored" in (result["notice"] or ""))
    shown = json.loads(run_cli("runs", "show", run_id, "--json", ws=ws.root).stdout)
    assert shown["status"] == "completed" and shown["base_model"].endswith("tiny")


def test_bad_event_lines_are_skipped_and_counted(ws):
    ws, run_id = ws
    path = ws.runs_dir / run_id / "events.jsonl"
    with open(path, "ab") as f:
        f.write(b'not json\n[1, 2]\n5\n\xff\xfe broken utf-8\n{"type": "train", "step": "x", "loss": "abc"}\n')
    out = run_cli("runs", "show", run_id, ws=ws.root)
    no_traceback(out)
    assert out.returncode == 0 and "4 damaged line(s)" in out.stdout
    follower = run_progress.Follower(path)
    follower.poll()
    assert follower.bad_lines == 4
    summary = run_progress.summarize(follower.events)  # the UI's poll: the odd object is skipped too
    assert summary["status"] == "completed"


def _bind_read_only(path: Path):
    r = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {r.stderr.strip()}")
    r = subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(["umount", str(path)])
        pytest.skip(f"cannot remount read-only here: {r.stderr.strip()}")


# --replay 0: the random "tiny" model counts as pretrained (it carries no RANDOM_INIT mark), and the
# base's replay answers would be generated (with their progress line) before the registry refuses
TRAIN = ["train", "--model", "tiny", "--dataset", "tiny.jsonl", "--max-steps", "1", "--val-split", "0",
         "--max-length", "64", "--run-id", "second", "--replay", "0"]


@pytest.mark.parametrize("which", ["database", "runs folder"])
def test_a_read_only_registry_or_runs_folder_is_one_clear_message(ws, which):
    ws, run_id = ws
    target = ws.db_path if which == "database" else ws.runs_dir
    _bind_read_only(target)
    try:
        out = run_cli(*TRAIN, ws=ws.root, env={"OMP_NUM_THREADS": "1"})
        listed = run_cli("runs", "list", ws=ws.root)
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)
    no_traceback(out)
    assert out.returncode == 1 and out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) <= 3
    assert ("registry" in out.stderr) if which == "database" else ("read-only" in out.stderr)
    assert sorted(p.name for p in ws.runs_dir.iterdir()) == [run_id]  # no stray run folder
    no_traceback(listed)
    assert listed.returncode == 0 and run_id in listed.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, host: str) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def test_the_web_ui_starts_on_a_garbage_registry_says_so_and_checks_the_host(ws):
    ws, run_id = ws
    ws.db_path.write_bytes(b"\x00garbage" * 100)
    port = _free_port()
    log = open(ws.root / "ui.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "tunestudio", "webui", "--port", str(port), "--workspace",
                             str(ws.root)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline, status = time.time() + 120, None
        while time.time() < deadline and proc.poll() is None:
            try:
                status, _ = _get(url + "config", f"127.0.0.1:{port}")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        output = (ws.root / "ui.log").read_text()
        assert status == 200, output[-3000:]
        status, config = _get(url + "config", f"localhost:{port}")
        assert status == 200 and "rebuilt from the run folders" in config  # the page says what happened
        assert run_id in config  # and the run is there
        status, body = _get(url, "attacker.example")  # DNS rebinding: another site's name
        assert status == 403 and "not allowed" in body
        assert _get(url + "config", f"evil.example:{port}")[0] == 403
        assert "Traceback" not in output
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
