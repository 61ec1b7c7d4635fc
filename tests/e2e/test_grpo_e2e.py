"""GRPO end to end: one short run on the demo model through the CLI (loss finite, rewards, KL and
completion length in events.jsonl, rollouts.jsonl, a saved adapter that loads in plain peft, `eval`
of the run's rewards against its base), and a reward error ending the run with file:line."""

from __future__ import annotations

import json
import math

import pytest
from helpers import run_cli

ENV = {"OMP_NUM_THREADS": "1"}  # a 2-core machine shared with other tests: one thread is fastest

SHORT = ["--objective", "grpo", "--model", "tiny-demo", "--dataset", "demo-rewards.jsonl",
         "--batch-size", "4", "--num-generations", "2", "--max-completion-length", "6", "--max-steps", "2",
         "--logging-steps", "1", "--eval-rows", "4", "--eval-steps", "2", "--val-split", "0.05",
         "--test-split", "0.05", "--lr", "1e-3"]


@pytest.mark.slow
def test_short_grpo_run_logs_rewards_and_rollouts_and_saves_a_peft_adapter(demo_ws):
    r = run_cli("train", *SHORT, "--method", "lora", "--rewards", "rewards/demo_dates.py:1.0,exact_match:0.5",
                "--name", "g", "--json", ws=demo_ws, env=ENV)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["status"] == "completed" and out["metrics"]["steps"] == 2
    run_dir = demo_ws / "training" / "runs" / out["run_id"]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    started = next(e for e in events if e["type"] == "started")
    # an epoch is 540 prompts x 2 answers in batches of 4 answers (the progress bar's and ETA's basis)
    assert started["train_rows"] == 540 and started["steps_per_epoch"] == 270
    train = [e for e in events if e["type"] == "train"]
    assert train and all(math.isfinite(e["loss"]) for e in train)
    for key in ("reward", "kl", "completions/mean_length", "rewards/demo_dates/mean", "rewards/exact_match/mean"):
        assert key in train[-1], key
    evals = [e for e in events if e["type"] == "eval"]
    assert evals and "eval_reward" in evals[-1] and "eval_rewards/demo_dates/mean" in evals[-1]

    rollouts = [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]
    assert len(rollouts) == 2 * 4  # two steps, four completions each (two prompts x two generations)
    assert {x["step"] for x in rollouts} == {1, 2}
    for x in rollouts:
        assert "Write this date in words." in x["prompt"] and isinstance(x["completion"], str)
        assert set(x["rewards"]) == {"demo_dates", "exact_match"} and math.isfinite(x["advantage"])
        assert x["reward"] == pytest.approx(x["rewards"]["demo_dates"] + 0.5 * x["rewards"]["exact_match"])
    # within a group the advantages are the rewards centred on the group's mean
    first = [x for x in rollouts if x["step"] == 1 and x["group"] == 0]
    assert sum(x["advantage"] for x in first) == pytest.approx(0, abs=1e-4)

    # the Runs tab shows the same rollouts, the last step first
    from tunestudio.core.workspace import Workspace
    from tunestudio.webui.tabs.runs.rollouts_panel import view_run

    head, picker, table = view_run(Workspace(demo_ws), "en", out["run_id"])
    assert picker["choices"] == [1, 2] and picker["value"] == 2 and len(table["value"]) == 4, head

    from peft import AutoPeftModelForCausalLM

    model = AutoPeftModelForCausalLM.from_pretrained(run_dir / "final")
    assert any("lora_B" in n for n, _ in model.named_parameters())

    # eval of a GRPO run: its own rewards on its held-out test prompts, greedy, beside its base;
    # --no-save prints the scores and writes nothing into the run folder
    e = run_cli("eval", "--run", "g", "--max-new-tokens", "6", "--limit", "2", "--no-save", "--json",
                ws=demo_ws, env=ENV)
    assert e.returncode == 0, e.stderr[-2000:]
    assert "output" not in json.loads(e.stdout) and not (run_dir / "eval_rewards.json").exists()
    e = run_cli("eval", "--run", "g", "--compare-base", "--max-new-tokens", "6", "--json", ws=demo_ws, env=ENV)
    assert e.returncode == 0, e.stderr[-2000:]
    ev = json.loads(e.stdout)
    assert ev["n"] == 30 and "test split of run g" in ev["dataset"]
    assert set(ev["metrics"]) >= {"reward", "reward/demo_dates", "reward/exact_match"}
    assert set(ev["base_metrics"]) == set(ev["metrics"]) and "deltas" in ev
    assert json.loads((run_dir / "eval_rewards.json").read_text())["n"] == 30


@pytest.mark.slow
def test_a_reward_that_fails_mid_run_ends_it_naming_the_file_and_line(demo_ws):
    (demo_ws / "rewards" / "flaky.py").write_text(
        "def reward(prompt, completion, **row):\n    if len(completion) >= 0:\n        raise RuntimeError('no')\n"
        "    return 0.0\n")
    r = run_cli("train", *SHORT, "--method", "full", "--rewards", "rewards/flaky.py", "--json", ws=demo_ws, env=ENV)
    assert r.returncode == 1
    assert "rewards/flaky.py:3:" in r.stderr and "RuntimeError: no" in r.stderr and "Traceback" not in r.stderr

