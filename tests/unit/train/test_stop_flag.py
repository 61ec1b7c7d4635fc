"""The engine's side of Stop: a first SIGTERM asks for "a checkpoint, then stop", a second one
changes nothing (a Stop pressed twice keeps its promise); stopping at once is its own signal
(SIGUSR1, the queue's "Stop now") or a second Ctrl-C. A stop says what it left on disk, and a
resume with no checkpoint says it starts again from step 0."""

from __future__ import annotations

import json
import os
import signal
import time
from types import SimpleNamespace

import pytest

from tunestudio.train import checkpoint as ckpt
from tunestudio.train import recovery
from tunestudio.train.callbacks import StopFlag
from tunestudio.train.events import EventLog


def _deliver(sig) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.05)   # the handler runs in this (main) thread at the next bytecode


@pytest.fixture
def flag():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    stop = StopFlag().install()
    yield stop
    stop.restore()
    for sig, handler in before.items():   # restore() keeps ignoring SIGTERM after a stop: not in pytest
        signal.signal(sig, handler)


def test_a_second_sigterm_keeps_the_checkpoint_promise(flag):
    _deliver(signal.SIGTERM)
    assert flag.reason == "SIGTERM"
    try:
        _deliver(signal.SIGTERM)   # ignored: no KeyboardInterrupt, still "save, then stop"
    except KeyboardInterrupt:
        pytest.fail("a second SIGTERM stopped the run at once, without its checkpoint")
    assert flag.reason == "SIGTERM"
    flag.restore()   # the run has ended: a Stop pressed now must not kill the leaving process either
    _deliver(signal.SIGTERM)


def test_stop_now_and_a_second_ctrl_c_stop_at_once(flag):
    assert signal.getsignal(signal.SIGUSR1) == flag._handle   # else SIGUSR1 would end this very process
    with pytest.raises(KeyboardInterrupt):
        _deliver(signal.SIGUSR1)
    flag.reason = None
    _deliver(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        _deliver(signal.SIGINT)


def test_a_stop_point_is_read_from_the_checkpoints_on_disk(tmp_path):
    folder = tmp_path / "checkpoints"
    point = ckpt.stop_point(folder, 7, save_every=10)
    assert point == {"step": 7, "checkpoint_step": None, "first_save": 10}
    assert recovery.stopped_words(point) == ("stopped at step 7: no checkpoint was saved (the first is saved at "
                                             "step 10), so a resume starts again from step 0")
    (folder / "checkpoint-10").mkdir(parents=True)
    (folder / "checkpoint-10" / ckpt.MARKER).write_text("{}")
    point = ckpt.stop_point(folder, 17, save_every=10)
    assert point == {"step": 17, "checkpoint_step": 10, "first_save": None}
    assert "the last checkpoint is at step 10" in recovery.stopped_words(point)


def test_resuming_a_run_without_a_checkpoint_says_it_starts_over(tmp_path):
    events = EventLog(tmp_path / "run")
    assert recovery.resume_point(tmp_path / "run" / "checkpoints", events,
                                 SimpleNamespace(is_main_process=True, num_processes=1)) is None
    events.close()
    warned = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert [(w["type"], w["code"]) for w in warned] == [("warning", "resume_from_start")]
    assert "starts again from step 0" in (tmp_path / "run" / "train.log").read_text()
