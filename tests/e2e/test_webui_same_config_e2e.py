"""A run started from the web UI has the same config.yaml as one from the CLI: both train one step
side by side, and a page re-attaching to the job gets the form back."""

from __future__ import annotations

from tunestudio.core.workspace import Workspace


def test_ui_and_cli_runs_have_the_same_config(demo_ws, monkeypatch):
    """The UI builds its RunConfig with the engine's from_dict/validate from the form and runs
    `tunestudio train --config`; the CLI builds it from flags. Same settings, same config.yaml.
    Both train one step side by side (one thread each): config.yaml is written before training,
    so the comparison needs no real training. A page re-attaching to the job gets the form back."""
    import json
    import subprocess
    import sys

    from tunestudio.core import run_progress
    from tunestudio.jobs import queue as jobs
    from tunestudio.webui.tabs.training.tab import config_from_form, form_defaults, job_form_values

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the job inherits it
    ws = Workspace(demo_ws)
    values = {**form_defaults(), "method": "full", "lr": 1e-3, "epochs": 1, "max_steps": 1,
              "batch_size": 4, "name": "same"}
    cfg = config_from_form("tiny-demo", "demo-reviews.jsonl", values)
    job = jobs.submit(ws, cfg)
    cli = subprocess.Popen(
        [sys.executable, "-m", "tunestudio", "train", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl",
         "--method", "full", "--lr", "1e-3", "--epochs", "1", "--max-steps", "1", "--batch-size", "4",
         "--name", "same", "--json", "--allow-duplicate", "--workspace", str(demo_ws)],   # the same run, on purpose
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=demo_ws)
    out, err = cli.communicate(timeout=300)
    job = jobs.wait(ws, job.id, timeout=300)
    assert job.status == "finished", run_progress.tail(job.log_path)
    assert cli.returncode == 0, err
    cli_run = json.loads(out)["run_id"]
    assert job.run_id and job.run_id != cli_run
    ui_yaml = (ws.runs_dir / job.run_id / "config.yaml").read_text()
    cli_yaml = (ws.runs_dir / cli_run / "config.yaml").read_text()
    assert ui_yaml == cli_yaml

    names = list(form_defaults())
    restored_job, restored = job_form_values(ws, names)
    assert restored_job.id == job.id
    assert restored["model"] == "tiny-demo" and restored["dataset"] == "demo-reviews.jsonl"
    assert config_from_form(restored.pop("model"), restored.pop("dataset"), restored) == cfg

