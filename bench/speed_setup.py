"""The train-speed benchmark's fixed inputs: the random Llama and its shapes, the chat rows, the
hyper-parameters both sides use, and this machine's matmul peak (the MFU denominator).

bench/train_speed.py and bench/profile_train.py build the same workspace from here, so a profile
explains the benchmark's numbers and not those of another setup.
"""

from __future__ import annotations

import json
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


def setup(work: Path, shape: str = "small") -> dict:
    """A workspace with the demo tokenizer, the benchmark model and the datasets."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from tunestudio.demo import make_demo
    from tunestudio.core.workspace import Workspace

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
    rows = make_rows(2000 + HELD_OUT, seed=7, tokenizer=tok)
    for name, part in (("bench-chat.jsonl", rows[:2000]), ("bench-heldout.jsonl", rows[2000:])):
        (ws.datasets_dir / name).write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    lengths = sorted(len(tok.apply_chat_template(r["messages"], tokenize=True)["input_ids"]) for r in rows[:2000])
    total = sum(p.numel() for p in model.parameters())
    non_embedding = total - model.get_input_embeddings().weight.numel()
    return {"ws": str(ws.root), "model": str(folder), "params": total, "non_embedding_params": non_embedding,
            "lengths": {"min": lengths[0], "median": lengths[len(lengths) // 2], "max": lengths[-1],
                        "mean": round(sum(lengths) / len(lengths), 1)}}


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
