"""Every fine-tuning method trains a tiny Llama for a few steps: the loss falls, and what is saved
loads again in plain transformers / peft (an adapter merges into a plain model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from workspaces import tiny_config

from tunestudio.core.errors import UserError
from tunestudio.train.config_check import validate
from tunestudio.train.run import train

pytestmark = pytest.mark.usefixtures("one_thread")


# Per method: a learning rate at which 12 steps clearly move the held-out loss of this random tiny
# model, and by how much at least. Prompt tuning can only steer the input of a random network whose
# output layer stays random, so its loss moves least.
METHODS = {"full": (3e-3, 0.1), "freeze": (3e-3, 0.1), "lora": (1e-2, 0.1), "dora": (1e-2, 0.1),
           "ia3": (0.3, 0.03), "prefix": (0.3, 0.03), "prompt": (0.3, 0.03)}


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits[:, -ids.shape[1]:]


@pytest.mark.parametrize("method", list(METHODS))
def test_method_trains_saves_and_reloads(tiny_ws, method):
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM

    lr, min_drop = METHODS[method]
    result = train(tiny_config(method=method, lr=lr, num_virtual_tokens=16), tiny_ws)
    assert result["status"] == "completed"
    m = result["metrics"]
    assert m["steps"] == 12
    # the held-out loss fell (per-step training losses of 8-row batches are too noisy to compare)
    assert m["eval_loss"] < m["initial_eval_loss"] - min_drop, m
    assert m["best_step"] > 0

    final = Path(result["output_dir"])
    ids = torch.tensor([[1, 3, 20, 30, 40, 50]])
    base = AutoModelForCausalLM.from_pretrained(tiny_ws.models_dir / "tiny")
    if method in ("full", "freeze"):
        assert (final / "model.safetensors").is_file() and not (final / "adapter_config.json").exists()
        tuned = AutoModelForCausalLM.from_pretrained(final)
        assert json.loads((final / "config.json").read_text())["use_cache"] is True
    else:
        assert (final / "adapter_config.json").is_file() and (final / "adapter_model.safetensors").is_file()
        tuned = AutoPeftModelForCausalLM.from_pretrained(final)
        if method in ("lora", "dora", "ia3"):
            merged = tuned.merge_and_unload()
            assert type(merged).__name__ == "LlamaForCausalLM"
            torch.testing.assert_close(logits(merged, ids), logits(tuned, ids), atol=1e-4, rtol=1e-4)
    assert (final / "tokenizer.json").is_file()
    assert not torch.allclose(logits(tuned, ids), logits(base, ids))  # training changed the model
    if method == "freeze":  # only the last block and the head were trained
        first = "model.layers.0.self_attn.q_proj.weight"
        assert torch.equal(tuned.state_dict()[first], base.state_dict()[first])


def test_qlora_off_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UserError, match="qlora needs a CUDA GPU"):
        validate(tiny_config(method="qlora"))


def test_lora_target_modules_list(tiny_ws):
    result = train(tiny_config(method="lora", lr=1e-2, target_modules="q_proj,v_proj", max_steps=2,
                               val_split=0.0), tiny_ws)
    adapter = json.loads((Path(result["output_dir"]) / "adapter_config.json").read_text())
    assert sorted(adapter["target_modules"]) == ["q_proj", "v_proj"]
    assert "eval_loss" not in result["metrics"] and result["metrics"]["best_step"] == 2


def test_training_that_changes_nothing_is_reported(tiny_ws):
    result = train(tiny_config(method="lora", lr=1e-12, max_steps=3, val_split=0.0), tiny_ws)
    assert result["status"] == "completed"
    assert {"no_change", "adapter_unchanged"} <= set(result["metrics"]["warnings"])
    run_dir = tiny_ws.runs_dir / result["run_id"]
    codes = [json.loads(line).get("code") for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert "adapter_unchanged" in codes
    # the warning carries its numbers as fields, so the web UI says it in its own language
    from tunestudio.webui.i18n.texts import engine_warning

    event = next(json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()
                 if json.loads(line).get("code") == "no_change")
    assert event["first"] in event["message"] and event["last"] in event["message"]
    assert engine_warning("tet", event).startswith(f"perda treinamentu kuaze la muda ({event['first']} -> {event['last']})")
