"""CLI: `export` (hf, adapter, gguf, then the round-trip check, recorded in the registry) and `serve`."""

from __future__ import annotations

import os
import sys
import time

from tunestudio.core import registry
from tunestudio.core.errors import UserError
from tunestudio.core.output import print_json
from tunestudio.core.runlock import hold_run
from tunestudio.models import loading
from tunestudio.models.loading import find_run
from tunestudio.ship.export import export_run
from tunestudio.ship.gguf import export_gguf
from tunestudio.ship.roundtrip import check_export, describe
from tunestudio.ship.serve import serve
from tunestudio.ship.serve_guard import MAX_BODY_BYTES, Limits


def register(subparsers, common) -> None:
    p = subparsers.add_parser("export", parents=[common], help="write a run's model for use elsewhere",
                              description="hf: the adapter as is, or (--merge) merged into the base weights; "
                                          "safetensors, tokenizer, generation config and a model card. gguf: one "
                                          ".gguf made by llama.cpp's converter from the merged model, with an "
                                          "Ollama Modelfile. Every export is then reloaded as its users would and "
                                          "asked up to 20 test prompts: its answers are compared with the run's.")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--output", required=True, help="an empty or new folder")
    p.add_argument("--format", choices=("hf", "adapter", "gguf"), default="hf",
                   help="hf (default): transformers folder; adapter: the peft adapter alone; gguf: llama.cpp/Ollama")
    p.add_argument("--merge", action="store_true", help="hf: merge an adapter into the base model's weights")
    p.add_argument("--quant", default="f16", help="gguf: f16 (default), q8_0, bf16, f32; q4_k_m/q5_k_m/q6_k/q4_0 "
                                                   "need llama.cpp's llama-quantize (on PATH, or --build-quantize)")
    p.add_argument("--build-quantize", action="store_true",
                   help="build llama-quantize once from the pinned llama.cpp source (cmake, C++ compiler; minutes)")
    p.add_argument("--no-verify", action="store_true", help="skip the round-trip check")
    p.add_argument("--verify-rows", type=int, default=20, help="test prompts the round-trip check asks (default 20)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("serve", parents=[common], help="an OpenAI-compatible endpoint for a run or model",
                              description="Serves RUN (its merged weights, chat template and stop tokens) or a "
                                          "model folder with transformers serve: /v1/chat/completions (streaming "
                                          "too), /v1/completions, /v1/responses and /v1/models, the model named by "
                                          "the run's name; requests are bounded in size, prompt tokens and time.")
    p.add_argument("target", metavar="RUN|MODEL", help="a run id or name, or a model folder (models/NAME or a path)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=None, help="required Bearer key; needed when --host is not loopback")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda:0...")
    p.add_argument("--engine", choices=("transformers", "vllm"), default="transformers",
                   help="transformers (default): transformers serve; vllm: `vllm serve` where vLLM is installed")
    p.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES,
                   help=f"a larger request is refused with 413 (default {MAX_BODY_BYTES}, 1 MiB)")
    p.add_argument("--max-prompt-tokens", type=int, default=None,
                   help="a longer prompt (after the chat template) is refused with 400 (default: the model's context)")
    p.add_argument("--max-seconds", type=float, default=Limits.max_seconds,
                   help=f"a generation is stopped after this long, finish_reason length (default {Limits.max_seconds:g})")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer requests whose Host header is NAME (repeatable); by default a loopback "
                        "server answers localhost, 127.0.0.1 and [::1] only (against DNS rebinding)")
    p.set_defaults(func=cmd_serve)


# ---- export -------------------------------------------------------------------------------------

def cmd_export(args, ws):
    loading.quiet_transformers()
    if args.format != "gguf" and args.quant != "f16":
        raise UserError("--quant is for --format gguf", "quant_needs_gguf")
    if args.verify_rows < 1:
        raise UserError(f"--verify-rows must be at least 1 (got {args.verify_rows})", "option_at_least",
                        option="--verify-rows", value=args.verify_rows, least=1)
    # the run's shared lock to the end (round-trip and registry row included): not while it trains
    # or resumes, and no delete meanwhile (core/runlock.py)
    with hold_run(ws, args.run, "export"):
        return _export(args, ws)


def _export(args, ws):
    if args.format == "gguf":
        out = export_gguf(ws, args.run, args.output, quant=args.quant, build_quantize=args.build_quantize)
    else:
        if args.format == "adapter":
            if args.merge:
                raise UserError("--format adapter writes the adapter alone: drop --merge (or use --format hf --merge)",
                                "adapter_no_merge")
            if not find_run(ws, args.run).is_adapter:
                raise UserError(f"run '{args.run}' is a full fine-tune: it has no adapter; use --format hf",
                                "no_adapter", run=args.run)
        started = time.perf_counter()
        out = export_run(ws, args.run, args.output, merge=args.merge)
        out["seconds"] = round(time.perf_counter() - started, 2)
    if not args.json:
        print(f"exported {out['kind']} model to {out['output']}" + (f" in {out['seconds']} s" if "seconds" in out else ""))
    if not args.no_verify:
        out["roundtrip"] = check_export(ws, args.run, out, rows=args.verify_rows)
        if not args.json:
            print(describe(out["roundtrip"]))
    _record_export(ws, args.format, out)
    if args.json:
        print_json(out)
    return 0


def _record_export(ws, fmt: str, out: dict) -> None:
    """The export and its round-trip figures into the registry (the Runs tab lists them). The files
    are written already: a registry that cannot be written is a warning, not a failed export."""
    import sqlite3


    try:
        conn = registry.connect(ws.db_path)
        try:
            registry.record_export(conn, out["run_id"], fmt, out, out.get("roundtrip"))
        finally:
            conn.close()
    except (sqlite3.Error, OSError) as e:
        print(f"warning: the export was not recorded in the registry {ws.db_path}: {e}", file=sys.stderr)


def cmd_serve(args, ws):
    loading.quiet_transformers()
    limits = Limits(max_body_bytes=args.max_body_bytes, max_prompt_tokens=args.max_prompt_tokens,
                    max_seconds=args.max_seconds)
    stopped_by = serve(ws, args.target, host=args.host, port=args.port, api_key=args.api_key, device=args.device,
                       engine=args.engine, limits=limits, allow_hosts=args.allow_host)
    if stopped_by is not None:
        # stopped by a signal, the lock released: end now, not after the interpreter's teardown
        # (seconds of garbage collection with a model loaded); 130, as any interrupted command
        print("interrupted", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(130)
    return 0
