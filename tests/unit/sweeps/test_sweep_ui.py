"""The web UI's sweep functions, without a browser: a bad file is one message naming the line, and the
progress while a sweep is still creating its study (a sweep run from the UI: test_sweep_ui_e2e.py)."""

from __future__ import annotations

import pytest
from sweep_helpers import UI_LR_SWEEP, needs_optuna

from tunestudio.core.errors import UserError
from tunestudio.sweeps import background as sweep_runner

pytestmark = needs_optuna


def test_a_bad_sweep_file_from_the_ui_names_its_line(tiny_ws):
    with pytest.raises(UserError) as e:
        sweep_runner.start(tiny_ws, UI_LR_SWEEP.replace("  lr: [3e-3, 1e-3]", "  lrr: [3e-3, 1e-3]"),
                           "../my sweep.yaml")
    path = tiny_ws.sweep_uploads_dir / "my-sweep.yaml"
    assert str(e.value).startswith(f"{path}, line 14: ") and "lrr" in str(e.value), str(e.value)
    with pytest.raises(UserError, match="no sweep file"):   # nothing in the editor
        sweep_runner.start(tiny_ws, "  \n", None)
    with pytest.raises(UserError, match="^x.yaml is empty") as e:   # an uploaded file with nothing in it
        sweep_runner.start(tiny_ws, "  \n", "x.yaml")
    assert (e.value.code, e.value.fields) == ("sweep_file_empty", {"file": "x.yaml"})
    assert not tiny_ws.sweep_dir("ui-lr").exists()


def test_progress_while_the_sweep_is_still_creating_its_study(tmp_path):
    """The UI polls while the sweep process creates optuna.db: a file with no tables yet, then tables
    with no study, read as 'no trials yet', never an error and never a write (which would race the
    sweep creating the same tables)."""
    import sqlite3

    from tunestudio.core.workspace import Workspace
    from tunestudio.sweeps import search as sweep

    pytest.importorskip("optuna")
    ws = Workspace(tmp_path).ensure()
    db = ws.sweep_dir("starting") / "optuna.db"
    db.parent.mkdir(parents=True)
    sqlite3.connect(db).close()   # the file, empty: the sweep has only just opened it
    p = sweep_runner.progress(ws, "starting")
    assert p["counts"] == {} and p["ended"] == 0
    with pytest.raises(UserError, match="try again in a moment"):
        sweep.summary(ws, "starting")
    assert db.stat().st_size == 0   # read only: no table was created by the reader
    import optuna

    optuna.create_study(study_name="other", storage=sweep.storage_url(ws, "starting"))   # tables, not this study
    with pytest.raises(UserError, match="is starting"):
        sweep.summary(ws, "starting")
