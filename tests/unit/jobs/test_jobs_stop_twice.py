"""The queue's rules for a hurried user: a second Stop while a job is stopping changes nothing (it
still ends with its checkpoint), "stop now" is its own action, and a second Start with the same
settings is asked about instead of queued (jobs/queue.py, jobs/duplicates.py)."""

from __future__ import annotations

import sys
import textwrap

import pytest
from workspaces import queue_job

from tunestudio.config.run_config import RunConfig
from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.jobs import queue as jobs

# A job that behaves like the engine's StopFlag would without it: every SIGTERM it gets is
# logged, the first one "saves" for 1.5 s and exits 3 (stopped, checkpoint saved); another SIGTERM
# meanwhile exits 130 (the old hard kill); SIGUSR1 exits 130 at once.
TRAINER = textwrap.dedent("""
    import signal, sys, time
    asked = []
    def term(signum, frame):
        print("SIGTERM", flush=True)
        if asked:
            sys.exit(130)
        asked.append(time.time())
    def now(signum, frame):
        print("SIGUSR1", flush=True)
        sys.exit(130)
    signal.signal(signal.SIGTERM, term)
    signal.signal(signal.SIGUSR1, now)
    print("ready", flush=True)
    while not asked or time.time() - asked[0] < 1.5:
        time.sleep(0.05)
    sys.exit(3)
""")


def _trainer(ws: Workspace) -> jobs.Job:
    job = queue_job(ws, "trainer", [sys.executable, "-c", TRAINER])
    for _ in range(100):   # its handlers are in place once it said so
        if "ready" in open(job.log_path).read():
            break
        import time
        time.sleep(0.05)
    return job


def test_a_second_stop_while_stopping_changes_nothing(workspace):
    ws = Workspace(workspace)
    job = _trainer(ws)
    first = jobs.stop(ws)
    assert first.id == job.id and jobs.get_job(ws, job.id).stopping
    again = jobs.stop(ws)   # a double click, or Stop on a second page
    assert again.id == job.id
    ended = jobs.wait(ws, job.id, timeout=30)
    assert ended.returncode == 3 and ended.status == "stopped"   # it ended with its checkpoint
    assert open(job.log_path).read().count("SIGTERM") == 1       # the second Stop sent nothing


def test_stop_now_is_its_own_action(workspace):
    ws = Workspace(workspace)
    job = _trainer(ws)
    jobs.stop(ws)
    jobs.stop(ws, now=True)   # "Stop now (no checkpoint)": asked for in words, once it is stopping
    ended = jobs.wait(ws, job.id, timeout=30)
    assert ended.returncode == 130 and "SIGUSR1" in open(job.log_path).read()


def _cfg(**kw) -> RunConfig:
    return RunConfig(model="tiny-demo", dataset="demo-reviews.jsonl", max_steps=3, **kw)


def test_the_same_settings_are_asked_about_before_a_copy_is_queued(workspace):
    ws = Workspace(workspace)
    busy = queue_job(ws, "busy", [sys.executable, "-c", "import time; time.sleep(60)"])  # the device is taken
    try:
        queued = jobs.submit(ws, _cfg(name="first"))
        assert queued.status == "queued"
        with pytest.raises(UserError) as e:
            jobs.submit(ws, _cfg(name="second"))   # only the name differs: the same run
        assert e.value.code == "duplicate_run" and e.value.fields["job"] == queued.id
        assert f"job {queued.id} is already queued" in str(e.value)
        assert [j.id for j in jobs.queued_jobs(ws)] == [queued.id]   # nothing was queued
        assert not list(ws.jobs_dir.glob("*.yaml"))[1:]                # nor its config file left behind
        other = jobs.submit(ws, _cfg(name="other", lr=1e-4))   # other settings: a run of its own
        copy = jobs.submit(ws, _cfg(name="copy"), allow_duplicate=True)   # asked, and confirmed
        assert {j.id for j in jobs.queued_jobs(ws)} == {queued.id, other.id, copy.id}
    finally:
        for j in jobs.queued_jobs(ws):
            jobs.cancel(ws, j.id)
        jobs.stop(ws, busy.id, grace=5)
