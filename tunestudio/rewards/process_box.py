"""The process box: the user's Python code (reward files, custom metric files) runs in a worker
process of its own, with limits. Linux only (process groups, setrlimit, /proc).

What the box does:
- one worker per run (it imports each file once and answers batches), in a process group of its
  own; at the time limit, on an error and at shutdown the WHOLE group is stopped (SIGTERM, a short
  grace, SIGKILL), so a child the user's code forked does not outlive it. A loop that ignores
  signals is ended by SIGKILL, the only way to interrupt it. Should its starter die without
  stopping it, the worker stops its own group (PR_SET_PDEATHSIG; stdin closing: worker.py);
- resource limits set in the worker before the user's file is imported: address space
  (BOX_MEMORY_ENV, default DEFAULT_MEMORY_MB), the size of a file it writes, no core dumps;
- a minimal environment (PATH, the locale, HOME and TMPDIR a fresh temporary folder, PYTHONPATH):
  no tokens or keys of ours; the working directory is the workspace.

What it does NOT do (docs/security.md says so to users): it is no sandbox. The code runs as the
user, so it can read and write every file the user can, open network connections, and use the CPU
until the time limit. A process that leaves the group on purpose (setsid, setpgid) escapes the
kill. Only containers or another user account stop those.
Reward files must lie inside the workspace (`reward_file`): that limits which files run, not what
their code does.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path

from tunestudio.core.errors import UserError

WORKER = Path(__file__).with_name("worker.py")
BOX_MEMORY_ENV = "TUNESTUDIO_BOX_MEMORY_MB"   # raise the worker's memory limit (MiB)
DEFAULT_MEMORY_MB = 2048     # a reward importing torch reserves about 0.7 GiB of address space
FILE_SIZE_MB = 2048          # the largest file the worker may write
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH")
GRACE_S = 1.0                # between SIGTERM and SIGKILL of the group


def memory_limit_mb() -> int:
    """The worker's address-space limit in MiB: $TUNESTUDIO_BOX_MEMORY_MB, or DEFAULT_MEMORY_MB."""
    given = os.environ.get(BOX_MEMORY_ENV, "").strip()
    if not given:
        return DEFAULT_MEMORY_MB
    value = int(given) if given.isdigit() else 0
    if value < 256:   # Python itself needs some
        raise UserError(f"{BOX_MEMORY_ENV}={given}: give the memory limit in MiB, a whole number of at least 256 "
                        "(e.g. 4096)", "box_memory_env_bad", variable=BOX_MEMORY_ENV, value=given)
    return value


# Under an address-space limit every thread's stack and malloc arena counts: a reward importing
# numpy or torch would start a BLAS/OpenMP thread per core and run out on a large machine
# without scoring anything. One thread and two arenas keep it to what the code itself allocates.
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}


def box_env(home: Path) -> dict[str, str]:
    """The worker's environment: only what running Python needs; HOME and TMPDIR are `home`."""
    env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
    env.setdefault("PATH", "/usr/bin:/bin")
    return {**env, **THREAD_ENV, "HOME": str(home), "TMPDIR": str(home), "PYTHONDONTWRITEBYTECODE": "1"}


def kill_group(pgid: int, grace: float = GRACE_S) -> None:
    """SIGTERM process group `pgid`, then SIGKILL it once `grace` seconds pass or it is empty."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _group_alive(pgid):
            time.sleep(0.05)
        os.killpg(pgid, signal.SIGKILL)


def _processes() -> list[tuple[int, int, int]]:
    """(pid, process group, session) of every live process (zombies left out), read from /proc
    (none where there is no /proc: the group then gets SIGKILL without its grace)."""
    out = []
    if not os.path.isdir("/proc"):
        return out
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] not in ("Z", "X"):
                out.append((int(entry.name), int(fields[2]), int(fields[3])))
    return out


def _group_alive(pgid: int) -> bool:
    return any(g == pgid for _, g, _ in _processes())


def kill_session(sid: int, grace: float = 5.0) -> None:
    """Stop a command started in a session of its own (the web UI's `tunestudio reward test`) with
    every process it started, a box's worker group among them: SIGTERM its leader's group (its own
    cleanup stops its boxes), then, after `grace` seconds, SIGKILL every process of the session."""
    kill_group(sid, grace)
    for pid, _, s in _processes():
        if s == sid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _stop(proc: subprocess.Popen, home: str) -> None:
    """Stop the worker's whole group, reap the worker, remove its HOME (also run at shutdown)."""
    if proc.returncode is None:
        kill_group(proc.pid)   # the worker leads its group: its pid is the group's id
        proc.wait()
    else:
        kill_group(proc.pid, grace=0)   # the worker ended by itself: a child it forked may live on
    for f in (proc.stdin, proc.stdout):
        with contextlib.suppress(OSError):
            f.close()
    shutil.rmtree(home, ignore_errors=True)


class Box:
    """One worker process for the user's files {name: resolved path} of `kind` ("reward" or
    "metric"), in `cwd`, each request given `timeout` seconds. `ask` sends one request."""

    def __init__(self, kind: str, files: dict[str, Path], cwd: Path, timeout: float):
        self.kind, self.files = kind, {name: str(path) for name, path in files.items()}
        self.cwd, self.timeout = Path(cwd), float(timeout)
        self.memory_mb = memory_limit_mb()
        self.proc: subprocess.Popen | None = None
        self._buf = b""
        self._finalizer = None

    def start_process(self) -> None:
        self.close()   # a worker that ended by itself: its group and HOME go before the next one
        home = tempfile.mkdtemp(prefix="tunestudio-box-")   # worker.HOME_PREFIX
        argv = [sys.executable, "-u", str(WORKER), self.kind, str(self.memory_mb), str(FILE_SIZE_MB), str(os.getpid())]
        # process_group=0: a group of its own (no preexec_fn, which is unsafe in a threaded server)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=self.cwd,
                                     env=box_env(Path(home)), process_group=0)
        self._finalizer = weakref.finalize(self, _stop, self.proc, home)   # at close, or at exit
        self._buf = b""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ask(self, request: dict) -> dict | None:
        """The worker's reply to `request`; None when it did not answer within the time limit (the
        group is stopped then). A worker that ended: {"ended": exit code} (its group is stopped too)."""
        try:
            self.proc.stdin.write((json.dumps(request, default=str) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the worker died: reading below reports it
        deadline = time.monotonic() + self.timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    code = self.proc.wait()
                    self.close()
                    return {"ended": code}
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        """Stop the worker and every process of its group (a no-op when none runs)."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self.proc = None


def reward_file(ws, given: str) -> Path:
    """The reward file `given` (relative to the workspace, or a path) if it may run: a .py file that,
    with every symlink resolved, lies inside the workspace. UserError otherwise."""
    p = Path(given).expanduser()
    path = p if p.is_absolute() else ws.root / p
    if path.suffix != ".py":
        raise UserError(f"reward '{given}': a reward file is a Python file (rewards/NAME.py)", "reward_not_python",
                        name=given)
    if not path.is_file():
        raise UserError(f"reward file '{given}' not found: put it in {ws.rewards_dir}", "reward_file_not_found",
                        name=given, folder=str(ws.rewards_dir))
    return inside_workspace(ws, given, path)


def inside_workspace(ws, given: str, path: Path) -> Path:
    """`path` with every symlink resolved, if it lies inside the workspace (reward code runs only
    from there); UserError naming `given` otherwise. The file need not exist yet (the UI saves new ones)."""
    real = path.resolve()
    if not real.is_relative_to(ws.root.resolve()):
        raise UserError(f"reward file '{given}' resolves to {real}, outside the workspace {ws.root}: reward code "
                        "runs only from files inside the workspace; copy it into rewards/", "reward_outside_workspace",
                        name=given, where=str(real), workspace=str(ws.root))
    return real


def _error_part(reply: dict) -> dict:
    """The worker's error reply as a coded record {code, message, fields...}: the web UI words it
    (engine.reward_import_failed, ...), the user's own exception text kept as its detail."""
    return {"code": reply.get("code"), "message": reply["error"], **(reply.get("fields") or {})}


class RewardWorker:
    """The box for the user's reward files {name: resolved path}; `score` sends a batch."""

    def __init__(self, files: dict[str, Path], cwd: Path, timeout: float):
        self.box = Box("reward", files, cwd, timeout)
        self.files, self.timeout = self.box.files, self.box.timeout

    @property
    def proc(self) -> subprocess.Popen | None:
        return self.box.proc

    def _start(self) -> None:
        self.box.start_process()
        reply = self._ask({"load": self.files}, what=", ".join(self.files), action="importing")
        if "error" in reply:
            self.close()
            raise UserError(reply["error"], "reward_error", error=_error_part(reply))

    def start(self) -> None:
        """Start the worker and import the files now (a broken file fails before any model loads)."""
        if not self.box.alive():
            self._start()

    def score(self, name: str, prompts: list, completions: list[str], rows: list[dict]) -> list[float]:
        """Scores of `completions` (one per prompt/row) by the reward file `name`. UserError naming
        the file and line (and dataset row, where rows carry `_where`) when the user's code fails."""
        self.start()
        items = [{"prompt": p, "completion": c, "row": {k: v for k, v in r.items() if k != "_where"}}
                 for p, c, r in zip(prompts, completions, rows)]
        reply = self._ask({"score": name, "items": items}, what=name, action="scoring")
        if "error" in reply:
            self.close()   # a failed batch ends the run's use of the worker: nothing of it lives on
            i = reply.get("item")
            where = rows[i].get("_where") if i is not None and i < len(rows) else None
            raise UserError(reply["error"] + (f" (dataset row {where})" if where else ""),
                            "reward_error_on_row" if where else "reward_error", error=_error_part(reply), row=where)
        return reply["ok"]

    def _ask(self, request: dict, what: str, action: str) -> dict:
        reply = self.box.ask(request)
        if reply is None:
            raise UserError(f"{what}: {action} a batch took longer than the reward time limit of "
                            f"{self.timeout:g} s (an endless loop?); the reward process was stopped. "
                            "Make the reward faster or raise --reward-timeout",
                            "reward_import_timeout" if action == "importing" else "reward_score_timeout",
                            what=what, seconds=f"{self.timeout:g}", option="reward_timeout")
        if "ended" in reply:
            code = reply["ended"]
            raise UserError(f"{what}: the reward process ended while {action} (exit code {code}); "
                            "does the reward file call exit() or crash the interpreter?",
                            "reward_process_ended_importing" if action == "importing"
                            else "reward_process_ended_scoring", what=what, exit_code=code)
        return reply

    def close(self) -> None:
        self.box.close()
