"""What `tunestudio serve` lets through to transformers serve (ship/serve_guard.py), in process: the
Host and Origin a request comes with, the routes it may reach (no /load_model, no /reset), the size
of its body (by Content-Length and while a chunked body streams in), the model it names and the
token budget it asks. The model's side (prompt tokens, time, a stop signal) runs for real in
tests/e2e/test_serve_limits_e2e.py."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tunestudio.core.hosts import allowed_hosts
from tunestudio.ship.serve_guard import Front, Limits

FOLDER = "/home/me/secret/models/tiny@v2"


def make_front(api_key=None, hosts=allowed_hosts("127.0.0.1"), limits=Limits(max_body_bytes=1000, context=1024)):
    reached = []

    async def app(scope, receive, send):   # stands for transformers serve: echoes what reached it
        message = await receive()
        reached.append((scope["path"], message["body"]))
        body = json.dumps({"model": f"{FOLDER}@main", "object": "chat.completion"}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return Front(app, FOLDER, "tiny", api_key, limits, hosts), reached


def call(front, path="/v1/chat/completions", body=None, method="POST", host="127.0.0.1:8000", chunks=None,
         headers=()):
    """(status, JSON answer) of one request; `chunks`: a body sent in pieces without Content-Length."""
    raw = json.dumps(body).encode() if body is not None else b""
    pieces = list(chunks) if chunks is not None else [raw]
    hdrs = [(b"host", host.encode()), *[(k.encode(), v.encode()) for k, v in headers]]
    if chunks is None:
        hdrs.append((b"content-length", str(len(raw)).encode()))
    read, sent = [], []

    async def receive():
        read.append(1)
        if not pieces:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": pieces.pop(0), "more_body": bool(pieces)}

    async def send(message):
        sent.append(message)

    asyncio.run(front({"type": "http", "method": method, "path": path, "headers": hdrs}, receive, send))
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(answer), len(read)


CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}


def test_a_chat_request_reaches_the_model_by_its_alias_and_the_answer_names_no_path():
    front, reached = make_front()
    status, answer, _ = call(front, body=CHAT)
    assert status == 200 and json.loads(reached[0][1])["model"] == FOLDER   # transformers gets its pinned folder
    assert answer["model"] == "tiny" and "secret" not in json.dumps(answer)
    status, answer, _ = call(front, "/v1/models", method="GET")
    assert status == 200 and answer["data"][0]["id"] == "tiny" and "secret" not in json.dumps(answer)


@pytest.mark.parametrize("method,path", [("POST", "/load_model"), ("POST", "/reset"), ("POST", "/v1/systemone"),
                                         ("POST", "/v1/audio/transcriptions"), ("GET", "/docs"),
                                         ("GET", "/openapi.json"), ("POST", "/v1/models")])
def test_only_the_served_routes_exist(method, path):
    front, reached = make_front()
    for model in ("/etc", "/no/such/folder", "gpt2"):   # the answer is the same whether a path exists or not
        status, answer, _ = call(front, path, {"model": model}, method=method)
        assert status == 404 and answer["error"]["code"] == "not_found"
        assert model not in json.dumps(answer)
    assert reached == []


def test_a_request_naming_another_model_is_refused():
    front, reached = make_front()
    for model in ("/etc", FOLDER, "gpt2", 7):
        status, answer, _ = call(front, body={**CHAT, "model": model})
        assert status == 404 and answer["error"]["code"] == "model_not_found" and "'tiny'" in answer["error"]["message"]
    status, answer, _ = call(front, body={**CHAT, "generation_config": json.dumps({"num_beams": 64})})
    assert status == 400 and answer["error"]["param"] == "generation_config"
    assert reached == []


def test_a_token_budget_the_context_cannot_hold_and_stop_strings_past_four_are_refused():
    front, reached = make_front()
    for field in ("max_tokens", "max_completion_tokens"):
        status, answer, _ = call(front, body={**CHAT, field: 10**9})
        assert status == 400 and answer["error"]["code"] == "context_length_exceeded"
        assert answer["error"]["param"] == field and "1024" in answer["error"]["message"]
    for bad in (0, -5, "9", 2.5, True):
        status, answer, _ = call(front, body={**CHAT, "max_tokens": bad})
        assert status == 400 and answer["error"]["code"] == "invalid_value"
    for stop in (["a"] * 5, "x" * 201, [""], [7], {"a": 1}):   # each stop string is matched against the vocabulary
        status, answer, _ = call(front, body={**CHAT, "stop": stop})
        assert status == 400 and answer["error"]["param"] == "stop"
    assert call(front, body={**CHAT, "max_tokens": 64, "stop": ["\n", "END"]})[0] == 200 and len(reached) == 1


def test_a_body_too_large_is_refused_by_its_length_and_while_it_streams_in():
    front, reached = make_front()
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
    status, answer, read = call(front, body=big)
    assert status == 413 and answer["error"]["code"] == "request_too_large" and "1000 bytes" in answer["error"]["message"]
    assert read == 1   # refused by its Content-Length; the body is then read and dropped, never parsed
    status, answer, read = call(front, chunks=[b"x" * 400] * 100)   # chunked: no Content-Length
    assert status == 413 and read == 100   # refused at the third piece; the rest drained so the client reads 413
    for raw in (b"not json", b"[1, 2]"):
        status, answer, _ = call(front, chunks=[raw])
        assert status == 400 and answer["error"]["code"] == "invalid_json"
    assert reached == []


def test_a_loopback_server_answers_only_its_own_names_and_origin():
    front, reached = make_front()
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000"):
        assert call(front, "/v1/models", method="GET", host=host)[0] == 200, host
    for host in ("attacker.example:8000", "attacker.example", "", "127.0.0.1.attacker.example"):
        status, answer, _ = call(front, body=CHAT, host=host)   # DNS rebinding: the page's own name
        assert status == 403 and answer["error"]["code"] == "host_not_allowed", host
    for origin in ("http://attacker.example", "null", "http://localhost:9999", "https://127.0.0.1:8000.evil"):
        status, answer, _ = call(front, body=CHAT, headers=[("origin", origin)])   # a drive-by POST
        assert status == 403 and answer["error"]["code"] == "origin_not_allowed", origin
    assert call(front, body=CHAT, headers=[("origin", "http://127.0.0.1:8000")])[0] == 200   # its own page
    assert len(reached) == 1
    named, _ = make_front(hosts=allowed_hosts("127.0.0.1", ["studio.lan"]))
    assert call(named, "/v1/models", method="GET", host="studio.lan:8000")[0] == 200


def test_an_api_key_is_asked_before_anything_else_is_said():
    front, reached = make_front(api_key="k3y", hosts=None)   # bound for other machines: any Host
    status, answer, _ = call(front, "/load_model", {"model": "/etc"}, host="10.1.2.3:8000")
    assert status == 401 and answer["error"]["code"] == "invalid_api_key"
    ok = [("authorization", "Bearer k3y")]
    assert call(front, body=CHAT, host="10.1.2.3:8000", headers=ok)[0] == 200
    assert call(front, body=CHAT, host="10.1.2.3:8000", headers=[*ok, ("origin", "http://evil.example")])[0] == 403
    assert call(front, "/load_model", {"model": "/etc"}, headers=ok)[0] == 404


def test_a_refused_body_is_drained_within_bounds_so_the_client_reads_the_answer():
    """A client still sending a refused body gets a reset connection instead of the 413 unless the
    server reads the rest: it does, dropping it, up to a bound in bytes and in time."""
    from tunestudio.ship.serve_guard import drain

    pieces = [b"x" * 1000] * 50
    taken = []

    async def receive():
        taken.append(1)
        return {"type": "http.request", "body": pieces.pop(0), "more_body": bool(pieces)}

    asyncio.run(drain(receive, max_bytes=10_000))
    assert len(taken) == 10   # stopped at the byte bound: a huge body is not read to its end

    async def stalled():
        await asyncio.sleep(30)

    start = time.monotonic()
    asyncio.run(drain(stalled, max_seconds=0.2))
    assert time.monotonic() - start < 2   # a client that stops sending does not hold the answer


def test_a_body_nested_thousands_deep_is_a_400_not_a_traceback():
    front, reached = make_front(limits=Limits(max_body_bytes=1 << 20, context=1024))
    deep = b'{"model": "tiny", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, answer, _ = call(front, chunks=[deep])
    assert status == 400 and answer["error"]["code"] == "invalid_json" and reached == []
