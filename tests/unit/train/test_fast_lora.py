"""train/fast_lora.py: LoRA's training forward with one dropout mask per shared input. It must
train the same adapter as peft's forward (same loss and gradients without dropout, peft's own
output in eval), drop each input element with the configured probability, share one mask between
the modules that read the same tensor (q/k/v, gate/up) and none between others, and leave every
other kind of adapter to peft."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from tunestudio.train import fast_lora


def _pair(dropout: float, **lora):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    # init_lora_weights=False: B is random too, so the branch changes the output from step 0
    peft_model = get_peft_model(LlamaForCausalLM(config), LoraConfig(
        task_type="CAUSAL_LM", r=8, lora_alpha=16, lora_dropout=dropout, target_modules="all-linear",
        init_lora_weights=False, **lora))
    fast = copy.deepcopy(peft_model)
    return peft_model, fast, fast_lora.install(fast)


def _loss_and_grads(model, ids):
    model.train()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad}


def test_same_loss_and_gradients_as_peft_without_dropout():
    peft_model, fast, converted = _pair(0.0)
    assert converted == 14          # 7 linear layers x 2 blocks
    ids = torch.randint(0, 100, (3, 17))
    loss_a, grads_a = _loss_and_grads(peft_model, ids)
    loss_b, grads_b = _loss_and_grads(fast, ids)
    assert torch.allclose(loss_a, loss_b, rtol=1e-6)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert torch.allclose(grads_a[name], grads_b[name], rtol=1e-4, atol=1e-6), name


def test_eval_and_disabled_adapter_give_peft_outputs():
    peft_model, fast, _ = _pair(0.1)
    ids = torch.randint(0, 100, (2, 9))
    peft_model.eval()
    fast.eval()
    with torch.no_grad():
        assert torch.allclose(peft_model(input_ids=ids).logits, fast(input_ids=ids).logits, atol=1e-6)
        with fast.disable_adapter(), peft_model.disable_adapter():
            assert torch.allclose(peft_model(input_ids=ids).logits, fast(input_ids=ids).logits, atol=1e-6)


def test_dropout_rate_and_unbiased_branch():
    drop = fast_lora.SharedDropout()
    x = torch.ones(1000, 1000)
    dropped, p_used = drop(x, 0.05)
    assert abs(p_used - 0.05) < 1 / 65536
    assert abs(float((dropped == 0).float().mean()) - 0.05) < 0.002
    # the 1/(1-p) rescale is folded into the B scaling: dropped / (1 - p) keeps the mean
    assert abs(float(dropped.mean()) / (1 - p_used) - 1.0) < 0.003


def test_one_mask_per_input_tensor():
    drop = fast_lora.SharedDropout()
    x, other = torch.randn(64, 32), torch.randn(64, 32)
    first, _ = drop(x, 0.3)
    again, _ = drop(x, 0.3)                 # k_proj after q_proj: the same tensor
    assert again is first
    fresh, _ = drop(other, 0.3)             # o_proj: another tensor, another mask
    assert fresh is not first and not torch.equal(fresh == 0, first == 0)
    x.mul_(2)                               # changed in place since: not the same input any more
    assert drop(x, 0.3)[0] is not first


def test_siblings_share_the_mask_in_a_model():
    _, fast, _ = _pair(0.5)
    seen = {}

    def keep(name):
        def hook(module, args, out):
            seen[name] = module.shared_dropout.dropped
        return hook

    attn = fast.base_model.model.model.layers[0].self_attn
    mlp = fast.base_model.model.model.layers[0].mlp
    for name, module in (("q", attn.q_proj), ("k", attn.k_proj), ("v", attn.v_proj), ("o", attn.o_proj),
                         ("gate", mlp.gate_proj), ("up", mlp.up_proj)):
        module.register_forward_hook(keep(name))
    fast.train()
    fast(input_ids=torch.randint(0, 100, (2, 9)))
    assert seen["q"] is seen["k"] is seen["v"]
    assert seen["gate"] is seen["up"]
    assert seen["o"] is not seen["q"] and seen["gate"] is not seen["q"]


@pytest.mark.parametrize("lora", [dict(use_dora=True)])
def test_other_adapters_keep_peft_forward(lora):
    _, fast, converted = _pair(0.1, **lora)
    assert converted == 0
    assert not any(isinstance(m, fast_lora.FastLoraLinear) for m in fast.modules())


def test_zero3_partitioned_weights_take_peft_forward():
    peft_model, fast, _ = _pair(0.0)
    module = fast.base_model.model.model.layers[0].self_attn.q_proj
    module.lora_A["default"].weight.ds_id = 7      # how DeepSpeed ZeRO-3 marks a partitioned weight
    assert module._plain_adapter((), {}) is None
    del module.lora_A["default"].weight.ds_id
    assert module._plain_adapter((), {}) == "default"
