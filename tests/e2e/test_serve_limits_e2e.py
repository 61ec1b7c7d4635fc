"""`tunestudio serve` holding up under hostile requests, for real on a tiny model over loopback: a
5 MB prompt (sent whole and in chunks), a prompt longer than the context, a token budget no context
holds and a generation that would run for minutes come among twenty ordinary requests; the
ordinary ones are answered, the hostile ones refused (413/400) or cut at --max-seconds, and the
server's memory stays where it was. A stop signal (SIGTERM, Ctrl-C) ends the server mid-generation
within seconds.
(What the guard refuses before the model, in process: tests/unit/ship/test_serve_guard.py.)"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from helpers import served

pytestmark = pytest.mark.e2e
CONTEXT = 32768
HUGE = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def long_ws(demo_template, tmp_path_factory) -> Path:
    """The demo workspace with models/long-demo: the tiny demo model with room for 32k tokens, so a
    generation left alone runs for minutes (it never says its end token)."""
    ws = tmp_path_factory.mktemp("serve-limits") / "ws"
    shutil.copytree(demo_template, ws)
    folder = ws / "models" / "long-demo"
    shutil.copytree(ws / "models" / "tiny-demo", folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "max_position_embeddings": CONTEXT}))
    return ws


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


def chat(content: str, **extra) -> dict:
    return {"model": "long-demo", "messages": [{"role": "user", "content": content}], "temperature": 0, **extra}


def test_hostile_requests_are_refused_ordinary_ones_answered_in_bounded_memory_then_sigterm(long_ws):
    with served(long_ws, "long-demo", args=["--max-seconds", "3"]) as (client, proc, port):
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        http = httpx.Client(timeout=120)
        assert http.post(url, json=chat("warm up", max_tokens=4)).status_code == 200
        before = rss_mib(proc.pid)

        def ordinary(i):
            r = http.post(url, json=chat(f"Review {i}: the kettle is great.", max_tokens=8))
            return r.status_code, r.json()

        def whole_5mb():   # the 5 MB prompt, with its Content-Length
            return http.post(url, json=chat("word " * (HUGE // 5)))

        def chunked_5mb():   # the same without a Content-Length: counted as it streams in
            raw = json.dumps(chat("word " * (HUGE // 5))).encode()
            return http.post(url, content=(raw[i:i + 65536] for i in range(0, len(raw), 65536)),
                             headers={"content-type": "application/json"})

        def past_context():   # ~36k tokens in 110 kB: under the body limit, over the context
            return http.post(url, json=chat("hello world " * 9000))

        def huge_budget():
            return http.post(url, json=chat("hi", max_tokens=10**9))

        def endless():   # fits the context: would run for minutes; cut at --max-seconds
            started = time.monotonic()
            r = http.post(url, json=chat("Tell me everything.", max_tokens=CONTEXT - 100))
            return r, time.monotonic() - started

        with ThreadPoolExecutor(26) as pool:
            hostile = [pool.submit(f) for f in (whole_5mb, chunked_5mb, past_context, huge_budget)]
            long = pool.submit(endless)
            normal = list(pool.map(ordinary, range(20)))
            hostile = [f.result() for f in hostile]
            long_answer, long_s = long.result()

        assert all(status == 200 and answer["choices"][0]["message"]["content"] for status, answer in normal), normal
        assert [r.status_code for r in hostile] == [413, 413, 400, 400], [r.text[:300] for r in hostile]
        assert all(r.json()["error"]["code"] == code for r, code in zip(hostile, (
            "request_too_large", "request_too_large", "context_length_exceeded", "context_length_exceeded")))
        assert "after the chat template" in hostile[2].json()["error"]["message"]
        assert long_answer.status_code == 200 and long_answer.json()["choices"][0]["finish_reason"] == "length"
        assert long_answer.json()["usage"]["completion_tokens"] < CONTEXT - 100 and long_s < 30, long_s
        grown = rss_mib(proc.pid) - before
        print(f"RSS {before:.0f} MiB before, grew {grown:.0f} MiB; the endless request stopped after {long_s:.1f} s")
        assert grown < 300, f"the server grew by {grown:.0f} MiB"
        assert proc.poll() is None and client.models.list().data[0].id == "long-demo"
        took = stop_mid_generation(proc, port, signal.SIGTERM)   # SIGTERM: the UI's Stop, `kill`
        print(f"ended {took:.1f} s after SIGTERM")
        assert took < 5, f"the server took {took:.1f} s to end after SIGTERM"


def stop_mid_generation(proc, port: int, sig: signal.Signals) -> float:
    """Start a generation that would run for minutes, send `sig` while it streams; the seconds the
    server then took to end."""
    chunks, ended = [], threading.Event()

    def stream():
        try:
            with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions", timeout=120,
                              json=chat("Tell me everything.", max_tokens=CONTEXT - 100, stream=True)) as r:
                for line in r.iter_lines():
                    chunks.append(line)
        except httpx.HTTPError:
            pass   # the server went away mid-answer
        ended.set()

    threading.Thread(target=stream, daemon=True).start()
    deadline = time.monotonic() + 60
    while len(chunks) < 20:
        assert time.monotonic() < deadline and not ended.is_set(), chunks[-3:]
        time.sleep(0.1)
    assert not any('"finish_reason"' in c and '"finish_reason":null' not in c for c in chunks)  # mid-generation
    proc.send_signal(sig)
    stopped = time.monotonic()
    proc.wait(timeout=30)
    took = time.monotonic() - stopped
    assert proc.returncode == 130 and "interrupted" in proc.stdout.read()
    return took


def test_ctrl_c_ends_the_server_mid_generation_within_seconds(long_ws):
    with served(long_ws, "long-demo", args=["--max-seconds", "600"]) as (_, proc, port):
        took = stop_mid_generation(proc, port, signal.SIGINT)
        assert took < 5, f"the server took {took:.1f} s to end after Ctrl-C"


def test_clients_that_give_up_do_not_hold_the_server(long_ws):
    """Three clients ask for answers of minutes and hang up after a second (a timeout, a closed tab):
    their generations stop, so the next client is answered in seconds, not after theirs."""
    with served(long_ws, "long-demo", args=["--max-seconds", "600"]) as (_, proc, port):
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        assert httpx.post(url, json=chat("warm up", max_tokens=4), timeout=120).status_code == 200
        for i in range(3):
            with pytest.raises(httpx.TimeoutException):
                httpx.post(url, json=chat(f"tell me a long story {i}", max_tokens=20000), timeout=1)
        start = time.monotonic()
        r = httpx.post(url, json=chat("short", max_tokens=4), timeout=120)
        took = time.monotonic() - start
        assert r.status_code == 200 and took < 30, f"answered {r.status_code} after {took:.1f} s"


def test_sigterm_with_requests_waiting_answers_each_without_a_traceback(long_ws):
    """Four long requests at once (one generating, three waiting their turn), then SIGTERM: the one
    generating is cut ("length"), the waiting ones get 503 at once, none a 500, and no traceback."""
    with served(long_ws, "long-demo", args=["--max-seconds", "600"]) as (_, proc, port):
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        assert httpx.post(url, json=chat("warm up", max_tokens=4), timeout=120).status_code == 200
        with ThreadPoolExecutor(4) as pool:
            answers = [pool.submit(httpx.post, url, json=chat(f"story {i}", max_tokens=20000), timeout=60)
                       for i in range(4)]
            time.sleep(3)
            proc.send_signal(signal.SIGTERM)
            codes = sorted(a.result().status_code for a in answers)
        proc.wait(timeout=30)
        log = proc.stdout.read()
    assert 500 not in codes and set(codes) <= {200, 503}, codes
    assert "Traceback" not in log and "CancelledError" not in log, log[-2000:]
