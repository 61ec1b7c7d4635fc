"""The web UI's Rewards panel runs `tunestudio reward test` in its own process and shows its table;
a broken reward file comes back as the CLI says it (the command itself: test_rewards_e2e.py)."""

from __future__ import annotations

import pytest
from helpers import write_file

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace


def test_rewards_panel_runs_the_cli_test_in_its_own_process(demo_ws):
    from tunestudio.webui.tabs.training import rewards_panel as rp

    ws = Workspace(demo_ws)
    argv = rp.test_argv(ws, "rewards/demo_dates.py", "demo-rewards.jsonl", "model:tiny-demo")
    assert argv[1:6] == ["-m", "tunestudio", "reward", "test", "--workspace"] and argv[-3:] == ["-n", "8", "--json"]
    with pytest.raises(UserError, match="pick a model"):
        rp.test_argv(ws, "exact_match", "demo-rewards.jsonl", "")
    assert "model:tiny-demo" in [v for _, v in rp.model_choices(ws)]
    out = rp.run_test(ws, "rewards/demo_dates.py,exact_match:0.5", "demo-rewards.jsonl", "model:tiny-demo")
    assert out["n"] == 8 and len(out["rows"]) == 8
    df = rp.result_table(out, "en")
    assert list(df.columns) == ["prompt", "completion", "demo_dates", "exact_match", "total"] and len(df) == 8
    for (_, row), r in zip(df.iterrows(), out["rows"]):
        assert row["total"] == pytest.approx(r["rewards"]["demo_dates"] + 0.5 * r["rewards"]["exact_match"], abs=1e-3)
    assert list(rp.result_table(out, "tet").columns)[:2] == ["pergunta", "resposta"]
    # the worker's error comes back as the CLI says it: the file and line, no traceback
    write_file(demo_ws, "rewards/oops.py", "def reward(prompt, completion, **row):\n    return row['missing']\n")
    with pytest.raises(UserError, match=r"rewards/oops.py:2:.*KeyError") as e:
        rp.run_test(ws, "rewards/oops.py", "demo-rewards.jsonl", "model:tiny-demo")
    assert "Traceback" not in str(e.value)



def test_the_panels_test_stops_the_reward_and_what_it_forked_at_its_time_limit(demo_ws):
    """The panel's time limit stops the whole test: the CLI, its reward worker and a child the reward
    forked that ignores SIGTERM (each in a process group of its own, all in the test's session)."""
    import time
    from pathlib import Path

    from tunestudio.webui.tabs.training import rewards_panel as rp

    write_file(demo_ws, "rewards/stuck.py",
               "import os, signal, time\n\npid = os.fork()\nif pid == 0:\n"
               "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    while True:\n        time.sleep(0.1)\n"
               "open('stuck.pids', 'w').write(f'{os.getpid()} {pid}')\nwhile True:   # at import: before any model\n"
               "    pass\n\n\ndef reward(prompt, completion, **row):\n    return 1.0\n")
    t0 = time.monotonic()
    with pytest.raises(UserError, match="the reward test took longer than 8 s and was stopped"):
        rp.run_test(Workspace(demo_ws), "rewards/stuck.py", "demo-rewards.jsonl", "model:tiny-demo", timeout=8)
    assert time.monotonic() - t0 < 20

    def running(pid):
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except OSError:
            return False

    worker, child = map(int, (demo_ws / "stuck.pids").read_text().split())
    deadline = time.monotonic() + 5
    while (running(worker) or running(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(worker), "the reward worker outlived the panel's test"
    assert not running(child), "the reward's forked child outlived the panel's test"
