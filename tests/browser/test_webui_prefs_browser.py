"""Preference tuning in a real browser (Debian's Chromium through Playwright, as test_webui_browser.py):
a DPO run started from the Training tab (objective dpo, demo-prefs.jsonl, the demo model, 4 steps)
draws the preference plot with rewards/chosen, rewards/rejected, margin and accuracy in its legend;
the Rewards panel shows only for GRPO, and its test on 8 samples fills the table. Screenshots: test-artifacts/webui/3*.png."""

from __future__ import annotations

import os

import pytest
from browser_helpers import CHROMIUM, SHOTS, demo_ui, open_group, open_tab, save_shot, switch_language, wait_text

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt install chromium)")]


@pytest.fixture(scope="module")
def prefs_ui(demo_template, tmp_path_factory):
    with demo_ui(demo_template, tmp_path_factory, "webui-prefs") as ui:
        yield ui


def _pick(page, selector: str, option: str) -> None:
    page.click(f"{selector} input")
    page.get_by_role("option", name=option, exact=True).click()


@pytest.mark.timeout(300)
def test_dpo_run_from_the_training_tab_draws_the_preference_plot(prefs_ui, browser):
    page = open_tab(browser, prefs_ui["url"], "Training", "#start-training")
    _pick(page, "#dataset-select", "demo-prefs.jsonl")
    # the Rewards panel belongs to GRPO: shown for it, gone again for DPO
    assert not page.locator("#rewards-panel").is_visible()
    open_group(page, "objective", "param-objective")
    _pick(page, "#param-objective", "grpo")
    page.wait_for_selector("#rewards-test", state="visible")
    # the demo's reward file is open, and its test (the CLI's, in its own process) fills the table
    assert page.input_value("#rewards-file input") == "rewards/demo_dates.py"
    page.wait_for_function("document.querySelector('#rewards-code').innerText.includes('def reward')", timeout=30_000)
    page.fill("#rewards-spec textarea", "rewards/demo_dates.py,exact_match:0.5")
    page.click("#rewards-test")
    wait_text(page, "#rewards-message", "8 completions of", timeout=120_000)
    header = page.locator("#rewards-table thead").inner_text()
    assert all(c in header for c in ("prompt", "completion", "demo_dates", "exact_match", "total")), header
    page.locator("#rewards-panel").screenshot(path=str(SHOTS / "32-rewards-panel.png"))
    assert "Write this date in words." in page.locator("#rewards-table").inner_text()   # the demo's prompts
    # what the panel shows is said again in Tetum, with no new test run
    switch_language(page, "Tetun")
    wait_text(page, "#rewards-message", "Resposta 8 husi")
    wait_text(page, "#rewards-table", "pergunta")
    wait_text(page, "#rewards-test", "Koko iha ezemplu 8")   # the button is relabelled by its own event
    switch_language(page, "English")
    wait_text(page, "#rewards-message", "8 completions of")
    _pick(page, "#param-objective", "dpo")
    page.wait_for_selector("#rewards-panel", state="hidden")
    open_group(page, "optimisation", "param-max-steps")
    open_group(page, "stopping", "param-eval-steps")
    for elem, value in (("param-max-steps", "4"), ("param-eval-steps", "2"), ("param-logging-steps", "1")):
        page.fill(f"#{elem} input", value)
    page.locator("#param-logging-steps input").press("Tab")
    preview = wait_text(page, "#training-command-preview", "--max-steps 4")
    assert "--dataset demo-prefs.jsonl" in preview and "--objective dpo" in preview, preview
    save_shot(page, "30-dpo-form")
    page.click("#start-training")
    wait_text(page, "#training-status", "completed", timeout=180_000)
    wanted = [f"{split} {series}" for split in ("training", "validation")
              for series in ("rewards/chosen", "rewards/rejected", "margin", "accuracy")]
    # the plot's own timer redraws it as events arrive: wait for the last ones (validation at step 4)
    page.wait_for_function("(want) => { const got = [...document.querySelectorAll('#preference-plot "
                           "g.role-legend text')].map(e => e.textContent); return want.every(w => got.includes(w)); }",
                           arg=wanted, timeout=60_000)
    legend = set(page.locator("#preference-plot g.role-legend text").all_text_contents())
    assert set(wanted) <= legend, legend
    assert page.locator("#preference-plot g.mark-line path").count() >= 4   # lines drawn, not only a legend
    page.locator("#preference-plot").scroll_into_view_if_needed()
    box = page.locator("#preference-plot").bounding_box()   # the legend hangs below the plot's box
    page.screenshot(path=str(SHOTS / "31-dpo-preference-plot.png"),
                    clip={"x": 0, "y": box["y"], "width": 1300, "height": box["height"] + 60})
    page.close()


@pytest.mark.timeout(300)
def test_runs_tab_shows_a_grpo_runs_rollouts_by_step(prefs_ui, browser):
    import json
    import re
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "tunestudio", "train", "--objective", "grpo", "--model", "tiny-demo",
                        "--dataset", "demo-rewards.jsonl", "--rewards", "rewards/demo_dates.py,exact_match:0.5",
                        "--method", "lora", "--batch-size", "4", "--num-generations", "2",
                        "--max-completion-length", "6", "--max-steps", "2", "--val-split", "0", "--name", "g",
                        "--json", "--workspace", str(prefs_ui["ws"])], capture_output=True, text=True, env=env,
                       timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    run_id = json.loads(r.stdout)["run_id"]
    page = open_tab(browser, prefs_ui["url"], "Runs", "#runs-a")
    page.click("#runs-a input")
    page.get_by_role("option", name=re.compile(re.escape(run_id))).first.click()
    page.get_by_text("GRPO rollouts").click()
    head = wait_text(page, "#rollouts-message", "Step 2 of 1–2")
    assert "4 completions in 2 prompt groups" in head, head
    table = page.locator("#rollouts-table").inner_text()
    assert "Write this date in words." in table and "advantage" in table and "demo_dates" in table, table
    # an earlier step from the picker
    page.click("#rollouts-step input")
    page.get_by_role("option", name="1", exact=True).click()
    wait_text(page, "#rollouts-message", "Step 1 of 1–2")
    page.locator("#rollouts-panel").screenshot(path=str(SHOTS / "33-grpo-rollouts.png"))
    page.close()
