"""The Chat tab shows a message and a model's reply as text: an image in either, as Markdown
(`![x](http://...)`) or as HTML (`<img src=...>`), is never fetched by the browser (it would tell
that server the page was read, and what it holds), and the text still reads as written.

The model here is an OpenAI-compatible endpoint the test starts on loopback (as `tunestudio serve`
or vLLM would be), whose reply carries the images; the same server logs every request it gets, so
a fetched image shows up in its log."""

from __future__ import annotations

import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from browser_helpers import CHROMIUM, open_tab, save_shot, start_ui, stop_ui

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt install chromium)")]


class _Endpoint(BaseHTTPRequestHandler):
    seen: list[str] = []
    reply = ""

    def log_message(self, *args):   # quiet
        pass

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.seen.append(self.path)
        if self.path.endswith("/models"):
            return self._send(200, json.dumps({"data": [{"id": "m"}]}).encode(), "application/json")
        # the smallest PNG: a leak that worked would load
        self._send(200, bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                                      "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"),
                   "image/png")

    def do_POST(self):
        self.seen.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunk = {"choices": [{"delta": {"content": self.reply}}]}
        self._send(200, f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode(), "text/event-stream")


@pytest.fixture
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    _Endpoint.seen = []
    _Endpoint.reply = (f"Here: ![r](http://127.0.0.1:{port}/leak-reply-md.png) and "
                       f"<img src=\"http://127.0.0.1:{port}/leak-reply-html.png\"> done")
    yield port
    server.shutdown()


def test_images_in_a_message_or_a_reply_are_shown_as_text_and_never_fetched(endpoint, demo_template, tmp_path,
                                                                              browser):
    port = endpoint
    ws = tmp_path / "ws"
    shutil.copytree(demo_template, ws)
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    proc, ui_port = start_ui(ws, tmp_path / "webui.log", env)
    try:
        page = open_tab(browser, f"http://127.0.0.1:{ui_port}/", "Chat", "#chat-input")
        page.fill("#chat-endpoint textarea", f"http://127.0.0.1:{port}/v1")
        message = (f"look ![x](http://127.0.0.1:{port}/leak-md.png) "
                   f"<img src=\"http://127.0.0.1:{port}/leak-html.png\"> a < b && c")
        page.fill("#chat-input textarea", message)
        page.press("#chat-input textarea", "Enter")
        page.wait_for_function("document.querySelector('#chatbot').innerText.includes('Here:')", timeout=60_000)
        page.wait_for_timeout(1500)   # time for any image the page would load
        shown = page.inner_text("#chatbot")
        save_shot(page, "chat-images-as-text")
        assert message in shown and _Endpoint.reply in shown, shown   # the text, as written
        assert not [p for p in _Endpoint.seen if "leak" in p], _Endpoint.seen   # no image fetched
        assert page.evaluate("document.querySelectorAll('#chatbot img[src*=\"leak\"]').length") == 0
        assert "/v1/chat/completions" in _Endpoint.seen   # the reply did come from the endpoint
    finally:
        stop_ui(proc)
