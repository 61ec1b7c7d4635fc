"""Shipping from the web UI, without a browser: exports and servers as detached processes
(tunestudio.ship.background), exports and their round-trip figures in the registry, the Chat tab's
endpoint client, `serve --engine vllm`, and the llama-quantize message.

One workspace with one full run (the demo model's own weights) serves every test here: exports
and servers are slow on a 2-core machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import pytest
from eval_helpers import make_full_run
from helpers import run_cli


@pytest.fixture(scope="module")
def ws(demo_template, tmp_path_factory):
    from tunestudio.core.workspace import Workspace

    root = tmp_path_factory.mktemp("ship-jobs") / "ws"
    shutil.copytree(demo_template, root)
    make_full_run(root, "full-run")
    make_full_run(root, "other-run")
    w = Workspace(root)
    yield w
    from tunestudio.ship import background as ship_jobs

    for s in ship_jobs.list_servers(w):  # never leave a server behind
        ship_jobs.stop_server(w, s["run"], grace=5)


def _wait(fn, done, timeout=300, what="job"):
    deadline = time.time() + timeout
    while True:
        st = fn()
        if done(st):
            return st
        assert time.time() < deadline, f"{what} still {st.get('status')} after {timeout} s: {st}"
        time.sleep(1)


def test_export_job_checks_the_export_and_records_it_in_the_registry(ws):
    from tunestudio.core import registry
    from tunestudio.ship import background as ship_jobs
    from tunestudio.webui.tabs.runs import ship_panel

    started = time.perf_counter()
    rec = ship_jobs.start_export(ws, "full-run", "hf", verify_rows=3)
    assert rec["command"][-2:] == ["--workspace", str(ws.root)] and "--verify-rows" in rec["command"]
    st = _wait(lambda: ship_jobs.export_status(ws, rec["id"]), lambda s: s["status"] != "running")
    print(f"UI export job (hf, 3 round-trip rows): {time.perf_counter() - started:.1f} s")
    assert st["status"] == "finished", st
    rt = st["result"]["roundtrip"]
    assert (rt["rows"], rt["identical"]) == (3, 3) and Path(st["result"]["output"]).parent == ws.exports_dir
    assert ship_jobs.latest_export(ws, "full-run")["id"] == rec["id"]

    conn = registry.connect(ws.db_path)
    try:
        rows = registry.run_exports(conn, "full-run")
    finally:
        conn.close()
    assert len(rows) == 1 and rows[0]["format"] == "hf" and rows[0]["kind"] == "full"
    assert rows[0]["path"] == st["result"]["output"] and rows[0]["seconds"] > 0
    assert rows[0]["roundtrip"]["identical"] == 3 and rows[0]["roundtrip"]["rows"] == 3
    assert "answers" not in rows[0]["roundtrip"]  # figures only: the answers stay in roundtrip.json

    frame = ship_panel.exports_frame("en", ship_panel.run_exports(ws, "full-run"))
    assert list(frame.iloc[0])[4] == "3/3"
    assert "**3/3**" in ship_panel.roundtrip_text("en", rt) and "**3/3**" in ship_panel.roundtrip_text("tet", rt)

    # a failing export ends as one message (the demo tokenizer is unknown to llama.cpp), recorded nowhere
    bad = ship_jobs.start_export(ws, "full-run", "gguf", verify=False)
    st = _wait(lambda: ship_jobs.export_status(ws, bad["id"]), lambda s: s["status"] != "running")
    assert st["status"] == "failed" and "pre-tokenizer not recognized" in st["error"], st
    assert "Traceback" not in st["error"] and not Path(bad["output"]).exists()
    assert len(ship_panel.run_exports(ws, "full-run")) == 1


def test_server_job_answers_the_endpoint_client_and_stops(ws):
    from tunestudio.core.errors import UserError
    from tunestudio.models.endpoint import base_url, first_model, stream_chat
    from tunestudio.ship import background as ship_jobs

    started = time.perf_counter()
    rec = ship_jobs.start_server(ws, "full-run")
    assert rec["status"] == "starting" and rec["url"].startswith("http://127.0.0.1:")
    st = _wait(lambda: ship_jobs.server_status(ws, "full-run"), lambda s: s["status"] != "starting", 240, "server")
    print(f"UI server job up in {time.perf_counter() - started:.1f} s")
    assert st["status"] == "running", st
    assert st["curl"].startswith(f"curl {st['url']}/chat/completions") and '"model": "full-run"' in st["curl"]
    assert ship_jobs.start_server(ws, "full-run")["pid"] == st["pid"]  # already served: the same server

    assert base_url(st["url"].removesuffix("/v1")) == base_url(st["url"] + "/chat/completions") == st["url"]
    assert first_model(st["url"]) == "full-run"
    msgs = [{"role": "user", "content": "The kettle is great."}]
    replies = list(stream_chat(st["url"], msgs, max_new_tokens=8))
    assert replies and all(b.startswith(a) for a, b in zip(replies, replies[1:]))  # grows chunk by chunk
    import httpx

    whole = httpx.post(f"{st['url']}/chat/completions", timeout=120, json={
        "model": "full-run", "messages": msgs, "max_tokens": 8, "temperature": 0}).json()
    assert whole["choices"][0]["message"]["content"] == replies[-1]

    with pytest.raises(UserError, match="in use"):  # another run's server on the same port: refused at once
        ship_jobs.start_server(ws, "other-run", port=st["port"])
    assert ship_jobs.server_status(ws, "other-run")["status"] == "none"
    stopped = ship_jobs.stop_server(ws, "full-run", grace=10)
    assert stopped["status"] == "stopped" and ship_jobs.server_status(ws, "full-run")["status"] == "stopped"
    with pytest.raises(UserError, match="cannot be reached"):
        list(stream_chat(st["url"], msgs))


def test_serve_vllm_engine_passes_the_run_template_and_stops(ws, tmp_path):
    r = run_cli("serve", "full-run", "--engine", "vllm", ws=ws.root, env={"PATH": str(tmp_path)})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "--engine vllm needs vLLM" in r.stderr and "--engine transformers" in r.stderr

    # a stand-in `vllm` that records how it was called: what a GPU machine with vLLM would run
    fake = tmp_path / "vllm"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path}/argv\n")
    fake.chmod(0o755)
    r = run_cli("serve", "full-run", "--engine", "vllm", "--port", str(_free_port()), ws=ws.root,
                env={"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"})
    assert r.returncode == 0, r.stderr[-2000:]
    argv = (tmp_path / "argv").read_text().splitlines()
    folder = ws.root / "training" / "runs" / "full-run" / "final"
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


def test_missing_llama_quantize_says_how(ws, monkeypatch, tmp_path):
    from tunestudio.core.errors import UserError
    from tunestudio.ship import gguf, quantize

    monkeypatch.setattr(quantize, "find_tool", lambda: None)
    with pytest.raises(UserError) as e:
        gguf.export_gguf(ws, "full-run", tmp_path / "q4", quant="q4_k_m")
    msg = str(e.value)
    assert "--build-quantize" in msg and "cmake" in msg and "llama-quantize MODEL-f16.gguf" in msg
    assert not (tmp_path / "q4").exists()
