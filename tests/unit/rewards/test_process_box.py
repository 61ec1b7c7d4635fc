"""The process box that runs the user's reward files (rewards/process_box.py): a forked child dies
with the worker (at the time limit, on an error, at close), a memory limit with a clear error, a
minimal environment. What it does not stop (reading files, the network) is said in docs/security.md.
Custom metric files in the same box: tests/unit/evaluate/test_metrics.py; the web UI's test:
tests/cli/test_rewards_cli.py."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from helpers import write_file

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.rewards import RewardSet

# forks a child that ignores SIGTERM and sleeps on; its pid goes to forked.pid in the workspace
FORK = '''import os, signal, time


def fork_sleeper():
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(0.1)
    with open("forked.pid", "w") as f:
        f.write(str(pid))
'''


def running(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its reaper has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def gone_soon(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not running(pid)


def forked_pid(workspace: Path) -> int:
    pid = int((workspace / "forked.pid").read_text())
    assert pid != os.getpid()
    return pid


def test_a_forked_child_is_killed_with_the_worker_at_the_time_limit(workspace):
    write_file(workspace, "rewards/fork_loop.py", FORK + "\n\ndef reward(prompt, completion, **row):\n"
               "    fork_sleeper()\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    while True:\n        pass\n")
    rs = RewardSet(Workspace(workspace), "rewards/fork_loop.py", timeout=2)
    rs.start()
    worker = rs.worker.proc.pid
    with pytest.raises(UserError, match="longer than the reward time limit of 2 s"):
        rs.score_all(["p"], ["c"], [{}])
    child = forked_pid(workspace)
    assert not running(worker)   # the loop that ignores SIGTERM is still stopped
    assert gone_soon(child), "the reward's forked child outlived the time limit"
    rs.close()


@pytest.mark.parametrize("how", ["error", "close"])
def test_a_forked_child_is_killed_on_an_error_and_at_close(workspace, how):
    body = "    fork_sleeper()\n" + ("    raise ValueError('no')\n" if how == "error" else "    return 1.0\n")
    write_file(workspace, "rewards/fork.py", FORK + "\n\ndef reward(prompt, completion, **row):\n" + body)
    with RewardSet(Workspace(workspace), "rewards/fork.py") as rs:
        if how == "error":
            with pytest.raises(UserError, match=r"rewards/fork.py:\d+: reward\(\) raised ValueError"):
                rs.score_all(["p"], ["c"], [{}])
            assert gone_soon(forked_pid(workspace)), "the child outlived the reward's error"
        else:
            assert rs.score_all(["p"], ["c"], [{}]) == {"fork": [1.0]}
            assert running(forked_pid(workspace))
    assert gone_soon(forked_pid(workspace)), "the child outlived the run's end"


def test_a_reward_past_the_memory_limit_gets_a_clear_error(workspace, monkeypatch):
    write_file(workspace, "rewards/hog.py", "def reward(prompt, completion, **row):\n"
               "    block = bytearray(3 << 30)\n    return float(len(block))\n")
    with RewardSet(Workspace(workspace), "rewards/hog.py") as rs, pytest.raises(UserError) as e:
        rs.score_all(["p"], ["c"], [{}])
    msg = str(e.value)
    assert msg.startswith("rewards/hog.py:2: reward() needed more memory than the limit of 2048 MiB")
    assert "TUNESTUDIO_BOX_MEMORY_MB" in msg and "Traceback" not in msg
    assert e.value.fields["error"]["code"] == "box_memory_limit"
    # the limit is the user's to set: a smaller one stops a smaller reward, and is named
    monkeypatch.setenv("TUNESTUDIO_BOX_MEMORY_MB", "400")
    write_file(workspace, "rewards/hog.py", "def reward(prompt, completion, **row):\n"
               "    return float(len(bytearray(600 << 20)))\n")
    with RewardSet(Workspace(workspace), "rewards/hog.py") as rs, pytest.raises(UserError, match="limit of 400 MiB"):
        rs.score_all(["p"], ["c"], [{}])
    monkeypatch.setenv("TUNESTUDIO_BOX_MEMORY_MB", "lots")
    with pytest.raises(UserError, match="TUNESTUDIO_BOX_MEMORY_MB=lots: give the memory limit in MiB, a whole number"):
        RewardSet(Workspace(workspace), "rewards/hog.py")


def test_the_reward_sees_a_minimal_environment_in_the_workspace(workspace, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    write_file(workspace, "rewards/look.py", "import json, os, resource\n\n"
               "def reward(prompt, completion, **row):\n"
               "    seen = {'env': dict(os.environ), 'cwd': os.getcwd(),\n"
               "            'as': resource.getrlimit(resource.RLIMIT_AS)[0],\n"
               "            'core': resource.getrlimit(resource.RLIMIT_CORE)[0],\n"
               "            'fsize': resource.getrlimit(resource.RLIMIT_FSIZE)[0]}\n"
               "    open('seen.json', 'w').write(json.dumps(seen))\n    return 1.0\n")
    with RewardSet(Workspace(workspace), "rewards/look.py") as rs:
        assert rs.score_all(["p"], ["c"], [{}]) == {"look": [1.0]}
        seen = json.loads((workspace / "seen.json").read_text())
        home = Path(seen["env"]["HOME"])
        assert home.is_dir()
    assert "HF_TOKEN" not in seen["env"] and "OPENAI_API_KEY" not in seen["env"]
    assert "hf_secret" not in json.dumps(seen) and "sk-secret" not in json.dumps(seen)
    assert set(seen["env"]) <= {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "HOME", "TMPDIR",
                                "PYTHONDONTWRITEBYTECODE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                "MKL_NUM_THREADS", "MALLOC_ARENA_MAX"}
    assert home != Path.home() and seen["env"]["TMPDIR"] == str(home)
    assert not home.exists()   # the worker's HOME goes with it
    assert Path(seen["cwd"]).resolve() == workspace.resolve()
    assert seen["as"] == 2048 << 20 and seen["core"] == 0 and 0 < seen["fsize"] < (1 << 40)


@pytest.mark.parametrize("end", ["exit", "sigkill"])
def test_the_group_is_stopped_when_its_starter_ends(workspace, end):
    """At shutdown without close (a plain exit), and when the starter is killed outright, the worker
    and the child its reward forked go too."""
    import signal
    import subprocess
    import sys

    write_file(workspace, "rewards/fork.py", FORK + "\n\ndef reward(prompt, completion, **row):\n"
               "    fork_sleeper()\n    return 1.0\n")
    starter = ("import sys, time\nfrom pathlib import Path\nfrom tunestudio.core.workspace import Workspace\n"
               "from tunestudio.rewards import RewardSet\n"
               f"rs = RewardSet(Workspace(Path({str(workspace)!r})), 'rewards/fork.py')\n"
               "rs.score_all(['p'], ['c'], [{}])\nprint(rs.worker.proc.pid, flush=True)\n"
               # "exit" waits for the test to have looked at the worker: exiting at once raced the look
               + ("sys.stdin.readline()\nsys.exit(0)\n" if end == "exit" else "time.sleep(60)\n"))
    proc = subprocess.Popen([sys.executable, "-c", starter], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    worker = int(proc.stdout.readline())
    home = Path(Path(f"/proc/{worker}/environ").read_bytes().split(b"HOME=", 1)[1].split(b"\0")[0].decode())
    assert home.is_dir()
    child = forked_pid(workspace)
    assert running(worker) and running(child)
    if end == "sigkill":
        os.kill(proc.pid, signal.SIGKILL)
    else:
        proc.stdin.write("\n")
        proc.stdin.flush()
    proc.wait(timeout=30)
    assert gone_soon(worker), "the worker outlived its starter"
    assert gone_soon(child), "the reward's forked child outlived the worker's starter"
    assert not home.exists()   # its temporary HOME too
