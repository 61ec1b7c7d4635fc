"""A custom metric file (`eval --metric-file`, the Evaluate tab's upload) runs in the same process box
as reward files (rewards/process_box.py): not in the evaluating process, with the time limit, the
memory limit and the minimal environment; a child it forks dies with it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tunestudio.core.errors import UserError
from tunestudio.evaluate import metrics as M


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_a_metric_file_runs_boxed_with_a_minimal_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    f = tmp_path / "peek.py"
    f.write_text("import json, os, resource\n\ndef score(prediction, reference, example):\n"
                 "    json.dump({'pid': os.getpid(), 'env': dict(os.environ), 'cwd': os.getcwd(),\n"
                 "               'as': resource.getrlimit(resource.RLIMIT_AS)[0]}, open('seen.json', 'w'))\n"
                 "    return 1.0\n")
    work = tmp_path / "ws"
    work.mkdir()
    monkeypatch.chdir(work)   # compute's box works in the current directory: the file writes there
    assert M.compute(["exact_match"], ["a"], ["a"], metric_file=f) == {"exact_match": 1.0, "peek": 1.0}
    with M.CustomMetric(f, cwd=work) as m:
        assert m("a", "a", {"id": 1}) == 1.0
        pid = m.box.proc.pid
    seen = json.loads((work / "seen.json").read_text())
    assert seen["pid"] == pid != os.getpid() and not running(pid)
    assert "HF_TOKEN" not in seen["env"] and "OPENAI_API_KEY" not in seen["env"]
    assert Path(seen["cwd"]) == work and seen["env"]["HOME"] != os.environ.get("HOME")
    assert seen["as"] == 2048 << 20


def test_a_metric_that_loops_and_forks_is_stopped_whole(tmp_path):
    f = tmp_path / "spin.py"
    f.write_text("import os, signal, time\n\ndef score(prediction, reference, example):\n"
                 "    pid = os.fork()\n    if pid == 0:\n        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                 "        while True:\n            time.sleep(0.1)\n"
                 f"    open({str(tmp_path / 'child.pid')!r}, 'w').write(str(pid))\n    while True:\n        pass\n")
    m = M.CustomMetric(f, timeout=2)
    worker = m.box.proc.pid
    with pytest.raises(UserError, match=r"spin.py took longer than 2 s on example d.jsonl:3") as e:
        M.score_examples([], ["p"], ["r"], [{}], [m], ["d.jsonl:3"])
    assert e.value.code == "metric_timeout"
    child = int((tmp_path / "child.pid").read_text())
    assert not running(worker) and not running(child)


def test_a_metric_past_the_memory_limit_names_the_file_and_the_limit(tmp_path):
    f = tmp_path / "hog.py"
    f.write_text("def score(prediction, reference, example):\n    return len(bytearray(3 << 30))\n")
    with M.CustomMetric(f) as m, pytest.raises(UserError) as e:
        m("p", "r", {}, where="d.jsonl:1")
    assert e.value.code == "box_memory_limit"
    assert str(e.value).startswith(f"{f}:2: score() needed more memory than the limit of 2048 MiB")
    assert "Traceback" not in str(e.value)
