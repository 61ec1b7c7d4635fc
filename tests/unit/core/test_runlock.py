"""The run lock (core/runlock.py) between real processes: a second writer, or a delete while another
process holds the run, is refused naming the holder; a SIGKILLed holder frees the run at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from helpers import lock_held
from workspaces import add_run, get_run

from tunestudio.core import registry, runlock
from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.runs.manage import delete_run


@pytest.fixture
def run_ws(workspace):
    ws = Workspace(workspace)
    conn = registry.connect(ws.db_path)
    add_run(conn, "r", "the-run")
    conn.close()
    folder = ws.runs_dir / "r"
    (folder / "final").mkdir(parents=True)
    (folder / "final" / "config.json").write_text("{}")
    return ws, folder


@pytest.mark.parametrize("holder", ["serve", "export", "eval", "resume"])
def test_delete_is_refused_while_another_process_holds_the_run_and_goes_once_it_is_killed(run_ws, holder):
    ws, folder = run_ws
    with lock_held(folder, holder) as proc:
        with pytest.raises(UserError) as e:
            delete_run(ws, "r", delete_files=True)
        assert e.value.code == "run_in_use"
        assert e.value.fields["pid"] == proc.pid and e.value.fields["holder"] == holder
        assert f"process {proc.pid} is using it ({holder} since " in str(e.value)
        assert (folder / "final" / "config.json").is_file() and get_run(ws, "r")["id"] == "r"  # intact
        proc.kill()   # SIGKILL: no chance to let go of anything
        proc.wait(10)
    started = time.monotonic()
    out = delete_run(ws, "r", delete_files=True)   # the kernel dropped the dead holder's lock
    assert out["files_deleted"] and not folder.exists() and time.monotonic() - started < 5


def test_readers_share_the_run_and_writers_exclude_everyone(run_ws):
    _, folder = run_ws
    with lock_held(folder, "serve") as reader:
        with runlock.acquire(folder, "export") as lock:   # readers together
            assert lock is not None and lock.shared
        for what in ("train", "resume", "delete"):
            with pytest.raises(UserError) as e:
                runlock.acquire(folder, what, "r")
            assert e.value.fields["pid"] == reader.pid and e.value.fields["action"] == what
    with lock_held(folder, "resume"):
        for what in ("resume", "train", "delete", "export", "eval", "serve"):
            with pytest.raises(UserError) as e:
                runlock.acquire(folder, what, "r")
            assert e.value.code == "run_in_use" and e.value.fields["holder"] == "resume"
    with runlock.acquire(folder, "resume") as lock:   # free at once
        assert lock is not None and not lock.shared
    assert runlock.holders(folder) == []   # nobody left named in the lock file


def test_a_holder_that_named_nobody_is_still_refused(run_ws):
    _, folder = run_ws
    proc = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
                             "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(300)",
                             str(folder / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(UserError) as e:
            runlock.acquire(folder, "delete", "r")
        assert e.value.code == "run_in_use_unknown" and str(folder / ".lock") in str(e.value)
    finally:
        proc.kill()
        proc.wait(10)


def test_nothing_to_lock_is_no_lock(workspace, tmp_path):
    ws = Workspace(workspace)
    assert runlock.acquire(tmp_path / "missing", "train") is None
    with runlock.hold_run(ws, "no-such-run", "serve") as lock:   # a model folder, an unknown name
        assert lock is None
    with runlock.hold_run(ws, None, "eval") as lock:
        assert lock is None


def test_a_lock_is_held_by_this_process_until_released(run_ws):
    _, folder = run_ws
    lock = runlock.acquire(folder, "train", "r")
    assert [h["pid"] for h in runlock.holders(folder)] == [os.getpid()]
    lock.release()
    lock.release()   # twice is harmless
    runlock.acquire(folder, "delete", "r").release()
