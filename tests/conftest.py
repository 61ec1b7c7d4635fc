"""Shared test fixtures: an offline environment, a CLI runner, and a demo workspace.

Every test runs with HF_HUB_OFFLINE=1: models and data come from what the project makes itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


def run_cli(*args, ws: Path | None = None, timeout: int = 600, env: dict | None = None):
    """Run `tunestudio ARGS` as a user would, in a separate process. Returns CompletedProcess."""
    cmd = [sys.executable, "-m", "tunestudio", *map(str, args)]
    if ws is not None:
        cmd += ["--workspace", str(ws)]
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ws or REPO)


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    """A workspace made once by `tunestudio demo` (tiny model + demo datasets)."""
    ws = tmp_path_factory.mktemp("demo-template")
    from tunestudio.demo import make_demo
    from tunestudio.workspace import Workspace

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
    from tunestudio.workspace import Workspace

    Workspace(tmp_path).ensure()
    return tmp_path
