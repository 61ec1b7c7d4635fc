"""An unknown --report-to tracker is one clear message before any run exists."""

from __future__ import annotations

import importlib.util

import pytest
from helpers import run_cli

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is None or importlib.util.find_spec("mlflow") is None,
    reason="needs the trackers extra: pip install 'tunestudio[trackers]'")


def test_an_unknown_tracker_is_one_clear_message_before_any_run(tiny_ws):
    out = run_cli("train", "--model", "tiny", "--dataset", "tiny.jsonl", "--report-to", "tensorboard,neptune",
                  ws=tiny_ws.root)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "error: --report-to: unknown tracker 'neptune': choose from tensorboard, mlflow, wandb, trackio (a comma list)"]
    assert not tiny_ws.runs_dir.exists() or not any(tiny_ws.runs_dir.iterdir())

