"""GRPO without a run: the config checks before anything loads, and the rollouts panel (a short run
end to end: test_grpo_e2e.py)."""

from __future__ import annotations

import json

import pytest

from tunestudio.config.run_config import RunConfig
from tunestudio.core.errors import UserError
from tunestudio.train.config_check import validate


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
    assert "GRPO" in view_run(ws, "tet", "r1")[0] and "treinamentu GRPO" in view_run(ws, "tet", "r1")[0]
