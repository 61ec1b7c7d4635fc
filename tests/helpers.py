"""What every tier of the suite uses: the repository's paths and `tunestudio` run as a user runs it.

Importable from any folder of tests/ (pyproject's pytest `pythonpath`), as are the other helper
modules beside it (workspaces.py, eval_helpers.py, data_helpers.py, sweep_helpers.py, families.py,
gguf_helpers.py, browser_helpers.py, lang_check.py).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
FIXTURES = Path(__file__).resolve().parent / "fixtures"   # data files the tests read (fixtures/data/...)


def run_cli(*args, ws: Path | None = None, timeout: int = 600, env: dict | None = None):
    """Run `tunestudio ARGS` as a user would, in a separate process. Returns CompletedProcess."""
    cmd = [sys.executable, "-m", "tunestudio", *map(str, args)]
    if ws is not None:
        cmd += ["--workspace", str(ws)]
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ws or REPO)


def one_error(r) -> str:
    """The one `error:` line of a `tunestudio` command that failed as it should (exit 1, no traceback)."""
    assert r.returncode == 1, (r.stdout, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    lines = [x for x in r.stderr.strip().splitlines() if x.startswith("error:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def write_file(root: Path, rel: str, text: str) -> Path:
    """Write `text` to root/rel, making its folders (a reward file, a config...)."""
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


@contextlib.contextmanager
def served(ws: Path, model: str, api_key: str | None = None, wait_s: int = 240, args: tuple = ()):
    """`tunestudio serve MODEL [ARGS]` on a free loopback port, as a user starts it; yields (client, proc,
    port) once the server lists its models (an openai client with `api_key`), and stops it whatever
    happens (unless the test stopped it already)."""
    import signal
    import socket
    import time

    import openai

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "tunestudio", "serve", model, "--port", str(port), "--workspace", str(ws),
           *map(str, args)]
    proc = subprocess.Popen(cmd + (["--api-key", api_key] if api_key else []), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=api_key or "none", timeout=120,
                               max_retries=0)
        deadline = time.time() + wait_s
        while True:
            try:
                client.models.list()
                break
            except openai.APIConnectionError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.time() < deadline, f"server did not come up in {wait_s} s"
                time.sleep(1)
        yield client, proc, port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


_HOLD = ("import sys, time; from pathlib import Path; from tunestudio.core import runlock; "
         "lock = runlock.acquire(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[1]).name); "
         "print('held' if lock else 'none', flush=True); time.sleep(300)")


@contextlib.contextmanager
def lock_held(folder: Path, what: str):
    """Another process holding run folder `folder`'s lock (core/runlock.py) as `what` (serve, resume...)
    until the block ends; yields its Popen (the test may SIGKILL it sooner)."""
    import signal

    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder), what], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line == "held", f"the holder did not take the lock: {line!r} {proc.stderr.read()}"
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(10)
