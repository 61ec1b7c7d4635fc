"""The training engine in-process: early stopping keeps the best model, YAML and flags give the same
config, stages chain runs (bad input: test_train_engine_cli.py; runs end to end: test_train_engine_e2e.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from workspaces import events, get_run, tiny_config

from tunestudio.config.run_config import RunConfig, dump_config, load_config
from tunestudio.core.workspace import Workspace
from tunestudio.train.run import train

pytestmark = pytest.mark.usefixtures("one_thread")


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
