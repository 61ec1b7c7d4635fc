"""`tunestudio eval` with the forgetting check's chat guard: the base is asked too, and a model that
learnt nothing says so with its training (the check's arithmetic: test_eval_guard.py)."""

from __future__ import annotations

import json

import yaml
from eval_helpers import make_full_run
from helpers import run_cli

from tunestudio.webui.i18n import texts as i18n

QUESTIONS = [("What is the capital of France?", "Paris"), ("How many days are there in a week?", "7|seven"),
             ("What colour is the sky on a clear day?", "blue"), ("Who wrote Romeo and Juliet?", "Shakespeare"),
             ("What is the chemical symbol for water?", "H2O")]


def _chat_guard(ws) -> str:
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in QUESTIONS]
    (ws / "training/datasets/small-guard.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return "small-guard.jsonl"


def test_eval_with_a_chat_guard_asks_the_base_too(demo_ws):
    """Without --compare-base the base is loaded for the guard alone; the run's weights are the base's
    here, so every answer is kept word for word."""
    make_full_run(demo_ws, "full-run")
    r = run_cli("eval", "--run", "full-run", "--limit", "4", "--max-new-tokens", "4", "--metrics", "exact_match",
                "--guard-dataset", _chat_guard(demo_ws), "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    g = out["guard"]
    assert "base_metrics" not in out and g["kind"] == "chat" and g["n"] == 5
    assert {"base_right", "kept_right", "kept_close", "mean_similarity", "rows", "forgetting"} <= set(g)
    assert [row["prompt"] for row in g["rows"]] == [q for q, _ in QUESTIONS]
    assert all(row["base"] == row["tuned"] and row["similarity"] == 1.0 for row in g["rows"])
    assert g["kept_right"] == g["base_right"] and g["kept_close"] == 5 and g["mean_similarity"] == 1.0
    # the random tiny model knows none of these answers: nothing to keep, and it says so
    assert g["forgetting"] is (None if g["base_right"] == 0 else False)
    assert ("guard_base_wrong" in [p["code"] for p in out["warning_parts"]]) == (g["base_right"] == 0)
    html = open(out["files"]["html"]).read()
    assert "Forgetting check (guard set)" in html and "How many days are there in a week?" in html


def test_an_unchanged_model_says_so_with_its_training(demo_ws):
    run = make_full_run(demo_ws, "full-run")
    (run / "config.yaml").write_text(yaml.safe_dump({"model": "tiny-demo", "method": "full", "lr": 1e-7,
                                                     "dataset": "demo-reviews.jsonl"}))
    (run / "metrics.json").write_text(json.dumps({"status": "completed", "steps": 3}))
    r = run_cli("eval", "--run", "full-run", "--compare-base", "--limit", "6", "--max-new-tokens", "4",
                "--metrics", "exact_match,f1", "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    (part,) = [p for p in out["warning_parts"] if p["code"] == "eval_unchanged"]
    assert (part["metric"], part["same"], part["rows"], part["method"], part["lr"], part["steps"]) == \
        ("exact_match", 6, 6, "full", 1e-7, 3)
    assert part["message"].endswith("likely too low a learning rate or too few steps "
                                    "(this run: method full, lr 1e-07, 3 steps)")
    assert "karik taxa aprendizajen ki'ik liu" in i18n.engine_warning("tet", part)

