"""The engine's CPU speed defaults keep training reproducible: fused AdamW (one kernel per step,
the Trainer's own default since torch 2.8) and two runs with the same seed, even in one
process, give bit-identical adapters; another seed another one."""

from __future__ import annotations

import dataclasses

from safetensors.torch import load_file

from tunestudio.config.run_config import RunConfig
from tunestudio.core.workspace import Workspace
from tunestudio.train import objectives, sft
from tunestudio.train import run as engine


def test_fused_adamw_and_same_seed_same_adapter(demo_ws, monkeypatch):
    made = []
    plain = sft.build_trainer

    def keep(*a, **k):
        made.append(plain(*a, **k))
        return made[-1]

    # the SFT row of the objectives table builds the trainer (it holds sft.build_trainer itself)
    monkeypatch.setitem(objectives.OBJECTIVES, "sft", dataclasses.replace(objectives.OBJECTIVES["sft"], build=keep))
    ws = Workspace(demo_ws)
    adapters = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        cfg = RunConfig(model="tiny-demo", dataset="demo-reviews.jsonl", method="lora", max_steps=3, batch_size=4,
                        max_length=64, val_split=0.0, test_split=0.0, seed=seed, name=name, lora_dropout=0.1)
        result = engine.train(cfg, ws)
        assert result["status"] == "completed"
        adapters.append(load_file(f"{result['output_dir']}/adapter_model.safetensors"))
    assert len(made) == 3 and all(t.optimizer.defaults.get("fused") for t in made), [t.optimizer.defaults for t in made]
    assert adapters[0].keys() == adapters[1].keys()
    assert all((adapters[0][k] == adapters[1][k]).all() for k in adapters[0])
    assert any(adapters[0][k].abs().sum() > 0 for k in adapters[0] if "lora_B" in k)   # it did train
    # the seed decides the adapter's start (it used to come from the process's RNG state)
    assert not all((adapters[0][k] == adapters[2][k]).all() for k in adapters[0])
