"""Exports and model servers started from the web UI: detached `tunestudio export ...` and
`tunestudio serve ...` processes, the commands a user could type.

Like training jobs (tunestudio.jobs.queue), they never run in the UI's process, survive it
(start_new_session) and leave their state on disk so a reloaded page or a second UI finds them:

    exports/.jobs/<id>.json      what was started: {id, run, format, quant, output, command, pid, ...}
    exports/.jobs/<id>.out       the export's --json result (with its round-trip check), once done
    exports/.jobs/<id>.log       its stderr (progress, warnings, the one-line error)
    exports/.jobs/<id>.error.json  the UserError it ended on, {message, code, fields} ($TUNESTUDIO_ERROR_FILE)
    .serve/servers/<run id>.json a server: {run, name, host, port, url, pid, log, command}
    .serve/servers/<run id>.log  its output

They are not queued behind training: an export or a server is short or idle work the user asks
for while looking at a finished run.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from tunestudio.core.errors import ERROR_FILE_ENV, UserError
from tunestudio.core.procs import is_alive, start_detached, stop_group
from tunestudio.core.statefiles import read_json_or_none, write_json
from tunestudio.models.loading import find_run
from tunestudio.ship.serve import check_bind

FORMATS = ("hf", "merged", "adapter", "gguf")   # "merged" is --format hf --merge
_children: dict[int, subprocess.Popen] = {}       # our own processes, polled so none stays <defunct>


def _spawn(ws, command: list[str], stdout: Path, log: Path) -> tuple[int, str | None]:
    error_file = _error_file(log)
    error_file.unlink(missing_ok=True)   # a server started again: not the last process's error
    # the CLI writes its UserError to the error file (coded); started from the web UI, the process
    # reads only inside the workspace, as the UI does (ws.child_env)
    env = {"TOKENIZERS_PARALLELISM": "false", **ws.child_env(), ERROR_FILE_ENV: str(error_file)}
    started = start_detached(command, log, cwd=ws.root, env=env, stdout_path=stdout)
    _children[started.pid] = started.popen
    return started.pid, started.pid_start


def _alive(rec: dict) -> bool:
    return is_alive(rec.get("pid"), rec.get("pid_start"), _children.get(rec.get("pid")))


def _error_file(log: Path) -> Path:
    """Where the process logging to `log` writes the UserError it ended on (errors.error_record)."""
    return Path(log).with_suffix(".error.json")


def _failure(log: Path, fallback: str) -> dict:
    """{error: the one-line message, error_record: {message, code, fields} for the web UI to word
    (the process's error file; else the log's message, uncoded)}."""
    record = read_json_or_none(_error_file(log))
    if not isinstance(record, dict) or "message" not in record:
        record = {"message": _last_error(log) or fallback, "code": None, "fields": {}}
    return {"error": record["message"], "error_record": record}


def _last_error(log: Path) -> str | None:
    """The CLI's one-line `error: ...` message (the user's to fix), else the log's last line."""
    try:
        lines = [x for x in Path(log).read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
    except OSError:
        return None
    errors = [x[len("error:"):].strip() for x in lines if x.startswith("error:")]
    return errors[-1] if errors else (lines[-1] if lines else None)


def _warnings(log: Path) -> list[str]:
    try:
        text = Path(log).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [x[len("WARNING:"):].strip() for x in text.splitlines() if x.startswith("WARNING:")]


def _base(ws) -> list[str]:
    return [sys.executable, "-m", "tunestudio"]


# ---- exports --------------------------------------------------------------------------------------

def exports_dir(ws) -> Path:
    d = ws.export_jobs_dir
    d.mkdir(parents=True, exist_ok=True)
    return d


def start_export(ws, run: str, fmt: str, quant: str = "f16", verify: bool = True,
                 build_quantize: bool = False, verify_rows: int = 20) -> dict:
    """Start `tunestudio export RUN --format ... --json` into a new folder under exports/.

    `fmt` is one of FORMATS. Returns the job record (see the module doc). Raises UserError for an
    unknown format or run (before starting anything)."""

    if fmt not in FORMATS:
        raise UserError(f"export format must be one of {', '.join(FORMATS)} (got '{fmt}')", "export_format_unknown",
                        value=fmt, choices=", ".join(FORMATS))
    r = find_run(ws, run)
    job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]
    tag = fmt + (f"-{quant}" if fmt == "gguf" else "")
    output = ws.exports_dir / f"{r.name}-{tag}-{job_id}"
    args = ["export", r.id, "--output", str(output), "--format", "hf" if fmt == "merged" else fmt, "--json"]
    if fmt == "merged":
        args.append("--merge")
    if fmt == "gguf":
        args += ["--quant", quant] + (["--build-quantize"] if build_quantize else [])
    args += ["--verify-rows", str(int(verify_rows))] if verify else ["--no-verify"]
    d = exports_dir(ws)
    command = [*_base(ws), *args, "--workspace", str(ws.root)]
    pid, pid_start = _spawn(ws, command, d / f"{job_id}.out", d / f"{job_id}.log")
    rec = {"id": job_id, "run": r.id, "name": r.name, "format": fmt, "quant": quant if fmt == "gguf" else None,
           "output": str(output), "command": command, "pid": pid, "pid_start": pid_start,
           "started_at": time.time(), "log": str(d / f"{job_id}.log")}
    write_json(d / f"{job_id}.json", rec)
    return rec


def export_status(ws, job_id: str) -> dict:
    """The job record plus {status: running | finished | failed, result (the export's JSON, once
    finished), error (its message, when failed), warnings (the round-trip check's, from its log)}."""
    d = exports_dir(ws)
    rec = read_json_or_none(d / f"{job_id}.json")
    if rec is None:
        raise UserError(f"no export job '{job_id}' in this workspace", "export_job_not_found", job=job_id)
    child = _children.get(rec.get("pid"))
    if _alive(rec):
        return {**rec, "status": "running", "warnings": _warnings(Path(rec["log"]))}
    if child is not None:
        _children.pop(rec["pid"], None)
    try:
        result = json.loads((d / f"{job_id}.out").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result = None
    if result is None or (child is not None and child.returncode != 0):
        return {**rec, "status": "failed", **_failure(Path(rec["log"]), "the export process ended without a result"),
                "warnings": _warnings(Path(rec["log"]))}
    return {**rec, "status": "finished", "result": result, "warnings": _warnings(Path(rec["log"]))}


def latest_export(ws, run: str) -> dict | None:
    """The newest export job of a run (by id or name), for a page opened while it runs."""
    recs = [read_json_or_none(p) for p in exports_dir(ws).glob("*.json")]
    recs = [x for x in recs if x and run in (x.get("run"), x.get("name"))]
    return max(recs, key=lambda x: x["started_at"]) if recs else None


# ---- servers --------------------------------------------------------------------------------------

def servers_dir(ws) -> Path:
    d = ws.servers_dir
    d.mkdir(parents=True, exist_ok=True)
    return d


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def curl_example(url: str, model: str) -> str:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello"}]})
    return f"curl {url}/chat/completions -H 'Content-Type: application/json' -d '{body}'"


def start_server(ws, run: str, port: int | None = None, host: str = "127.0.0.1") -> dict:
    """Start `tunestudio serve RUN --host HOST --port PORT` (a free port when none is given); the
    running one when the run is served already. Returns the server record plus its status."""

    r = find_run(ws, run)
    current = server_status(ws, r.id)
    if current["status"] in ("starting", "running"):
        return current
    port = int(port) if port else free_port(host)
    check_bind(host, port, None)  # a port in use is said here, at once, not after the model loads
    d = servers_dir(ws)
    command = [*_base(ws), "serve", r.id, "--host", host, "--port", str(port), "--workspace", str(ws.root)]
    log = d / f"{r.id}.log"
    log.unlink(missing_ok=True)
    pid, pid_start = _spawn(ws, command, log.with_suffix(".out"), log)
    url = f"http://{host}:{port}/v1"
    rec = {"run": r.id, "name": r.name, "host": host, "port": port, "url": url, "command": command, "pid": pid,
           "pid_start": pid_start, "started_at": time.time(), "log": str(log), "curl": curl_example(url, r.name)}
    write_json(d / f"{r.id}.json", rec)
    return {**rec, "status": "starting"}


def _answers(url: str, timeout: float = 2.0) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/models", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def server_status(ws, run: str) -> dict:
    """{status: none | starting | running | failed | stopped, ...the record, error} for the run's
    server; running means /v1/models answers."""
    rec = read_json_or_none(servers_dir(ws) / f"{run}.json")
    if rec is None:
        return {"status": "none", "run": run}
    if rec.get("stopped"):
        return {**rec, "status": "stopped"}
    if not _alive(rec):
        _children.pop(rec.get("pid"), None)
        return {**rec, "status": "failed", **_failure(Path(rec["log"]), "the server process ended")}
    return {**rec, "status": "running" if _answers(rec["url"]) else "starting"}


def stop_server(ws, run: str, grace: float = 10.0) -> dict:
    """SIGTERM the run's server (its process group), SIGKILL after `grace` seconds. Returns its status."""
    path = servers_dir(ws) / f"{run}.json"
    rec = read_json_or_none(path)
    if rec is None:
        return {"status": "none", "run": run}
    if _alive(rec):
        stop_group(rec["pid"], lambda: _alive(rec), wait=grace, kill=True)
    _children.pop(rec.get("pid"), None)
    rec["stopped"] = time.time()
    write_json(path, rec)
    return {**rec, "status": "stopped"}


def list_servers(ws) -> list[dict]:
    return [server_status(ws, p.stem) for p in sorted(servers_dir(ws).glob("*.json"))]


@contextmanager
def serving(ws, run: str, timeout: float = 600.0, poll: float = 1.0):
    """The URL (…/v1) of the run's server for the length of a `with` block: the one already running
    (left running), else `tunestudio serve RUN` started on a free loopback port and stopped after.
    What `eval --judge RUN` judges with, so a run can be the judge without a separate step."""
    r = find_run(ws, run)
    status = server_status(ws, r.id)
    started = status["status"] not in ("starting", "running")
    if started:
        start_server(ws, r.id)
    try:
        deadline = time.monotonic() + timeout
        while True:
            status = server_status(ws, r.id)
            if status["status"] == "running":
                break
            if status["status"] in ("failed", "stopped"):
                raise UserError(f"the server for run {r.name} did not start: {status.get('error') or status['status']}"
                                f" (its log: {status.get('log')})", "serve_did_not_start", run=r.name,
                                error=str(status.get("error") or status["status"]), log=str(status.get("log")))
            if time.monotonic() > deadline:
                raise UserError(f"the server for run {r.name} was not answering after {timeout:.0f} s (its log: "
                                f"{status.get('log')})", "serve_start_timeout", run=r.name, seconds=int(timeout),
                                log=str(status.get("log")))
            time.sleep(poll)
        yield status["url"]
    finally:
        if started:
            stop_server(ws, r.id)


def served_url(ws, spec: str) -> str:
    """An endpoint for a client such as the LLM judge: a URL as given, or a run's `tunestudio serve`
    server (…/v1), which must be running (started by the Runs tab's Start server)."""
    if str(spec).strip().startswith(("http://", "https://")):
        return str(spec).strip()
    r = find_run(ws, spec)
    status = server_status(ws, r.id)
    if status["status"] == "running":
        return status["url"]
    # a server started by hand in a terminal leaves no record: give its URL instead
    return _not_served(r, status["status"])


def _not_served(r, status: str = "none") -> str:
    raise UserError(f"run {r.name} is not served (server {status}): start it with the Runs tab's Start server (or give "
                    f"the URL of a `tunestudio serve {r.name}` started by hand), then judge with it",
                    "judge_run_not_served", run=r.name, status=status)
