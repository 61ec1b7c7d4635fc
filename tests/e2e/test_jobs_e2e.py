"""A real training job: jobs.submit writes the config with the engine and runs `tunestudio train
--config`, which trains, finishes and leaves a completed run with its curves (the queue itself:
test_jobs.py)."""

from __future__ import annotations

import pytest

from tunestudio.core import run_progress
from tunestudio.core.workspace import Workspace
from tunestudio.jobs import queue as jobs
from tunestudio.train.config_check import validate


@pytest.mark.slow
def test_a_real_training_job_is_the_cli_command(demo_ws):
    """jobs.submit writes the config with the engine and runs `tunestudio train --config`."""
    from tunestudio.config.run_config import RunConfig

    ws = Workspace(demo_ws)
    cfg = validate(RunConfig(model="tiny-demo", dataset="demo-reviews.jsonl", epochs=1, max_steps=2, eval_steps=1,
                    logging_steps=1, batch_size=4))
    job = jobs.submit(ws, cfg)
    assert job.command[1:5] == ["-m", "tunestudio", "train", "--config"]
    assert job.command_line().startswith("tunestudio train --config ")
    done = jobs.wait(ws, job.id, timeout=400)
    assert done.status == "finished", run_progress.tail(done.log_path)
    assert done.run_id and (ws.runs_dir / done.run_id / "config.yaml").is_file()
    summary = run_progress.summarize(run_progress.follow(done.run_id, ws).events)
    assert summary["status"] == "completed" and summary["train"] and summary["val"]

