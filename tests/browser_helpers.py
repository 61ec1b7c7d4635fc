"""The web UI in a real browser: Playwright driving Debian's Chromium (never `playwright install`), and
UI servers started as a user starts them. The browser tests share these; the `browser` fixture (one
Chromium per test module) is in tests/conftest.py. Screenshots go to test-artifacts/webui/."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from helpers import ARTIFACTS

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = ARTIFACTS / "webui"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
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


def stop_ui(proc) -> None:
    """End a UI server process: politely, then for sure."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def save_shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def start_ui(ws: Path, log_path: Path, env: dict):
    port = free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "tunestudio", "webui", "--port", str(port), "--workspace", str(ws)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not listening_addresses(port):
        assert proc.poll() is None, log_path.read_text()
        time.sleep(0.5)
    assert listening_addresses(port), log_path.read_text()
    return proc, port


@contextmanager
def demo_ui(demo_template: Path, tmp_path_factory, name: str):
    """A UI server on a fresh copy of the demo workspace: {url, port, ws, log}. On exit the server
    stops and so does any job it started (never leave a training process behind)."""
    from tunestudio.core.workspace import Workspace
    from tunestudio.jobs import queue as jobs

    ws = tmp_path_factory.mktemp(name) / "ws"
    shutil.copytree(demo_template, ws)
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc, port = start_ui(ws, ws.parent / "webui.log", env)
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "port": port, "ws": ws, "log": ws.parent / "webui.log"}
    finally:
        stop_ui(proc)
        jobs.stop(Workspace(ws), grace=10)


def open_tab(browser, url: str, tab: str, ready: str):
    """A new page (1300x1100) on the UI at `url`, switched to tab `tab` once the UI is up; returned once
    the tab's element `ready` (a selector) is there."""
    page = browser.new_page(viewport={"width": 1300, "height": 1100})
    page.goto(url)
    page.wait_for_selector("#model-select")
    page.get_by_role("tab", name=tab).click()
    page.wait_for_selector(ready)
    return page


def wait_text(page, selector: str, text: str, timeout: int = 120_000) -> str:
    """Wait until the element's text contains `text` (Gradio's own "0.1s" timers are text too)."""
    page.wait_for_function("([s, t]) => { const e = document.querySelector(s); return !!e && e.innerText.includes(t); }",
                           arg=[selector, text], timeout=timeout)
    return page.inner_text(selector)


def open_group(page, group: str, field: str | None = None) -> None:
    """Open one of the Training tab's folded option groups (webui/tabs/training/groups.py), e.g. "stopping",
    and wait for its `field` (an elem_id) to be in the page."""
    page.locator(f"#training-group-{group} .label-wrap").first.click()
    if field:
        page.wait_for_selector(f"#{field}", state="visible")


def open_box(page, elem_id: str, inner: str) -> None:
    """Open a folded accordion (by its elem_id) unless it is open, and wait for `inner` (a selector) inside it."""
    if not page.locator(inner).count() or not page.locator(inner).first.is_visible():
        page.locator(f"#{elem_id} .label-wrap").first.click()
    page.wait_for_selector(inner, state="visible")


def switch_language(page, name: str) -> None:
    page.click("#ui-language input")
    page.get_by_role("option", name=name).click()
