"""What the tests put into a workspace, and read back from one.

- a tiny Llama to train for a few steps (make_tiny_ws, tiny_config; conftest's tiny_template and
  tiny_ws fixtures copy it per test), and a tokenizer-only model that counts words (make_tiny_model);
- runs as the registry and the run folders hold them (add_run with SPLIT; events, get_run).
"""

from __future__ import annotations

import json
from pathlib import Path

from tunestudio.config.run_config import RunConfig
from tunestudio.core import registry
from tunestudio.core.workspace import Workspace

N_ROWS = 48


def make_tiny_ws(demo_template: Path, root: Path, rows: int = N_ROWS) -> Workspace:
    """A workspace with models/tiny (hidden 32, 2 layers, the demo tokenizer) and tiny.jsonl
    (the first rows of the demo classification task)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    ws = Workspace(root).ensure()
    src = demo_template / "models" / "tiny-demo"
    tok = AutoTokenizer.from_pretrained(src)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(ws.models_dir / "tiny")
    tok.save_pretrained(ws.models_dir / "tiny")
    lines = (demo_template / "training" / "datasets" / "demo-reviews.jsonl").read_text().splitlines()
    (ws.datasets_dir / "tiny.jsonl").write_text("\n".join(lines[:rows]) + "\n")
    return ws


def tiny_config(**overrides) -> RunConfig:
    values = dict(model="tiny", dataset="tiny.jsonl", max_steps=12, batch_size=8, max_length=64,
                  logging_steps=1, val_split=0.15, test_split=0.0, eval_steps=6, lora_r=4,
                  num_virtual_tokens=4, freeze_layers=1, seed=1)
    values.update(overrides)
    return RunConfig(**values)


def make_tiny_model(folder: Path) -> Path:
    """A word-level tokenizer (one token per word or punctuation mark) saved as a model folder,
    with a chat template that adds one "<role>" token per message."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", model_max_length=64)
    fast.chat_template = "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
    folder.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return folder


# ---- runs: the registry's rows and a run folder's events -------------------------------------------

SPLIT = {"dataset": "reviews.jsonl", "format": "messages", "val_split": 0.1, "test_split": 0.1, "seed": 42,
         "hash": "abc123", "files": {"all": {"name": "reviews.jsonl", "rows": 10, "sha256": "f" * 64,
                                             "path": "training/datasets/reviews.jsonl"}},
         "rows": {"train": [f"all:{i}" for i in range(1, 9)], "val": ["all:9"], "test": ["all:10"]}}


def add_run(conn, run_id, name, status="completed", parent=None, t=0.0, **extra):
    values = dict(id=run_id, name=name, status=status, created_at=1_700_000_000 + t,
                  started_at=1_700_000_000 + t, finished_at=1_700_000_060 + t,
                  base_model="/ws/models/tiny-demo", method="lora", dataset="reviews.jsonl",
                  dataset_hash="abc123", split=SPLIT, parent_id=parent,
                  config={"model": "tiny-demo", "method": "lora", "lr": 1e-3, "epochs": 1.0, "name": name},
                  metrics={"steps": 20, "train_loss": 2.5, "eval_loss": 2.7, "best_step": 20})
    values.update(extra)
    registry.insert_run(conn, **values)


def events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "events.jsonl").read_text().splitlines()]


def get_run(ws: Workspace, run_id: str) -> dict:
    conn = registry.connect(ws.db_path)
    try:
        return registry.get_run(conn, run_id)
    finally:
        conn.close()
