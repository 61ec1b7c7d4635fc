"""What keeps the web UI from being used against its own machine.

- `HostGuard`: answers only requests whose Host header names this server (loopback names, the
  configured `--host`, and `--allow-host` names: core/hosts.py, shared with `tunestudio serve`). A
  page on another site that makes its own name resolve to 127.0.0.1 (DNS rebinding) sends its own
  name as Host and is refused.
- `LoginThrottle`: after a few wrong passwords from one address, Gradio's /login answers 429 with
  Retry-After for a window that doubles with each further failure (a password guesser gets a
  handful of tries a day, not thousands a second); a correct login is never delayed.
- `shown_chat` / `typed_chat`: a chat message as the Chat tab shows it (plain text, HTML-escaped)
  and back. Neither Markdown images nor raw HTML are rendered: the browser would fetch their URLs,
  so a message or a model's reply could report to any server that the page was read.
- `safe_name`: names the UI stores files under (uploads, "Save as") are plain, short and visible:
  no control, format (bidi override, zero-width) or path characters.
- `check_form_inputs`: the Training tab's model and dataset resolve inside the workspace
  (the workspace is `confined`; see `Workspace.check_readable`).
"""

from __future__ import annotations

import html
import re
import threading
import time
import unicodedata

from tunestudio.core.errors import UserError
from tunestudio.core.hosts import host_allowed
from tunestudio.data.split import resolve_dataset

MAX_NAME = 120   # characters; file systems allow 255 bytes, and 4-byte characters exist
NAME_CHARS = re.compile(r"[\w.\-+() ]+")


class HostGuard:
    """ASGI middleware: 403 for HTTP requests (and a closed socket for websockets) whose Host is
    not in `allowed`."""

    def __init__(self, app, allowed: set[str]):
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            header = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if not host_allowed(header, self.allowed):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                body = (f"Host '{header[:100]}' is not allowed: this tunestudio UI answers only to "
                        f"{', '.join(sorted(self.allowed))} (add names with --allow-host)\n").encode()
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class LoginThrottle:
    """ASGI middleware in front of Gradio's `POST /login` (gradio/routes.py: 200 and a cookie for the
    right user and password, 400 otherwise). Per client address: the first `free` failures pass;
    after that each attempt must wait a window of `first_s` seconds, doubled per further failure up
    to `most_s`, or is answered 429 with Retry-After without reaching Gradio. An attempt counts as a
    failure from the moment it arrives (a flood sent at once cannot slip past the count while its
    answers are pending) and is forgiven if Gradio accepts it: a success clears the address."""

    def __init__(self, app, free: int = 5, first_s: float = 5.0, most_s: float = 900.0):
        self.app, self.free, self.first_s, self.most_s = app, free, first_s, most_s
        self.failures: dict[str, tuple[int, float]] = {}   # address -> (failed attempts, locked until)
        self.lock = threading.Lock()

    def _wait(self, who: str, now: float) -> float:
        """Seconds `who` must still wait; 0: the attempt goes through (and is counted)."""
        with self.lock:
            n, until = self.failures.get(who, (0, 0.0))
            if until > now:
                return until - now
            n += 1
            until = now + min(self.first_s * 2 ** (n - self.free), self.most_s) if n >= self.free else 0.0
            if len(self.failures) > 10_000:   # many addresses (IPv6): forget those no longer locked
                self.failures = {k: v for k, v in self.failures.items() if v[1] > now}
            self.failures[who] = (n, until)
            return 0.0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" \
                or not scope.get("path", "").rstrip("/").endswith("/login"):
            return await self.app(scope, receive, send)
        who = (scope.get("client") or ("?",))[0]
        wait = self._wait(who, time.monotonic())
        if wait > 0:
            retry = str(int(wait) + 1)
            body = (f'{{"detail": "Too many wrong passwords from {who}: try again in {retry} s."}}').encode()
            await send({"type": "http.response.start", "status": 429,
                        "headers": [(b"content-type", b"application/json"), (b"retry-after", retry.encode()),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return

        async def watch(message):
            if message["type"] == "http.response.start" and message["status"] == 200:
                with self.lock:   # the right password: this address starts afresh
                    self.failures.pop(who, None)
            await send(message)

        await self.app(scope, receive, watch)


def shown_chat(text: str) -> str:
    """`text` (a message, a model's reply) for a Chatbot made with `render_markdown=False`, which
    puts a message into the page as HTML: `&`, `<` and `>` as entities, so the text shows exactly as
    typed and no `<img>`, `<iframe>` or `<style>` in it becomes an element (Markdown is not rendered
    at all, so `![..](url)` is text too). Exactly undone by `typed_chat`."""
    return html.escape(text, quote=False)


def typed_chat(shown: str) -> str:
    """The text `shown_chat` was given back (what the model is sent as the conversation so far)."""
    return html.unescape(shown)


def safe_name(name: str, what: str = "name") -> str:
    """`name` stripped, if it is a plain visible file name; else a UserError saying what is wrong.

    Allowed: letters and digits of any script, space and . _ - + ( ); at most MAX_NAME
    characters; not starting with a dot or a dash.
    """
    name = (name or "").strip()
    if not name:
        raise UserError(f"the {what} is empty", "name_empty", what=what)
    name = visible_name(name, what)   # its length and no invisible characters, as any display name
    if "/" in name or "\\" in name or name in (".", ".."):
        raise UserError(f"the {what} '{name}' is not a plain file name: no folders", "name_has_folders",
                        what=what, name=name)
    if name.startswith((".", "-")) or not NAME_CHARS.fullmatch(name):
        odd = "".join(sorted({c for c in name if not NAME_CHARS.fullmatch(c)}))[:10]
        raise UserError(f"the {what} '{name}' may use letters, digits, spaces and . _ - + ( ) only"
                        + (f" (not {odd!r})" if odd else ", and may not start with '.' or '-'"), "name_bad_chars",
                        what=what, name=name)
    return name


def visible_name(name: str, what: str = "name") -> str:
    """A display name (a run's name): any printable text up to MAX_NAME characters; no control,
    bidi-override or zero-width characters, which would make it show as something it is not."""
    name = (name or "").strip()
    if len(name) > MAX_NAME:
        raise UserError(f"the {what} has {len(name)} characters: use at most {MAX_NAME}", "name_too_long",
                        what=what, n=len(name), most=MAX_NAME)
    bad = sorted({c for c in name if unicodedata.category(c)[0] == "C"})
    if bad:
        shown = ", ".join(f"U+{ord(c):04X}" for c in bad[:5])
        raise UserError(f"the {what} contains invisible control or direction characters ({shown}): type it again "
                        "with visible characters only", "name_invisible", what=what, chars=shown)
    return name


def check_form_inputs(ws, model: str, dataset: str, name: str = "") -> None:
    """Refuse a model or dataset that resolves outside the workspace before a job is queued (the
    job itself, launched confined, would refuse it too, but later and only in its log), and a
    run name with invisible characters."""

    visible_name(name, "run name")

    if model:
        ws.model_path_or_id(model)
    if dataset:
        resolve_dataset(ws, dataset)
