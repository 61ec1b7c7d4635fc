"""Every workspace path is a `Workspace` property; this pins where each one is on disk, so moving
code never moves a user's folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunestudio.core.workspace import Workspace

LAYOUT = {
    "datasets_dir": "training/datasets",
    "runs_dir": "training/runs",
    "training_dir": "training",
    "jobs_dir": "training/jobs",
    "sweeps_dir": "training/sweeps",
    "sweep_uploads_dir": "training/sweeps/uploads",
    "evals_dir": "training/evals",
    "benchmarks_dir": "training/benchmarks",
    "cache_dir": "training/.cache",
    "loaded_cache_dir": "training/.cache/loaded",
    "encoded_cache_dir": "training/.cache/encoded",
    "replay_cache_dir": "training/.cache/replay",
    "mlflow_db_path": "training/mlflow.db",
    "trackio_dir": "training/trackio",
    "models_dir": "models",
    "rewards_dir": "rewards",
    "exports_dir": "exports",
    "export_jobs_dir": "exports/.jobs",
    "serve_dir": ".serve",
    "servers_dir": ".serve/servers",
    "db_path": "tunestudio.db",
    "db_lock_path": ".tunestudio.db.lock",
}


def test_every_workspace_path_is_where_it_always_was(tmp_path):
    ws = Workspace(tmp_path)
    for name, rel in LAYOUT.items():
        assert getattr(ws, name) == tmp_path / Path(rel), name
    assert ws.sweep_dir("lr") == tmp_path / "training" / "sweeps" / "lr"
    assert ws.serve_merged_dir("r1") == tmp_path / ".serve" / "r1"
    properties = {n for n, v in vars(Workspace).items() if isinstance(v, property)}
    assert properties == set(LAYOUT), "a new workspace path: pin it here"


def test_a_model_name_that_is_no_folder_names_the_folders_not_the_network(tmp_path):
    """A typo in a model name: the error lists the workspace's models and the closest one, at once,
    instead of a message about huggingface.co (and half a minute of retries without a network)."""
    from tunestudio.core.errors import UserError

    ws = Workspace(tmp_path)
    for name in ("smollm2-135m-instruct", "tiny-demo"):
        (ws.models_dir / name).mkdir(parents=True)
        (ws.models_dir / name / "config.json").write_text("{}")
    with pytest.raises(UserError) as typo:
        ws.model_path_or_id("smollm2-135m-instrct")
    assert typo.value.code == "model_not_local_close" and typo.value.fields["closest"] == "smollm2-135m-instruct"
    assert "huggingface.co" not in str(typo.value) and "smollm2-135m-instruct, tiny-demo" in str(typo.value)
    with pytest.raises(UserError) as other:
        ws.model_path_or_id("llama")
    assert other.value.code == "model_not_local" and "owner/name" in str(other.value)
    assert ws.model_path_or_id("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
