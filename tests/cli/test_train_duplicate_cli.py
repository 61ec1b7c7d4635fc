"""`tunestudio train` with the settings a queued or running job already trains is refused with one
line naming that job and the flag that starts a copy anyway (the same rule as the web UI's Start)."""

from __future__ import annotations

import sys

from helpers import one_error, run_cli
from workspaces import queue_job

from tunestudio.config.run_config import RunConfig, save_config
from tunestudio.core.workspace import Workspace
from tunestudio.jobs import queue as jobs


def test_train_refuses_a_copy_of_a_queued_job_unless_allowed(workspace):
    ws = Workspace(workspace)
    busy = queue_job(ws, "busy", [sys.executable, "-c", "import time; time.sleep(60)"])   # the device is taken
    try:
        cfg = RunConfig(model="no-such-model", dataset="none.jsonl", max_steps=2, name="mine")
        queued = jobs.submit(ws, cfg)
        save_config(cfg, workspace / "same.yaml")
        line = one_error(run_cli("train", "--config", workspace / "same.yaml", "--name", "again", ws=workspace))
        assert f"job {queued.id} is already queued with these same settings" in line, line
        assert "--allow-duplicate" in line
        allowed = run_cli("train", "--config", workspace / "same.yaml", "--allow-duplicate", ws=workspace)
        assert "already queued" not in allowed.stderr and "no-such-model" in allowed.stderr   # it went on
        assert [j.id for j in jobs.queued_jobs(ws)] == [queued.id]   # the CLI started no queued job
    finally:
        for j in jobs.queued_jobs(ws):
            jobs.cancel(ws, j.id)
        jobs.stop(ws, busy.id, grace=5)
