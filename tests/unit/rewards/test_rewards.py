"""Rewards for GRPO: the built-ins, the process box that runs the user's reward files (own process, time
limit, file:line errors, workspace-only) and the Rewards panel's files (`tunestudio reward test`:
test_rewards_e2e.py, from the panel: test_rewards_cli.py)."""

from __future__ import annotations

import os
import time

import pytest
from helpers import write_file

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.rewards import RewardSet, parse_spec
from tunestudio.rewards.builtins import builtin, exact_match, json_valid


def test_builtins_on_known_inputs():
    assert exact_match("q", " 4 July 2031. ", reference="4 july 2031") == 1.0
    assert exact_match("q", "4 July 2030", reference="4 July 2031") == 0.0
    with pytest.raises(ValueError, match="reference"):
        exact_match("q", "x")
    assert json_valid("q", '{"a": [1, 2]}') == 1.0
    assert json_valid("q", '```json\n{"a": 1}\n```') == 1.0
    assert json_valid("q", '{"a": 1') == 0.0
    regex = builtin("regex", regex=r"\d+ [A-Z][a-z]+ \d{4}")
    assert regex("q", "4 July 2031") == 1.0 and regex("q", "July 4, 2031") == 0.0
    penalty = builtin("length_penalty", max_chars=10)
    assert penalty("q", "x" * 10) == 0.0 and penalty("q", "x" * 15) == -0.5 and penalty("q", "x" * 99) == -1.0


def test_spec_parsing_and_weights(workspace):
    specs = parse_spec("rewards/a.py:2, exact_match:0.5,json_valid")
    assert [(s.name, s.weight, s.is_file) for s in specs] == [
        ("rewards/a.py", 2.0, True), ("exact_match", 0.5, False), ("json_valid", 1.0, False)]
    for bad, msg in (("nope", "neither a built-in"), ("exact_match:x", "must be a number"), ("", "no reward"),
                     ("exact_match,exact_match", "twice")):
        with pytest.raises(UserError, match=msg):
            parse_spec(bad)
    write_file(workspace, "rewards/a.py", "def reward(prompt, completion, **row):\n    return len(completion)\n")
    with RewardSet(Workspace(workspace), "rewards/a.py:2,exact_match:0.5") as rs:
        scores = rs.score_all(["p", "p"], ["abc", "4 July"], [{"reference": "4 July"}, {"reference": "4 July"}])
        assert scores == {"a": [3.0, 6.0], "exact_match": [0.0, 1.0]}
        assert rs.total(scores) == [6.0, 12.5]


def test_user_reward_runs_in_another_process_and_sees_row_fields(workspace):
    write_file(workspace, "rewards/pid.py",
               "import os\n\ndef reward(prompt, completion, reference=None, **row):\n"
               "    print('noise on stdout must not break the protocol')\n"
               "    return float(os.getpid()) if row.get('kind') == 'pid' else float(reference == completion)\n")
    with RewardSet(Workspace(workspace), "rewards/pid.py") as rs:
        pid = rs.score_all(["p"], ["c"], [{"kind": "pid", "reference": None}])["pid"][0]
        assert pid != os.getpid() and pid == rs.worker.proc.pid
        assert rs.score_all(["p"], ["yes"], [{"reference": "yes"}])["pid"] == [1.0]
        assert rs.worker.proc.pid == pid  # one worker per run, not a process per call


def test_reward_that_raises_names_file_and_line(workspace):
    write_file(workspace, "rewards/bad.py",
               "def helper(x):\n    return 1 / x\n\n\ndef reward(prompt, completion, **row):\n"
               "    return helper(len(completion))\n")
    with RewardSet(Workspace(workspace), "rewards/bad.py") as rs:
        with pytest.raises(UserError) as e:
            rs.score_all(["p", "p"], ["ok", ""], [{"_where": "d.jsonl:1"}, {"_where": "d.jsonl:7"}])
    msg = str(e.value)
    assert msg.startswith("rewards/bad.py:2:") and "ZeroDivisionError" in msg and "d.jsonl:7" in msg
    assert "Traceback" not in msg and "worker.py" not in msg and "process_box" not in msg


def test_broken_file_and_bad_return_are_clear(workspace):
    write_file(workspace, "rewards/syntax.py", "def reward(prompt, completion, **row):\n    return (\n")
    with pytest.raises(UserError, match=r"rewards/syntax.py:2: importing the reward file failed: SyntaxError"):
        RewardSet(Workspace(workspace), "rewards/syntax.py").start()
    write_file(workspace, "rewards/none.py", "def score(prompt, completion):\n    return 1\n")
    with pytest.raises(UserError, match=r"rewards/none.py: defines no function reward"):
        RewardSet(Workspace(workspace), "rewards/none.py").start()
    write_file(workspace, "rewards/text.py", "def reward(prompt, completion, **row):\n    return 'good'\n")
    with RewardSet(Workspace(workspace), "rewards/text.py") as rs, pytest.raises(UserError, match="must return a finite number"):
        rs.score_all(["p"], ["c"], [{}])


def test_reward_that_loops_is_killed_at_the_time_limit(workspace):
    write_file(workspace, "rewards/loop.py", "def reward(prompt, completion, **row):\n    while True:\n        pass\n")
    rs = RewardSet(Workspace(workspace), "rewards/loop.py", timeout=2)
    rs.start()
    proc = rs.worker.proc
    t0 = time.monotonic()
    with pytest.raises(UserError, match=r"rewards/loop.py: scoring a batch took longer than the reward time limit of 2 s"):
        rs.score_all(["p"], ["c"], [{}])
    assert time.monotonic() - t0 < 15
    assert proc.poll() is not None  # the looping process was stopped, not left spinning
    rs.close()


def test_files_outside_the_workspace_are_refused(workspace, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "evil.py"
    outside.write_text("def reward(prompt, completion, **row):\n    return 1.0\n")
    with pytest.raises(UserError, match="outside the workspace"):
        RewardSet(Workspace(workspace), str(outside))
    (workspace / "rewards").mkdir(exist_ok=True)
    os.symlink(outside, workspace / "rewards" / "link.py")
    with pytest.raises(UserError, match="outside the workspace"):
        RewardSet(Workspace(workspace), "rewards/link.py")
    with pytest.raises(UserError, match="outside the workspace"):
        RewardSet(Workspace(workspace), "../" + outside.parent.name + "/evil.py")


# ---- the web UI's Rewards panel: files confined to rewards/, the test through the CLI ------------------

def test_rewards_panel_opens_and_saves_only_reward_files_in_the_workspace(workspace, tmp_path_factory):
    from tunestudio.webui.tabs.training import rewards_panel as rp

    ws = Workspace(workspace)
    assert rp.reward_files(ws) == []
    rel, text, exists = rp.open_reward(ws, "fmt")
    assert (rel, exists) == ("rewards/fmt.py", False) and "def reward(prompt, completion, **row)" in text
    assert rp.save_reward(ws, "rewards/fmt.py", text) == ("rewards/fmt.py", None)
    assert rp.open_reward(ws, "fmt.py") == ("rewards/fmt.py", text, True)
    # the saved template is a working reward: 1 for the reference, 0 otherwise
    with RewardSet(ws, "rewards/fmt.py") as rs:
        assert rs.score_all(["p", "p"], ["a", "b"], [{"reference": "a"}, {"reference": "a"}]) == {"fmt": [1.0, 0.0]}
    # a draft with a syntax error is saved, and the problem named by file:line
    rel, problem = rp.save_reward(ws, "broken", "def reward(prompt, completion, **row):\n    return (\n")
    assert rel == "rewards/broken.py" and problem.startswith("rewards/broken.py:2:")
    assert rp.reward_files(ws) == ["rewards/broken.py", "rewards/fmt.py"]
    for bad in ("../x.py", "rewards/../../x.py", "/tmp/x.py", "sub/x.py", "", "a b.py"):
        with pytest.raises(UserError):
            rp.reward_path(ws, bad)
    outside = tmp_path_factory.mktemp("elsewhere") / "evil.py"
    outside.write_text("def reward(prompt, completion, **row):\n    return 1.0\n")
    os.symlink(outside, workspace / "rewards" / "link.py")
    assert "rewards/link.py" not in rp.reward_files(ws)
    with pytest.raises(UserError, match="outside the workspace"):
        rp.open_reward(ws, "link.py")
    with pytest.raises(UserError, match="outside the workspace"):
        rp.save_reward(ws, "link.py", "x = 1\n")
    assert outside.read_text().startswith("def reward")   # never written through the link


