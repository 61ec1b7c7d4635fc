"""Talk to an OpenAI-compatible endpoint (`tunestudio serve`, vLLM, llama.cpp's server, Ollama's
/v1...) the way an app would: POST {url}/chat/completions with stream=true, read the server-sent
events. The Chat tab uses it so a user checks exactly what their app will get from the served model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from tunestudio.core.errors import UserError


def base_url(url: str) -> str:
    """'http://127.0.0.1:8000', '.../v1' or '.../v1/chat/completions' -> 'http://127.0.0.1:8000/v1'."""
    url = (url or "").strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UserError(f"endpoint URL must start with http:// or https:// (got '{url}')", "endpoint_url_bad", url=url)
    for tail in ("/chat/completions", "/completions", "/models"):
        if url.endswith(tail):
            url = url[: -len(tail)]
    return url if url.endswith("/v1") else url + "/v1"


def _headers(api_key: str | None) -> dict:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _error(url: str, e: Exception) -> UserError:
    return UserError(f"the endpoint {url} cannot be reached ({type(e).__name__}: {e}): is the server running?",
                     "endpoint_unreachable", url=url, detail=f"{type(e).__name__}: {e}")


def first_model(url: str, api_key: str | None = None, timeout: float = 10.0) -> str:
    """The first model id the endpoint lists at /models. Raises UserError when it does not answer."""
    import httpx

    url = base_url(url)
    try:
        r = httpx.get(f"{url}/models", headers=_headers(api_key), timeout=timeout)
    except httpx.HTTPError as e:
        raise _error(url, e) from None
    if r.status_code != 200:
        raise UserError(f"{url}/models answered HTTP {r.status_code}: {r.text[:200]}", "endpoint_http_error",
                        address=f"{url}/models", status=r.status_code, detail=r.text[:200])
    data = r.json().get("data") or []
    if not data:
        raise UserError(f"{url}/models lists no model", "endpoint_no_model", address=f"{url}/models")
    return data[0]["id"]


def stream_chat(url: str, messages: list[dict], api_key: str | None = None, model: str | None = None,
                system: str | None = None, max_new_tokens: int = 128, temperature: float = 0.0,
                top_p: float = 1.0, timeout: float = 300.0) -> Iterator[str]:
    """Yield the reply so far after each streamed chunk. `messages` are {role, content} dicts;
    `model` defaults to the endpoint's first listed model. Raises UserError for an unreachable
    endpoint or an HTTP error (with the server's message)."""
    import httpx

    url = base_url(url)
    model = model or first_model(url, api_key)
    msgs = ([{"role": "system", "content": system}] if system else []) + list(messages)
    body = {"model": model, "messages": msgs, "max_tokens": int(max_new_tokens), "temperature": float(temperature),
            "top_p": float(top_p), "stream": True}
    text = ""
    try:
        with httpx.stream("POST", f"{url}/chat/completions", json=body, headers=_headers(api_key),
                          timeout=timeout) as r:
            if r.status_code != 200:
                detail = r.read().decode()[:300]
                raise UserError(f"{url}/chat/completions answered HTTP {r.status_code}: {detail}",
                                "endpoint_http_error", address=f"{url}/chat/completions", status=r.status_code,
                                detail=detail)
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        text += piece
                        yield text
    except httpx.HTTPError as e:
        raise _error(url, e) from None
    if not text:
        yield text


def complete_chat(url: str, messages: list[dict], api_key: str | None = None, model: str | None = None,
                  max_new_tokens: int = 512, temperature: float = 0.0, timeout: float = 60.0) -> str:
    """One whole (non-streamed) reply: what a grader such as the LLM judge (evaluate/judge.py) needs.
    Raises UserError: endpoint_timeout when no answer came within `timeout` seconds,
    endpoint_unreachable, endpoint_http_error (with the server's message), endpoint_bad_reply."""
    import httpx

    url = base_url(url)
    body = {"model": model or first_model(url, api_key, timeout), "messages": list(messages),
            "max_tokens": int(max_new_tokens), "temperature": float(temperature), "stream": False}
    try:
        r = httpx.post(f"{url}/chat/completions", json=body, headers=_headers(api_key), timeout=timeout)
    except httpx.TimeoutException:
        raise UserError(f"the endpoint {url} gave no answer within {timeout:g} s", "endpoint_timeout", url=url,
                        seconds=f"{timeout:g}") from None
    except httpx.HTTPError as e:
        raise _error(url, e) from None
    if r.status_code != 200:
        raise UserError(f"{url}/chat/completions answered HTTP {r.status_code}: {r.text[:200]}", "endpoint_http_error",
                        address=f"{url}/chat/completions", status=r.status_code, detail=r.text[:200])
    try:
        return r.json()["choices"][0]["message"]["content"] or ""
    except (ValueError, KeyError, IndexError, TypeError):
        raise UserError(f"{url}/chat/completions answered without choices[0].message.content: {r.text[:200]}",
                        "endpoint_bad_reply", address=f"{url}/chat/completions", detail=r.text[:200]) from None
