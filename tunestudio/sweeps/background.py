"""Sweeps started from the web UI: `tunestudio sweep --config FILE` as a detached background process.

The UI never trains, nor runs Optuna's loop, in its own process. `start(ws, text, filename)` checks
the YAML with the CLI's own reader (`sweep_spec.load_spec`: a mistake is "FILE, line N: ..."), keeps
it in the workspace (training/sweeps/uploads/FILE, so a confined UI's sweep reads nothing outside
the workspace) and launches the same command a user would type, in its own session: closing the UI
does not end it, and its trials go through the job queue like any run. Where it is lives in
training/sweeps/<sweep>/runner.json ({pid, pid_start, started_at, config, log, command}), so a
reloaded page or a restarted UI finds it again; its output goes to training/sweeps/<sweep>/runner.log.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from tunestudio.core import run_progress
from tunestudio.core.errors import ERROR_FILE_ENV, UserError
from tunestudio.core.procs import is_alive, start_detached, stop_group
from tunestudio.core.statefiles import read_json_or_none, write_json
from tunestudio.jobs import queue as jobs
from tunestudio.sweeps import search as sweep
from tunestudio.sweeps.spec import load_spec

_children: dict[int, subprocess.Popen] = {}   # sweeps this process launched (reaped when they end)


def _safe_name(filename: str) -> str:
    """A plain file name for an uploaded sweep file ('sweep.yaml' when nothing usable is left)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(filename or "").name).strip(".-")
    if not stem:
        stem = "sweep.yaml"
    return stem if stem.endswith((".yaml", ".yml")) else stem + ".yaml"


def runner(ws, name: str) -> dict | None:
    """The runner record of sweep `name` with `alive` (bool) added; None when the UI never started it."""
    rec = read_json_or_none(ws.sweep_dir(name) / "runner.json")
    if not isinstance(rec, dict) or not isinstance(rec.get("pid"), int):
        return None
    return {**rec, "alive": _alive(rec)}


def _alive(rec: dict) -> bool:
    child = _children.get(rec["pid"])
    alive = is_alive(rec["pid"], rec.get("pid_start"), child)
    if child is not None and not alive:
        _children.pop(rec["pid"], None)   # reaped by the poll: forget it
    return alive


def check(ws, text: str, filename: str):
    """Write `text` to training/sweeps/uploads/<filename> and read it back as the CLI would.
    `filename` None: typed in the editor (saved as sweep.yaml). Returns (SweepSpec, path). Raises
    UserError naming the file and line of the first mistake, or the uploaded file that is empty."""
    if not str(text or "").strip():
        if filename:   # an uploaded (or picked) file with nothing in it: say which
            raise UserError(f"{filename} is empty: write a sweep in the editor, or pick an example",
                            "sweep_file_empty", file=filename)
        raise UserError("no sweep file: upload one, pick an example, or write it in the editor", "no_sweep_file")
    path = ws.sweep_uploads_dir / _safe_name(filename or "sweep.yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return load_spec(path), path


def start(ws, text: str, filename: str) -> dict:
    """Start (or resume: same name) the sweep in `text` as a background `tunestudio sweep --config`.
    Returns the runner record. UserError for a bad file, or when that sweep is already running."""
    spec, path = check(ws, text, filename)
    rec = runner(ws, spec.name)
    if rec and rec["alive"]:
        raise UserError(f"sweep '{spec.name}' is already running (pid {rec['pid']}): wait for it or stop it",
                        "sweep_running", name=spec.name, pid=rec["pid"])
    d = ws.sweep_dir(spec.name)
    d.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "tunestudio", "sweep", "--config", str(path), "--workspace", str(ws.root)]
    error_file = d / "runner.error.json"   # the UserError it may end on, coded (the panel words it)
    error_file.unlink(missing_ok=True)
    # ws.child_env: the trial jobs it submits are confined to the workspace too, as the UI is
    env = {ERROR_FILE_ENV: str(error_file), **ws.child_env()}
    log_path = d / "runner.log"
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} started from the web UI: "
                  f"tunestudio sweep --config {path}\n".encode())
    started = start_detached(command, log_path, cwd=ws.root, env=env)
    _children[started.pid] = started.popen
    rec = {"sweep": spec.name, "pid": started.pid, "pid_start": started.pid_start, "started_at": time.time(),
           "config": str(path), "log": str(log_path), "command": command, "trials": spec.trials,
           "timeout_min": spec.timeout_min}
    write_json(d / "runner.json", rec)
    return {**rec, "alive": True}


def stop(ws, name: str) -> dict | None:
    """Stop sweep `name`'s process (SIGTERM to its group) and then its running trial's job (the engine
    checkpoints it and marks the run stopped). Returns the runner record, None when none was running."""
    rec = runner(ws, name)
    if not rec or not rec["alive"]:
        return None
    stop_group(rec["pid"], lambda: _alive(rec), wait=10)
    prefix = f"{name}-t"  # trial jobs are named <sweep>-t<N> (sweep.trial_config)
    for job in jobs.list_jobs(ws):
        if job.status in jobs.ACTIVE and job.name.startswith(prefix) and job.name[len(prefix):].isdigit():
            if job.status == "queued":
                jobs.cancel(ws, job.id)
            else:
                jobs.stop(ws, job.id)
    return {**rec, "alive": _alive(rec)}


def progress(ws, name: str) -> dict:
    """{sweep, running (the process is alive), started_from_ui, target (trials), ended, counts
    {state: n}, best (number, value) or None, log (sweep.log's last lines, or the runner's output
    when it ended early, e.g. with an error), error (the UserError it ended on, errors.error_record,
    or None)}."""

    rec = runner(ws, name)
    out = {"sweep": name, "running": bool(rec and rec["alive"]), "started_from_ui": rec is not None,
           "target": (rec or {}).get("trials"), "ended": 0, "counts": {}, "best": None, "log": "", "error": None}
    d = ws.sweep_dir(name)
    if rec and not out["running"]:
        out["error"] = read_json_or_none(d / "runner.error.json")
    try:
        s = sweep.summary(ws, name) if (d / "optuna.db").is_file() else None
    except UserError:   # starting: the study is not written yet
        s = None
    if s:
        out["counts"] = s["counts"]
        out["ended"] = sum(n for k, n in s["counts"].items() if k in ("complete", "pruned", "fail"))
        if s["best"]:
            out["best"] = {"number": s["best"]["number"], "value": s["best"]["value"], "run_id": s["best"]["run_id"]}
    log = run_progress.tail(d / "sweep.log", 8)
    if rec and not out["running"]:
        tail = run_progress.tail(rec["log"], 6)
        if "error:" in tail or "Traceback" in tail:
            log = (log + "\n" if log else "") + tail
    out["log"] = log
    return out


def examples() -> list[Path]:
    """The sweep files shipped in the repository's examples/ folder (none in an installed wheel)."""
    folder = Path(__file__).resolve().parents[2] / "examples"
    return sorted(p for p in folder.glob("sweep*.y*ml") if p.is_file()) if folder.is_dir() else []
