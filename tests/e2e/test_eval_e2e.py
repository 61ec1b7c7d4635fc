"""End to end: `tunestudio train` on a demo task, then `tunestudio eval --compare-base`.

A full fine-tune of the 4M demo model learns review classification in one epoch (PITFALLS.md:
~25 s on an idle 2-core machine): held-out exact match near 1, while the random base gets ~0.
"""

from __future__ import annotations

import json

import pytest
from helpers import run_cli

from tunestudio.core.workspace import Workspace
from tunestudio.evaluate.run_eval import list_evaluations


@pytest.mark.slow
def test_train_then_eval_compare_base(demo_ws):
    # two epochs: one lands at 0.875-0.885 exact match on a CPU with avx512_bf16 (fp32 or bf16), 2 at 0.995
    r = run_cli("train", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--method", "full",
                "--epochs", "2", "--lr", "1e-3", "--batch-size", "16", "--name", "reviews", "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr[-3000:]
    run = json.loads(r.stdout)
    assert run["status"] == "completed"

    # --max-new-tokens 4: a label and its end marker fit; the untrained base would ramble otherwise
    r = run_cli("eval", "--run", "reviews", "--compare-base", "--guard-dataset", "demo-guard.txt",
                "--max-new-tokens", "4", "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    split = json.loads((demo_ws / "training" / "runs" / run["run_id"] / "split.json").read_text())
    assert out["n"] == len(split["rows"]["test"]) > 0  # exactly the run's held-out rows

    assert out["metrics"]["exact_match"] >= 0.9
    assert out["base_metrics"]["exact_match"] <= 0.05
    assert out["deltas"]["exact_match"] >= 0.85
    assert out["metrics"]["loss"] < out["base_metrics"]["loss"] - 3  # the answers became likely
    assert out["guard"]["base"]["perplexity"] > 0 and out["guard"]["evaluated"]["perplexity"] > 0

    rows = [json.loads(l) for l in open(out["files"]["examples_jsonl"])]
    assert len(rows) == out["n"]  # one row per test example
    assert {r["where"] for r in rows} == {f"demo-reviews.jsonl:{rid.split(':')[1]}" for rid in split["rows"]["test"]}
    right = sum(r["prediction"] == r["reference"] for r in rows)
    assert right / len(rows) == pytest.approx(out["metrics"]["exact_match"])
    (ev,) = list_evaluations(Workspace(demo_ws), run["run_id"])
    assert ev["metrics"]["exact_match"] == out["metrics"]["exact_match"]
