"""Running the user's reward files: only files inside the workspace, in one separate process per
run (it imports each file once and scores whole batches), with a time limit on every batch.

A batch that runs past the limit kills the worker (a loop cannot be interrupted any other way)
and raises a UserError naming the file; the next batch starts a fresh worker.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from tunestudio.core.errors import UserError

WORKER = Path(__file__).with_name("worker.py")


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
    """One worker process for the user's reward files {name: resolved path}; `score` sends a batch."""

    def __init__(self, files: dict[str, Path], cwd: Path, timeout: float):
        self.files = {name: str(path) for name, path in files.items()}
        self.cwd, self.timeout = Path(cwd), float(timeout)
        self.proc: subprocess.Popen | None = None
        self._buf = b""

    def _start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
        self.proc = subprocess.Popen([sys.executable, "-u", str(WORKER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, cwd=self.cwd, env=env)
        self._buf = b""
        reply = self._ask({"load": self.files}, what=", ".join(self.files), action="importing")
        if "error" in reply:
            self.close()
            raise UserError(reply["error"], "reward_error", error=_error_part(reply))

    def start(self) -> None:
        """Start the worker and import the files now (a broken file fails before any model loads)."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()

    def score(self, name: str, prompts: list, completions: list[str], rows: list[dict]) -> list[float]:
        """Scores of `completions` (one per prompt/row) by the reward file `name`. UserError naming
        the file and line (and dataset row, where rows carry `_where`) when the user's code fails."""
        self.start()
        items = [{"prompt": p, "completion": c, "row": {k: v for k, v in r.items() if k != "_where"}}
                 for p, c, r in zip(prompts, completions, rows)]
        reply = self._ask({"score": name, "items": items}, what=name, action="scoring")
        if "error" in reply:
            i = reply.get("item")
            where = rows[i].get("_where") if i is not None and i < len(rows) else None
            raise UserError(reply["error"] + (f" (dataset row {where})" if where else ""),
                            "reward_error_on_row" if where else "reward_error", error=_error_part(reply), row=where)
        return reply["ok"]

    def _ask(self, request: dict, what: str, action: str) -> dict:
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
                raise UserError(f"{what}: {action} a batch took longer than the reward time limit of "
                                f"{self.timeout:g} s (an endless loop?); the reward process was stopped. "
                                "Make the reward faster or raise --reward-timeout",
                                "reward_import_timeout" if action == "importing" else "reward_score_timeout",
                                what=what, seconds=f"{self.timeout:g}", option="reward_timeout")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    code = self.proc.wait()
                    self.proc = None
                    raise UserError(f"{what}: the reward process ended while {action} (exit code {code}); "
                                    "does the reward file call exit() or crash the interpreter?",
                                    "reward_process_ended_importing" if action == "importing"
                                    else "reward_process_ended_scoring", what=what, exit_code=code)
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            self.proc = None
