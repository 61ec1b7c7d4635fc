"""The browser tier: one Debian Chromium per test module, driven by Playwright (the helpers the
tests share, UI servers and screenshots, are in tests/browser_helpers.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def browser():
    from browser_helpers import ARGS, CHROMIUM, SHOTS
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()
