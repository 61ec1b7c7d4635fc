"""A hurried user in a real browser: Start pressed twice asks before it queues a second copy of the
same run, and Stop pressed twice still ends with the checkpoint it promised, with a status that
says where that checkpoint is (never a hard kill behind a screen that claims a checkpoint)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from browser_helpers import CHROMIUM, demo_ui, open_group, open_tab, save_shot, wait_text

from tunestudio.core.workspace import Workspace
from tunestudio.jobs import queue as jobs

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt install chromium)")]


@pytest.fixture(scope="module")
def server(demo_template, tmp_path_factory):
    with demo_ui(demo_template, tmp_path_factory, "stop-start") as ui:
        yield ui


def _long_run_form(page) -> None:
    """A run that goes on until stopped (tiny steps), with no periodic checkpoint of its own: any
    checkpoint on disk afterwards is the one Stop saved."""
    page.locator("#batch-size input").fill("2")
    open_group(page, "stopping", "param-save-steps")   # checkpoints and logging are folded there
    page.locator("#param-save-steps input").fill("100000")
    open_group(page, "optimisation", "param-max-steps")
    page.fill("#param-max-steps input", "100000")
    page.fill("#param-logging-steps input", "1")
    page.locator("#param-logging-steps input").press("Tab")


def test_start_pressed_twice_asks_before_queueing_a_copy(server, browser):
    ws = Workspace(server["ws"])
    page = open_tab(browser, server["url"], "Training", "#start-training")
    _long_run_form(page)
    # Gradio drops a click while the same button's event is pending (a true double click sends one),
    # so the second press comes as a user's does: once the first has answered
    page.click("#start-training")
    wait_text(page, "#training-message", "Started job")
    page.click("#start-training")
    asked = wait_text(page, "#training-message", "same settings")
    running = jobs.current_job(ws)
    assert running is not None and f"Job {running.id} is already running" in asked, asked
    assert not jobs.queued_jobs(ws)   # the second click queued nothing
    page.wait_for_selector("#queue-copy", state="visible")
    save_shot(page, "stop-start-01-asked")
    page.click("#queue-copy")   # asked, and confirmed: now it is queued
    wait_text(page, "#training-message", "waits in the queue")
    (copy,) = jobs.queued_jobs(ws)
    page.wait_for_selector("#queue-copy", state="hidden")
    wait_text(page, "#training-queue", copy.id)
    # the command beside the status is the running job's, not the queued copy's
    wait_text(page, "#training-status", running.id)
    command = page.inner_text("#training-command")
    assert running.id in command and copy.id not in command, command
    jobs.cancel(ws, copy.id)
    jobs.stop(ws, running.id, grace=30)
    jobs.wait(ws, running.id, timeout=60)


def test_stop_pressed_twice_keeps_its_checkpoint_and_says_where(server, browser):
    ws = Workspace(server["ws"])
    page = open_tab(browser, server["url"], "Training", "#start-training")
    _long_run_form(page)
    page.click("#start-training")
    wait_text(page, "#training-message", "Started job")
    wait_text(page, "#training-progress", "loss", timeout=180_000)   # it trains
    job = jobs.current_job(ws)
    page.click("#stop-training")
    wait_text(page, "#training-message", "Stopping job")
    page.click("#stop-training")   # the second press must not turn "stop with a checkpoint" into a kill
    # On a loaded machine the tiny model may have saved its checkpoint and ended before the second press
    # lands: then there is nothing to stop. Either way the run must end as stopped with its checkpoint.
    page.wait_for_function("(s) => { const e = document.querySelector(s); return !!e && "
                           "(e.innerText.includes('already stopping') || e.innerText.includes('Nothing is running')); }",
                           arg="#training-message", timeout=60_000)
    status = wait_text(page, "#training-status", "Stopped at step", timeout=180_000)
    save_shot(page, "stop-start-02-stopped")
    ended = jobs.wait(ws, job.id, timeout=60)
    assert ended.returncode == 3, ended   # the engine's "stopped on request, checkpoint saved"
    step = int(re.search(r"the last checkpoint is at step (\d+)", status).group(1))
    assert (ws.runs_dir / ended.run_id / "checkpoints" / f"checkpoint-{step}").is_dir()
    events = [json.loads(x) for x in (ws.runs_dir / ended.run_id / "events.jsonl").read_text().splitlines()]
    stopped = [e for e in events if e["type"] == "stopped"]
    assert len(stopped) == 1 and stopped[0]["checkpoint_step"] == step and stopped[0]["reason"] == "SIGTERM"
