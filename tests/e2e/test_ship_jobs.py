"""Shipping from the web UI, without a browser: exports and servers as detached processes
(tunestudio.ship.background), exports and their round-trip figures in the registry, and the Chat
tab's endpoint client (`serve --engine vllm`: test_ship_jobs_cli.py; the llama-quantize message:
test_llama_quantize.py).

One workspace with full runs (conftest's ship_ws) serves every test in a module: exports and
servers are slow on a 2-core machine."""

from __future__ import annotations

import time
from pathlib import Path

import pytest


def _wait(fn, done, timeout=300, what="job"):
    deadline = time.time() + timeout
    while True:
        st = fn()
        if done(st):
            return st
        assert time.time() < deadline, f"{what} still {st.get('status')} after {timeout} s: {st}"
        time.sleep(1)


def test_export_job_checks_the_export_and_records_it_in_the_registry(ship_ws):
    from tunestudio.core import registry
    from tunestudio.ship import background as ship_jobs
    from tunestudio.webui.tabs.runs import ship_panel

    started = time.perf_counter()
    rec = ship_jobs.start_export(ship_ws, "full-run", "hf", verify_rows=3)
    assert rec["command"][-2:] == ["--workspace", str(ship_ws.root)] and "--verify-rows" in rec["command"]
    st = _wait(lambda: ship_jobs.export_status(ship_ws, rec["id"]), lambda s: s["status"] != "running")
    print(f"UI export job (hf, 3 round-trip rows): {time.perf_counter() - started:.1f} s")
    assert st["status"] == "finished", st
    rt = st["result"]["roundtrip"]
    assert (rt["rows"], rt["identical"]) == (3, 3) and Path(st["result"]["output"]).parent == ship_ws.exports_dir
    assert ship_jobs.latest_export(ship_ws, "full-run")["id"] == rec["id"]

    conn = registry.connect(ship_ws.db_path)
    try:
        rows = registry.run_exports(conn, "full-run")
    finally:
        conn.close()
    assert len(rows) == 1 and rows[0]["format"] == "hf" and rows[0]["kind"] == "full"
    assert rows[0]["path"] == st["result"]["output"] and rows[0]["seconds"] > 0
    assert rows[0]["roundtrip"]["identical"] == 3 and rows[0]["roundtrip"]["rows"] == 3
    assert "answers" not in rows[0]["roundtrip"]  # figures only: the answers stay in roundtrip.json

    frame = ship_panel.exports_frame("en", ship_panel.run_exports(ship_ws, "full-run"))
    assert list(frame.iloc[0])[4] == "3/3"
    assert "**3/3**" in ship_panel.roundtrip_text("en", rt) and "**3/3**" in ship_panel.roundtrip_text("tet", rt)

    # a failing export ends as one message (the demo tokenizer is unknown to llama.cpp), recorded nowhere
    bad = ship_jobs.start_export(ship_ws, "full-run", "gguf", verify=False)
    st = _wait(lambda: ship_jobs.export_status(ship_ws, bad["id"]), lambda s: s["status"] != "running")
    assert st["status"] == "failed" and "pre-tokenizer not recognized" in st["error"], st
    assert "Traceback" not in st["error"] and not Path(bad["output"]).exists()
    assert len(ship_panel.run_exports(ship_ws, "full-run")) == 1


def test_server_job_answers_the_endpoint_client_and_stops(ship_ws):
    from tunestudio.core.errors import UserError
    from tunestudio.models.endpoint import base_url, first_model, stream_chat
    from tunestudio.ship import background as ship_jobs

    started = time.perf_counter()
    rec = ship_jobs.start_server(ship_ws, "full-run")
    assert rec["status"] == "starting" and rec["url"].startswith("http://127.0.0.1:")
    st = _wait(lambda: ship_jobs.server_status(ship_ws, "full-run"), lambda s: s["status"] != "starting", 240, "server")
    print(f"UI server job up in {time.perf_counter() - started:.1f} s")
    assert st["status"] == "running", st
    assert st["curl"].startswith(f"curl {st['url']}/chat/completions") and '"model": "full-run"' in st["curl"]
    assert ship_jobs.start_server(ship_ws, "full-run")["pid"] == st["pid"]  # already served: the same server

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
        ship_jobs.start_server(ship_ws, "other-run", port=st["port"])
    assert ship_jobs.server_status(ship_ws, "other-run")["status"] == "none"
    stopped = ship_jobs.stop_server(ship_ws, "full-run", grace=10)
    assert stopped["status"] == "stopped" and ship_jobs.server_status(ship_ws, "full-run")["status"] == "stopped"
    with pytest.raises(UserError, match="cannot be reached"):
        list(stream_chat(st["url"], msgs))


