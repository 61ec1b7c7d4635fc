"""A sweep started from the web UI's functions runs in the background (the CLI's code path, its trials
through the job queue), reports its progress, refuses a second start while it runs, and feeds the
curves overlay and the Training form."""

from __future__ import annotations

import dataclasses
import time

import pytest
from sweep_helpers import UI_LR_SWEEP, needs_optuna

from tunestudio.core import registry
from tunestudio.core.errors import UserError
from tunestudio.sweeps import background as sweep_runner

pytestmark = needs_optuna


@pytest.mark.slow
def test_a_sweep_started_from_the_ui_runs_in_the_background_and_feeds_the_overlay_and_the_form(tiny_ws):
    from tunestudio.config import run_config
    from tunestudio.sweeps import search as sweep
    from tunestudio.webui.common import config_to_form
    from tunestudio.webui.tabs.runs import overlay as runs_overlay
    from tunestudio.webui.tabs.runs import sweep_start

    rec = sweep_runner.start(tiny_ws, UI_LR_SWEEP, "ui-lr.yaml")
    try:
        assert rec["alive"] and rec["sweep"] == "ui-lr"
        assert rec["command"][1:4] == ["-m", "tunestudio", "sweep"] and "--config" in rec["command"]
        assert sweep_start.running_sweep(tiny_ws) == "ui-lr"
        with pytest.raises(UserError, match="already running"):
            sweep_runner.start(tiny_ws, UI_LR_SWEEP, "ui-lr.yaml")
        deadline, seen_running = time.time() + 900, False
        while time.time() < deadline:
            p = sweep_runner.progress(tiny_ws, "ui-lr")
            seen_running |= p["running"] and p["ended"] < 2
            if not p["running"]:
                break
            time.sleep(1)
    finally:
        sweep_runner.stop(tiny_ws, "ui-lr")
    assert seen_running
    p = sweep_runner.progress(tiny_ws, "ui-lr")
    log = (tiny_ws.sweep_dir("ui-lr") / "runner.log").read_text()
    assert not p["running"] and p["ended"] == 2 and p["counts"] == {"complete": 2}, (p, log[-2000:])
    assert p["best"] is not None and "trial 1" in p["log"], p
    text = sweep_start.progress_text(tiny_ws, "en", "ui-lr")
    assert "2 of 2 trials ended" in text and "best so far" in text, text

    s = sweep.summary(tiny_ws, "ui-lr")
    runs = [t["run_id"] for t in sorted(s["trials"], key=lambda t: t["number"])]
    conn = registry.connect(tiny_ws.db_path)
    try:
        rows = [registry.get_run(conn, r) for r in runs]
    finally:
        conn.close()
    assert [r["name"] for r in rows] == ["ui-lr-t0", "ui-lr-t1"] and {r["status"] for r in rows} == {"completed"}

    # the overlay: one training and one validation series per trial, named after the run
    frame, note = runs_overlay.overlay(tiny_ws, "en", runs)
    assert set(frame["series"]) == {f"ui-lr-t{i} {kind}" for i in (0, 1) for kind in ("train", "val")}
    assert "2 run(s) overlaid" in note
    assert runs_overlay.overlay(tiny_ws, "en", [])[0] is None

    # "start a run from this config": the best trial's saved config as the Training form's values
    names = [f.name for f in dataclasses.fields(run_config.RunConfig) if f.name not in ("model", "dataset")]
    values = config_to_form.run_form_values(tiny_ws, s["best"]["run_id"], names)
    assert values["lr"] == pytest.approx(s["best"]["params"]["lr"]) and values["max_steps"] == 6
    assert values["model"] == "tiny" and values["dataset"] == "tiny.jsonl"
    assert values["name"] == "" and values["sweep"] == ""  # a new run, no trial of that sweep
    with pytest.raises(UserError, match="has no saved config"):
        config_to_form.run_form_values(tiny_ws, "no-such-run", names)

