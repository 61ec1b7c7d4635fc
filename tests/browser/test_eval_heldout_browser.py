"""The Evaluate tab on a held-out file in a real browser (Playwright on Debian's Chromium, as
test_webui_browser.py): pick a dataset file as the test file, evaluate, and see every row of it
with the fine-tuned and base answers in view, no horizontal scrolling. Screenshot:
test-artifacts/webui/30-evaluate-heldout.png."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from browser_helpers import CHROMIUM, open_tab, save_shot, start_ui, stop_ui, wait_text
from eval_helpers import make_full_run

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt install chromium)")]

HELD_OUT = [("The kettle is great, I love it.", "positive"), ("My lamp broke on day one.", "negative"),
            ("The chair is fine, nothing special.", "neutral"), ("Best headphones I have owned.", "positive"),
            ("The tent leaks and smells.", "negative"), ("It is an okay mouse.", "neutral"),
            ("The blender is loud but works.", "neutral")]


@pytest.fixture(scope="module")
def ui(demo_template, tmp_path_factory):
    """A UI on a workspace with one finished run and a held-out file of 7 rows."""
    from tunestudio.core import registry
    from tunestudio.core.workspace import Workspace

    ws = tmp_path_factory.mktemp("webui-heldout") / "ws"
    shutil.copytree(demo_template, ws)
    run = make_full_run(ws, "held-run")
    (ws / "training" / "datasets" / "heldout.jsonl").write_text("".join(
        json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n"
        for q, a in HELD_OUT))
    conn = registry.connect(Workspace(ws).db_path)
    try:
        registry.insert_run(conn, id="held-run", name="held-run", status="completed", method="full",
                            base_model=str(ws / "models" / "tiny-demo"), dataset="demo-reviews.jsonl",
                            output_dir=str(run), finished_at=time.time())
    finally:
        conn.close()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc, port = start_ui(ws, ws.parent / "webui.log", env)
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "ws": ws}
    finally:
        stop_ui(proc)


def test_pick_a_held_out_file_and_see_every_answer(ui, browser):
    page = open_tab(browser, ui["url"], "Evaluate", "#eval-test-file")
    page.wait_for_function("document.querySelector('#eval-run input').value.includes('held-run')", timeout=30_000)
    page.click("#eval-test-file input")
    page.get_by_role("option", name="heldout.jsonl").click()
    page.wait_for_function("document.querySelector('#eval-limit input').value === ''", timeout=10_000)  # whole file
    page.click("#eval-run-button")
    message = wait_text(page, "#eval-message", "rows of the file", timeout=180_000)
    assert f"on {len(HELD_OUT)} rows of the file heldout.jsonl" in message and "✖" not in message, message

    table = page.locator("#eval-examples")
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts() if h.strip()]
    assert headers == ["input", "reference", "fine-tuned answer", "base model's answer", "scores"], headers
    # the answers are on screen: their columns end inside the page, and nothing in the table scrolls sideways
    answer = table.locator("thead th", has_text="fine-tuned answer").first.bounding_box()
    base = table.locator("thead th", has_text="base model's answer").first.bounding_box()
    width = page.viewport_size["width"]
    assert answer["x"] + answer["width"] <= width and base["x"] + base["width"] <= width, (answer, base, width)
    sideways = page.evaluate("""() => [...document.querySelectorAll('#eval-examples *')]
        .some(e => e.scrollWidth > e.clientWidth + 2 && getComputedStyle(e).overflowX.match(/auto|scroll/))""")
    assert not sideways
    page.locator("#eval-examples").scroll_into_view_if_needed()
    save_shot(page, "30-evaluate-heldout")
    assert _rows_seen(page) == {q for q, _ in HELD_OUT}   # every row of the file, scrolling the table down


def _rows_seen(page) -> set[str]:
    """The held-out questions the table shows, read while scrolling it to its end (it draws only the rows
    in view)."""
    seen: set[str] = set()
    for _ in range(40):
        text = page.inner_text("#eval-examples")
        seen |= {q for q, _ in HELD_OUT if q in text}
        at_end = page.evaluate("""() => {
            const box = [...document.querySelectorAll('#eval-examples *')].find(e => e.scrollHeight > e.clientHeight + 2
                && getComputedStyle(e).overflowY.match(/auto|scroll/));
            if (!box) return true;
            const end = box.scrollTop + box.clientHeight >= box.scrollHeight - 2;
            box.scrollTop += 120;
            return end; }""")
        if at_end:
            return seen | {q for q, _ in HELD_OUT if q in page.inner_text("#eval-examples")}
        page.wait_for_timeout(250)
    return seen
