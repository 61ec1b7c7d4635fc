"""Runs made without training, for the evaluation tests that do not need a learnt model.

A "run" here is what the training engine leaves on disk: training/runs/<id>/{config.yaml,
split.json, final/}, where final/ is a full model or a peft adapter plus the tokenizer. The
adapter's LoRA B matrices are filled with noise, so the adapter really changes the output (a
fresh LoRA adapter is a no-op, which would make merge checks pass vacuously).

Also what the export tests ask such a run and its export (REVIEW_PROMPTS, plain_greedy), and the
blind A/B rating sessions of the ratings tests (rating_session).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml


def _split_info(ws_root: Path, dataset: str) -> dict:
    from tunestudio.core.workspace import Workspace
    from tunestudio.data.split import load_splits

    return load_splits(Workspace(ws_root), dataset).info


def make_full_run(ws_root: Path, run_id: str = "full-run", dataset: str = "demo-reviews.jsonl") -> Path:
    """A 'full' run whose final weights are the demo model itself."""
    run = Path(ws_root) / "training" / "runs" / run_id
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"model": "tiny-demo", "method": "full", "dataset": dataset}))
    (run / "split.json").write_text(json.dumps(_split_info(ws_root, dataset)))
    shutil.copytree(Path(ws_root) / "models" / "tiny-demo", run / "final")
    return run


def make_adapter_run(ws_root: Path, run_id: str = "lora-run", dataset: str = "demo-reviews.jsonl",
                     seed: int = 0) -> Path:
    """A 'lora' run on the demo model with a random (non-zero) adapter."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = Path(ws_root) / "models" / "tiny-demo"
    run = Path(ws_root) / "training" / "runs" / run_id
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"model": "tiny-demo", "method": "lora", "dataset": dataset,
                                                     "lora_r": 8, "lr": 0.001, "epochs": 1}))
    (run / "split.json").write_text(json.dumps(_split_info(ws_root, dataset)))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"],
                                             task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    model.save_pretrained(run / "final")
    AutoTokenizer.from_pretrained(str(base_dir)).save_pretrained(run / "final")
    return run


def make_model(folder: Path, tokenizer_from: Path, hidden: int, layers: int, seed: int = 0) -> Path:
    """A random Llama of the given size sharing the demo tokenizer (for bench-models)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(tokenizer_from))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                      max_position_embeddings=512, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def loss_by_hand(model, tok, texts, length, stride):
    """Total nll and tokens, written out independently: tokens + eos per document, joined, block k
    starting at k * (length - stride), its first `stride` labels masked after the first block."""
    import torch

    stream = []
    for t in texts:
        stream += tok(t, add_special_tokens=True)["input_ids"] + [tok.eos_token_id]
    total, count, start, k = 0.0, 0, 0, 0
    while True:
        block = stream[start:start + length]
        if k and len(block) <= stride:
            break
        x = torch.tensor([block])
        labels = x.clone()
        if k:
            labels[0, :stride] = -100
        n = int((labels[0, 1:] != -100).sum())
        if n:
            with torch.no_grad():
                total += model(input_ids=x, labels=labels).loss.item() * n
            count += n
        if start + length >= len(stream):
            break
        start, k = start + length - stride, k + 1
    return total, count, len(stream)


REVIEW_PROMPTS = ["The kettle is great.", "My lamp broke on day one.", "It is fine, I guess."]


def plain_greedy(folder, prompts, n=12):
    """Greedy answers with nothing but transformers (what a user of the export would run)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    out = []
    for p in prompts:
        enc = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)
        with torch.no_grad():
            seq = model.generate(**enc, max_new_tokens=n, do_sample=False)
        out.append(tok.decode(seq[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return out, model


RATING_PROMPTS = [f"question {i}" for i in range(8)]
BASE_ANSWERS = [f"base answer {i}" for i in range(8)]
TUNED_ANSWERS = [f"tuned answer {i}" for i in range(8)]


def rating_session(ws, seed: int = 3) -> int:
    """A blind A/B session 'demo' of RATING_PROMPTS: BASE_ANSWERS (base:run1) against TUNED_ANSWERS (run:run1)."""
    from tunestudio.evaluate import ratings

    return ratings.create_session(ws, RATING_PROMPTS, "base:run1", "run:run1", name="demo", seed=seed,
                                  outputs_a=BASE_ANSWERS, outputs_b=TUNED_ANSWERS)
