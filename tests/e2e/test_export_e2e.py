"""A LoRA run trained and exported with the CLI prints no Python warning on the user's terminal."""

from __future__ import annotations

import re

from helpers import run_cli


def test_a_lora_run_and_its_export_print_no_python_warning(demo_ws, tmp_path):
    """peft reads transformers' deprecated is_gradient_checkpointing on every adapter it wraps: that
    FutureWarning (and any other library warning) must not reach a user's terminal."""
    r = run_cli("train", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--method", "lora",
                "--max-steps", "2", "--batch-size", "4", "--name", "quiet", ws=demo_ws)
    assert r.returncode == 0, r.stderr[-3000:]
    e = run_cli("export", "quiet", "--merge", "--output", tmp_path / "m", "--verify-rows", "2", ws=demo_ws)
    assert e.returncode == 0, e.stderr[-3000:]
    for p in (r, e):
        assert not re.search(r"[A-Z]\w*Warning\b", p.stderr), p.stderr[-3000:]

