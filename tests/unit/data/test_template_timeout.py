"""A chat template that loops is stopped at the time limit, in the main thread and in a worker thread
(where the web UI and the server render), with a coded error naming the template."""

from __future__ import annotations

import threading
import time

import pytest
from workspaces import make_tiny_model

from tunestudio.core.errors import UserError
from tunestudio.data.chat import turns

LOOP = "{% for i in range(99999) %}{% for j in range(99999) %}{{ '' }}{% endfor %}{% endfor %}"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def tokenizer(tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    monkeypatch.setenv("TUNESTUDIO_TEMPLATE_SECONDS", "0.5")
    monkeypatch.setattr(turns, "_timed_out", set(), raising=False)
    return AutoTokenizer.from_pretrained(make_tiny_model(tmp_path / "loopy"))


def timed_render(tokenizer):
    t = time.monotonic()
    try:
        turns.render(tokenizer, HI)
    except turns.TemplateRefused as e:
        return e, time.monotonic() - t
    return None, time.monotonic() - t


@pytest.mark.parametrize("where", ["main", "worker"])
def test_a_looping_template_is_stopped_with_a_coded_error_naming_it(tokenizer, where):
    assert turns.render(tokenizer, HI).startswith("<user> hi")
    good = tokenizer.chat_template
    tokenizer.chat_template = LOOP
    if where == "main":
        error, took = timed_render(tokenizer)
    else:
        out = []
        worker = threading.Thread(target=lambda: out.append(timed_render(tokenizer)))
        worker.start()
        worker.join(30)
        assert not worker.is_alive()
        error, took = out[0]
    assert error is not None and error.code == "chat_template_timeout"
    assert error.fields == {"template": tokenizer.name_or_path, "seconds": "0.5"}
    assert "loopy" in str(error) and "TUNESTUDIO_TEMPLATE_SECONDS" in str(error)
    assert took < 10
    again, took = timed_render(tokenizer)   # refused at once from then on: every row would cost the limit
    assert again.code == "chat_template_timeout" and took < 0.2
    tokenizer.chat_template = good          # and nothing is left armed to hit a later render
    for _ in range(200):
        assert turns.render(tokenizer, HI).startswith("<user> hi")
    time.sleep(0.7)
    assert turns.render(tokenizer, HI).startswith("<user> hi")


def test_a_bad_time_limit_is_a_user_error(tokenizer, monkeypatch):
    monkeypatch.setenv("TUNESTUDIO_TEMPLATE_SECONDS", "never")
    with pytest.raises(UserError) as e:
        turns.render(tokenizer, HI)
    assert e.value.code == "template_seconds_bad"
