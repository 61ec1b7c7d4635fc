"""The Training tab at 1280x800 in a real browser: the guide's common path (dataset, method, epochs, learning
rate, batch size, the preset and Start) in sight without scrolling or opening anything, a page under 1.8
screens (it was 2.8, and 7.8 with Advanced open), and "Find an option" showing only the options that match,
in English and in Tetum."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import CHROMIUM, demo_ui, save_shot, switch_language, wait_text

from tunestudio.webui.i18n.texts import t

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt install chromium)")]

SCREEN = {"width": 1280, "height": 800}
COMMON_PATH = ("#dataset-select", "#training-model-note", "#method", "#epochs", "#learning-rate", "#batch-size",
               "#training-find", "#start-training")
FIND = "#training-find input, #training-find textarea"
PAGE_HEIGHT = "Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)"


@pytest.fixture(scope="module")
def ui(demo_template, tmp_path_factory):
    with demo_ui(demo_template, tmp_path_factory, "layout") as served:
        yield served


def _training(browser, url: str):
    page = browser.new_page(viewport=SCREEN)
    page.goto(url)
    page.wait_for_selector("#model-select")
    page.locator("#tab-training-button, [role=tab]:has-text('Training')").first.click()
    page.wait_for_selector("#start-training", state="visible")
    wait_text(page, "#training-command-preview", "tunestudio train")   # the page's load handlers have run
    wait_text(page, "#training-model-note", "tiny-demo")
    return page


def _shown(page, selector: str) -> bool:
    return page.locator(selector).count() > 0 and page.locator(selector).first.is_visible()


def _find(page, text: str) -> None:
    page.locator(FIND).first.fill(text)


def test_the_common_path_is_on_one_screen_and_the_page_is_short(ui, browser):
    page = _training(browser, ui["url"])
    for selector in COMMON_PATH:   # in sight at 1280x800, nothing scrolled, nothing opened
        box = page.locator(selector).first.bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= SCREEN["height"], (selector, box)
    assert "preset" in page.inner_text("#training-model-note")   # the line saying what the preset sets
    height = page.evaluate(PAGE_HEIGHT)
    print(f"Training tab page height with nothing opened: {height} px ({height / SCREEN['height']:.2f} screens)")
    # it was 2,263 px (6,279 with Advanced open); 1,375 px measured now, the open Queue included
    assert height <= 1.8 * SCREEN["height"], height
    # every other option is folded away: not in the page until its group opens
    for elem in ("param-warmup-steps", "param-max-length", "param-lora-r", "param-eval-steps", "param-objective"):
        assert page.locator(f"#{elem}").count() == 0 or not page.locator(f"#{elem}").is_visible(), elem
    page.screenshot(path=str(Path(__file__).parents[2] / "test-artifacts" / "webui" / "40-training-one-screen.png"))
    page.close()


def test_find_an_option_shows_only_what_matches_in_english_and_tetum(ui, browser):
    page = _training(browser, ui["url"])
    _find(page, "warmup")
    page.wait_for_selector("#param-warmup-steps", state="visible")
    assert _shown(page, "#param-warmup-ratio") and _shown(page, "#training-group-optimisation")
    for gone in ("#param-scheduler", "#param-eval-steps", "#training-group-data", "#training-group-run", "#epochs",
                 "#learning-rate"):
        page.wait_for_selector(gone, state="hidden")
    save_shot(page, "41-training-find-warmup")
    # by the flag's name too
    _find(page, "--max-length")
    page.wait_for_selector("#param-max-length", state="visible")
    page.wait_for_selector("#param-warmup-steps", state="hidden")
    # cleared: the folded layout again, the common path back
    _find(page, "")
    page.wait_for_selector("#epochs", state="visible")
    page.wait_for_selector("#param-max-length", state="hidden")
    for group in ("data", "optimisation", "method", "stopping", "objective", "devices", "run"):
        assert _shown(page, f"#training-group-{group}"), group
    assert page.locator("#start-training").bounding_box()["y"] + 40 <= SCREEN["height"]

    switch_language(page, "Tetun")
    wait_text(page, "#start-training", t("tet", "training.start"), timeout=60_000)
    _find(page, "warmup")
    page.wait_for_selector("#param-warmup-steps", state="visible")
    assert t("tet", "param.warmup_steps") in page.inner_text("#param-warmup-steps")
    page.wait_for_selector("#param-eval-steps", state="hidden")
    # the guide's Tetum words find the option by its Tetum label
    _find(page, "aklimatasaun")
    page.wait_for_selector("#param-warmup-steps", state="visible")
    page.wait_for_selector("#param-grad-accum", state="hidden")
    _find(page, "akumulasaun")
    page.wait_for_selector("#param-grad-accum", state="visible")
    page.wait_for_selector("#param-warmup-steps", state="hidden")
    _find(page, "zzz")
    assert "zzz" in wait_text(page, "#training-find-none", t("tet", "training.find_none", query="zzz"))
    save_shot(page, "42-training-find-tetum")
    page.close()
