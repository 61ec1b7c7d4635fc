"""The web UI in a real browser (Playwright driving Debian's Chromium, never `playwright install`):
train from the Training tab and watch it complete with both loss curves, reload mid-run and
find the same job, chat with the result, switch to Tetum. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = ARTIFACTS / "webui"

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt install chromium)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on `port`, read from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:  # 0A = LISTEN
                if len(addr) == 8:
                    found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
                else:
                    found.add(addr)
    return found


@pytest.fixture(scope="module")
def server(demo_template, tmp_path_factory):
    ws = tmp_path_factory.mktemp("webui") / "ws"
    shutil.copytree(demo_template, ws)
    port = _free_port()
    log = open(ws.parent / "webui.log", "w")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tunestudio", "webui", "--port", str(port), "--workspace", str(ws)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not _listening_addresses(port):
        assert proc.poll() is None, (ws.parent / "webui.log").read_text()
        time.sleep(0.5)
    assert _listening_addresses(port), (ws.parent / "webui.log").read_text()
    yield {"url": f"http://127.0.0.1:{port}/", "port": port, "ws": ws, "log": ws.parent / "webui.log"}
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    from tunestudio import jobs
    from tunestudio.workspace import Workspace

    jobs.stop(Workspace(ws), grace=10)  # never leave a training process behind


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(url)
    page.wait_for_selector("#model-select")
    return page


def _status(page) -> str:
    return page.inner_text("#training-status")


def test_listens_on_loopback_only(server):
    assert _listening_addresses(server["port"]) == {"127.0.0.1"}


def test_train_reload_chat_and_language(server, browser):
    page = _open(browser, server["url"])
    _shot(page, "01-model")
    page.get_by_role("tab", name="Training").click()
    page.wait_for_selector("#start-training")
    assert page.input_value("#dataset-select input") == "demo-reviews.jsonl"
    page.fill("#epochs input", "1")
    # Keep the run short on a shared CPU: a few steps, with several validation points.
    page.get_by_text("Advanced options").click()
    for elem, value in (("param-max-steps", "4"), ("param-eval-steps", "2"), ("param-logging-steps", "1")):
        page.fill(f"#{elem} input", value)
    page.locator("#batch-size input").fill("4")
    page.locator("#batch-size input").press("Tab")
    _shot(page, "02-training-form")
    page.click("#start-training")
    page.wait_for_function("document.querySelector('#training-status').innerText.includes('running')", timeout=120_000)
    job = re.search(r"job (\S+)", _status(page)).group(1)
    command = page.inner_text("#training-command")
    assert "tunestudio train --config" in command

    # A reloaded page (or another browser) re-attaches to the same job.
    page.wait_for_function("document.querySelector('#training-progress').innerText.includes('loss')", timeout=180_000)
    _shot(page, "03-training-running")
    page.reload()
    page.wait_for_selector("#model-select")
    page.get_by_role("tab", name="Training").click()
    page.wait_for_function(f"document.querySelector('#training-status').innerText.includes('{job}')", timeout=30_000)
    page.wait_for_function("document.querySelector('#training-progress').innerText.includes('loss')", timeout=30_000)
    _shot(page, "04-after-reload")

    page.wait_for_function("document.querySelector('#training-status').innerText.includes('completed')",
                           timeout=300_000)
    assert job in _status(page)
    page.wait_for_function("document.querySelectorAll('#loss-plot g.mark-line path').length >= 2", timeout=30_000)
    legend = page.locator("#loss-plot g.role-legend text").all_text_contents()
    assert "training" in legend and "validation" in legend, legend
    page.locator("#loss-plot").scroll_into_view_if_needed()
    _shot(page, "05-training-completed")

    # Chat with the result.
    page.get_by_role("tab", name="Chat").click()
    page.wait_for_selector("#chat-input")
    page.click("#chat-source input")
    page.get_by_role("option", name=re.compile(r"^run · ")).first.click()
    page.fill("#chat-input textarea", "The battery died after two days.")
    page.press("#chat-input textarea", "Enter")
    page.wait_for_function(
        "(() => { const m = document.querySelectorAll('#chatbot .message-row.bot-row, #chatbot [data-testid=\"bot\"]');"
        " return m.length > 0 && m[m.length - 1].innerText.trim().length > 0; })()", timeout=180_000)
    _shot(page, "06-chat")

    # Tetum, at run time.
    page.click("#ui-language input")
    page.get_by_role("option", name="Tetun").click()
    page.get_by_role("tab", name="Treinu", exact=True).click()
    page.wait_for_function("document.querySelector('#epochs').innerText.includes('Époka')", timeout=30_000)
    assert "Komesa treinu" in page.inner_text("#start-training")
    assert "Taxa aprendizajen" in page.inner_text("#learning-rate")
    _shot(page, "07-tetum")
    page.close()
