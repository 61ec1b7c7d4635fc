"""`tunestudio serve RUN|MODEL`: an OpenAI-compatible endpoint for a run, on `transformers serve`.

The server is transformers' own (transformers.cli.serving: /v1/chat/completions with streaming,
/v1/completions, /v1/responses), pinned to one model folder that carries the run's tokenizer, chat
template and stop tokens (generation_config.eos_token_id): a full run's final/ folder, or for an
adapter run a merged export made once into .serve/<run id>/ in the workspace. Three things are
added in front of it, as a thin ASGI layer:
- an API key (`Authorization: Bearer KEY`), which transformers serve has not; binding to anything
  but loopback without one is refused, since the endpoint would run anyone's prompts;
- the model is addressed by a short name (the run's name) instead of its folder path;
- /v1/models lists that model (transformers' lists the Hugging Face cache instead).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import shutil
import socket
import sys
from pathlib import Path

from tunestudio.core.errors import UserError, error_record
from tunestudio.core.runlock import hold_run
from tunestudio.models import loading
from tunestudio.ship.export import export_run

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, port: int, api_key: str | None) -> None:
    """Refuse a non-loopback host without an API key, a bad port, and a port already in use."""
    if not is_loopback(host) and not api_key:
        raise UserError(f"--host {host} makes the server reachable from other machines: give --api-key KEY "
                        "(clients then send `Authorization: Bearer KEY`), or keep the default 127.0.0.1",
                        "serve_open_host", host=host)
    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535 (got {port})", "port_out_of_range", value=port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            raise UserError(f"cannot listen on {host}:{port} ({e.strerror or e}): the port is in use (another "
                            "server?) or the address is not this machine's; pick another with --port", "port_in_use",
                            host=host, port=port, detail=str(e.strerror or e)) from None


def model_folder(ws, run: str | None, model: str | None) -> tuple[str, str]:
    """(folder or hub id the server loads, the name clients use)."""

    if model:
        return loading.resolve_model(ws, model), Path(model).name or model
    try:
        r = loading.find_run(ws, run)
    except UserError as e:
        local = loading.resolve_model(ws, run)
        if Path(local).is_dir():  # not a run but a model folder (models/NAME or a path)
            return local, Path(run).name
        raise UserError(f"{e}; nor is '{run}' a model folder (models/{run} or a path)", "serve_not_run_or_model",
                        error=error_record(e), run=run) from None
    if not r.is_adapter:
        return str(r.final), r.name
    folder = ws.serve_merged_dir(r.id)
    if not (folder / "config.json").is_file():
        print(f"merging run '{r.name}''s adapter for serving into {folder} (once)", file=sys.stderr)
        export_run(ws, r.id, folder, merge=True)  # raises for a prompt/prefix-tuned run: nothing to merge
    return str(folder), r.name


class Front:
    """ASGI layer before transformers' app: API key, model alias, /v1/models."""

    def __init__(self, app, folder: str, alias: str, api_key: str | None):
        self.app, self.folder, self.alias, self.api_key = app, folder, alias, api_key

    async def _send_json(self, send, status: int, obj: dict) -> None:
        body = json.dumps(obj).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if self.api_key and path != "/health":
            auth = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if not hmac.compare_digest(auth, f"Bearer {self.api_key}"):
                return await self._send_json(send, 401, {"error": {"message": "missing or wrong API key "
                                                                   "(Authorization: Bearer KEY)", "type": "auth"}})
        if path == "/v1/models" and scope["method"] == "GET":
            return await self._send_json(send, 200, {"object": "list", "data": [
                {"id": self.alias, "object": "model", "owned_by": "tunestudio", "root": self.folder}]})
        if scope["method"] == "POST" and path.startswith("/v1/"):
            chunks, more = [], True
            while more:
                message = await receive()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            raw = b"".join(chunks)
            try:
                body = json.loads(raw)
                if isinstance(body, dict) and body.get("model") in (self.alias, self.folder, None):
                    body["model"] = self.folder  # transformers serve is pinned to the folder path
                    raw = json.dumps(body).encode()
            except ValueError:
                pass  # not JSON: transformers answers it with its own error
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
            return await self.app({**scope, "headers": headers}, replay, send)
        return await self.app(scope, receive, send)


def build_app(folder: str, alias: str, api_key: str | None, device: str = "auto"):
    """transformers serve's FastAPI app pinned to `folder` (loaded now), behind Front."""
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        raise UserError('serving needs transformers\' server extras: pip install "tunestudio[serve]" '
                        '(fastapi, uvicorn, openai)', "serve_extras_missing")
    from transformers.cli.serving.chat_completion import ChatCompletionHandler
    from transformers.cli.serving.completion import CompletionHandler
    from transformers.cli.serving.model_manager import ModelManager
    from transformers.cli.serving.response import ResponseHandler
    from transformers.cli.serving.server import build_server
    from transformers.cli.serving.systemone import SystemOneHandler
    from transformers.cli.serving.transcription import TranscriptionHandler
    from transformers.cli.serving.utils import GenerationState

    manager = ModelManager(device=device, dtype="auto", force_model=folder)
    state = GenerationState(continuous_batching=False, compile=False, cb_config=None)
    app = build_server(manager, ChatCompletionHandler(model_manager=manager, generation_state=state,
                                                      chat_template_kwargs={}),
                       completion_handler=CompletionHandler(model_manager=manager, generation_state=state),
                       response_handler=ResponseHandler(model_manager=manager, generation_state=state,
                                                        chat_template_kwargs={}),
                       transcription_handler=TranscriptionHandler(manager, state),
                       systemone_handler=SystemOneHandler(model_manager=manager, generation_state=state,
                                                          chat_template_kwargs={}, decision_config=None),
                       generation_state=state)
    return Front(app, folder, alias, api_key)


VLLM_MISSING = ("--engine vllm needs vLLM, which is not installed here: on a machine with a GPU vLLM supports, "
                "`pip install vllm`; or serve with the default --engine transformers (CPU or GPU)")


def vllm_command(folder: str, alias: str, host: str, port: int, api_key: str | None) -> list[str]:
    """`vllm serve` for the same folder as transformers serve gets: its tokenizer's chat template
    (chat_template.jinja, passed explicitly so vLLM never falls back to a default template) and its
    generation_config.json, whose eos_token_id lists every stop token (vLLM stops on all of them)."""
    exe = shutil.which("vllm")
    if exe is None:
        raise UserError(VLLM_MISSING, "vllm_missing")
    cmd = [exe, "serve", folder, "--host", host, "--port", str(port), "--served-model-name", alias,
           "--generation-config", "auto"]
    template = Path(folder) / "chat_template.jinja"
    if template.is_file():
        cmd += ["--chat-template", str(template)]
    if api_key:
        cmd += ["--api-key", api_key]
    return cmd


def serve(ws, target: str, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          device: str = "auto", engine: str = "transformers") -> None:
    """Serve a run, or failing that a model folder, until interrupted, with transformers serve or
    (`engine="vllm"`) vLLM. Raises UserError for a bad bind, an unknown run, a run that cannot be
    merged, missing server extras, vLLM not installed, a run another process trains or deletes."""
    if engine not in ("transformers", "vllm"):
        raise UserError(f"--engine must be transformers or vllm (got '{engine}')", "unknown_choice", option="--engine",
                        value=engine, choices=["transformers", "vllm"])
    if engine == "vllm" and shutil.which("vllm") is None:
        raise UserError(VLLM_MISSING, "vllm_missing")  # before merging an adapter for nothing
    check_bind(host, port, api_key)
    # a run's shared lock for as long as it is served: a delete is refused meanwhile, and so is a
    # resume that would replace final/ under the server (core/runlock.py)
    with hold_run(ws, target, "serve") as lock:
        _serve(ws, target, host, port, api_key, device, engine, lock)


def _serve(ws, target, host, port, api_key, device, engine, lock) -> None:
    import uvicorn

    folder, alias = model_folder(ws, target, None)
    shown = f"[{host}]" if ":" in host else host
    if engine == "vllm":
        cmd = vllm_command(folder, alias, host, port, api_key)
        print(f"serving '{alias}' with vLLM at http://{shown}:{port}/v1: {' '.join(cmd[:3])} ...", file=sys.stderr)
        sys.stderr.flush()
        if lock is not None:
            lock.keep_across_exec()   # vLLM, in this process's place, holds the run's lock on
        os.execv(cmd[0], cmd)  # vLLM is the server from here on: signals (Ctrl-C, the UI's Stop) reach it
    app = build_app(folder, alias, api_key, device)
    print(f"serving '{alias}' at http://{shown}:{port}/v1 (OpenAI-compatible; Ctrl-C stops)", file=sys.stderr)
    print(f"  curl http://{shown}:{port}/v1/chat/completions -H 'Content-Type: application/json'"
          + (" -H 'Authorization: Bearer $KEY'" if api_key else "")
          + f" -d '{{\"model\": \"{alias}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}'",
          file=sys.stderr)
    sys.stderr.flush()
    uvicorn.run(app, host=host, port=port, log_level="warning")
