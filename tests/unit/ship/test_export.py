"""The export library: a full run's export, and a model card that names a local base in prose, never
as a hub id (`tunestudio export`: test_export_cli.py, test_export_e2e.py)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from eval_helpers import make_full_run

from tunestudio.core.workspace import Workspace
from tunestudio.ship.export import export_run


def test_full_run_export(demo_ws, tmp_path):
    make_full_run(demo_ws, "full-run")
    out = export_run(Workspace(demo_ws), "full-run", tmp_path / "full", merge=True)  # nothing to merge: fine
    assert out["kind"] == "full" and "model.safetensors" in out["files"]
    cfg = json.loads((tmp_path / "full" / "config.json").read_text())
    assert cfg["use_cache"] is True


def _front_matter(card: str) -> str:
    assert card.startswith("---\n")
    return card.split("---\n", 2)[1]


def test_card_names_a_local_base_in_prose_never_as_a_hub_id(demo_ws, tmp_path):
    """A models/ name or a path as `base_model:` reads as a Hub repository (the Hub links it,
    llama.cpp's converter writes https://huggingface.co/<path> into the GGUF): a local base is named
    in prose, with what its SOURCE.md says; a hub id stays the card's base_model."""
    ws = Workspace(demo_ws)
    run = make_full_run(demo_ws, "full-run")  # trained from models/tiny-demo
    (demo_ws / "models" / "tiny-demo" / "SOURCE.md").write_text(
        "# Imported from a GGUF file\n\n- sha256: `abc123`\n", encoding="utf-8")
    for i, model in enumerate(["tiny-demo", str(demo_ws / "models" / "tiny-demo")]):  # as typed, as recorded
        (run / "config.yaml").write_text(yaml.safe_dump({"model": model, "method": "full",
                                                         "dataset": "demo-reviews.jsonl"}))
        card = (Path(export_run(ws, "full-run", tmp_path / f"local{i}")["output"]) / "README.md").read_text()
        assert "base_model" not in _front_matter(card), card[:300]
        assert "Fine-tuned from the local model `tiny-demo`" in card
        assert "Its SOURCE.md says:" in card and "> - sha256: `abc123`" in card
        assert "local model `tiny-demo`" in card.split("## Lineage", 1)[1]
        assert str(demo_ws) not in card  # no path of the machine it was made on

    (run / "config.yaml").write_text(yaml.safe_dump({"model": "Qwen/Qwen2.5-0.5B", "method": "full",
                                                     "dataset": "demo-reviews.jsonl"}))
    export_run(ws, "full-run", tmp_path / "hub")
    card = (tmp_path / "hub" / "README.md").read_text()
    assert 'base_model: "Qwen/Qwen2.5-0.5B"' in _front_matter(card)
    assert "Fine-tuned from `Qwen/Qwen2.5-0.5B`" in card and "## Base model" not in card


