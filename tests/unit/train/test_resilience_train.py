"""A model once trained is never lost: a damaged checkpoint falls back to the one before, and running
out of space mid-save leaves no half-written checkpoint (a full disk through the CLI:
test_resilience_train_cli.py; a killed resume: test_resilience_train_e2e.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from workspaces import events, get_run, tiny_config

from tunestudio.core import registry
from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.train import checkpoint as ckpt
from tunestudio.train.run import resume_run, train

pytestmark = pytest.mark.usefixtures("one_thread")


def _damage(path: Path) -> None:
    """Same-size garbage: only a check of the content (not of the size) can notice it."""
    size = path.stat().st_size
    path.write_bytes(bytes((i * 7 + 13) % 256 for i in range(size)))


@pytest.mark.parametrize("damaged", ["model.safetensors", "trainer_state.json", "optimizer.pt"])
def test_a_damaged_last_checkpoint_falls_back_to_the_one_before(tiny_ws, one_thread, damaged):
    cfg = tiny_config(method="full", lr=3e-3, max_steps=12, save_steps=4, eval_steps=4, keep_checkpoints=3,
                      val_split=0.15)
    first = train(cfg, tiny_ws)
    run_id, run_dir = first["run_id"], tiny_ws.runs_dir / first["run_id"]
    ckpts = run_dir / "checkpoints"
    assert [p.name for p in ckpt.complete_checkpoints(ckpts)][-2:] == ["checkpoint-8", "checkpoint-12"]
    _damage(ckpts / "checkpoint-12" / damaged)
    conn = registry.connect(tiny_ws.db_path)  # as if the process had died after that save
    registry.update_run(conn, run_id, status="failed", error="killed")
    conn.close()

    result = resume_run(tiny_ws, run_id)
    assert result["status"] == "completed" and result["metrics"]["steps"] == 12
    evs = events(run_dir)
    warning = [e for e in evs if e["type"] == "warning" and e["code"] == "checkpoint_damaged"]
    assert len(warning) == 1 and "checkpoint-12" in warning[0]["message"] and damaged in warning[0]["message"]
    # its parts as fields too: the web UI words it in its language (webui/i18n.engine_warning)
    assert warning[0]["name"] == "checkpoint-12" and damaged in warning[0]["why"] and warning[0]["moved"].startswith("checkpoint-12.damaged-")
    assert [e for e in evs if e["type"] == "started"][-1]["resumed_from"].endswith("checkpoint-8")
    assert "checkpoint-8" in (run_dir / "train.log").read_text()
    moved = [p for p in ckpts.iterdir() if p.name.startswith("checkpoint-12.damaged-")]
    assert len(moved) == 1 and (moved[0] / damaged).is_file()  # kept aside, never deleted
    assert ckpt.verify(ckpts / "checkpoint-12") is None  # saved again, intact
    assert ckpt.verify(moved[0]) and ckpt.verify(ckpts / "checkpoint-8") is None


def test_running_out_of_space_mid_save_cleans_up_and_says_so(tiny_template, tmpfs, one_thread, monkeypatch):
    """The estimate can be wrong (another writer fills the disk): the save itself then fails."""
    import shutil

    root = tmpfs(12) / "ws"
    shutil.copytree(tiny_template, root)
    ws = Workspace(root)
    monkeypatch.setattr(ckpt, "ensure_space", lambda *a, **k: None)  # no check before writing
    cfg = tiny_config(method="full", max_steps=500, save_steps=1, keep_checkpoints=500, val_split=0.0)
    with pytest.raises(UserError, match="no space left on device"):
        train(cfg, ws, run_id="midsave")
    staging = ws.runs_dir / "midsave" / "checkpoints" / ckpt.STAGING
    assert not staging.exists() or not any(staging.iterdir())
    run = get_run(ws, "midsave")
    assert run["status"] == "failed" and run["error"].startswith("no space left on device"), run["error"]
    assert all(ckpt.verify(p) is None for p in ckpt.complete_checkpoints(ws.runs_dir / "midsave" / "checkpoints"))
