"""Shared fixtures: an offline environment, the demo workspace, and a tiny model to train.

Every test runs with HF_HUB_OFFLINE=1: models and data come from what the project makes itself.
Plain functions the tests import live in helper modules beside this file (helpers.py: paths and
`run_cli`; workspaces.py: what the fixtures below build).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["TOKENIZERS_PARALLELISM"] = "false"


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    """A workspace made once by `tunestudio demo` (tiny model + demo datasets)."""
    ws = tmp_path_factory.mktemp("demo-template")
    from tunestudio.core.workspace import Workspace
    from tunestudio.demo import make_demo

    make_demo(Workspace(ws))
    return ws


@pytest.fixture
def demo_ws(demo_template, tmp_path) -> Path:
    """A fresh copy of the demo workspace for one test (tests may write runs into it)."""
    ws = tmp_path / "ws"
    shutil.copytree(demo_template, ws)
    return ws


@pytest.fixture
def workspace(tmp_path) -> Path:
    """An empty workspace with the standard folders."""
    from tunestudio.core.workspace import Workspace

    Workspace(tmp_path).ensure()
    return tmp_path


# ---- a tiny Llama that trains in seconds (workspaces.make_tiny_ws, tiny_config) ------------------

@pytest.fixture
def one_thread():
    """One torch thread for the test (modules that train ask for it with `usefixtures`). On a 2-core
    machine shared with other test processes, two threads each fight over the cores and one step gets
    ~10x slower; one thread per training process is the fast setting here."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_template(demo_template, tmp_path_factory) -> Path:
    from workspaces import make_tiny_ws

    return make_tiny_ws(demo_template, tmp_path_factory.mktemp("tiny-template")).root


@pytest.fixture
def tiny_ws(tiny_template, tmp_path):
    from tunestudio.core.workspace import Workspace

    shutil.copytree(tiny_template, tmp_path / "ws")
    return Workspace(tmp_path / "ws")


# ---- the browser tier --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright, one per test module (browser_helpers.py has the rest)."""
    from browser_helpers import ARGS, CHROMIUM, SHOTS
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()
