"""`tunestudio serve --engine vllm`: without vLLM a clear message; with it, the run's folder, name,
chat template and generation config passed as vLLM expects them."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from helpers import run_cli


def test_serve_vllm_engine_passes_the_run_template_and_stops(ship_ws, tmp_path):
    r = run_cli("serve", "full-run", "--engine", "vllm", ws=ship_ws.root, env={"PATH": str(tmp_path)})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "--engine vllm needs vLLM" in r.stderr and "--engine transformers" in r.stderr

    # a stand-in `vllm` that records how it was called: what a GPU machine with vLLM would run
    fake = tmp_path / "vllm"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path}/argv\n")
    fake.chmod(0o755)
    r = run_cli("serve", "full-run", "--engine", "vllm", "--port", str(_free_port()), ws=ship_ws.root,
                env={"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"})
    assert r.returncode == 0, r.stderr[-2000:]
    argv = (tmp_path / "argv").read_text().splitlines()
    folder = ship_ws.root / "training" / "runs" / "full-run" / "final"
    assert argv[:2] == ["serve", str(folder)]
    assert argv[argv.index("--served-model-name") + 1] == "full-run"
    assert argv[argv.index("--generation-config") + 1] == "auto"
    template = Path(argv[argv.index("--chat-template") + 1])
    from transformers import AutoTokenizer

    assert template.read_text() == AutoTokenizer.from_pretrained(str(folder)).chat_template
    assert "--api-key" not in argv and argv[argv.index("--host") + 1] == "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

