"""What `tunestudio serve` lets through to transformers serve: an ASGI layer before its app.

transformers serve is a development server: it loads any folder or hub id a request names
(POST /load_model, or `"model"` in a chat request), drops every model on POST /reset, reads a body
of any size, and answers any Host and Origin. In front of it, `Front` answers or refuses, in this
order, before transformers sees a byte of the body:
- the Host header (when the server is reachable only from this machine, no API key) and the Origin
  header (always): a page in the user's browser can neither rebind its name to 127.0.0.1 nor
  POST from its own origin (core/hosts.py, as the web UI);
- the API key, when one is set (`Authorization: Bearer KEY`);
- the route: only the ones in ROUTES exist; every other path (/load_model, /reset, /v1/systemone,
  /v1/audio/transcriptions, FastAPI's /docs) is 404, whatever its body names;
- the body: at most `max_body_bytes`, by Content-Length and counted while it streams in (a chunked
  body has none), a JSON object, naming this server's model or none, without `generation_config`
  (which sets any generation option: beams, lengths), no token budget above the context, and at
  most MAX_STOPS short stop strings.
The prompt's length in tokens, counted after the chat template, and the time a generation may take
are kept where the tokens are: ship/serve_app.py. Refusals are OpenAI-style JSON errors (Refused).
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import json
import threading
from dataclasses import dataclass

from tunestudio.core.hosts import host_allowed, same_origin

# (method, path) -> what it is; everything else of transformers serve's app is refused
ROUTES = {("POST", "/v1/chat/completions"), ("POST", "/v1/completions"), ("POST", "/v1/responses"),
          ("GET", "/v1/models"), ("GET", "/health")}
TOKEN_BUDGETS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
MAX_BODY_BYTES = 1 << 20   # 1 MiB: ~250k tokens of text, more than most models' context
# `stop` strings: transformers matches each against every token of the vocabulary before generating
# (StopStringCriteria), so their number and length are work; OpenAI's own API takes up to 4
MAX_STOPS, MAX_STOP_CHARS = 4, 200


@dataclass(frozen=True)
class Limits:
    """What one request may ask. None for max_prompt_tokens: the model's context length."""
    max_body_bytes: int = MAX_BODY_BYTES
    max_prompt_tokens: int | None = None
    max_seconds: float = 120.0
    context: int | None = None   # the model's context length (max_position_embeddings), when known

    @property
    def prompt_tokens(self) -> int | None:
        """The most tokens a prompt may have: max_prompt_tokens, never more than the context."""
        return min((n for n in (self.max_prompt_tokens, self.context) if n), default=None)


class Refused(Exception):
    """A request answered with an OpenAI-style error: {"error": {message, type, param, code}}."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    def body(self) -> dict:
        kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}.get(
            self.status, "invalid_request_error")
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


async def send_json(send, status: int, obj: dict) -> None:
    body = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class Front:
    """ASGI layer before transformers' app: Host/Origin, API key, routes, body, model name."""

    def __init__(self, app, folder: str, alias: str, api_key: str | None, limits: Limits,
                 hosts: set[str] | None):
        """`hosts`: the Host names answered (core.hosts.allowed_hosts), None to answer any (a
        server bound for other machines, behind its API key)."""
        self.app, self.folder, self.alias, self.api_key = app, folder, alias, api_key
        self.limits, self.hosts = limits, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":   # no websocket routes here
            return await send({"type": "websocket.close", "code": 1008})
        try:
            self._gate(scope)
            if scope["path"] == "/v1/models":
                return await send_json(send, 200, {"object": "list", "data": [
                    {"id": self.alias, "object": "model", "owned_by": "tunestudio"}]})
            if scope["path"] == "/health":
                return await self.app(scope, receive, send)
            raw = await read_body(dict(scope["headers"]), receive, self.limits.max_body_bytes)
            body = self._check(json_object(raw))
        except Refused as e:
            if e.status == 413:
                await drain(receive)
            return await send_json(send, e.status, e.body())
        raw = json.dumps(body).encode()
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                # a streaming response listens here for the client going away: hand it the real
                # channel (answering "disconnect" at once ended every stream after its first chunk)
                return await receive()
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(raw)).encode()))
        # A client that goes away (a timeout, a closed tab) must not leave its generation running:
        # the server makes one answer at a time, and abandoned ones would hold the next for minutes.
        gone = threading.Event()
        token = CLIENT_GONE.set(gone)
        watcher = asyncio.create_task(_watch_disconnect(receive, gone))
        try:
            return await self.app({**scope, "headers": headers}, replay, self._named(send))
        finally:
            watcher.cancel()
            CLIENT_GONE.reset(token)

    def _named(self, send):
        """`send` with the model called by its alias in answers: transformers names it by its
        folder's absolute path ("/home/me/.../final@main"), which is no client's business."""
        path = json.dumps(f"{self.folder}@main", ensure_ascii=False).encode()
        alias = json.dumps(self.alias, ensure_ascii=False).encode()

        async def named(message):
            if message["type"] == "http.response.start":   # the length changes with the name
                message = {**message, "headers": [(k, v) for k, v in message.get("headers", [])
                                                  if k.lower() != b"content-length"]}
            elif message["type"] == "http.response.body" and path in message.get("body", b""):
                message = {**message, "body": message["body"].replace(path, alias)}
            return await send(message)

        return named

    def _gate(self, scope) -> None:
        """Refused unless the Host, Origin, API key and route are ones this server answers."""
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        if self.hosts is not None and not host_allowed(host, self.hosts):
            raise Refused(403, f"Host '{host[:100]}' is not allowed: this server answers to "
                               f"{', '.join(sorted(self.hosts))} (add names with --allow-host)", "host_not_allowed")
        origin = headers.get(b"origin", b"").decode("latin-1")
        if not same_origin(origin, host):
            raise Refused(403, f"a request from the web page '{origin[:100]}' is not allowed: this server answers "
                               "programs, not other sites' pages", "origin_not_allowed")
        path, method = scope["path"], scope["method"]
        if self.api_key and path != "/health":
            if not hmac.compare_digest(headers.get(b"authorization", b""), f"Bearer {self.api_key}".encode()):
                raise Refused(401, "missing or wrong API key (Authorization: Bearer KEY)", "invalid_api_key")
        if (method, path) not in ROUTES:
            raise Refused(404, f"{method} {path[:100]} is not served here: /v1/chat/completions, /v1/completions, "
                               "/v1/responses, /v1/models, /health", "not_found")

    def _check(self, body: dict) -> dict:
        model = body.get("model")
        if model not in (None, self.alias):
            raise Refused(404, f"the model '{str(model)[:100]}' is not served here: this server serves "
                               f"'{self.alias}' only", "model_not_found", "model")
        if "generation_config" in body:
            raise Refused(400, "generation_config is not accepted here: use the OpenAI fields (max_tokens, "
                               "temperature, top_p, stop, seed)", "unsupported_parameter", "generation_config")
        stop = body.get("stop")
        stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else [] if stop is None else [None]
        if len(stops) > MAX_STOPS or not all(isinstance(x, str) and 0 < len(x) <= MAX_STOP_CHARS for x in stops):
            raise Refused(400, f"stop takes up to {MAX_STOPS} strings of 1 to {MAX_STOP_CHARS} characters",
                          "invalid_value", "stop")
        context = self.limits.context
        for field in TOKEN_BUDGETS:
            n = body.get(field)
            if n is None:
                continue
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise Refused(400, f"{field} must be a whole number of at least 1 (got {str(n)[:40]})",
                              "invalid_value", field)
            if context and n >= context:
                raise Refused(400, f"{field} is {n}, but this model's context holds {context} tokens, prompt "
                                   "included: ask for fewer", "context_length_exceeded", field)
        body["model"] = self.folder   # transformers serve is pinned to the folder path
        return body


async def read_body(headers: dict, receive, limit: int) -> bytes:
    """The request body, refused (413) past `limit` bytes: at once by its Content-Length, and while
    it streams in, so a body sent in chunks (no Content-Length) is never held whole."""
    too_large = Refused(413, f"the request body is larger than this server takes ({limit} bytes; "
                             "--max-body-bytes)", "request_too_large")
    declared = headers.get(b"content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large
        except ValueError:
            raise Refused(400, "the Content-Length header is not a number", "invalid_request") from None
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refused(400, "the client went away before its body arrived", "invalid_request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


# the request's "client went away" flag, read by the generation's stopping criterion (serve_app.TimeLimit)
CLIENT_GONE: contextvars.ContextVar = contextvars.ContextVar("client_gone", default=None)


async def _watch_disconnect(receive, gone: threading.Event) -> None:
    """Set `gone` when the client disconnects (uvicorn answers every waiter of receive() once it has)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


async def drain(receive, max_bytes: int = 64 << 20, max_seconds: float = 10.0) -> None:
    """Read and drop the rest of a refused body, within bounds, before answering 413: a client still
    sending it (urllib, requests, the openai client) would otherwise get a reset connection instead of
    the answer. Past the bounds the answer goes anyway and the connection closes."""
    loop = asyncio.get_running_loop()
    end, seen = loop.time() + max_seconds, 0
    while seen < max_bytes and loop.time() < end:
        try:
            message = await asyncio.wait_for(receive(), end - loop.time())
        except asyncio.TimeoutError:
            return
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def json_object(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise Refused(400, f"the request body is not JSON ({e})", "invalid_json") from None
    except RecursionError:   # [[[[... a few kB deep: json's C decoder recurses once per level
        raise Refused(400, "the request body is nested too deeply to be a request", "invalid_json") from None
    if not isinstance(body, dict):
        raise Refused(400, "the request body must be a JSON object", "invalid_json")
    return body
