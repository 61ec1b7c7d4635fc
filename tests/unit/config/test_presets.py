"""Defaults that fit the model in front of them: the learning rate follows the model and the method,
the usual guide's values are warned about, and replay keeps a narrow task from overwriting the model
(a run with replay: test_presets_e2e.py)."""

from __future__ import annotations

import shutil

from workspaces import prime_replay_cache

from tunestudio.config import presets
from tunestudio.config.run_config import RunConfig
from tunestudio.core.workspace import Workspace
from tunestudio.train import replay


def test_model_kind_and_the_preset_per_method(demo_ws):
    ws = Workspace(demo_ws)
    other = ws.models_dir / "marked"
    shutil.copytree(ws.models_dir / "tiny-demo", other)
    assert presets.model_kind(ws.models_dir / "tiny-demo") == "random"
    assert presets.model_kind(other) == "pretrained"
    (other / presets.RANDOM_MARKER).write_text("random weights\n")
    assert presets.model_kind(other) == "random"
    assert presets.model_kind("Qwen/Qwen2.5-0.5B-Instruct") == "pretrained"
    lora, full = presets.preset("pretrained", "lora")["lr"], presets.preset("pretrained", "full")["lr"]
    assert full <= lora / 10   # full fine-tuning an order of magnitude under LoRA
    assert presets.preset("random", "lora")["method"] == "full"


def test_lr_left_out_takes_the_preset_and_a_given_lr_stays():
    cfg = RunConfig(model="m", dataset="d", method="full")
    assert cfg.lr == 0
    note = presets.resolve_lr(cfg, "/nowhere/pretrained")
    assert cfg.lr == presets.PRETRAINED_LR["full"] and note.code == "lr_from_preset_pretrained"
    cfg = RunConfig(model="m", dataset="d", method="lora")
    presets.resolve_lr(cfg, "/nowhere/tiny-demo")
    assert cfg.lr == presets.RANDOM_LR
    cfg = RunConfig(model="m", dataset="d", method="full", lr=3e-5)
    assert presets.resolve_lr(cfg, "/nowhere/x") is None and cfg.lr == 3e-5


def test_slow_learning_is_said_for_the_usual_guides_values():
    # LoRA at 5e-5 for 3 epochs of 320 rows (120 steps, cosine): unlikely to move a pretrained model;
    # at the preset it is not said; 24 cosine steps at the preset did not learn demo-tickets (0/16)
    slow = presets.slow_learning("lora", 5e-5, 120)
    assert slow is not None and slow.code == "slow_learning" and "120 steps" in str(slow)
    assert presets.slow_learning("lora", 2e-4, 120) is None
    assert presets.slow_learning("lora", 2e-4, 24) is not None
    assert presets.slow_learning("lora", 2e-4, 40, scheduler="constant") is None
    assert presets.slow_learning("full", 2e-5, 120) is None
    # on a random model the method is the problem: LoRA's output layer stays random
    assert presets.slow_learning("lora", 2e-4, 1000, "random").code == "peft_on_random"
    assert presets.slow_learning("full", 1e-3, 10, "random") is None


def test_replay_is_on_for_chat_data_on_a_pretrained_model_only():
    from tunestudio.data.formats.records import Record

    chat = [Record("f", i, messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
            for i in range(300)]
    text = [Record("f", i, text="plain") for i in range(300)]
    auto = RunConfig(model="m", dataset="d")
    assert replay.share(auto, chat, "pretrained") == replay.AUTO_SHARE
    assert replay.share(auto, chat, "random") == 0 and replay.share(auto, text, "pretrained") == 0
    assert replay.share(RunConfig(model="m", dataset="d", objective="dpo"), chat, "pretrained") == 0
    assert replay.share(RunConfig(model="m", dataset="d", replay=0), chat, "pretrained") == 0
    assert replay.count(300, 0.1) == 30 and replay.count(20, 0.1) == replay.MIN_ROWS
    assert replay.count(100_000, 0.1) == len(replay.prompts())   # no more than the prompts there are
    from tunestudio.demo.realtasks import GENERAL

    assert not {q for q, _ in GENERAL} & set(replay.prompts())   # the guard never scores a trained prompt


def test_replay_answers_are_generated_once_and_unfinished_ones_left_out(demo_ws, monkeypatch):
    ws = Workspace(demo_ws)
    calls, base, tok = prime_replay_cache(ws, monkeypatch)
    rows = replay.records(ws, base, tok, 20, seed=1)
    again = replay.records(ws, base, tok, 20, seed=1)
    assert calls == [len(replay.prompts())]          # asked once, then read from the cache
    assert [r.messages for r in rows] == [r.messages for r in again] and len(rows) == 20
    assert all(r.source == replay.SOURCE and r.messages[0]["role"] == "user" for r in rows)
    kept = {r.messages[1]["content"] for r in replay.records(ws, base, tok, 1000, seed=1)}
    assert len(kept) == len(replay.prompts()) - len(range(0, len(replay.prompts()), 10))
    assert "answer 0" not in kept                     # an answer that ran to the token limit is not trained


