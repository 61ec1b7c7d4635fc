"""Panels that follow what the user did, in a real browser (Debian's Chromium through Playwright, as
test_webui_browser.py): the Sweeps panel's Start/Stop message is re-worded by the language switch
(nothing of the other language left, checked against the locale files: tests/lang_check.py); the
Datasets tab's upload message goes when another action or file follows; the Training tab refuses an
emptied learning-rate or batch-size box by its label instead of starting with a default nobody saw.
Screenshots: test-artifacts/webui/3*.png."""

from __future__ import annotations

import os

import pytest
from browser_helpers import (
    CHROMIUM,
    demo_ui,
    save_shot,
    switch_language,
    wait_text,
)
from lang_check import wrong_language

from tunestudio.webui.i18n.texts import t

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt install chromium)")]

TABS = ("model", "datasets", "training", "runs")   # their places in the tab row (webui/app.py TABS)


@pytest.fixture(scope="module")
def ui(demo_template, tmp_path_factory):
    """A UI on a copy of the demo workspace (no runs: nothing here trains)."""
    with demo_ui(demo_template, tmp_path_factory, "webui-panels") as ui:
        yield ui


def _page(browser, url, tab: str):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(url)
    page.wait_for_selector("#model-select")
    page.get_by_role("tab").nth(TABS.index(tab)).click()
    return page


def _in(page, selector: str, lang: str, other: str, text: str, timeout: int = 60_000) -> str:
    """Wait until `selector` shows `text` (a `lang` text) with no fragment of `other`'s texts left."""
    deadline = page.evaluate("Date.now()") + timeout
    shown = wait_text(page, selector, text, timeout)
    while wrong_language(shown, lang, other) and page.evaluate("Date.now()") < deadline:
        page.wait_for_timeout(500)
        shown = page.inner_text(selector)
    assert not wrong_language(shown, lang, other), (selector, shown, wrong_language(shown, lang, other))
    return shown


def test_the_sweep_panels_message_follows_the_language_switch(ui, browser):
    """Start with an empty sweep file in Tetum: the error in Tetum; to English: the same error in
    English, no Tetum left; Stop with nothing running in English, then Tetum: the same both ways;
    "use the best trial" with no sweep shown says why in either language."""
    page = _page(browser, ui["url"], "model")
    switch_language(page, "Tetun")
    page.get_by_role("tab").nth(TABS.index("runs")).click()
    page.get_by_text(t("tet", "sweeps.title"), exact=True).click()
    page.wait_for_selector("#sweeps-start")
    assert not page.locator("#sweeps-yaml .cm-content").inner_text().strip()   # the editor holds no sweep file
    page.click("#sweeps-start")
    tet_error = t("tet", "engine.no_sweep_file")
    _in(page, "#sweeps-progress", "tet", "en", tet_error)
    # the rest of the panel is in Tetum too (its labels, buttons, help)
    assert not wrong_language(page.inner_text("#sweeps"), "tet", "en"), wrong_language(page.inner_text("#sweeps"),
                                                                                       "tet", "en")
    page.locator("#sweeps-progress").scroll_into_view_if_needed()
    save_shot(page, "30-sweeps-error-tetum")

    switch_language(page, "English")
    shown = _in(page, "#sweeps-progress", "en", "tet", t("en", "engine.no_sweep_file"))
    assert tet_error not in shown, shown
    save_shot(page, "31-sweeps-error-english")

    page.click("#sweeps-stop")
    _in(page, "#sweeps-progress", "en", "tet", t("en", "sweeps.nothing_running"))
    switch_language(page, "Tetun")
    shown = _in(page, "#sweeps-progress", "tet", "en", t("tet", "sweeps.nothing_running"))
    assert t("en", "sweeps.nothing_running") not in shown, shown
    save_shot(page, "32-sweeps-stop-tetum")
    # "Start a run from the best trial's config" with no sweep shown: why not, in Tetum, then English
    page.click("#sweeps-use-best")
    _in(page, "#sweeps-text", "tet", "en", t("tet", "sweeps.no_best"))
    switch_language(page, "English")
    _in(page, "#sweeps-text", "en", "tet", t("en", "sweeps.no_best"))
    _in(page, "#sweeps-progress", "en", "tet", t("en", "sweeps.nothing_running"))
    page.close()


def _refused_upload(page, name: str, says: str) -> None:
    """Save the file in the upload box under `name`; the message refuses it, saying `says`."""
    page.fill("#datasets-save-as textarea, #datasets-save-as input", name)
    page.click("#datasets-store")
    wait_text(page, "#datasets-message", says)


def _gone(page, selector: str, timeout: int = 30_000) -> None:
    page.wait_for_function("s => !document.querySelector(s).innerText.trim()", arg=selector, timeout=timeout)


def test_a_refused_uploads_message_goes_when_another_action_or_file_follows(ui, browser):
    page = _page(browser, ui["url"], "datasets")
    page.wait_for_selector("#datasets-check")
    page.get_by_text(t("en", "datasets.upload"), exact=True).click()
    mine = ui["ws"].parent / "mine.jsonl"
    mine.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n')
    page.set_input_files("#datasets-upload input[type=file]", str(mine))
    wait_text(page, "#datasets-upload", "mine.jsonl")
    exists = "already exists"
    # a name that exists, then Check on another file: the Check report, and no refusal beside it
    _refused_upload(page, "demo-reviews.jsonl", exists)
    save_shot(page, "33-datasets-upload-refused")
    page.click("#datasets-pick input")
    page.get_by_role("option", name="demo-qa.csv").click()
    _gone(page, "#datasets-message")          # another file picked: the refusal went with it
    _refused_upload(page, "demo-reviews.jsonl", exists)
    page.click("#datasets-check")
    wait_text(page, "#datasets-report", "format")   # the report, not the progress line
    _gone(page, "#datasets-message")
    save_shot(page, "34-datasets-check-after-refusal")
    # a type we do not read, then Statistics, then (refused again) Preview
    _refused_upload(page, "mine.pdf", "unsupported file type")
    page.click("#datasets-stats")
    wait_text(page, "#datasets-report", "median", timeout=120_000)
    _gone(page, "#datasets-message")
    _refused_upload(page, "mine.pdf", "unsupported file type")
    page.click("#datasets-preview-btn")
    wait_text(page, "#datasets-preview-head", "trained on", timeout=120_000)
    _gone(page, "#datasets-message")
    # a stored upload selects its file: the previous file's report and example go
    page.fill("#datasets-save-as textarea, #datasets-save-as input", "mine.jsonl")
    page.click("#datasets-store")
    wait_text(page, "#datasets-message", "mine.jsonl")
    page.wait_for_function("document.querySelector('#datasets-pick input').value === 'mine.jsonl'", timeout=30_000)
    _gone(page, "#datasets-report")
    _gone(page, "#datasets-preview-head")
    assert (ui["ws"] / "training" / "datasets" / "mine.jsonl").is_file()
    assert not (ui["ws"] / "training" / "datasets" / "mine.pdf").exists()
    save_shot(page, "35-datasets-stored")
    page.close()


def test_an_emptied_learning_rate_is_named_not_replaced_by_a_silent_default(ui, browser):
    """Empty the learning rate and the batch size: the command preview, the memory estimate and Start
    name them by their labels with the default they would take; no job starts. In Tetum too."""
    page = _page(browser, ui["url"], "training")
    page.wait_for_selector("#learning-rate input")
    wait_text(page, "#training-command-preview", "tunestudio train")   # the page's load handlers have run
    for box in ("#learning-rate input", "#batch-size input"):
        page.fill(box, "")
        page.press(box, "Tab")
    lr_empty, batch_empty = "“Learning rate” is empty", "“Batch size” is empty"
    wait_text(page, "#training-command-problem", lr_empty)   # the preview follows each box as it empties
    problem = wait_text(page, "#training-command-problem", batch_empty)
    assert batch_empty in problem and "default is 0.001" in problem and "default is 8" in problem, problem
    assert batch_empty in wait_text(page, "#memory-estimate", batch_empty)   # no estimate for a batch of 1
    page.click("#start-training")
    message = wait_text(page, "#training-message", lr_empty)
    assert batch_empty in message and "0.001" in message, message
    page.wait_for_timeout(2000)   # a job Start had queued would show in the monitor by now
    assert t("en", "training.no_job").split(":")[0] in page.inner_text("#training-status")
    assert not list((ui["ws"] / "training" / "runs").glob("*/config.yaml"))
    page.locator("#training-message").scroll_into_view_if_needed()
    save_shot(page, "36-training-empty-lr")

    switch_language(page, "Tetun")
    lr_tet = f"“{t('tet', 'param.lr')}” mamuk"
    message = _in(page, "#training-message", "tet", "en", lr_tet)
    assert f"“{t('tet', 'param.batch_size')}” mamuk" in message and "0.001" in message, message
    _in(page, "#training-command-problem", "tet", "en", lr_tet)
    _in(page, "#memory-estimate", "tet", "en", f"“{t('tet', 'param.batch_size')}” mamuk")
    # the rest of the tab (labels, help, the demo preset's note) is in Tetum too
    _in(page, "body", "tet", "en", t("tet", "training.start"), timeout=30_000)
    assert "batch 16" not in page.inner_text("#training-model-note")
    save_shot(page, "37-training-empty-lr-tetum")
    # a value typed back: the message goes from the preview, and the command holds it
    page.fill("#learning-rate input", "0.001")
    page.press("#learning-rate input", "Tab")
    page.fill("#batch-size input", "16")
    page.press("#batch-size input", "Tab")
    wait_text(page, "#training-command-preview", "--lr 0.001")
    _gone(page, "#training-command-problem")
    page.close()
