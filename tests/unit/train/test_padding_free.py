"""Padding-free batches (train/attention.py): a micro-batch packed into one row trains exactly as
the padded batch does (same targets, same loss, same gradients), rows never see each other, and a
model whose attention would mix packed rows is caught before training."""

from __future__ import annotations

import json

import pytest
import torch

from tunestudio.config.run_config import RunConfig
from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.train import attention
from tunestudio.train import run as engine
from tunestudio.train.batching import IGNORE, FlatCollator, PadCollator
from tunestudio.train.config_check import validate


def _rows():
    # labels: the prompt masked, the answer trained (as data/encoding/encode.py makes them)
    return [{"input_ids": [5, 6, 7, 8, 9], "labels": [IGNORE, IGNORE, 7, 8, 9]},
            {"input_ids": [10, 11, 12], "labels": [10, 11, 12]},    # a text block: every token trained
            {"input_ids": [13, 14, 15, 16], "labels": [IGNORE, 14, 15, 16]}]


def test_flat_collator_packs_rows_with_restarting_positions():
    batch = FlatCollator()(_rows())
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3]]
    # each row's first label is dropped, so row 1's last token does not learn to predict row 2's first
    assert batch["labels"].tolist() == [[IGNORE, IGNORE, 7, 8, 9, IGNORE, 11, 12, IGNORE, 14, 15, 16]]
    assert "attention_mask" not in batch   # transformers reads packing from position_ids only without one


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, use_cache=False)
    return LlamaForCausalLM(config).float()


def test_packed_batch_gives_the_padded_loss_and_gradients():
    model = _tiny_llama()
    padded, flat = PadCollator(pad_id=0)(_rows()), FlatCollator()(_rows())

    def loss_and_grads(batch):
        model.zero_grad()
        loss = model(**batch).loss   # mean over the trained targets
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters()]

    loss_p, grads_p = loss_and_grads(padded)
    loss_f, grads_f = loss_and_grads(flat)
    assert loss_f == pytest.approx(loss_p, rel=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in zip(grads_p, grads_f))


def test_a_model_that_mixes_packed_rows_is_caught(monkeypatch):
    model = _tiny_llama()
    assert attention.packs_correctly(model, token_id=3)
    # an attention that ignores the restarts (as a model with its own mask code may): rows see each other
    import transformers.masking_utils as mu

    monkeypatch.setattr(mu, "find_packed_sequence_indices", lambda position_ids: None)
    assert not attention.packs_correctly(model, token_id=3)
    on = RunConfig(model="m", dataset="d", padding_free="on")
    with pytest.raises(UserError, match="does not keep packed rows apart"):
        attention.resolve(on, model, 3)
    auto = RunConfig(model="m", dataset="d", padding_free="auto")
    monkeypatch.setattr(attention, "flash_attention_available", lambda: True)   # as on a CUDA machine
    assert attention.resolve(auto, model, 3) == (False, "padded batches: this llama model's attention does not "
                                                        "keep packed rows apart (position_ids restarts are ignored)")


def test_padding_free_is_off_on_a_cpu_by_default_and_refused_where_it_cannot_work():
    assert not attention.wanted(RunConfig(model="m", dataset="d"))   # auto: no CUDA + flash-attn here
    assert attention.wanted(RunConfig(model="m", dataset="d", padding_free="on"))
    with pytest.raises(UserError, match="--padding-free on: packed batches are for the sft objective"):
        validate(RunConfig(model="m", dataset="d", padding_free="on", objective="dpo"))
    with pytest.raises(UserError, match="--method prompt puts virtual tokens"):
        validate(RunConfig(model="m", dataset="d", padding_free="on", method="prompt"))
    with pytest.raises(UserError, match="unknown padding_free 'yes'"):
        validate(RunConfig(model="m", dataset="d", padding_free="yes"))


def test_a_padding_free_run_trains_like_the_padded_one(demo_ws):
    ws = Workspace(demo_ws)
    results = {}
    for mode in ("off", "on"):
        cfg = RunConfig(model="tiny-demo", dataset="demo-reviews.jsonl", method="lora", max_steps=6, batch_size=4,
                        max_length=64, val_split=0.1, test_split=0.0, eval_steps=6, logging_steps=1, seed=3,
                        precision="fp32", lora_dropout=0.0, padding_free=mode, name=f"pf-{mode}")
        results[mode] = engine.train(cfg, ws)
        assert results[mode]["status"] == "completed"

    def losses(result):
        events = [json.loads(line) for line in (ws.runs_dir / result["run_id"] / "events.jsonl").open()]
        return ([e["loss"] for e in events if e.get("type") == "train"],
                [e["eval_loss"] for e in events if "eval_loss" in e])

    (train_off, eval_off), (train_on, eval_on) = losses(results["off"]), losses(results["on"])
    assert len(train_on) == len(train_off) == 6 and eval_on
    assert train_on == pytest.approx(train_off, rel=1e-4)
    assert eval_on == pytest.approx(eval_off, rel=1e-4)
    # every token of a packed row is a real token: the same count the padded run calls non-padding
    assert results["on"]["metrics"]["tokens_seen"] == results["off"]["metrics"]["tokens_seen"]
