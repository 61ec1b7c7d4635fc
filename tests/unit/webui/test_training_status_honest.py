"""The Training tab's status says what is true on disk: a stopped run with no checkpoint says so
(and when its first was due), one with a checkpoint names its step, a stopping job shows as
stopping; a single logged step is said in words instead of an empty chart frame; and no status
mark needs an emoji font (Debian's Chromium without one draws empty boxes)."""

from __future__ import annotations

import json
import re
import time

from tunestudio.core.workspace import Workspace
from tunestudio.jobs import queue as jobs
from tunestudio.train import checkpoint as ckpt
from tunestudio.webui.tabs.training.status import monitor

REPO_WEBUI = __import__("tunestudio.webui", fromlist=["x"]).__path__[0]


def _job_with_run(ws: Workspace, events: list[dict], status: str = "stopped", **job) -> str:
    run_dir = ws.runs_dir / "r1"
    run_dir.mkdir(parents=True)
    t0 = time.time() - 30
    lines = [{"type": "started", "time": t0, "run_id": "r1", "total_steps": 40}] + events
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    log = jobs.jobs_dir(ws) / "j1.log"
    log.write_text("")
    with jobs._locked(ws) as listed:
        listed.append(jobs.Job(id="j1", config_path="", status=status, started_at=t0 - 1, run_id="r1",
                               finished_at=time.time() if status != "running" else None,
                               returncode=130 if status == "stopped" else None, log_path=str(log), **job))
    return run_dir


def test_a_stop_that_saved_no_checkpoint_says_so_in_each_language(workspace):
    ws = Workspace(workspace)
    _job_with_run(ws, [{"type": "train", "step": 7, "loss": 2.0, "time": time.time()},
                       {"type": "stopped", "step": 7, "first_save": 10, "checkpoint_step": None,
                        "reason": "interrupted", "error": "stopped at step 7"}])
    status, *_ = monitor(ws, "en", None)
    assert "Stopped at step 7: no checkpoint was saved (the first is saved at step 10)" in status, status
    assert "starts again from step 0" in status
    status, *_ = monitor(ws, "tet", None)
    assert "Para iha pasu 7: la rai checkpoint ida (ida dahuluk rai iha pasu 10)" in status, status


def test_a_stop_names_the_checkpoint_found_on_disk(workspace):
    ws = Workspace(workspace)
    run_dir = _job_with_run(ws, [{"type": "train", "step": 17, "loss": 2.0, "time": time.time()},
                                 {"type": "stopped", "step": 17, "reason": "interrupted"}])
    done = run_dir / "checkpoints" / "checkpoint-10"
    done.mkdir(parents=True)
    (done / ckpt.MARKER).write_text("{}")
    (run_dir / "checkpoints" / "checkpoint-15").mkdir()   # never finished (no marker): not a checkpoint
    status, *_ = monitor(ws, "en", None)
    assert "Stopped at step 17; the last checkpoint is at step 10" in status, status


def test_a_job_asked_to_stop_shows_as_stopping_with_the_stop_now_button(workspace):
    ws = Workspace(workspace)
    _job_with_run(ws, [{"type": "train", "step": 3, "loss": 2.0, "time": time.time()}], status="running",
                  pid=1, stop_requested_at=time.time())   # pid 1 lives: the queue keeps it running
    out = monitor(ws, "en", None)
    assert "**stopping**" in out[0], out[0]
    assert out[-1]["visible"] is True   # "Stop now (no checkpoint)": shown only while it stops


def test_one_logged_step_is_said_in_words_not_drawn_as_an_empty_frame(workspace):
    ws = Workspace(workspace)
    _job_with_run(ws, [{"type": "train", "step": 1, "loss": 2.5, "lr": 1e-3, "time": time.time()}],
                  status="finished")
    _, progress, loss, lr, *_ = monitor(ws, "en", None)
    assert "1 step logged so far (loss 2.5000 at step 1)" in progress, progress
    assert loss["visible"] is False and lr["visible"] is False


def test_status_marks_need_no_emoji_font():
    """U+2705, U+274C, U+23F9, U+23F3 and the emoji selector U+FE0F have no glyph in DejaVu (what
    Debian's Chromium falls back to): the marks are ✔ ✖ ■ ⚠, which it draws."""

    import pathlib

    root = pathlib.Path(REPO_WEBUI)
    emoji = re.compile("[\u23f3\u23f9\u2705\u274c\ufe0f\U0001F000-\U0001FFFF]")
    found = [f"{p.relative_to(root)}:{n}" for p in [*root.rglob("*.py"), *root.rglob("*.yaml")]
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if emoji.search(line)]
    assert not found, found


def test_resume_says_where_it_goes_on_from(workspace, monkeypatch):
    """The Runs tab's Resume says, before anything trains, that a run with no checkpoint starts again
    from step 0 (and otherwise the step it goes on from)."""
    from workspaces import add_run

    from tunestudio.core import registry
    from tunestudio.webui.common.context import say
    from tunestudio.webui.tabs.runs.tab import resumed_message

    ws = Workspace(workspace)
    conn = registry.connect(ws.db_path)
    add_run(conn, "run-stopped", "halted", status="stopped", t=10)
    conn.commit()
    conn.close()
    monkeypatch.setattr(jobs, "advance", lambda ws: None)   # queued, not started: no real training here
    job = jobs.submit_resume(ws, "halted")
    assert "Run `run-stopped` has no checkpoint" in say("en", resumed_message(ws, job))
    assert "starts again from step 0" in say("en", resumed_message(ws, job))
    assert "hahu fali husi pasu 0" in say("tet", resumed_message(ws, job))
    done = ws.runs_dir / "run-stopped" / "checkpoints" / "checkpoint-5"
    done.mkdir(parents=True)
    (done / ckpt.MARKER).write_text("{}")
    assert "It goes on from its checkpoint at step 5." in say("en", resumed_message(ws, job))
