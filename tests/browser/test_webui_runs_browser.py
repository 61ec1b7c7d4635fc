"""The Runs tab in a real browser (Debian's Chromium through Playwright, as test_webui_browser.py):
two runs picked by hand are overlaid with both runs' training and validation series in the legend,
and "Start a run from A's config" fills the Training tab's form with that run's saved config.
Screenshots: test-artifacts/webui/2*.png."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from browser_helpers import CHROMIUM, open_group, save_shot, start_ui, stop_ui, wait_text

from tunestudio.core.workspace import Workspace

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt install chromium)")]

RUNS = {"alpha": ("1e-3", "8"), "beta": ("5e-4", "4")}   # name: (lr, batch size)


@pytest.fixture(scope="module")
def two_runs(demo_template, tmp_path_factory):
    """A demo workspace with two finished 6-step runs ('alpha', 'beta'), and a UI started on it."""
    ws = tmp_path_factory.mktemp("webui-runs") / "ws"
    shutil.copytree(demo_template, ws)
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    ids = {}
    for name, (lr, batch) in RUNS.items():
        r = subprocess.run([sys.executable, "-m", "tunestudio", "train", "--model", "tiny-demo", "--dataset",
                            "demo-reviews.jsonl", "--method", "full", "--lr", lr, "--max-steps", "6",
                            "--eval-steps", "3", "--logging-steps", "2", "--batch-size", batch, "--name", name,
                            "--json", "--workspace", str(ws)], capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        ids[name] = json.loads(r.stdout)["run_id"]
    proc, port = start_ui(ws, ws.parent / "webui.log", env)
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "ws": ws, "ids": ids}
    finally:
        stop_ui(proc)


def _runs_tab(browser, url):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(url)
    page.wait_for_selector("#model-select")
    page.get_by_role("tab", name="Runs").click()
    page.wait_for_selector("#runs-overlay-draw")
    return page


def test_two_runs_overlaid_with_both_in_the_legend(two_runs, browser):
    page = _runs_tab(browser, two_runs["url"])
    for name, run_id in two_runs["ids"].items():
        page.click("#runs-overlay-pick input")
        page.get_by_role("option", name=re.compile(re.escape(run_id))).first.click()
        wait_text(page, "#runs-overlay-pick", run_id)
    page.keyboard.press("Escape")
    page.click("#runs-overlay-draw")
    wait_text(page, "#runs-overlay-message", "2 run(s) overlaid", timeout=120_000)
    page.wait_for_function("document.querySelectorAll('#runs-overlay-plot g.mark-line path').length >= 4",
                           timeout=30_000)
    legend = set(page.locator("#runs-overlay-plot g.role-legend text").all_text_contents())
    wanted = {f"{name} {kind}" for name in RUNS for kind in ("train", "val")}
    assert wanted <= legend, legend
    page.locator("#runs-overlay-plot").scroll_into_view_if_needed()
    save_shot(page, "20-runs-overlay")
    page.close()


def test_start_a_run_from_a_runs_config_fills_the_training_form(two_runs, browser):
    run_id = two_runs["ids"]["beta"]
    page = _runs_tab(browser, two_runs["url"])
    page.click("#runs-a input")
    page.get_by_role("option", name=re.compile(re.escape(run_id))).first.click()
    page.click("#runs-use-config")
    # the Training tab opens, its form holding beta's config (lr 5e-4, batch 4, 6 steps), no name
    page.wait_for_selector("#start-training", state="visible", timeout=30_000)
    wait_text(page, "#training-message", run_id)
    assert float(page.input_value("#learning-rate input")) == pytest.approx(5e-4)
    assert page.input_value("#batch-size input") == "4"
    assert page.input_value("#method input") == "full"
    assert page.input_value("#dataset-select input") == "demo-reviews.jsonl"
    open_group(page, "run", "param-name")
    assert page.input_value("#param-name textarea") == ""  # a new run: beta's name is not carried over
    open_group(page, "optimisation", "param-max-steps")
    open_group(page, "stopping", "param-eval-steps")
    assert page.input_value("#param-max-steps input") == "6"
    assert page.input_value("#param-eval-steps input") == "3"
    save_shot(page, "21-start-from-config")
    page.get_by_role("tab", name="Model").click()
    assert page.input_value("#model-select input") == "tiny-demo"
    page.close()


ONE_TRIAL = """name: ui-one
base: {model: tiny-demo, dataset: demo-reviews.jsonl, method: full, max_steps: 4, batch_size: 8, eval_steps: 2, logging_steps: 2, val_split: 0.05, test_split: 0}
space: {lr: [1e-3]}
sampler: grid
pruner: none
trials: 1
"""


def test_a_sweep_started_from_the_sweeps_panel_runs_and_shows_its_progress(two_runs, browser):
    page = _runs_tab(browser, two_runs["url"])
    page.get_by_text("Sweeps (hyper-parameter search)").click()
    page.click("#sweeps-example input")
    page.get_by_role("option", name="sweep-demo-reviews.yaml").click()
    page.wait_for_function("document.querySelector('#sweeps-yaml').innerText.includes('demo-reviews-lr')",
                           timeout=30_000)
    page.locator("#sweeps-yaml .cm-content").fill("name: [broken")
    page.click("#sweeps-start")
    assert "is not valid YAML" in wait_text(page, "#sweeps-progress", "✖")
    page.locator("#sweeps-yaml .cm-content").fill(ONE_TRIAL)
    page.click("#sweeps-start")
    wait_text(page, "#sweeps-progress", "ui-one")
    text = wait_text(page, "#sweeps-progress", "1 of 1 trials ended", timeout=600_000)
    assert "1 complete" in text and "best so far: trial 0" in text, text
    wait_text(page, "#sweeps-progress", "ended")
    assert (Workspace(two_runs["ws"]).sweep_uploads_dir / "sweep-demo-reviews.yaml").is_file()
    # showing it puts its trial's curves in the overlay
    page.click("#sweeps-show")
    wait_text(page, "#runs-overlay-message", "1 run(s) overlaid")
    page.wait_for_function("document.querySelectorAll('#runs-overlay-plot g.role-legend text').length >= 2",
                           timeout=30_000)
    legend = page.locator("#runs-overlay-plot g.role-legend text").all_text_contents()
    assert "ui-one-t0 train" in legend and "ui-one-t0 val" in legend, legend
    save_shot(page, "22-sweep-started-from-ui")
    page.close()


def test_overlay_legend_labels_read_whole_in_tetum_with_a_long_run_name(two_runs, browser):
    """A run name too long for the legend (Vega cuts labels past 160 px with "…"): in Tetum, whose
    split names are longer, every legend label still reads whole, the long name as a short key that
    the chart's caption spells out."""
    from tunestudio.core import registry

    long_name = "alpha-lora-r16-qwen2.5-reviews-lr3e-4-seed7"
    conn = registry.connect(two_runs["ws"] / "tunestudio.db")
    registry.update_run(conn, two_runs["ids"]["alpha"], name=long_name)
    try:
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(two_runs["url"])
        page.wait_for_selector("#model-select")
        page.click("#ui-language input")
        page.get_by_role("option", name="Tetun").first.click()
        page.get_by_role("tab", name="Treinamentu sira").click()
        page.wait_for_selector("#runs-overlay-draw")
        for run_id in two_runs["ids"].values():
            page.click("#runs-overlay-pick input")
            page.get_by_role("option", name=re.compile(re.escape(run_id))).first.click()
            wait_text(page, "#runs-overlay-pick", run_id)
        page.keyboard.press("Escape")
        page.click("#runs-overlay-draw")
        page.wait_for_function("document.querySelectorAll('#runs-overlay-plot g.mark-line path').length >= 4",
                               timeout=120_000)
        legend = page.locator("#runs-overlay-plot g.role-legend-label text").all_text_contents()
        assert len(legend) == 4 and not [x for x in legend if x.endswith("…")], legend
        assert {"beta treinamentu", "beta valida"} <= set(legend), legend
        caption = page.inner_text("#runs-overlay-plot")
        assert f"{long_name} treinamentu" in caption and f"{long_name} valida" in caption, caption
        page.locator("#runs-overlay-plot").scroll_into_view_if_needed()
        save_shot(page, "21-runs-overlay-long-name-tet")
        page.close()
    finally:
        registry.update_run(conn, two_runs["ids"]["alpha"], name="alpha")
        conn.close()


def test_runs_table_search_sort_row_click_rename_delete_and_next_steps(two_runs, browser):
    """Search and sort the runs table, pick run A by clicking its row, open Evaluate with it, rename
    it, then delete it after the confirmation (its folder stays). Runs last: it deletes beta."""
    alpha, beta = two_runs["ids"]["alpha"], two_runs["ids"]["beta"]
    page = _runs_tab(browser, two_runs["url"])
    wait_text(page, "#runs-table", beta)
    page.fill("#runs-search textarea", "alph")
    page.wait_for_function(f"!document.querySelector('#runs-table').innerText.includes('{beta}')", timeout=30_000)
    assert alpha in page.inner_text("#runs-table")
    page.fill("#runs-search textarea", "")
    wait_text(page, "#runs-table", beta)
    page.click("#runs-sort input")
    page.get_by_role("option", name="name", exact=True).click()
    page.click("#runs-descending input")   # ascending: alpha before beta
    page.wait_for_function(
        f"(() => {{ const t = document.querySelector('#runs-table').innerText;"
        f" return t.indexOf('{alpha}') >= 0 && t.indexOf('{alpha}') < t.indexOf('{beta}'); }})()", timeout=30_000)
    # a click on a row picks that run as A; a completed run offers its next steps
    page.locator("#runs-table").get_by_text("beta", exact=True).first.click()
    page.wait_for_function(f"document.querySelector('#runs-a input').value.includes('{beta}')", timeout=30_000)
    page.wait_for_function("!document.querySelector('#runs-to-evaluate').disabled", timeout=30_000)
    save_shot(page, "23-runs-filtered-row-picked")
    page.click("#runs-to-evaluate")
    page.wait_for_selector("#eval-run-button", state="visible", timeout=30_000)
    page.wait_for_function(f"document.querySelector('#eval-run input').value.includes('{beta}')", timeout=30_000)
    page.get_by_role("tab", name="Runs").click()
    # rename, then delete with the confirmation; the files are kept unless ticked
    page.get_by_text("Rename or delete run A").click()
    page.fill("#runs-new-name textarea", "beta-renamed")
    page.click("#runs-rename")
    wait_text(page, "#runs-manage-message", "beta-renamed")
    wait_text(page, "#runs-table", "beta-renamed")
    page.click("#runs-delete")
    assert beta in wait_text(page, "#runs-confirm-question", beta)
    # the rename's message goes with the question, and stays gone after Cancel
    page.wait_for_function("!document.querySelector('#runs-manage-message').innerText.includes('beta-renamed')",
                           timeout=30_000)
    page.click("#runs-delete-no")
    page.wait_for_selector("#runs-confirm-question", state="hidden", timeout=30_000)
    assert "beta-renamed" not in page.inner_text("#runs-manage-message")
    for lang, runs_tab in (("Tetun", "Treinamentu sira"), ("English", "Runs")):   # nor at a language switch
        page.click("#ui-language input")
        page.get_by_role("option", name=lang).first.click()
        page.get_by_role("tab", name=runs_tab).wait_for(timeout=60_000)
        page.wait_for_timeout(3000)   # the views' replays follow the labels
        assert "beta-renamed" not in page.inner_text("#runs-manage-message"), lang
    page.click("#runs-delete")
    assert beta in wait_text(page, "#runs-confirm-question", beta)
    save_shot(page, "24-runs-delete-confirm")
    page.click("#runs-delete-yes")
    assert "still in" in wait_text(page, "#runs-manage-message", "deleted")
    page.wait_for_function(f"!document.querySelector('#runs-table').innerText.includes('{beta}')", timeout=30_000)
    assert (two_runs["ws"] / "training" / "runs" / beta).is_dir()
    page.close()
