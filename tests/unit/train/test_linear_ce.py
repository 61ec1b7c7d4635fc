"""train/linear_ce.py: the output layer and the cross-entropy a chunk of positions at a time. It must
give the loss, the correct count and every gradient of the plain path (all logits at once), over
several chunks, with and without bias, for a frozen head (LoRA) and a trained one (full fine-tuning),
and TuneTrainer must use it only where the model applies nothing after its head."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from tunestudio.train import linear_ce
from tunestudio.train.trainer import plain_head


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(linear_ce, "CHUNK_ELEMENTS", 7 * 300)   # 7 rows a chunk: 50 rows are 8 chunks


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("train_head", [False, True])
def test_same_loss_count_and_gradients_as_all_logits(small_chunks, bias, train_head):
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 300, bias=bias).requires_grad_(train_head)
    hidden = torch.randn(50, 16, requires_grad=True)
    targets = torch.randint(0, 300, (50,))
    logits = head(hidden)
    plain = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
    wrt = [hidden] + ([p for p in head.parameters()] if train_head else [])
    expected = torch.autograd.grad(plain * 0.25, wrt)
    loss, correct = linear_ce.linear_cross_entropy(hidden, head, targets)
    got = torch.autograd.grad(loss * 0.25, wrt)
    assert torch.allclose(loss, plain, rtol=1e-5)
    assert int(correct) == int((logits.argmax(-1) == targets).sum())
    for e, g in zip(expected, got):
        assert g.dtype == e.dtype and torch.allclose(g, e, rtol=1e-4, atol=1e-6)


def test_bf16_autocast_matches_the_plain_path(small_chunks):
    torch.manual_seed(0)
    head = torch.nn.Linear(32, 300, bias=False).to(torch.bfloat16).requires_grad_(False)
    hidden = torch.randn(40, 32, dtype=torch.bfloat16, requires_grad=True)
    targets = torch.randint(0, 300, (40,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = torch.nn.functional.cross_entropy(head(hidden).float(), targets, reduction="sum")
        loss, _ = linear_ce.linear_cross_entropy(hidden, head, targets)
    (expected,) = torch.autograd.grad(plain, [hidden])
    (got,) = torch.autograd.grad(loss, [hidden])
    assert torch.allclose(loss, plain, rtol=1e-4)
    assert got.dtype == torch.bfloat16 and torch.allclose(got.float(), expected.float(), rtol=2e-2, atol=1e-3)


def test_no_gradient_work_under_no_grad(small_chunks):
    head = torch.nn.Linear(8, 300)
    with torch.no_grad():
        loss, correct = linear_ce.linear_cross_entropy(torch.randn(20, 8), head, torch.randint(0, 300, (20,)))
    assert loss.requires_grad is False and loss > 0 and 0 <= int(correct) <= 20


def test_fused_only_where_nothing_follows_the_head():
    assert plain_head(SimpleNamespace(config=SimpleNamespace(model_type="llama")))
    assert plain_head(SimpleNamespace(config=SimpleNamespace(logit_scale=None)))
    assert not plain_head(SimpleNamespace(config=SimpleNamespace(final_logit_softcapping=30.0)))   # Gemma 2
    assert not plain_head(SimpleNamespace(config=SimpleNamespace(logits_scaling=8.0)))             # Granite
    assert not plain_head(SimpleNamespace())                                                        # no config


def test_engine_trains_the_same_adapter_with_and_without_it(demo_ws, monkeypatch):
    from safetensors.torch import load_file

    from tunestudio.config.run_config import RunConfig
    from tunestudio.core.workspace import Workspace
    from tunestudio.train import run as engine
    from tunestudio.train.trainer import TuneTrainer

    adapters, losses = [], []
    for fused in (True, False):
        monkeypatch.setattr(TuneTrainer, "fused_loss", fused)
        cfg = RunConfig(model="tiny-demo", dataset="demo-reviews.jsonl", method="lora", max_steps=3, batch_size=4,
                        max_length=64, val_split=0.0, test_split=0.0, seed=3, name=f"fused-{fused}", lr=1e-3)
        result = engine.train(cfg, Workspace(demo_ws))
        assert result["status"] == "completed"
        adapters.append(load_file(f"{result['output_dir']}/adapter_model.safetensors"))
        losses.append(result["metrics"].get("train_loss"))
    assert losses[0] is not None and losses[0] == pytest.approx(losses[1], rel=1e-4)
    for name in adapters[0]:
        assert torch.allclose(adapters[0][name], adapters[1][name], rtol=1e-3, atol=1e-6), name
