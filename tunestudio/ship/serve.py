"""`tunestudio serve RUN|MODEL`: an OpenAI-compatible endpoint for a run, on `transformers serve`.

The server is transformers' own (transformers.cli.serving: /v1/chat/completions with streaming,
/v1/completions, /v1/responses), pinned to one model folder that carries the run's tokenizer, chat
template and stop tokens (generation_config.eos_token_id): a full run's final/ folder, or for an
adapter run a merged export made once into .serve/<run id>/ in the workspace. What is added:
- an API key (`Authorization: Bearer KEY`), which transformers serve has not; binding to anything
  but loopback without one is refused, since the endpoint would run anyone's prompts;
- the model is addressed by a short name (the run's name), the only model served; /v1/models
  lists it (transformers' lists the Hugging Face cache instead);
- what a request may reach and ask, and the Host and Origin it comes with (ship/serve_guard.py);
  the prompt's tokens, the answer's budget and time (ship/serve_app.py);
- a stop signal ends the server within seconds, even mid-generation (ship/serve_app.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

from tunestudio.core.errors import UserError, error_record
from tunestudio.core.hosts import allowed_hosts, is_loopback
from tunestudio.core.runlock import hold_run
from tunestudio.models import loading
from tunestudio.ship.export import export_run
from tunestudio.ship.serve_guard import Limits


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
        try:
            local = loading.resolve_model(ws, run)
        except UserError:   # no such folder either: the run's error says what exists
            local = ""
        if local and Path(local).is_dir():  # not a run but a model folder (models/NAME or a path)
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
          device: str = "auto", engine: str = "transformers", limits: Limits | None = None,
          allow_hosts: list[str] | None = None) -> int | None:
    """Serve a run, or failing that a model folder, until SIGTERM/SIGINT, with transformers serve or
    (`engine="vllm"`) vLLM; returns the signal's number (the run's lock is released by then). Raises UserError for a bad bind, an unknown run, a run that cannot be
    merged, missing server extras, vLLM not installed, a run another process trains or deletes,
    a limit below 1."""
    if engine not in ("transformers", "vllm"):
        raise UserError(f"--engine must be transformers or vllm (got '{engine}')", "unknown_choice", option="--engine",
                        value=engine, choices=["transformers", "vllm"])
    limits = limits or Limits()
    check_limits(limits)
    if engine == "vllm" and shutil.which("vllm") is None:
        raise UserError(VLLM_MISSING, "vllm_missing")  # before merging an adapter for nothing
    check_bind(host, port, api_key)
    # a run's shared lock for as long as it is served: a delete is refused meanwhile, and so is a
    # resume that would replace final/ under the server (core/runlock.py)
    with hold_run(ws, target, "serve") as lock:
        return _serve(ws, target, host, port, api_key, device, engine, lock, limits, allow_hosts)


def check_limits(limits: Limits) -> None:
    for option, value in (("--max-body-bytes", limits.max_body_bytes), ("--max-prompt-tokens", limits.max_prompt_tokens),
                          ("--max-seconds", limits.max_seconds)):
        if value is not None and value < 1:
            raise UserError(f"{option}: must be at least 1, got {value}", "option_at_least", option=option,
                            value=value, least=1)


def answered_hosts(host: str, api_key: str | None, allow_hosts: list[str] | None) -> set[str] | None:
    """The Host names the server answers (None: any). A server only this machine reaches answers
    its loopback names and --allow-host names, which keeps DNS-rebinding pages out; one bound for
    other machines is reached by any of their names for it, and has an API key to keep them out."""
    if api_key and not is_loopback(host):
        return None
    return allowed_hosts(host, allow_hosts)


def _serve(ws, target, host, port, api_key, device, engine, lock, limits, allow_hosts) -> int | None:
    folder, alias = model_folder(ws, target, None)
    shown = f"[{host}]" if ":" in host else host
    if engine == "vllm":
        cmd = vllm_command(folder, alias, host, port, api_key)
        print(f"serving '{alias}' with vLLM at http://{shown}:{port}/v1: {' '.join(cmd[:3])} ...", file=sys.stderr)
        sys.stderr.flush()
        if lock is not None:
            lock.keep_across_exec()   # vLLM, in this process's place, holds the run's lock on
        os.execv(cmd[0], cmd)  # vLLM is the server from here on: signals (Ctrl-C, the UI's Stop) reach it
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        raise UserError('serving needs transformers\' server extras: pip install "tunestudio[serve]" '
                        '(fastapi, uvicorn, openai)', "serve_extras_missing")
    from tunestudio.ship.serve_app import build_app, run_server

    app = build_app(folder, alias, api_key, limits, answered_hosts(host, api_key, allow_hosts), device)
    shown_limits = (f"limits: body {limits.max_body_bytes} bytes, prompt {app.limits.prompt_tokens or 'any'} tokens, "
                    f"{limits.max_seconds:g} s a request")
    print(f"serving '{alias}' at http://{shown}:{port}/v1 (OpenAI-compatible; Ctrl-C stops); {shown_limits}",
          file=sys.stderr)
    print(f"  curl http://{shown}:{port}/v1/chat/completions -H 'Content-Type: application/json'"
          + (" -H 'Authorization: Bearer $KEY'" if api_key else "")
          + f" -d '{{\"model\": \"{alias}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}'",
          file=sys.stderr)
    sys.stderr.flush()
    return run_server(app, host, port)
