"""Runs made by the real `tunestudio train` fit `runs list | show | compare` (the two fit together)."""

from __future__ import annotations

import json
import os
import time

from helpers import run_cli

from tunestudio.core.workspace import Workspace
from tunestudio.runs import compare_runs, run_details, runs_table

# Few steps and a small validation split: this checks the wiring, not learning (kept fast).
TRAIN = ("--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--method", "lora", "--max-steps", "1",
         "--batch-size", "4", "--max-length", "64", "--val-split", "0.01", "--test-split", "0",
         "--eval-steps", "1", "--json")


def test_runs_made_by_train(demo_ws):
    first = run_cli("train", *TRAIN, "--name", "base-run", ws=demo_ws, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    first = json.loads(first.stdout)
    second = run_cli("train", *TRAIN, "--lr", "5e-4", "--from-run", first["run_id"], ws=demo_ws, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    second = json.loads(second.stdout)

    ws = Workspace(demo_ws)
    rows = {r["id"]: r for r in runs_table(ws)["runs"]}
    assert rows[first["run_id"]]["status"] == "completed" and rows[first["run_id"]]["name"] == "base-run"
    assert rows[second["run_id"]]["parent_id"] == first["run_id"]
    d = run_details(ws, first["run_id"])
    assert d["final_dir"] and os.path.isdir(d["final_dir"])
    assert d["split"]["rows"]["train"] > 0 and d["config"]["method"] == "lora"
    assert d["started"] is not None and d["lineage"]["children"][0]["id"] == second["run_id"]
    c = compare_runs(ws, first["run_id"], second["run_id"])
    keys = {x["key"] for x in c["config_differences"]}
    assert {"lr", "from_run"} <= keys and c["same_data"]
    assert any(m["key"] == "train_loss" and m["a"] is not None and m["b"] is not None for m in c["metrics"])
    r = run_cli("runs", "show", "base-run", ws=demo_ws)
    assert r.returncode == 0 and "status: completed" in r.stdout and time.strftime("%Y") in r.stdout

    # The exported model card tells where the model came from: data rows per split and the parent run.
    out = demo_ws / "exported"
    e = run_cli("export", second["run_id"], "--output", out, ws=demo_ws, timeout=300)
    assert e.returncode == 0, e.stderr[-2000:]
    card = (out / "README.md").read_text()
    train_rows = d["split"]["rows"]["train"]
    assert f'"train": {train_rows}' in card and first["run_id"] in card

