"""Shipping from the web UI in a real browser (Playwright on Debian's Chromium, as
test_webui_browser.py): export a run from the Runs tab and see the round-trip verdict and the
export listed, start its server and get a URL that answers, then talk to that URL from the Chat
tab and get what the server gives an app. Screenshots: test-artifacts/webui/2*.png."""

from __future__ import annotations

import os
import re
import shutil
import time

import pytest
from browser_helpers import CHROMIUM, open_tab, save_shot, start_ui, stop_ui, wait_text
from eval_helpers import make_full_run

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt install chromium)")]


@pytest.fixture(scope="module")
def ui(demo_template, tmp_path_factory):
    """A UI on a workspace with one finished run (the demo model's weights as a full fine-tune)."""
    from tunestudio.core import registry
    from tunestudio.core.workspace import Workspace
    from tunestudio.ship import background as ship_jobs

    ws = tmp_path_factory.mktemp("webui-ship") / "ws"
    shutil.copytree(demo_template, ws)
    run = make_full_run(ws, "ship-run")
    conn = registry.connect(Workspace(ws).db_path)
    try:
        registry.insert_run(conn, id="ship-run", name="ship-run", status="completed", method="full",
                            base_model=str(ws / "models" / "tiny-demo"), dataset="demo-reviews.jsonl",
                            output_dir=str(run), finished_at=time.time())
    finally:
        conn.close()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    proc, port = start_ui(ws, ws.parent / "webui.log", env)
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "ws": ws}
    finally:
        ship_jobs.stop_server(Workspace(ws), "ship-run", grace=5)  # never leave a server behind
        stop_ui(proc)


def test_export_serve_and_chat_with_the_served_url(ui, browser):
    import httpx

    page = open_tab(browser, ui["url"], "Runs", "#ship-export")
    page.click("#runs-a input")
    page.get_by_role("option", name=re.compile("ship-run")).first.click()
    # a full fine-tune has no adapter: nothing offers to merge one, or to export one alone
    page.wait_for_timeout(1500)
    page.click("#ship-format input")
    offered = page.get_by_role("option").all_text_contents()
    assert any("GGUF" in o for o in offered) and not any("adapter" in o.lower() for o in offered), offered
    page.keyboard.press("Escape")

    # Export (Transformers folder, round-trip check on): the verdict and the export in the list.
    started = time.time()
    page.click("#ship-export")
    wait_text(page, "#ship-export-status", "Exporting")
    status = wait_text(page, "#ship-export-status", "answers identical", timeout=600_000)
    print(f"export + round-trip check from the UI: {time.time() - started:.0f} s")
    same, rows = map(int, re.search(r"(\d+)/(\d+) answers identical", status).groups())
    assert rows == 20 and same == rows, status
    assert "Exported to" in status and "exports/ship-run-hf-" in status
    listed = wait_text(page, "#ship-exports", f"{same}/{rows}")
    assert "hf (full)" in listed
    page.locator("#ship").scroll_into_view_if_needed()
    save_shot(page, "20-ship-export")

    # Serve it: a URL that answers, with a curl example.
    page.click("#ship-start-server")
    served = wait_text(page, "#ship-server", "Serving", timeout=300_000)
    url = re.search(r"http://127\.0\.0\.1:\d+/v1", served).group(0)
    assert f"curl {url}/chat/completions" in served
    models = httpx.get(f"{url}/models", timeout=30).json()
    assert [m["id"] for m in models["data"]] == ["ship-run"]
    save_shot(page, "21-ship-server")

    # The Chat tab talks to that URL: the reply is what the server gives an app for the same request.
    page.click("#ship-to-chat")
    page.get_by_role("tab", name="Chat").click()
    page.wait_for_selector("#chat-endpoint textarea")
    page.wait_for_function("([s, v]) => document.querySelector(s).value === v", arg=["#chat-endpoint textarea", url],
                           timeout=30_000)
    prompt = "The kettle arrived on time and looks flimsy."
    page.fill("#chat-input textarea", prompt)
    page.press("#chat-input textarea", "Enter")
    last_bot = ("(() => { const m = document.querySelectorAll('#chatbot .message-row.bot-row, #chatbot [data-testid=\"bot\"]');"
                " return m.length ? m[m.length - 1].innerText.trim() : ''; })()")
    page.wait_for_function(f"{last_bot}.length > 0", timeout=180_000)
    wait_text(page, "#chat-note", url)
    expected = httpx.post(f"{url}/chat/completions", timeout=180, json={
        "model": "ship-run", "messages": [{"role": "user", "content": prompt}], "max_tokens": 128,
        "temperature": 0.0, "top_p": 1.0}).json()["choices"][0]["message"]["content"]
    # The demo weights are random: the reply can end in bytes that are not whole UTF-8 characters,
    # which a streamed reply leaves out and the one-piece reply writes as U+FFFD. Compared without them.
    try:
        page.wait_for_function(f"(t) => {last_bot}.replace(/\\uFFFD/g, '') === t",
                               arg=expected.strip().replace("\ufffd", ""), timeout=60_000)
    except Exception:
        raise AssertionError(f"chat shows {page.evaluate(last_bot)!r}, the server says {expected.strip()!r}") from None
    save_shot(page, "22-chat-endpoint")

    # Stop it from the Runs tab.
    page.get_by_role("tab", name="Runs").click()
    page.click("#ship-stop-server")
    wait_text(page, "#ship-server", "stopped", timeout=60_000)
    page.close()
