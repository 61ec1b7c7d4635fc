"""A run with replay through the CLI: --lr left out is resolved to the preset and saved in config.yaml;
--replay adds the base model's own answers (canned, through the replay cache) to the training rows only
(the presets and replay in-process: test_presets.py)."""

from __future__ import annotations

import json

import pytest
from helpers import run_cli
from workspaces import prime_replay_cache

from tunestudio.config import presets
from tunestudio.core.workspace import Workspace
from tunestudio.train import replay


@pytest.mark.slow
def test_a_run_with_replay_trains_on_the_base_models_answers_and_saves_the_preset_lr(demo_ws, monkeypatch):
    """Through the CLI: --lr left out is resolved and saved in config.yaml; --replay adds the base
    model's own answers (from the cache the run would fill) to the training rows only."""
    ws = Workspace(demo_ws)
    _, base, tok = prime_replay_cache(ws, monkeypatch)
    replay.records(ws, base, tok, 1, seed=0)   # fills the cache the CLI run reads
    common = ("train", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--max-steps", "2",
              "--val-split", "0.05", "--test-split", "0.05", "--replay", "0.01", "--json")
    first = run_cli(*common, "--name", "a", ws=demo_ws)
    assert first.returncode == 0, first.stderr
    assert "replay: asking the base model" not in first.stderr and "replay: 18 answers" in first.stderr
    assert "the preset for a random-initialised model" in first.stderr
    out = json.loads(first.stdout)
    run_dir = demo_ws / "training" / "runs" / out["run_id"]
    import yaml

    assert yaml.safe_load((run_dir / "config.yaml").read_text())["lr"] == presets.RANDOM_LR
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    note = next(e for e in events if e.get("code") == "replay_rows")
    rows = out["metrics"]["train_examples"]
    assert note["rows"] == 18 and rows == 1800 + 18
    split = json.loads((run_dir / "split.json").read_text())
    assert "replay" not in json.dumps(split.get("val", "")) and "replay" not in json.dumps(split.get("test", ""))

