"""A model folder whose weights are pickle files only is refused by the one place every command
resolves a model (Workspace.model_path_or_id), before transformers sees it."""

from __future__ import annotations

import pytest

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace


def folder(ws: Workspace, name: str, *files: str):
    d = ws.models_dir / name
    d.mkdir(parents=True)
    (d / "config.json").write_text("{}")
    for f in files:
        (d / f).write_bytes(b"\x80\x04")
    return d


@pytest.mark.parametrize("weights", ["pytorch_model.bin", "model.pt", "weights.pth"])
def test_pickle_only_weights_are_refused_with_the_conversion(workspace, weights):
    ws = Workspace(workspace)
    d = folder(ws, "pickled", weights, "training_args.bin")
    with pytest.raises(UserError) as e:
        ws.model_path_or_id("pickled")
    assert e.value.code == "model_pickle_only" and e.value.fields["file"] == weights
    message = str(e.value)
    assert "\n" not in message and "weights_only" not in message
    assert "safetensors only" in message and f"from_pretrained({str(d)!r})" in message
    assert "safe_serialization=True" in message


def test_safetensors_beside_pickle_files_or_a_trainers_files_load(workspace):
    ws = Workspace(workspace)
    folder(ws, "both", "pytorch_model.bin", "model.safetensors")
    folder(ws, "checkpoint", "model.safetensors", "training_args.bin", "optimizer.pt", "rng_state.pth")
    assert ws.model_path_or_id("both").endswith("both")
    assert ws.model_path_or_id("checkpoint").endswith("checkpoint")
