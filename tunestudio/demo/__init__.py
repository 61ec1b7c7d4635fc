"""`tunestudio demo`: a tiny model and demo datasets, made offline, so everything runs anywhere."""

from __future__ import annotations

from tunestudio.workspace import Workspace

MODEL_NAME = "tiny-demo"


def make_demo(ws: Workspace) -> dict:
    """Write models/tiny-demo and training/datasets/demo-* where missing (idempotent, offline).

    Returns {"model": path, "model_created": bool, "datasets": {name: {path, format, task, rows, created}}}.
    """
    from tunestudio.demo.datasets import build, tokenizer_texts, write_datasets
    from tunestudio.demo.model import write_model

    ws.ensure()
    folder = ws.models_dir / MODEL_NAME
    specs = build()
    created = write_model(folder, tokenizer_texts(specs))
    datasets = write_datasets(ws.datasets_dir, specs)
    extra = _write_reward_demo(ws, specs)
    datasets["demo-rewards.jsonl"] = extra.pop("demo-rewards.jsonl")
    return {"model": str(folder), "model_created": created, "datasets": datasets, "rewards": extra}


def _write_reward_demo(ws: Workspace, specs: dict) -> dict:
    """The GRPO demo (demo-rewards.jsonl and rewards/demo_dates.py), kept out of the tokenizer's text."""
    import json

    from tunestudio.demo import rewardtask

    return rewardtask.write(ws.root, json.loads(specs["demo-dates.json"]["content"]))

# What the web UI's Training tab starts from when the base model is the demo model. The demo
# model is random-initialised: LoRA barely learns on it (its output layer stays random), while
# full fine-tuning at this learning rate learns demo-reviews in one epoch (docs: PITFALLS.md).
DEMO_PRESET = {"method": "full", "lr": 1e-3, "batch_size": 16, "epochs": 1}
