"""A stub OpenAI-compatible judge on loopback, for the LLM judge's tests (unit and CLI).

`stub_judge(answer)` serves GET /v1/models and POST /v1/chat/completions from a thread of the
test process; `answer(prompt) -> str` is the judge's script (what it "thinks"), `delay` seconds
are slept before each answer (a slow judge). It records every request's prompt and Authorization
header and the most requests it ever had in flight at once.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubJudge:
    def __init__(self, answer, delay: float = 0.0):
        self.answer, self.delay = answer, delay
        self.prompts: list[str] = []
        self.auth: list[str | None] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.url = ""


def _handler(stub: StubJudge):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):   # quiet
            pass

        def _send(self, obj: dict, status: int = 200) -> None:
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:   # the client gave up (its timeout)
                pass

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                return self._send({"object": "list", "data": [{"id": "stub-judge", "object": "model"}]})
            self._send({"error": "not found"}, 404)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            prompt = body["messages"][-1]["content"]
            with stub.lock:
                stub.prompts.append(prompt)
                stub.auth.append(self.headers.get("Authorization"))
                stub.in_flight += 1
                stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
            try:
                time.sleep(stub.delay or 0.02)   # long enough that parallel requests overlap
                text = stub.answer(prompt)
            finally:
                with stub.lock:
                    stub.in_flight -= 1
            self._send({"id": "x", "object": "chat.completion", "model": body.get("model"),
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                     "finish_reason": "stop"}]})
    return Handler


@contextlib.contextmanager
def stub_judge(answer, delay: float = 0.0):
    stub = StubJudge(answer, delay)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.daemon_threads = True
    server.block_on_close = False   # a sleeping handler must not hold up the test's end
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()


def answer_of(prompt: str) -> tuple[str, str] | str:
    """The answers a judge prompt shows: (A, B) for a pairwise prompt, the one answer for a single one."""
    def between(start, end):
        return prompt.split(start, 1)[1].split(end, 1)[0].strip()
    if "[The Start of Assistant A's Answer]" in prompt:
        return (between("[The Start of Assistant A's Answer]", "[The End of Assistant A's Answer]"),
                between("[The Start of Assistant B's Answer]", "[The End of Assistant B's Answer]"))
    return between("[The Start of Assistant's Answer]", "[The End of Assistant's Answer]")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
