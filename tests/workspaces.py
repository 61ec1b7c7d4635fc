"""What the tests put into a workspace, and read back from one.

- a tiny Llama to train for a few steps (make_tiny_ws, tiny_config; conftest's tiny_template and
  tiny_ws fixtures copy it per test), and a tokenizer-only model that counts words (make_tiny_model);
- runs as the registry and the run folders hold them (add_run with SPLIT; events, get_run), and a
  job put on the queue as the UI puts one, with any command (queue_job);
- what `tunestudio demo` puts in datasets/ (DEMO_DATASETS, DEMO_PROMPT_SETS, DEMO_PREFERENCE);
- data made for one concept: links leading out of the workspace (link_outside, SECRET), preference
  pairs and KTO rows from tiny.jsonl (pairs_file), canned answers in the replay cache (prime_replay_cache).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tunestudio.config.run_config import RunConfig
from tunestudio.core import registry
from tunestudio.core.workspace import Workspace
from tunestudio.jobs import queue as jobs

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


# ---- data made for one concept --------------------------------------------------------------------


def queue_job(ws: Workspace, name: str, command: list[str]) -> jobs.Job:
    """Queue a job that runs `command` (the queue starts it at once when nothing else runs); returns it as
    the queue then sees it."""
    job_id = f"test-{name}-{time.time_ns()}"
    job = jobs.Job(id=job_id, config_path="", name=name, log_path=str(jobs.jobs_dir(ws) / f"{job_id}.log"),
                   command=command)
    with jobs._locked(ws) as all_jobs:
        all_jobs.append(job)
    jobs.advance(ws)
    return jobs.get_job(ws, job_id)

SECRET = "root-password-hash-do-not-leak"


def link_outside(root: Path) -> tuple[Workspace, Path, Path]:
    """A data file and a model folder outside the workspace, and links to them inside it:
    (the workspace at root/ws, the secret file, the model folder)."""
    secret = root / "outside" / "secret.jsonl"
    secret.parent.mkdir()
    secret.write_text(json.dumps({"text": SECRET}) + "\n")
    model = root / "outside" / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    ws = Workspace(root / "ws").ensure()
    (ws.datasets_dir / "passwd.jsonl").symlink_to(secret)
    (ws.datasets_dir / "link.train.jsonl").symlink_to(secret)  # a split set through a link, too
    (ws.models_dir / "evil").symlink_to(model)
    (ws.datasets_dir / "mine.jsonl").write_text(json.dumps({"text": "hello"}) + "\n")
    return ws, secret, model


def pairs_file(ws, rows: int = 40, unpaired: bool = False) -> str:
    """Preference pairs (or, `unpaired`, KTO rows with a label) made from tiny.jsonl's answers; the file's name."""
    src = [json.loads(line) for line in (ws.datasets_dir / "tiny.jsonl").read_text().splitlines()]
    labels = ["positive", "negative", "neutral"]
    out = []
    for i, r in enumerate((src * 3)[:rows]):
        good = r["messages"][-1]["content"]
        bad = labels[(labels.index(good) + 1) % 3]
        if unpaired:
            out.append({"prompt": r["messages"][:-1], "completion": good if i % 2 else bad, "label": bool(i % 2)})
        else:
            out.append({"prompt": r["messages"][:-1], "chosen": good, "rejected": bad})
    name = "kto.jsonl" if unpaired else "pairs.jsonl"
    (ws.datasets_dir / name).write_text("".join(json.dumps(o) + "\n" for o in out))
    return name


def prime_replay_cache(ws, monkeypatch) -> list:
    """The tiny random model's own answers never end (it is random): give it canned ones, through the
    same cache a run reads, and count the generations."""
    from tunestudio.train import model_source, replay

    calls = []

    def canned(base, tokenizer, asked):
        calls.append(len(asked))
        return [(q, f"answer {i}", i % 10 != 0) for i, q in enumerate(asked)]   # every tenth did not end

    monkeypatch.setattr(replay, "_generate", canned)
    cfg = RunConfig(model="tiny-demo", dataset="demo-reviews.jsonl")
    base = model_source.resolve_base(cfg, ws)
    tok = model_source.load_tokenizer(base)
    return calls, base, tok


DEMO_DATASETS = {  # file -> (format the loader detects, rows)
    "demo-reviews.jsonl": ("messages", 2000),
    "demo-dates.json": ("alpaca", 2000),
    "demo-sharegpt.jsonl": ("sharegpt", 1600),
    "demo-qa.csv": ("alpaca", 1440),
    "demo-text.txt": ("text", 600),
    "demo-tools.jsonl": ("messages", 2000),
    "demo-guard.txt": ("text", 24),
    "demo-tickets.jsonl": ("messages", 400),
    "demo-general.jsonl": ("messages", 21),
}
DEMO_PROMPT_SETS = {"demo-rewards.jsonl": 600}  # prompts + references for GRPO (with rewards/demo_dates.py)
DEMO_PREFERENCE = {"demo-prefs.jsonl": ("pairs", 1200)}  # read by data/preference.py, not the SFT loader
