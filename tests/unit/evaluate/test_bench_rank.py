"""bench-models' ranking: the task metric first, then the reference loss (the command: test_eval_bench.py)."""

from __future__ import annotations

from tunestudio.evaluate.bench import rank


def test_rank_prefers_the_task_metric_then_loss():
    rows = [{"model": "a", "metrics": {"exact_match": 0.2, "loss": 1.0}},
            {"model": "b", "metrics": {"exact_match": 0.6, "loss": 3.0}},
            {"model": "c", "metrics": {"exact_match": 0.6, "loss": 2.0}}]
    assert "exact_match" in rank(rows, ["exact_match", "loss"])
    assert [r["model"] for r in rows] == ["c", "b", "a"] and [r["rank"] for r in rows] == [1, 2, 3]
    zero = [{"model": "x", "metrics": {"exact_match": 0.0, "loss": 5.0}},
            {"model": "y", "metrics": {"exact_match": 0.0, "loss": 4.0}}]
    assert rank(zero, ["exact_match", "loss"]) == "loss (lower is better)"
    assert [r["model"] for r in zero] == ["y", "x"]

