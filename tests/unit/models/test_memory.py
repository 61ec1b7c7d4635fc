"""Memory estimate (counts checked against real models), the fits check, and the OOM retry."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config, Qwen3Config

from tunestudio.core.errors import UserError
from tunestudio.models import memory
from tunestudio.models.lengths import data_lengths, dataset_lengths
from tunestudio.train import oom

SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=120)


@pytest.mark.parametrize("config_cls", [LlamaConfig, Qwen2Config, Qwen3Config])
@pytest.mark.parametrize("tie", [True, False])
def test_param_count_from_config_matches_the_real_model(config_cls, tie):
    cfg = config_cls(**SMALL, tie_word_embeddings=tie)
    model = AutoModelForCausalLM.from_config(cfg)
    assert memory.count_params(cfg) == sum(p.numel() for p in model.parameters())


def test_llama_7b_count_and_a_config_folder(tmp_path):
    # The published Llama-2-7B size, from its config alone (no weights anywhere).
    cfg = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=32)
    assert memory.count_params(cfg) == 6_738_415_616
    cfg.save_pretrained(tmp_path)
    est = memory.estimate(tmp_path, method="full", batch_size=1, max_length=512)
    assert est["params"] == 6_738_415_616
    # fp32 weights, fp32 gradients, AdamW's two fp32 moments: 16 bytes per parameter before activations.
    assert est["weights"] + est["gradients"] + est["optimizer"] == 16 * 6_738_415_616
    json.dumps(est)  # recorded in events.jsonl as is


def test_config_estimate_agrees_with_the_loaded_model():
    cfg = LlamaConfig(**SMALL)
    model = AutoModelForCausalLM.from_config(cfg)
    from_cfg = memory.estimate(cfg, method="full", batch_size=2, max_length=64)
    from_model = memory.estimate(model, method="full", batch_size=2, max_length=64)
    for key in ("gradients", "optimizer", "activations"):
        assert from_cfg[key] == from_model[key], key
    # The loaded model also holds buffers (rotary frequencies): a few bytes more, nothing else.
    assert 0 <= from_model["weights"] - from_cfg["weights"] < 1024


@pytest.mark.parametrize("method", ["lora", "dora", "ia3", "prefix", "prompt"])
def test_adapter_trainable_count_from_config_matches_peft(method):
    import peft

    peft_config = {
        "lora": lambda: peft.LoraConfig(r=8, target_modules="all-linear", task_type="CAUSAL_LM"),
        "dora": lambda: peft.LoraConfig(r=8, target_modules="all-linear", use_dora=True, task_type="CAUSAL_LM"),
        "ia3": lambda: peft.IA3Config(task_type="CAUSAL_LM"),
        "prefix": lambda: peft.PrefixTuningConfig(num_virtual_tokens=10, task_type="CAUSAL_LM"),
        "prompt": lambda: peft.PromptTuningConfig(num_virtual_tokens=10, task_type="CAUSAL_LM"),
    }[method]()
    cfg = LlamaConfig(**SMALL)
    model = peft.get_peft_model(AutoModelForCausalLM.from_config(cfg), peft_config)
    from_cfg = memory.estimate(cfg, method=method, lora_rank=8, num_virtual_tokens=10, batch_size=1, max_length=32)
    from_model = memory.estimate(model, method=method, batch_size=1, max_length=32)
    assert from_cfg["trainable_params"] == from_model["trainable_params"]
    assert from_cfg["gradients"] == from_model["gradients"]
    assert from_model["assumptions"]["layers_with_grad"] == SMALL["num_hidden_layers"]


@pytest.mark.parametrize("tie", [True, False])
def test_freeze_from_config_matches_the_engine_freeze(tie):
    from tunestudio.train.methods import _freeze

    cfg = LlamaConfig(**SMALL, tie_word_embeddings=tie)
    model = _freeze(AutoModelForCausalLM.from_config(cfg), type("Cfg", (), {"freeze_layers": 1})())
    from_cfg = memory.estimate(cfg, method="freeze", freeze_trainable_layers=1, batch_size=2, max_length=32)
    from_model = memory.estimate(model, method="freeze", batch_size=2, max_length=32)
    assert from_cfg["trainable_params"] == from_model["trainable_params"]
    assert from_cfg["activations"] == from_model["activations"]
    assert from_model["assumptions"]["layers_with_grad"] == (3 if tie else 1)


def test_the_estimate_moves_the_way_memory_does():
    cfg = LlamaConfig(**SMALL)
    base = memory.estimate(cfg, batch_size=4, max_length=256)
    double = memory.estimate(cfg, batch_size=8, max_length=256)
    ckpt = memory.estimate(cfg, batch_size=4, max_length=256, grad_checkpointing=True)
    lora = memory.estimate(cfg, method="lora", batch_size=4, max_length=256)
    bf16 = memory.estimate(cfg, batch_size=4, max_length=256, precision="bf16")
    assert double["activations"] == 2 * base["activations"]
    assert ckpt["activations"] < base["activations"] and ckpt["weights"] == base["weights"]
    assert ckpt["activations"] == base["activations_if_checkpointing"]
    # (rank 16 on a 64-wide toy model is a big adapter; on real models the gap is ~100x)
    assert lora["gradients"] + lora["optimizer"] < (base["gradients"] + base["optimizer"]) / 2
    assert bf16["activations"] < base["activations"]
    assert memory.estimate(cfg, optimizer="sgd")["optimizer"] * 2 == memory.estimate(cfg)["optimizer"]
    assert memory.estimate(cfg, optimizer="adafactor")["optimizer"] < memory.estimate(cfg, optimizer="sgd")["optimizer"]
    assert memory.estimate(cfg, method="qlora")["weights"] < memory.estimate(cfg, method="lora", precision="bf16")["weights"]
    for key in ("weights", "gradients", "optimizer", "activations"):
        assert base[key] > 0
    assert base["total"] == sum(base[k] for k in ("weights", "gradients", "optimizer", "activations", "runtime"))


def test_estimate_from_a_run_config():
    from types import SimpleNamespace

    cfg = SimpleNamespace(model="x", method="lora", batch_size=4, max_length=128, precision="auto",
                          optimizer="adamw", gradient_checkpointing=True, lora_r=4, freeze_layers=2,
                          num_virtual_tokens=20)
    est = memory.estimate_for_config(cfg, LlamaConfig(**SMALL))
    direct = memory.estimate(LlamaConfig(**SMALL), method="lora", batch_size=4, max_length=128,
                             grad_checkpointing=True, lora_rank=4, precision=memory.resolve_precision("auto"))
    assert est == direct


def _rows(lengths, trained):
    """Encoded rows of the given lengths, the last `trained` tokens of each trained."""
    return [{"input_ids": list(range(n)), "labels": [-100] * (n - k) + list(range(k))} for n, k in zip(lengths, trained)]


def test_data_lengths_of_encoded_rows_list_and_memory_mapped():
    import numpy as np

    from tunestudio.data.encoding import encoded as E

    rows = _rows([30, 12, 57, 40], [5, 9, 3, 20])
    assert data_lengths(rows) == {"longest": 57, "trained": 20, "rows": 4, "checked": 4}
    table = E.batch([np.asarray(r["input_ids"]) for r in rows], [np.asarray(r["labels"]) for r in rows], [1, 2, 3, 4])
    import pyarrow as pa

    mapped = E.EncodedExamples(pa.Table.from_batches([table]))
    assert data_lengths(mapped) == data_lengths(rows)
    assert data_lengths([]) is None and data_lengths(iter(rows)) is None   # a stream: unknown


def test_the_estimate_uses_the_data_lengths_when_given():
    """Short rows (as demo-tickets: ~60 tokens, 5 trained) need far less than rows of max_length;
    the longest row sets the batch (the length-grouped sampler pads the longest batch to it), and
    max_length still caps it (rows are cut there)."""
    cfg = LlamaConfig(**SMALL)
    short = data_lengths(_rows([40, 62, 55], [5, 5, 4]))
    by_length = memory.estimate(cfg, method="lora", batch_size=8, max_length=512, precision="bf16", device="cpu")
    by_data = memory.estimate(cfg, method="lora", batch_size=8, max_length=512, precision="bf16", device="cpu",
                              lengths=short)
    assert by_data["activations"] < by_length["activations"] / 5 and by_data["total"] < by_length["total"]
    assert by_data["weights"] == by_length["weights"] and by_data["optimizer"] == by_length["optimizer"]
    a = by_data["assumptions"]
    assert (a["lengths"], a["tokens_per_row"], a["trained_per_row"]) == ("data", 62, 5)
    assert by_length["assumptions"]["lengths"] == "max_length" and by_length["assumptions"]["tokens_per_row"] == 512
    # the same tokens as max_length when the data's longest row is max_length and all of it is trained
    full = memory.estimate(cfg, batch_size=8, max_length=64, device="cpu", lengths={"longest": 64, "trained": 64})
    assert full["total"] == memory.estimate(cfg, batch_size=8, max_length=64, device="cpu")["total"]
    capped = memory.estimate(cfg, batch_size=8, max_length=32, device="cpu", lengths={"longest": 900, "trained": 900})
    assert capped["assumptions"]["tokens_per_row"] == 32
    # logits: only trained positions get them (train/trainer.py), so fewer trained tokens, less memory
    fewer = memory.estimate(cfg, batch_size=8, max_length=64, device="cpu", lengths={"longest": 64, "trained": 8})
    assert fewer["logits"] < full["logits"] and fewer["activations"] < full["activations"]


def test_cpu_estimate_counts_the_process_and_cuda_does_not():
    cfg = LlamaConfig(**SMALL)
    cpu = memory.estimate(cfg, method="lora", batch_size=4, max_length=64, device="cpu")
    gpu = memory.estimate(cfg, method="lora", batch_size=4, max_length=64, device="cuda")
    assert cpu["runtime"] == memory.RUNTIME_CPU and gpu["runtime"] == 0
    assert cpu["activations"] > gpu["activations"]   # the CPU allocator's slack
    assert "process and libraries" in memory.breakdown(cpu) and "process" not in memory.breakdown(gpu)
    assert (cpu["assumptions"]["device"], gpu["assumptions"]["device"]) == ("cpu", "cuda")


def test_weights_as_the_engine_loads_them():
    """LoRA/DoRA under bf16 keep the frozen base in bf16 (model_source.base_dtype); full training
    keeps fp32 weights and, under bf16 autocast, a bf16 copy of every matrix the forward multiplies."""
    from types import SimpleNamespace

    from tunestudio.train.model_source import base_dtype

    cfg = LlamaConfig(**SMALL)
    n = memory.count_params(cfg)
    for method, precision in (("lora", "bf16"), ("lora", "fp32"), ("full", "bf16"), ("ia3", "bf16")):
        run = SimpleNamespace(method=method, precision=precision)
        est = memory.estimate(cfg, method=method, precision=precision)
        expected = 2 if str(base_dtype(run)) == "torch.bfloat16" else 4
        assert est["assumptions"]["weights_dtype"] == ("bf16" if expected == 2 else "fp32"), (method, precision)
        assert est["weights"] - est["assumptions"]["autocast_weight_copies"] == expected * n
    full_bf16 = memory.estimate(cfg, method="full", precision="bf16")
    assert full_bf16["assumptions"]["autocast_weight_copies"] > 0
    assert memory.estimate(cfg, method="full", precision="fp32")["assumptions"]["autocast_weight_copies"] == 0


def test_estimate_settings_is_the_run_config_estimate():
    """What the web UI and bench-models show is the engine's estimate for the same config."""
    from tunestudio.config.run_config import RunConfig

    cfg = LlamaConfig(**SMALL)
    lengths = {"longest": 40, "trained": 6}
    shown = memory.estimate_settings(cfg, lengths=lengths, method="lora", batch_size=4, max_length=128,
                                     precision="auto", lora_r=None)
    run = memory.estimate_for_config(RunConfig(model="x", method="lora", batch_size=4, max_length=128), cfg,
                                     lengths=lengths)
    assert shown == run
    with pytest.raises(TypeError, match="unknown setting"):
        memory.estimate_settings(cfg, batch=4)


def test_the_model_tab_and_the_training_tab_show_the_same_figure(demo_ws):
    """Same model, method, batch size, max length and precision: the Model tab's table and the
    Training tab's text give the same total (one function: memory.estimate_settings), and a
    dataset of short rows makes the Training tab's figure smaller than rows of max_length."""
    from tunestudio.core.workspace import Workspace
    from tunestudio.webui.tabs.model import memory_rows
    from tunestudio.webui.tabs.training.tab import memory_text

    ws = Workspace(demo_ws)
    table = memory_rows(ws, "en", "tiny-demo", 4, 256)
    for method in ("full", "lora", "prompt"):
        row = table[table["method"] == method].iloc[0]
        text = memory_text(ws, "en", "tiny-demo", method, 4, 256, "auto", False, 16)
        assert f"Memory estimate: about {row['total memory']} (weights {row['weights']}" in text, (method, row, text)
        assert "For batches of 4 rows of 256 tokens" in text
    with_data = memory_text(ws, "en", "tiny-demo", "lora", 4, 256, "auto", False, 16, dataset="demo-tickets.jsonl")
    assert "For the longest batch of demo-tickets.jsonl: 4 rows of " in with_data, with_data
    tokens = int(with_data.split("4 rows of ")[1].split(" tokens")[0])
    assert 10 < tokens < 256
    est = memory.estimate_settings(ws.model_path_or_id("tiny-demo"), method="lora", batch_size=4, max_length=256,
                                   precision="auto", lengths=dataset_lengths(ws, "demo-tickets.jsonl",
                                                                                    "tiny-demo", 256))
    assert est["total"] < memory.estimate_settings(ws.model_path_or_id("tiny-demo"), method="lora", batch_size=4,
                                                   max_length=256, precision="auto")["total"]
    assert memory.human_bytes(est["total"]) in with_data


def test_bench_models_estimate_is_the_same_function(demo_ws):
    from transformers import AutoModelForCausalLM

    from tunestudio.core.workspace import Workspace
    from tunestudio.evaluate.bench import _memory

    path = Workspace(demo_ws).model_path_or_id("tiny-demo")
    model = AutoModelForCausalLM.from_pretrained(path)
    got = _memory(model)
    for method in ("full", "lora"):
        assert got[f"train_memory_{method}"] == memory.estimate_settings(path, method=method, precision="auto")["total"]


def test_unknown_architecture_from_config_is_a_user_error():
    with pytest.raises(UserError, match="load the model"):
        memory.count_params({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 100})
    with pytest.raises(UserError, match="no config.json"):
        memory.estimate(str(__import__("pathlib").Path(__file__).parent))


def test_check_fits_refuses_with_numbers_and_advice():
    cfg = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                      num_attention_heads=32)
    est = memory.estimate(cfg, method="full", batch_size=4, max_length=2048, precision="bf16")
    ok, msg = memory.check_fits(est, 24 * 2**30, device="cuda:0")
    assert not ok
    assert "24.0 GiB is available on cuda:0" in msg and "GiB (weights" in msg
    for tip in ("--method lora", "gradient checkpointing", "--max-length", "--batch-size", "QLoRA"):
        assert tip in msg
    ok, msg = memory.check_fits(est, est["total"] * 2)
    assert ok and "needs about" in msg
    ok, msg = memory.check_fits(est, int(est["total"] / 1.05))  # over, but within the margin
    assert ok and "tight" in msg


def test_available_cpu_memory():
    avail = memory.available_memory("cpu")
    with open("/proc/meminfo") as f:
        total_kb = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
    assert 0 < avail <= total_kb * 1024
    assert memory.human_bytes(1536) == "1.5 KiB" and memory.human_bytes(3 * 2**30) == "3.0 GiB"


# ---- OOM retry --------------------------------------------------------------------------------

class FakeTraining:
    """Runs out of CUDA memory whenever the micro-batch exceeds `fits`."""

    def __init__(self, fits: int):
        self.fits, self.calls = fits, []

    def __call__(self, micro_batch, grad_accum):
        self.calls.append((micro_batch, grad_accum))
        if micro_batch > self.fits:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {micro_batch} GiB")
        return {"status": "completed", "micro_batch": micro_batch}


def test_oom_retry_halves_the_micro_batch_and_keeps_the_effective_batch():
    fake, events = FakeTraining(fits=2), []
    result = oom.run_with_oom_retry(fake, 8, 2, events.append)
    assert result == {"status": "completed", "micro_batch": 2}
    assert fake.calls == [(8, 2), (4, 4), (2, 8)]
    assert [(e["new_micro_batch"], e["new_grad_accum"]) for e in events] == [(4, 4), (2, 8)]
    assert all(e["effective_batch"] == 16 for e in events)
    assert events[0]["attempt"] == 1 and "OutOfMemoryError" in events[0]["error"]
    json.dumps(events)


def test_oom_retry_gives_up_at_one_with_advice():
    fake, events = FakeTraining(fits=0), []
    with pytest.raises(UserError) as err:
        oom.run_with_oom_retry(fake, 6, 1, events.append, method="full", max_length=1024)
    assert fake.calls == [(6, 1), (3, 2), (1, 6)]
    msg = str(err.value)
    assert "micro-batch of 1" in msg and "--method lora" in msg and "QLoRA" in msg and "(now 1024)" in msg
    assert len(events) == 2


def test_other_errors_are_not_retried():
    calls = []

    def broken(mb, ga):
        calls.append(mb)
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        oom.run_with_oom_retry(broken, 8, 1)
    assert calls == [8]
    assert oom.is_oom(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert not oom.is_oom(RuntimeError("shape mismatch"))


@pytest.mark.parametrize("mb,ga,expected", [(8, 1, (4, 2)), (6, 1, (3, 2)), (5, 1, (1, 5)), (3, 2, (1, 6)), (1, 4, (1, 4))])
def test_smaller_micro_batch_keeps_the_product(mb, ga, expected):
    assert oom.smaller_micro_batch(mb, ga) == expected
