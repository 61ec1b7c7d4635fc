"""`tunestudio reward test` prints N completions of the demo model with their rewards, and file:line
for a broken reward file (the process box in-process: test_rewards.py; the Rewards panel's test:
test_rewards_cli.py)."""

from __future__ import annotations

import json

from helpers import run_cli, write_file


def test_reward_test_prints_n_completions_with_rewards(demo_ws):
    r = run_cli("reward", "test", "--rewards", "rewards/demo_dates.py,exact_match:0.5", "--dataset",
                "demo-rewards.jsonl", "--model", "tiny-demo", "-n", "4", "--max-new-tokens", "8", "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n"] == 4 and len(out["rows"]) == 4
    assert [x["name"] for x in out["rewards"]] == ["demo_dates", "exact_match"]
    for row in out["rows"]:
        assert set(row["rewards"]) == {"demo_dates", "exact_match"} and row["reference"]
        assert row["prompt"].startswith("Write this date in words.")
    text = run_cli("reward", "test", "--reward", "rewards/demo_dates.py", "--dataset", "demo-rewards.jsonl",
                   "--model", "tiny-demo", "-n", "3", "--max-new-tokens", "8", ws=demo_ws)
    assert text.returncode == 0, text.stderr
    assert text.stdout.count("completion:") == 3 and text.stdout.count("rewards:") == 3
    # a broken reward file: one line naming file:line, exit 1, no traceback
    write_file(demo_ws, "rewards/oops.py", "def reward(prompt, completion, **row):\n    return row['missing']\n")
    bad = run_cli("reward", "test", "--reward", "rewards/oops.py", "--dataset", "demo-rewards.jsonl",
                  "--model", "tiny-demo", "-n", "2", "--max-new-tokens", "4", ws=demo_ws)
    assert bad.returncode == 1 and "rewards/oops.py:2:" in bad.stderr and "KeyError" in bad.stderr
    assert "Traceback" not in bad.stderr

