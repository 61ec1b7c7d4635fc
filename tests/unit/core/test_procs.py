"""core/procs.py: the one way a detached process is started and stopped (jobs, exports, servers, sweeps)."""

from __future__ import annotations

import os
import sys
import time

from tunestudio.core.procs import is_alive, proc_start, start_detached, stop_group

PRINT_AND_WAIT = ("import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                  "print(os.environ['X_TEST'], os.environ['PYTHONUNBUFFERED']); "
                  "print('to stderr', file=sys.stderr); time.sleep(60)")


def _wait_for(path, text, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path}: {path.read_text()!r}")


def test_a_detached_process_has_its_own_session_env_and_log_and_is_killed_after_the_wait(tmp_path):
    log, out = tmp_path / "p.log", tmp_path / "p.out"
    log.write_text("kept\n")
    s = start_detached([sys.executable, "-c", PRINT_AND_WAIT], log, cwd=tmp_path, env={"X_TEST": "yes"},
                       stdout_path=out)
    try:
        assert s.pid_start == proc_start(s.pid) and is_alive(s.pid, s.pid_start, s.popen)
        assert os.getsid(s.pid) == s.pid   # its own session: it outlives its starter
        _wait_for(out, "yes 1")
        _wait_for(log, "to stderr")
        assert log.read_text().startswith("kept\n")   # appended to, never truncated
        # it ignores SIGTERM: after the wait, SIGKILL ends its group
        stop_group(s.pid, lambda: is_alive(s.pid, s.pid_start, s.popen), wait=0.5, kill=True)
        assert s.popen.wait(timeout=10) == -9
    finally:
        if s.popen.poll() is None:
            s.popen.kill()


def test_without_stdout_path_both_streams_go_to_the_log_and_sigterm_alone_does_not_kill(tmp_path):
    log = tmp_path / "p.log"
    s = start_detached([sys.executable, "-c", PRINT_AND_WAIT], log, cwd=tmp_path, env={"X_TEST": "both"})
    try:
        _wait_for(log, "both 1")
        _wait_for(log, "to stderr")
        stop_group(s.pid, lambda: is_alive(s.pid, s.pid_start, s.popen), wait=0.3)   # no kill: it goes on
        assert is_alive(s.pid, s.pid_start, s.popen)
    finally:
        s.popen.kill()
        s.popen.wait(timeout=10)
