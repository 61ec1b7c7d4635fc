"""The training engine as a user meets it: a demo task learns, early stopping keeps the best model,
a killed run resumes to the same result, bad input fails cleanly, stages chain runs."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import REPO, run_cli
from safetensors.torch import load_file
from workspaces import events, get_run, tiny_config

from tunestudio.config.run_config import RunConfig, dump_config, load_config
from tunestudio.core import registry
from tunestudio.core.workspace import Workspace
from tunestudio.train.run import train

pytestmark = pytest.mark.usefixtures("one_thread")
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # see one_thread in conftest.py


def test_full_finetuning_learns_the_demo_task(demo_ws):
    out = run_cli("train", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--method", "full",
                  "--lr", "1e-3", "--max-steps", "40", "--batch-size", "8", "--max-length", "96",
                  "--val-split", "0.03", "--test-split", "0.05", "--eval-steps", "20", "--logging-steps", "10",
                  "--json", ws=demo_ws, env=ONE_THREAD)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)  # exactly one JSON object on stdout
    assert set(result) >= {"run_id", "status", "output_dir", "metrics"} and result["status"] == "completed"
    m = result["metrics"]
    assert m["steps"] == 40 and m["best_step"] == 40
    # held-out loss well below the untrained model's (random init: ~7.6 = ln 2048)
    assert m["eval_loss"] < 0.5 * m["initial_eval_loss"], m
    run_dir = demo_ws / "training" / "runs" / result["run_id"]
    assert {p.name for p in run_dir.iterdir()} >= {"config.yaml", "split.json", "events.jsonl", "train.log",
                                                   "checkpoints", "final", "metrics.json"}
    types = [e["type"] for e in events(run_dir)]
    assert types[0] == "started" and types[-1] == "completed" and "eval" in types and "checkpoint" in types
    train_events = [e for e in events(run_dir) if e["type"] == "train"]
    assert all(e["tokens_per_second"] > 0 and e["lr"] is not None and e["token_accuracy"] is not None
               for e in train_events)
    assert "step 40/40" in (run_dir / "train.log").read_text()
    run = get_run(Workspace(demo_ws), result["run_id"])
    assert run["status"] == "completed" and run["metrics"]["eval_loss"] == m["eval_loss"]
    assert run["dataset_hash"] and run["base_revision"].startswith("weights-sha256:")
    assert run["config"]["lr"] == 1e-3 and run["output_dir"] == result["output_dir"]


def overfit_dataset(ws: Workspace) -> None:
    """8 training rows whose answers are random words (only memorisable) and 8 validation rows with
    other random answers: the validation loss falls a little, then rises as the model memorises."""
    rng = random.Random(0)
    words = "apple river stone cloud mirror candle forest pepper violin garden rocket silver".split()
    rows = [{"messages": [{"role": "user", "content": f"code {i}"},
                          {"role": "assistant", "content": " ".join(rng.choices(words, k=6))}]} for i in range(16)]
    (ws.datasets_dir / "memo.train.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:8]) + "\n")
    (ws.datasets_dir / "memo.val.jsonl").write_text("\n".join(json.dumps(r) for r in rows[8:]) + "\n")


def test_early_stopping_keeps_the_best_checkpoint(tiny_ws):
    overfit_dataset(tiny_ws)
    cfg = tiny_config(dataset="memo", method="full", lr=1e-2, max_steps=0, epochs=60, eval_steps=1,
                      early_stopping_patience=3, test_split=0.0, scheduler="constant", keep_checkpoints=1)
    result = train(cfg, tiny_ws)
    m = result["metrics"]
    assert result["status"] == "completed" and m["stopped_early"]
    assert m["steps"] < 60 and m["best_step"] == m["steps"] - 3  # stopped before its last epoch
    assert m["eval_loss"] < m["last_eval_loss"]
    run_dir = tiny_ws.runs_dir / result["run_id"]
    best = run_dir / "checkpoints" / f"checkpoint-{m['best_step']}"
    assert best.is_dir()  # rotation keeps the best checkpoint
    final, kept = load_file(run_dir / "final" / "model.safetensors"), load_file(best / "model.safetensors")
    assert final.keys() == kept.keys() and all(torch.equal(final[k], kept[k]) for k in final)
    assert json.loads((run_dir / "metrics.json").read_text())["best_step"] == m["best_step"]
    kinds = [e["type"] for e in events(run_dir)]
    assert "early_stop" in kinds


def wait_for(predicate, timeout=300, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return predicate()
        time.sleep(0.02)
    return False


RESUME_ARGS = ["--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--method", "lora", "--lr", "2e-3",
               "--max-steps", "30", "--batch-size", "8", "--max-length", "64", "--val-split", "0.02",
               "--test-split", "0", "--eval-steps", "10", "--save-steps", "5", "--logging-steps", "5"]


def test_resume_after_sigkill_matches_an_uninterrupted_run(demo_ws):
    ws = Workspace(demo_ws)
    twin = run_cli("train", *RESUME_ARGS, "--name", "twin", "--json", ws=demo_ws, env=ONE_THREAD)
    assert twin.returncode == 0, twin.stderr[-3000:]
    twin = json.loads(twin.stdout)

    cmd = [sys.executable, "-m", "tunestudio", "train", *RESUME_ARGS, "--run-id", "killed",
           "--workspace", str(demo_ws)]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **ONE_THREAD},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = ws.runs_dir / "killed"
    checkpoints = lambda: run_dir.joinpath("events.jsonl").is_file() and \
        sum(e["type"] == "checkpoint" for e in events(run_dir)) >= 2  # noqa: E731
    try:
        assert wait_for(checkpoints, proc=proc), "the run never wrote two checkpoints"
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (run_dir / "final").exists()
    assert get_run(ws, "killed")["status"] == "failed"  # the dead process does not stay "running"

    out = run_cli("train", "--resume", "killed", "--json", ws=demo_ws, env=ONE_THREAD)
    assert out.returncode == 0, out.stderr[-3000:]
    resumed = json.loads(out.stdout)
    assert resumed["run_id"] == "killed" and resumed["status"] == "completed"
    assert resumed["metrics"]["steps"] == twin["metrics"]["steps"] == 30
    assert resumed["metrics"]["eval_loss"] == pytest.approx(twin["metrics"]["eval_loss"], rel=0.02)
    started = [e for e in events(run_dir) if e["type"] == "started"]
    assert len(started) == 2 and started[1]["resumed_from"].split("-")[-1].isdigit()
    assert get_run(ws, "killed")["status"] == "completed"
    assert sorted(p.name for p in ws.runs_dir.iterdir()) == sorted(["killed", twin["run_id"]])


def test_sigterm_saves_a_checkpoint_and_marks_the_run_stopped(tiny_ws):
    cmd = [sys.executable, "-m", "tunestudio", "train", "--model", "tiny", "--dataset", "tiny.jsonl",
           "--max-steps", "100000", "--save-steps", "20", "--val-split", "0", "--max-length", "64",
           "--run-id", "stopme", "--json", "--workspace", str(tiny_ws.root)]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **ONE_THREAD},
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    run_dir = tiny_ws.runs_dir / "stopme"
    try:
        assert wait_for(lambda: run_dir.joinpath("events.jsonl").is_file() and any(
            e["type"] == "checkpoint" for e in events(run_dir)), proc=proc)
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    result = json.loads(stdout)
    assert result["status"] == "stopped" and 20 <= result["metrics"]["steps"] < 100000
    last = events(run_dir)[-1]
    assert last["type"] == "stopped" and last["reason"] == "SIGTERM"
    assert (run_dir / "checkpoints" / f"checkpoint-{result['metrics']['steps']}" / "tunestudio-complete.json").is_file()
    assert get_run(tiny_ws, "stopme")["status"] == "stopped"


@pytest.mark.parametrize("args, message", [
    (["--lr", "-1"], "--lr: the learning rate must be above 0 (or 0 for the preset's)"),
    (["--grad-accum", "0"], "--grad-accum: must be at least 1"),
    (["--val-split", "0.6", "--test-split", "0.5"], "leave nothing to train on"),
    (["--method", "magic"], "unknown method 'magic'"),
    (["--model", "no-such-model"], "model 'no-such-model' is not a folder under"),
    (["--dataset", "broken.jsonl"], "broken.jsonl:2"),
    (["--epochs", "many"], "--epochs: 'many' is not a valid float"),
])
def test_bad_input_exits_1_with_one_clear_message(tiny_ws, args, message):
    (tiny_ws.datasets_dir / "broken.jsonl").write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n{not json\n')
    base = {"--model": "tiny", "--dataset": "tiny.jsonl"}
    for flag in args[::2]:
        base.pop(flag, None)
    out = run_cli("train", *[x for kv in base.items() for x in kv], *args, ws=tiny_ws.root, env=ONE_THREAD)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and message in out.stderr, out.stderr
    assert out.stderr.strip().startswith("error:")
    conn = registry.connect(tiny_ws.db_path)
    assert conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0] == 0
    assert not tiny_ws.runs_dir.exists() or not any(tiny_ws.runs_dir.iterdir())


def test_yaml_and_flags_give_the_same_config(tmp_path):
    from tunestudio.cli.main import build_parser
    from tunestudio.config.run_config import overrides_from_args

    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("model: tiny-demo\ndataset: demo-reviews.jsonl\nlr: 1e-3\nepochs: 2\n"
                         "target_modules: [q_proj, v_proj]\ngradient_checkpointing: true\n")
    from_yaml = load_config(yaml_file)
    args = build_parser().parse_args(["train", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl",
                                      "--lr", "0.001", "--epochs", "2.0", "--target-modules", "q_proj,v_proj",
                                      "--gradient-checkpointing"])
    from_flags = load_config(None, overrides_from_args(args))
    assert dump_config(from_yaml) == dump_config(from_flags)
    assert from_flags.lr == 1e-3 and from_flags.batch_size == RunConfig().batch_size
    # flags win over the file
    args = build_parser().parse_args(["train", "--config", str(yaml_file), "--lr", "5e-4"])
    assert load_config(args.config, overrides_from_args(args)).lr == 5e-4
    # the saved text is a complete, ordered description that loads back to the same config
    reloaded = tmp_path / "back.yaml"
    reloaded.write_text(dump_config(from_yaml))
    assert load_config(reloaded) == from_yaml


def test_stages_chain_runs_and_from_run_continues(tiny_ws):
    lines = (tiny_ws.datasets_dir / "tiny.jsonl").read_text().splitlines()
    (tiny_ws.datasets_dir / "general.jsonl").write_text("\n".join(lines[:24]) + "\n")
    cfg = tiny_config(method="lora", lr=1e-2, max_steps=3, name="staged",
                      stages=[{"dataset": "general.jsonl"}, {"dataset": "tiny.jsonl", "max_steps": 4}])
    result = train(cfg, tiny_ws)
    first, second = (get_run(tiny_ws, s["run_id"]) for s in result["stages"])
    assert first["status"] == second["status"] == "completed"
    assert first["parent_id"] is None and second["parent_id"] == first["id"]
    assert first["name"] == "staged-stage1" and second["metrics"]["steps"] == 4
    assert (Path(second["output_dir"]) / "adapter_config.json").is_file()
    # a full fine-tune from the LoRA run: the adapter is merged into the base first
    full = train(tiny_config(model="", from_run=second["id"], method="full", lr=1e-3, max_steps=2), tiny_ws)
    assert get_run(tiny_ws, full["run_id"])["parent_id"] == second["id"]
    assert (Path(full["output_dir"]) / "model.safetensors").is_file()
