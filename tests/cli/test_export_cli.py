"""`tunestudio export --format adapter` and its refusals (exports that answer like the run:
test_export_e2e.py; the export library in-process: test_export.py)."""

from __future__ import annotations

import pytest
from eval_helpers import REVIEW_PROMPTS, make_adapter_run, plain_greedy
from helpers import run_cli

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.models.generate import Sampling, generate
from tunestudio.models.loading import load_model
from tunestudio.ship.export import export_run


def test_adapter_export_and_refusals(demo_ws, tmp_path):
    ws = Workspace(demo_ws)
    make_adapter_run(demo_ws, "lora-run", seed=1)
    out = export_run(ws, "lora-run", tmp_path / "adapter")
    assert out["kind"] == "adapter"
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "README.md"} <= set(out["files"])
    model, tok, _ = load_model(ws, run="lora-run")
    plain, _ = plain_greedy(tmp_path / "adapter", REVIEW_PROMPTS[:2])  # transformers' peft integration loads it
    assert plain == generate(model, tok, REVIEW_PROMPTS[:2], Sampling(max_new_tokens=12))

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    r = run_cli("export", "lora-run", "--output", busy, ws=demo_ws)
    assert r.returncode == 1 and "not empty" in r.stderr and "Traceback" not in r.stderr
    assert [p.name for p in busy.iterdir()] == ["keep.txt"] and (busy / "keep.txt").read_text() == "mine"
    with pytest.raises(UserError, match="no run 'ghost'"):
        export_run(ws, "ghost", tmp_path / "x")
    assert not (tmp_path / "x").exists()

