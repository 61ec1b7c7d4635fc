"""The web UI in a real browser (Playwright driving Debian's Chromium, never `playwright install`):
train from the Training tab and watch it complete with both loss curves, reload mid-run and
find the same job, chat with the result, switch to Tetum. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser_helpers import (
    CHROMIUM,
    demo_ui,
    listening_addresses,
    open_box,
    open_group,
    save_shot,
    start_ui,
    stop_ui,
    switch_language,
    wait_text,
)

from tunestudio.webui.i18n.texts import t

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt install chromium)")]


@pytest.fixture(scope="module")
def server(demo_template, tmp_path_factory):
    with demo_ui(demo_template, tmp_path_factory, "webui") as ui:
        yield ui


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(url)
    page.wait_for_selector("#model-select")
    return page


def _status(page) -> str:
    return page.inner_text("#training-status")


def test_listens_on_loopback_only(server):
    assert listening_addresses(server["port"]) == {"127.0.0.1"}


def test_train_reload_chat_and_language(server, browser):
    page = _open(browser, server["url"])
    save_shot(page, "01-model")
    page.get_by_role("tab", name="Training").click()
    page.wait_for_selector("#start-training")
    assert page.input_value("#dataset-select input") == "demo-reviews.jsonl"
    page.fill("#epochs input", "1")
    # One real epoch with the demo preset (full fine-tuning, lr 1e-3, batch 16: 100 steps), with
    # several validation points, so the chat below talks to a model that has learnt the task.
    open_group(page, "stopping", "param-eval-steps")   # evaluation and logging steps are folded there
    for elem, value in (("param-eval-steps", "20"), ("param-logging-steps", "5")):
        page.fill(f"#{elem} input", value)
    page.locator("#batch-size input").fill("16")
    page.locator("#batch-size input").press("Tab")
    save_shot(page, "02-training-form")
    # Before Start: the same run as a command line, kept current as the form changes
    preview = wait_text(page, "#training-command-preview", "--eval-steps 20")
    assert "tunestudio train --model tiny-demo --dataset demo-reviews.jsonl" in preview, preview
    assert "--batch-size 16" in preview and "--logging-steps" not in preview, preview   # 5 is the default
    # ... and the form as the run-config YAML the CLI reads
    open_box(page, "training-yaml-box", "#training-save-yaml")
    page.click("#training-save-yaml")
    wait_text(page, "#training-yaml-message", "run-config.yaml")
    page.click("#start-training")
    page.wait_for_function("document.querySelector('#training-status').innerText.includes('running')", timeout=120_000)
    job = re.search(r"job (\S+)", _status(page)).group(1)
    command = page.inner_text("#training-command")
    assert "tunestudio train --config" in command

    # A reloaded page (or another browser) re-attaches to the same job.
    page.wait_for_function("document.querySelector('#training-progress').innerText.includes('loss')", timeout=180_000)
    save_shot(page, "03-training-running")
    page.reload()
    page.wait_for_selector("#model-select")
    page.get_by_role("tab", name="Training").click()
    page.wait_for_function(f"document.querySelector('#training-status').innerText.includes('{job}')", timeout=30_000)
    page.wait_for_function("document.querySelector('#training-progress').innerText.includes('loss')", timeout=30_000)
    # ... and the form shows that job's settings again, not the defaults.
    page.wait_for_function(f"document.querySelector('#training-message').innerText.includes('{job}')", timeout=30_000)
    assert page.input_value("#batch-size input") == "16"
    assert page.input_value("#dataset-select input") == "demo-reviews.jsonl"
    open_group(page, "stopping", "param-eval-steps")  # folded after a reload: its inputs are not in the page
    assert page.input_value("#param-eval-steps input") == "20"
    save_shot(page, "04-after-reload")

    page.wait_for_function("document.querySelector('#training-status').innerText.includes('completed')",
                           timeout=300_000)
    assert job in _status(page)
    # where it trained, in what precision, and the training process's memory (from its events)
    status = _status(page)
    from tunestudio.config.run_config import resolve_precision

    precision = resolve_precision("auto")   # bf16 on a CPU with avx512_bf16/AMX, else fp32
    assert "device cpu" in status and f"precision {precision}" in status and "CPU (RSS)" in status, status
    assert re.search(r"CPU \(RSS\) [\d.]+ (MiB|GiB)", status), status
    # a run config YAML loaded into the form (what the CLI's --config reads)
    yaml_file = server["ws"].parent / "lr5.yaml"
    yaml_file.write_text("model: tiny-demo\ndataset: demo-qa.csv\nmethod: lora\nlr: 0.005\nepochs: 2\n")
    open_box(page, "training-yaml-box", "#training-load-yaml")   # folded again after the reload
    page.set_input_files("#training-load-yaml input[type=file]", str(yaml_file))
    wait_text(page, "#training-yaml-message", "lr5.yaml")
    page.wait_for_function("document.querySelector('#learning-rate input').value === '0.005'", timeout=30_000)
    assert page.input_value("#method input") == "lora" and page.input_value("#dataset-select input") == "demo-qa.csv"
    assert "--lr 0.005" in wait_text(page, "#training-command-preview", "--lr 0.005")
    page.wait_for_function("document.querySelectorAll('#loss-plot g.mark-line path').length >= 2", timeout=30_000)
    legend = page.locator("#loss-plot g.role-legend text").all_text_contents()
    assert "training" in legend and "validation" in legend, legend
    page.locator("#loss-plot").scroll_into_view_if_needed()
    save_shot(page, "05-training-completed")

    # Chat with the result: the Training tab's next step opens Chat with this run picked.
    page.wait_for_function("!document.querySelector('#training-to-chat').disabled", timeout=30_000)
    page.click("#training-to-chat")
    page.wait_for_selector("#chat-input", state="visible", timeout=30_000)
    page.wait_for_function("document.querySelector('#chat-source input').value.startsWith('run · ')", timeout=30_000)
    # The task as it was trained (system prompt + a review it never saw): the reply is the label.
    # The system prompt box is in sight and prefilled from the run's training rows.
    page.wait_for_function("document.querySelector('#chat-system textarea').value === "
                           "'Classify the review as positive, negative or neutral.'", timeout=30_000)
    page.fill("#chat-input textarea", "The kettle arrived on time and looks flimsy. Would not buy again.")
    page.press("#chat-input textarea", "Enter")
    last_bot = ("(() => { const m = document.querySelectorAll('#chatbot .message-row.bot-row, #chatbot [data-testid=\"bot\"]');"
                " return m.length ? m[m.length - 1].innerText.trim() : ''; })()")
    page.wait_for_function(f"{last_bot}.length > 0", timeout=180_000)
    page.wait_for_timeout(1000)  # let the stream finish
    assert page.evaluate(last_bot) == "negative"
    save_shot(page, "06-chat")

    # Tetum, at run time.
    page.click("#ui-language input")
    page.get_by_role("option", name="Tetun").click()
    page.get_by_role("tab", name="Treinamentu", exact=True).wait_for(timeout=120_000)   # a loaded machine is slow
    page.get_by_role("tab", name="Treinamentu", exact=True).click()
    page.wait_for_function("document.querySelector('#epochs').innerText.includes('Épokas')", timeout=30_000)
    assert "Hahu Treinamentu" in page.inner_text("#start-training")
    assert "Taxa aprendizajen" in page.inner_text("#learning-rate")
    save_shot(page, "07-tetum")
    page.close()


def test_language_choice_survives_a_reload(server, browser):
    page = _open(browser, server["url"])
    page.click("#ui-language input")
    page.get_by_role("option", name="Tetun").click()
    page.wait_for_selector("#tab-runs-button:has-text('Treinamentu sira'), button:has-text('Treinamentu sira')", timeout=30_000)
    page.reload()
    page.wait_for_selector("#model-select")
    # the page opens in English and the browser's stored choice switches it back to Tetum
    page.wait_for_function("document.querySelector('#ui-language input').value === 'Tetun'", timeout=30_000)
    page.wait_for_selector("button:has-text('Treinamentu sira')", timeout=30_000)
    save_shot(page, "07b-tetum-after-reload")
    page.close()
    fresh = _open(browser, server["url"])   # another browser (a new context): its own choice, English
    fresh.wait_for_timeout(2000)
    assert fresh.evaluate("document.querySelector('#ui-language input').value") == "English"
    fresh.close()


# ---- every other tab, clicked through on a workspace that already has a run -------------------


@pytest.fixture(scope="module")
def server_with_run(tmp_path_factory):
    """A UI started on an EMPTY workspace (so it writes the demo first, as a newcomer's first start
    does), then a tiny run (6 steps of full fine-tuning) made with the CLI while the UI is up: the
    tabs must find a run that finished after the page was built."""
    import json

    ws = tmp_path_factory.mktemp("webui-run") / "ws"
    ws.mkdir()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc, port = start_ui(ws, ws.parent / "webui.log", env)
    try:
        r = subprocess.run([sys.executable, "-m", "tunestudio", "train", "--model", "tiny-demo", "--dataset",
                            "demo-reviews.jsonl", "--method", "full", "--lr", "1e-3", "--max-steps", "6",
                            "--eval-steps", "3", "--batch-size", "8", "--json", "--workspace", str(ws)],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        yield {"url": f"http://127.0.0.1:{port}/", "ws": ws, "run_id": json.loads(r.stdout)["run_id"],
               "log": ws.parent / "webui.log"}
    finally:
        stop_ui(proc)


@pytest.mark.timeout(1800)   # every tab twice more (Tetum and back): slow on a loaded machine
def test_click_through_the_other_tabs(server_with_run, browser):
    """Model, Datasets, Training (demo preset), Runs, Evaluate and Rate each do their job in a real
    browser on one UI server. Screenshots: test-artifacts/webui/1*.png."""
    run_id = server_with_run["run_id"]
    # `tunestudio webui` on a workspace without models wrote the demo model and data first.
    assert "writing the demo model" in server_with_run["log"].read_text()
    assert (server_with_run["ws"] / "models" / "tiny-demo" / "config.json").is_file()
    page = _open(browser, server_with_run["url"])
    assert page.input_value("#model-select input") == "tiny-demo"

    # Model: the details and the memory estimate per method.
    wait_text(page, "#model-summary", "Parameters")
    assert "LlamaForCausalLM" in page.inner_text("#model-summary")
    memory = wait_text(page, "#model-memory", "lora")
    assert "full" in memory and "MiB" in memory
    save_shot(page, "10-model")

    # Datasets: check (rows, format), statistics (histogram bars), preview (highlighted tokens).
    page.get_by_role("tab", name="Datasets").click()
    page.wait_for_selector("#datasets-check")
    assert page.input_value("#datasets-pick input") == "demo-reviews.jsonl"
    page.click("#datasets-check")
    report = wait_text(page, "#datasets-report", "2000 rows")   # not the progress line ("0/2k rows")
    assert "2000 rows" in report and "messages" in report, report
    assert "duplicate of" in wait_text(page, "#datasets-problems", "duplicate")  # the demo's 49 duplicates, by line
    page.click("#datasets-stats")
    report = wait_text(page, "#datasets-report", "median")
    assert "length in tokens" in report and "negative" in report, report
    page.wait_for_function("document.querySelectorAll('#datasets-histogram g.mark-rect path').length > 0",
                           timeout=30_000)
    assert not page.locator("#datasets-problems").is_visible()  # no empty problems table under the stats
    ticks = page.locator("#datasets-histogram g.role-axis-label text").all_text_contents()
    bins = [x for x in ticks if "–" in x or x.startswith(">")]  # the x axis (the y axis has counts)
    assert bins[0].startswith("0–") and bins[-1].startswith(">"), bins  # in length order, not alphabetical
    assert int(bins[1].split("–")[0]) == int(bins[0].split("–")[1]), bins
    page.click("#datasets-preview-btn")
    wait_text(page, "#datasets-preview-head", "trained on")
    assert "median" in page.inner_text("#datasets-report")   # the statistics stay beside the example
    page.wait_for_function("document.querySelectorAll('#datasets-preview .token .text:not(.unlabeled)').length > 0",
                           timeout=30_000)
    trained = " ".join(page.locator("#datasets-preview .token .text:not(.unlabeled)").all_text_contents())
    assert any(label in trained for label in ("positive", "negative", "neutral")), trained
    save_shot(page, "11-datasets")
    # Another file: no panel keeps the previous file's report, histogram or example.
    page.click("#datasets-pick input")
    page.get_by_role("option", name="demo-qa.csv").click()
    page.wait_for_function("!document.querySelector('#datasets-preview-head').innerText.includes('trained on')",
                           timeout=30_000)
    page.wait_for_function("document.querySelectorAll('#datasets-preview .token').length === 0", timeout=30_000)
    assert page.locator("#datasets-histogram g.mark-rect path").count() == 0

    # Training: the demo model starts from the preset that learns on it, and says why.
    page.get_by_role("tab", name="Training").click()
    page.wait_for_selector("#start-training")
    note = wait_text(page, "#training-model-note", "LoRA")
    assert "tiny-demo" in note
    assert page.input_value("#method input") == "full"
    assert float(page.input_value("#learning-rate input")) == 1e-3
    assert page.input_value("#batch-size input") == "16" and float(page.input_value("#epochs input")) == 1
    save_shot(page, "12-training-demo-preset")

    # Runs: the run is in the table.
    page.get_by_role("tab", name="Runs").click()
    table = wait_text(page, "#runs-table", run_id)
    assert "completed" in table and "full" in table and "tiny-demo" in table
    page.click("#runs-a input")
    page.get_by_role("option", name=re.compile(run_id)).first.click()
    page.click("#runs-details")
    assert "train_loss" in wait_text(page, "#runs-metrics", "train_loss")
    page.wait_for_function("document.querySelectorAll('#runs-curves g.mark-line path').length >= 1", timeout=30_000)
    save_shot(page, "13-runs")

    # Chat: "Talk to" follows the newest finished run while the user has not picked a source.
    page.get_by_role("tab", name="Chat").click()
    page.wait_for_function(f"document.querySelector('#chat-source input').value.includes('{run_id}')", timeout=30_000)
    assert page.input_value("#chat-source input").startswith("run · ")

    # Evaluate: four test rows, base vs fine-tuned.
    page.get_by_role("tab", name="Evaluate").click()
    page.wait_for_selector("#eval-run-button")
    page.wait_for_function(f"document.querySelector('#eval-run input').value.includes('{run_id}')", timeout=30_000)
    page.fill("#eval-limit input", "4")
    page.press("#eval-limit input", "Tab")
    page.click("#eval-run-button")
    message = wait_text(page, "#eval-message", "4 rows", timeout=120_000)
    assert "✖" not in message, message
    metrics = wait_text(page, "#eval-metrics-table", "exact_match")
    assert "loss" in metrics and "base" in metrics
    examples = wait_text(page, "#eval-examples", "base model's answer")   # the answers beside the references
    assert any(label in examples for label in ("positive", "negative", "neutral")), examples
    save_shot(page, "14-evaluate")

    # Rate: a session of three prompts, the run against its base; every click moves the summary.
    page.get_by_role("tab", name="Rate").click()
    page.wait_for_selector("#rate-create")
    assert page.locator("#rate-pick-a").is_disabled()   # no session yet: nothing to rate
    page.click("#rate-a input")
    page.get_by_role("option", name=re.compile(r"^run · ")).first.click()
    page.click("#rate-b input")
    page.get_by_role("option", name=re.compile(r"^base of · ")).first.click()
    page.fill("#rate-n input", "3")
    page.press("#rate-n input", "Tab")
    page.click("#rate-create")
    wait_text(page, "#rate-message", "Item 1 of 3", timeout=120_000)
    assert page.input_value("#rate-prompt textarea").strip()
    assert "0 rating(s) of 3" in wait_text(page, "#rate-summary", "rating(s)")
    for n, button in enumerate(("#rate-pick-a", "#rate-pick-tie", "#rate-pick-b"), start=1):
        page.click(button)
        wait_text(page, "#rate-summary", f"{n} rating(s) of 3")
    assert "Every item" in page.inner_text("#rate-message")
    page.wait_for_function("document.querySelector('#rate-pick-b').disabled", timeout=30_000)
    summary = page.inner_text("#rate-summary")
    assert f"run:{run_id}" in summary and f"base:{run_id}" in summary
    assert "33%" in summary  # one win each and one tie
    assert "3/3" in page.input_value("#rate-session input")
    save_shot(page, "15-rate")

    # Results on screen, then Tetum and back: every tab re-renders what it shows, with no string of
    # the other language left (checked against the locale files: tests/lang_check.py).
    page.get_by_role("tab", name="Datasets").click()
    page.click("#datasets-pick input")
    page.get_by_role("option", name="demo-reviews.jsonl").click()
    page.click("#datasets-check")
    wait_text(page, "#datasets-problems", "duplicate of")
    page.get_by_role("tab", name="Training").click()
    page.click("#stop-training")
    wait_text(page, "#training-message", "Nothing is running")
    switch_language(page, "Tetun")
    # a list on the tab in view says its runs' status in Tetum at once, without the tab being
    # selected again (the switch sends every run list its choices)
    wait_text(page, "#training-group-run", t("tet", "training.group.run"), timeout=60_000)   # the tab relabelled
    open_group(page, "run", "param-from-run")
    page.click("#param-from-run input")
    page.wait_for_function("[...document.querySelectorAll('[role=option]')].some(o => o.innerText.includes('remata ona'))",
                           timeout=60_000)
    options = page.get_by_role("option").all_inner_texts()
    assert not any("completed ·" in o or o.startswith("run · ") for o in options), options
    page.keyboard.press("Escape")
    page.locator("#param-from-run input").blur()
    page.mouse.click(5, 5)   # the open list would catch the next click
    page.wait_for_function("!document.querySelector('[role=option]')", timeout=30_000)
    _all_tabs_in(page, "tet", "en", "16-tetum")
    # and the texts are really there in Tetum, not just gone
    page.get_by_role("tab").nth(TAB_ORDER.index("datasets")).click()
    assert "duplikadu husi" in wait_text(page, "#datasets-problems", "duplikadu husi")
    # Gradio's own upload-box words too (webui/i18n/gradio_locale.py rewrites them in the page)
    page.get_by_text(t("tet", "datasets.upload"), exact=True).click()
    box = wait_text(page, "#datasets-upload", t("tet", "gradio.upload_text.click_to_upload"))
    assert t("tet", "gradio.upload_text.drop_file") in box and "Click to Upload" not in box, box
    save_shot(page, "16-tetum-upload-box")
    page.get_by_role("tab").nth(TAB_ORDER.index("runs")).click()
    assert "remata ona" in wait_text(page, "#runs-table", "remata ona")
    wait_text(page, "#runs-metrics", "xave")
    switch_language(page, "English")
    _all_tabs_in(page, "en", "tet", "17-english-again")
    page.get_by_role("tab").nth(TAB_ORDER.index("datasets")).click()
    assert "Drop File Here" in wait_text(page, "#datasets-upload", "Click to Upload")
    page.close()


TAB_ORDER = ("model", "datasets", "training", "runs", "evaluate", "chat", "rate")


def _all_tabs_in(page, lang: str, other: str, shot: str) -> None:
    """Open every tab; within 120 s (a loaded machine) each shows no fragment of `other`'s locale texts (what the
    switch to `lang` left behind). Screenshots test-artifacts/webui/<shot>-<tab>.png."""
    from lang_check import wrong_language

    for i, name in enumerate(TAB_ORDER):
        page.get_by_role("tab").nth(i).click(no_wait_after=True)   # a busy page may hold navigations back
        deadline, left = time.time() + 120, ["?"]
        while time.time() < deadline:
            # the engine's warnings (⚠ lines) are checked too: tunestudio's own are worded from the locale
            # files (i18n.engine_warning); only a library's words stay as they are, and no locale file holds those
            text = page.inner_text("body")
            left = wrong_language(text, lang, other)
            if not left:
                break
            page.wait_for_timeout(1000)
        save_shot(page, f"{shot}-{name}")
        assert not left, f"{name} tab in {lang} still shows {other}: {left}"
