"""`tunestudio bench-models`: two differently sized tiny models, ranked and both reported."""

from __future__ import annotations

import json

from eval_helpers import make_model
from helpers import run_cli

from tunestudio.core.workspace import Workspace
from tunestudio.evaluate.bench import list_benchmarks


def test_bench_two_models(demo_ws):
    make_model(demo_ws / "models" / "micro", demo_ws / "models" / "tiny-demo", hidden=32, layers=1)
    r = run_cli("bench-models", "--models", "micro,tiny-demo", "--dataset", "demo-reviews.jsonl",
                "--limit", "8", "--max-new-tokens", "4", "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n"] == 8 and out["dataset"] == "demo-reviews.jsonl"
    board = out["leaderboard"]
    assert sorted(row["model"] for row in board) == ["micro", "tiny-demo"]
    assert [row["rank"] for row in board] == [1, 2]
    by = {row["model"]: row for row in board}
    assert by["micro"]["params"] < 200_000 < 4_000_000 < by["tiny-demo"]["params"]
    assert by["micro"]["weights_memory"] == by["micro"]["params"] * 4  # fp32 on CPU
    assert by["micro"]["train_memory_full"] < by["tiny-demo"]["train_memory_full"]
    for row in board:
        assert row["tokens_per_second"] > 0
        assert set(row["metrics"]) == {"exact_match", "f1", "loss", "perplexity", "stopped"}
    # untrained models answer nothing right, so the reference loss decides
    assert board[0]["metrics"]["loss"] <= board[1]["metrics"]["loss"]
    assert "loss" in out["ranked_by"]
    (saved,) = list_benchmarks(Workspace(demo_ws))
    assert saved["results"]["leaderboard"] == board

    r = run_cli("bench-models", "--models", "micro,missing-model", "--dataset", "demo-reviews.jsonl", ws=demo_ws)
    assert r.returncode == 1 and "missing-model" in r.stderr and "Traceback" not in r.stderr


