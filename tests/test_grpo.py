"""GRPO: the config checks, one short run on the demo model through the CLI (loss finite, rewards,
KL and completion length in events.jsonl, rollouts.jsonl, a saved adapter that loads in plain peft,
`eval` of the run's rewards against its base) and a reward error ending the run with file:line."""

from __future__ import annotations

import json
import math

import pytest
from helpers import run_cli

from tunestudio.config.run_config import RunConfig
from tunestudio.core.errors import UserError
from tunestudio.train.config_check import validate

ENV = {"OMP_NUM_THREADS": "1"}  # a 2-core machine shared with other tests: one thread is fastest
SHORT = ["--objective", "grpo", "--model", "tiny-demo", "--dataset", "demo-rewards.jsonl",
         "--batch-size", "4", "--num-generations", "2", "--max-completion-length", "6", "--max-steps", "2",
         "--logging-steps", "1", "--eval-rows", "4", "--eval-steps", "2", "--val-split", "0.05",
         "--test-split", "0.05", "--lr", "1e-3"]


def test_grpo_options_are_checked_before_anything_loads():
    base = dict(model="m", dataset="d.jsonl", objective="grpo", rewards="exact_match")
    validate(RunConfig(**base, batch_size=8, num_generations=4))
    for extra, msg in ((dict(rewards=""), "no reward given"), (dict(rewards="bleu"), "neither a built-in"),
                       (dict(num_generations=1), "at least 2"),
                       (dict(batch_size=6, num_generations=4), "multiple of --num-generations 4"),
                       (dict(max_completion_length=600), "no room for the prompt"),
                       (dict(method="prompt", num_generations=8), "use full, freeze or a LoRA")):
        with pytest.raises(UserError, match=msg):
            validate(RunConfig(**{**base, **extra}))


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


# ---- the Runs tab's rollouts panel ------------------------------------------------------------------

def _rollout(step, group, completion, demo, exact, adv):
    return {"step": step, "group": group, "prompt": f"Write this date in words. {group}", "completion": completion,
            "rewards": {"demo_dates": demo, "exact_match": exact}, "reward": demo + 0.5 * exact, "advantage": adv}


def test_rollouts_panel_shows_a_step_and_says_when_a_run_has_none(workspace):
    from tunestudio.core.workspace import Workspace
    from tunestudio.webui.tabs.runs.rollouts_panel import read_rollouts, view_run

    ws = Workspace(workspace)
    run = ws.runs_dir / "r1"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("objective: grpo\n")
    lines = [_rollout(1, 0, "4 July", 0.5, 0.0, -0.25), _rollout(1, 0, "4 July 2031", 1.0, 1.0, 0.25),
             _rollout(2, 0, "July", 0.25, 0.0, 0.0), _rollout(2, 1, "x", 0.0, 0.0, 0.0)]
    (run / "rollouts.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"step": 3, "gro')
    assert list(read_rollouts(run / "rollouts.jsonl")) == [1, 2]   # the half-written last line is skipped
    head, picker, table = view_run(ws, "en", "r1")   # the last step first
    assert picker["value"] == 2 and picker["choices"] == [1, 2] and picker["visible"]
    assert "Step 2 of 1–2: 2 completions in 2 prompt groups, mean reward 0.125" in head
    head, picker, table = view_run(ws, "en", "r1", 1)
    df = table["value"]
    assert list(df.columns) == ["group", "prompt", "completion", "demo_dates", "exact_match", "total reward",
                                "advantage"]
    assert df["total reward"].tolist() == [0.5, 1.5] and df["advantage"].tolist() == [-0.25, 0.25]
    assert "mean reward 1.000" in head
    tet = view_run(ws, "tet", "r1", 1)[2]["value"]
    assert "premiu totál" in tet.columns and "vantajen" in tet.columns
    # a GRPO run before its first step, and a run of another objective: a sentence, no table
    (run / "rollouts.jsonl").unlink()
    head, picker, table = view_run(ws, "en", "r1")
    assert "No rollouts logged yet" in head and not picker["visible"] and not table["visible"]
    (run / "config.yaml").write_text("objective: dpo\n")
    assert "only GRPO runs" in view_run(ws, "en", "r1")[0]
    assert "GRPO" in view_run(ws, "tet", "r1")[0] and "treinu GRPO" in view_run(ws, "tet", "r1")[0]
