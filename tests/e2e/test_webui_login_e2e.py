"""The web UI's login, launched for real on loopback with --auth: wrong passwords from one address are
throttled (429 with Retry-After after a few), a right one is never made to wait (safety.LoginThrottle)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from browser_helpers import free_port, listening_addresses, stop_ui
from helpers import REPO


def _login(url: str, user: str, password: str) -> tuple[int, dict]:
    """Gradio's own login form post: 200 and a cookie, or 400 "Incorrect credentials."."""
    data = urllib.parse.urlencode({"username": user, "password": password}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url + "login", data=data), timeout=20) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}


def test_wrong_passwords_are_throttled_and_a_right_one_is_not(workspace):
    """A password guesser used to get 200 tries in 4.9 s; now 5, then 429 with Retry-After."""
    port = free_port()
    log = open(workspace / "ui.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "tunestudio", "webui", "--port", str(port), "--auth", "alice:s3cret",
                             "--workspace", str(workspace)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not listening_addresses(port):
            time.sleep(0.5)
        started = time.monotonic()
        assert _login(url, "alice", "s3cret")[0] == 200, (workspace / "ui.log").read_text()[-3000:]
        assert time.monotonic() - started < 5   # a right password is never made to wait
        answers = [_login(url, "alice", f"guess{i}") for i in range(40)]
        codes = [a[0] for a in answers]
        assert codes[:5] == [400] * 5 and set(codes[5:]) == {429}, codes
        retry = int(answers[-1][1]["retry-after"])
        assert 1 <= retry <= 6   # 5 s after the 5th failure, doubling with each further one
        assert _login(url, "alice", "s3cret")[0] == 429   # locked: even the right password waits its turn
        time.sleep(retry)
        assert _login(url, "alice", "s3cret")[0] == 200   # the window has passed: it works, and clears the count
        assert [_login(url, "alice", "nope")[0] for _ in range(3)] == [400] * 3
    finally:
        stop_ui(proc)
        log.close()
