"""The probes of scripts/probes.py that need the tiny model, a run or a server. Each takes the
probes' `Env` and returns None (held) or why it failed."""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url: str, data: bytes | None = None, headers: dict | None = None,
          timeout: float = 60) -> tuple[int, dict, str]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode("utf-8", "replace")


def _wait_http(url: str, proc: subprocess.Popen, seconds: float = 180) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        try:
            _http(url, timeout=5)
            return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def one_error(rc: int, err: str, secs: float, limit: float, *words: str) -> str | None:
    """None when the command ended as a refusal should (exit 1, one `error:` line holding `words`,
    no traceback, within `limit` s); else what is wrong."""
    if rc == 124 or secs > limit:
        return f"still going after {secs:.0f} s (limit {limit:.0f} s)"
    if "Traceback" in err:
        return "a traceback: " + err.strip().splitlines()[-1][:200]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if rc != 1 or len(errors) != 1:
        return f"exit {rc}, {len(errors)} error lines: {err.strip()[-300:]}"
    missing = [w for w in words if w not in errors[0]]
    return f"the error lacks {missing}: {errors[0][:300]}" if missing else None


# ---- models -------------------------------------------------------------------------------------

class _Armed:
    """Unpickled, it creates the file it names: proof that loading the weights ran code."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def pickle_model(e):
    """A model folder whose only weights are a pickle that would run code when loaded."""
    e.demo()
    folder = e.ws / "models" / "pickled"
    shutil.copytree(e.ws / "models" / "tiny-demo", folder, dirs_exist_ok=True)
    for f in folder.glob("*.safetensors*"):
        f.unlink()
    marker = e.root / "pickle-ran"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"w": _Armed(str(marker))}))
    for args in (("chat", "--model", "pickled", "--prompt", "hi"),
                 ("train", "--model", "pickled", "--dataset", "demo-reviews.jsonl", "--max-steps", "1")):
        rc, _, err, secs = e.cli(*args)
        why = one_error(rc, err, secs, 90, "safetensors")
        if marker.exists():
            return f"{args[0]}: loading the model ran the pickle's code"
        if why:
            return f"{args[0]}: {why}"
    return None


def looping_template(e):
    e.demo()
    folder = e.ws / "models" / "loopy"
    shutil.copytree(e.ws / "models" / "tiny-demo", folder, dirs_exist_ok=True)
    loop = "{% for i in range(99999) %}{% for j in range(99999) %}{{ '' }}{% endfor %}{% endfor %}"
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = loop
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    if (folder / "chat_template.jinja").exists():
        (folder / "chat_template.jinja").write_text(loop)
    rc, _, err, secs = e.cli("chat", "--model", "loopy", "--prompt", "hi", env={"TUNESTUDIO_TEMPLATE_SECONDS": "2"})
    return one_error(rc, err, secs, 60, "TUNESTUDIO_TEMPLATE_SECONDS")


# ---- sweeps, runs -------------------------------------------------------------------------------

def invalid_sweep(e):
    """Every trial refused (batch size 0); no trial count, only a 10-minute budget would end it."""
    e.demo()
    (e.root / "invalid-sweep.yaml").write_text(
        "name: invalid\nbase: {model: tiny-demo, dataset: demo-reviews.jsonl, batch_size: 0}\n"
        "space:\n  lr: {log_uniform: [1e-5, 1e-3]}\nsampler: random\ntrials: 0\ntimeout_min: 10\n")
    rc, _, err, secs = e.cli("sweep", "--config", e.root / "invalid-sweep.yaml", timeout=60)
    return one_error(rc, err, secs, 30, "failed in a row")


def _stopped_run(e) -> str:
    """A run of the tiny model stopped (SIGTERM: exit 3, a checkpoint) after its first checkpoint."""
    e.demo()
    proc = e.popen("train", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--method", "full",
                   "--max-steps", "400", "--save-steps", "2", "--name", "probe-run", "--json", log="train.log")
    runs = e.ws / "training" / "runs"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not list(runs.glob("*/checkpoints/*/trainer_state.json")):
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(120)
    folders = [d.name for d in runs.iterdir() if d.is_dir()]
    if not folders:
        raise RuntimeError(f"no run was made: {(e.root / 'train.log').read_text()[-500:]}")
    return folders[0]


def two_resumes(e):
    run = _stopped_run(e)
    procs = [e.popen("train", "--resume", run, log=f"resume{i}.log") for i in range(2)]
    deadline = time.time() + 120
    while time.time() < deadline and all(p.poll() is None for p in procs):
        time.sleep(0.2)
    ended = [i for i, p in enumerate(procs) if p.poll() is not None]
    for p in procs:
        _stop(p)
    if not ended:
        return "both resumes were still running after 120 s"
    log = (e.root / f"resume{ended[0]}.log").read_text()
    refused = procs[ended[0]].returncode == 1 and "is using it" in log and "Traceback" not in log
    rc = procs[ended[0]].returncode
    return None if refused else f"the first to end did not say the run is in use: exit {rc}: {log[-300:]}"


def delete_during_eval(e):
    run = next(d.name for d in (e.ws / "training" / "runs").iterdir() if d.is_dir()) \
        if (e.ws / "training" / "runs").is_dir() and any((e.ws / "training" / "runs").iterdir()) else _stopped_run(e)
    folder = e.ws / "training" / "runs" / run
    proc = e.popen("eval", "--run", run, "--dataset", "demo-reviews.jsonl", "--split", "all", log="eval.log")
    try:
        deadline, busy = time.time() + 120, False
        while time.time() < deadline and proc.poll() is None and not busy:
            with open(folder / ".lock", "a") as f:   # the eval holds the run's lock (core/runlock.py)
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(f, fcntl.LOCK_UN)
                    time.sleep(0.2)
                except BlockingIOError:
                    busy = True
        if not busy:
            return "the eval ended before it could be caught (or never locked the run)"
        rc, _, err, secs = e.cli("runs", "delete", run, "--yes", "--delete-files")
        why = one_error(rc, err, secs, 60, "is using it")
        return why or (None if folder.is_dir() else "the run folder is gone under the eval")
    finally:
        _stop(proc)


# ---- the web UI ---------------------------------------------------------------------------------

def _ui(e, *extra) -> tuple[subprocess.Popen, str]:
    e.demo()
    port = _port()
    proc = e.popen("webui", "--port", port, *extra, log=f"webui-{port}.log")
    url = f"http://127.0.0.1:{port}/"
    if not _wait_http(url + "config", proc):
        _stop(proc)
        raise RuntimeError(f"the UI did not start: {(e.root / f'webui-{port}.log').read_text()[-500:]}")
    return proc, url


def ui_passwords(e):
    proc, url = _ui(e, "--auth", "alice:s3cret")
    try:
        def login(password):
            data = urllib.parse.urlencode({"username": "alice", "password": password}).encode()
            return _http(url + "login", data)
        if login("s3cret")[0] != 200:
            return "the right password was refused"
        answers = [login(f"guess{i}") for i in range(30)]
        through = sum(a[0] == 400 for a in answers)
        throttled = [a for a in answers if a[0] == 429 and "retry-after" in a[1]]
        return None if through <= 10 and throttled else f"{through} of 30 wrong passwords were checked, none throttled"
    finally:
        _stop(proc)


class _Leaky(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint whose reply holds images, and the server they would load from."""
    seen: list = []
    reply = ""

    def log_message(self, *args):
        pass

    def _send(self, body: bytes, kind: str):
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.seen.append(self.path)
        self._send(json.dumps({"data": [{"id": "m"}]}).encode() if "models" in self.path else b"", "application/json")

    def do_POST(self):
        self.seen.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunk = json.dumps({"choices": [{"delta": {"content": self.reply}}]})
        self._send(f"data: {chunk}\n\ndata: [DONE]\n\n".encode(), "text/event-stream")


def chat_image(e):
    """A message and a reply with `![x](http://...)` and `<img src=...>`: nothing fetched (Playwright)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "needs playwright and /usr/bin/chromium to drive a browser"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Leaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    _Leaky.seen = []
    _Leaky.reply = f"![r](http://127.0.0.1:{port}/leak1.png) <img src='http://127.0.0.1:{port}/leak2.png'> end"
    proc, url = _ui(e)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("#model-select", timeout=120_000)
            page.get_by_role("tab", name="Chat").click()
            page.fill("#chat-endpoint textarea", f"http://127.0.0.1:{port}/v1")
            page.fill("#chat-input textarea", f"![x](http://127.0.0.1:{port}/leak3.png) <img src=/leak4.png> hi")
            page.press("#chat-input textarea", "Enter")
            page.wait_for_function("document.querySelector('#chatbot').innerText.includes(' end')", timeout=60_000)
            page.wait_for_timeout(1500)
            browser.close()
        leaks = [s for s in _Leaky.seen if "leak" in s]
        return f"the browser fetched {leaks}" if leaks else None
    finally:
        _stop(proc)
        server.shutdown()


# ---- serve: what the issue asks of `tunestudio serve` --------------------------------

def _serve(e) -> tuple[subprocess.Popen, str]:
    e.demo()
    port = _port()
    proc = e.popen("serve", "tiny-demo", "--port", port, log=f"serve-{port}.log")
    url = f"http://127.0.0.1:{port}"
    if not _wait_http(url + "/v1/models", proc):
        _stop(proc)
        raise RuntimeError(f"the server did not start: {(e.root / f'serve-{port}.log').read_text()[-500:]}")
    return proc, url


def _chat_body(url: str, content: str) -> bytes:
    """A chat request for the served model (its own name: another would be refused for that alone)."""
    model = json.loads(_http(url + "/v1/models")[2])["data"][0]["id"]
    return json.dumps({"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 4}).encode()


def serve_huge_prompt(e):
    proc, url = _serve(e)
    try:
        status, _, body = _http(url + "/v1/chat/completions", _chat_body(url, "x " * (5 * 2**20 // 2)),
                                {"Content-Type": "application/json"}, timeout=60)
        return None if status in (400, 413) else f"answered {status}: {body[:200]}"
    except (urllib.error.URLError, OSError) as x:
        return f"no answer within 60 s ({x})"
    finally:
        _stop(proc)


def serve_load_model(e):
    proc, url = _serve(e)
    try:
        status, _, body = _http(url + "/load_model", json.dumps({"model": "/etc"}).encode(),
                                {"Content-Type": "application/json"})
        return None if status in (400, 403, 404, 405) else f"answered {status}: {body[:200]}"
    finally:
        _stop(proc)


def serve_foreign_host(e):
    proc, url = _serve(e)
    try:
        status, _, body = _http(url + "/v1/models", headers={"Host": "attacker.example"})
        return None if status in (400, 403, 421) else f"answered {status} to Host attacker.example"
    finally:
        _stop(proc)


def serve_sigterm(e):
    proc, _ = _serve(e)
    t = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
        return None
    except subprocess.TimeoutExpired:
        _stop(proc)
        return f"still running {time.monotonic() - t:.0f} s after SIGTERM"


# ---- reward: what the issue asks of the reward sandbox --------------------------------

def _reward(e, name: str, body: str) -> tuple[float | None, str]:
    """(the reward's mean over 2 completions, or None; stderr) for a reward file of `body`."""
    e.demo()
    path = e.ws / "rewards" / f"{name}.py"
    path.write_text(body)
    rc, out, err, _ = e.cli("reward", "test", "--rewards", f"rewards/{name}.py", "--dataset", "demo-rewards.jsonl",
                            "--model", "tiny-demo", "-n", "2", "--max-new-tokens", "2", "--json",
                            env={"HF_TOKEN": "hf_probe_secret"}, timeout=180)
    try:
        return float(json.loads(out)["means"]["total"]), err
    except (ValueError, KeyError, TypeError):
        return None, f"exit {rc}: {err.strip()[-300:]}"


def reward_fork(e):
    pid_file = e.root / "forked.pids"
    mean, err = _reward(e, "probe_fork", f"""import os, time
def reward(prompt, completion, **row):
    if os.fork() == 0:
        with open({str(pid_file)!r}, "a") as f:
            f.write(f"{{os.getpid()}}\\n")
        time.sleep(600)
        os._exit(0)
    return 1.0
""")
    time.sleep(1)
    if not pid_file.exists():
        return None if mean is None or mean == 0 else "the reward forked, but its children wrote nothing"
    alive = []
    for pid in map(int, pid_file.read_text().split()):
        try:
            os.kill(pid, signal.SIGKILL)   # the probe cleans up after itself either way
            alive.append(pid)
        except ProcessLookupError:
            pass
    return f"the reward's forked children {alive} outlived `reward test`" if alive else None


def reward_memory(e):
    mean, err = _reward(e, "probe_memory", """import resource
def reward(prompt, completion, **row):
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    return 1.0 if soft != resource.RLIM_INFINITY and soft <= 16 * 2**30 else 0.0
""")
    if mean == 0.0:
        return "the reward process has no address-space limit (RLIMIT_AS)"
    return None if mean == 1.0 else err


def reward_env(e):
    mean, err = _reward(e, "probe_env", """import os
def reward(prompt, completion, **row):
    return 1.0 if any("hf_probe_secret" in v for v in os.environ.values()) else 0.0
""")
    return None if mean == 0.0 else ("HF_TOKEN reaches the reward's environment" if mean == 1.0 else err)
