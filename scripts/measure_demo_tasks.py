"""Measure that the demo tasks are learnable: train the tiny demo model, print held-out figures.

Full fine-tuning with the settings docs/dev/pitfalls.md measured (AdamW lr 1e-3, batch 16, cosine, a few
warm-up steps), a plain loop so the figures do not depend on the training engine. Data goes
through the real pipeline (load -> split -> encode). After each epoch: greedy decoding on the
test split and exact match against the reference (for the tool-use task, tool_call_match: the
call read back from the generated text, name and arguments equal as JSON); for plain-text tasks,
the test loss.

    python scripts/measure_demo_tasks.py                       # every task, default epochs
    python scripts/measure_demo_tasks.py --task dates --epochs 3
    python scripts/measure_demo_tasks.py --threads 2 --workspace /tmp/demo-ws
    python scripts/measure_demo_tasks.py --task tools           # rows up to ~300 tokens: max length 512

Times count training steps only (not the evaluations), on --threads torch threads: wall seconds,
and CPU seconds of this process (wall ~= cpu / threads on an idle machine; other work on the
machine inflates the wall time).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from tunestudio.data.encoding.encode import IGNORE, encode  # noqa: E402
from tunestudio.data.split import load_splits  # noqa: E402
from tunestudio.demo import make_demo  # noqa: E402
from tunestudio.evaluate.tool_metrics import tool_call_match  # noqa: E402
from tunestudio.evaluate.toolparse import parse_tool_calls  # noqa: E402
from tunestudio.core.workspace import Workspace  # noqa: E402

# task -> (dataset file, default epochs)
TASKS = {
    "reviews": ("demo-reviews.jsonl", 1),
    "dates": ("demo-dates.json", 3),
    "sharegpt": ("demo-sharegpt.jsonl", 1),
    "qa": ("demo-qa.csv", 3),
    "text": ("demo-text.txt", 1),
    "tools": ("demo-tools.jsonl", 8),
}
# The tool-use rows carry the tool list in every prompt (~220 tokens): never cut them at 128.
MIN_LENGTH = {"tools": 512}


def batches(examples, batch_size, pad_id, rng):
    order = list(range(len(examples)))
    rng.shuffle(order)
    for i in range(0, len(order), batch_size):
        rows = [examples[j] for j in order[i:i + batch_size]]
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), pad_id)
        labels = torch.full((len(rows), width), IGNORE)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, r in enumerate(rows):  # right padding: (B, T)
            n = len(r["input_ids"])
            ids[k, :n] = torch.tensor(r["input_ids"])
            labels[k, :n] = torch.tensor(r["labels"])
            mask[k, :n] = 1
        yield ids, mask, labels


@torch.no_grad()
def exact_match(model, tok, records, batch_size=64) -> float:
    """Greedy answers on `records`: the share equal to the reference, or for rows whose reference
    calls tools, the share whose calls match (tool_call_match)."""
    model.eval()
    tok.padding_side = "left"  # generation continues from the right end of every prompt
    hits = 0
    for i in range(0, len(records), batch_size):
        chunk = records[i:i + batch_size]
        prompts = [tok.apply_chat_template(r.prompt(), tools=r.tools, tokenize=False, add_generation_prompt=True)
                   for r in chunk]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        out = model.generate(**enc, max_new_tokens=64, do_sample=False, pad_token_id=tok.pad_token_id)
        for r, row in zip(chunk, out[:, enc["input_ids"].shape[1]:]):
            text = tok.decode(row, skip_special_tokens=True)
            calls = r.reference_calls()
            hits += (tool_call_match(parse_tool_calls(text), calls) if calls
                     else text.strip() == r.reference().strip())
    tok.padding_side = "right"
    model.train()
    return hits / max(len(records), 1)


@torch.no_grad()
def mean_loss(model, examples, pad_id) -> float:
    model.eval()
    total = n = 0
    for ids, mask, labels in batches(examples, 32, pad_id, random.Random(0)):
        trained = int((labels[:, 1:] != IGNORE).sum())
        total += float(model(input_ids=ids, attention_mask=mask, labels=labels).loss) * trained
        n += trained
    model.train()
    return total / max(n, 1)


def measure(ws: Workspace, task: str, epochs: int, lr: float, batch_size: int, max_length: int,
            text_mode: str = "stream") -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_cosine_schedule_with_warmup

    dataset, _ = TASKS[task]
    splits = load_splits(ws, dataset, val_split=0.0, test_split=0.1, seed=42)
    folder = ws.models_dir / "tiny-demo"
    tok = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.train()
    max_length = max(max_length, MIN_LENGTH.get(task, 0))
    train = encode(splits.train, tok, max_length, text_mode=text_mode).examples   # plain text: blocks of a stream
    test_enc = encode(splits.test, tok, max_length, text_mode=text_mode).examples
    is_text = splits.test[0].text is not None

    steps = epochs * math.ceil(len(train) / batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=min(20, steps // 10), num_training_steps=steps)
    rng = random.Random(0)
    before = mean_loss(model, test_enc, tok.pad_token_id) if is_text else None
    print(f"{task}: {len(splits.train)} train / {len(splits.test)} test rows, {len(train)} examples, {steps} steps",
          flush=True)
    train_s = cpu_s = 0.0
    curve = []
    for epoch in range(1, epochs + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        for ids, mask, labels in batches(train, batch_size, tok.pad_token_id, rng):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
        train_s += time.perf_counter() - t0
        cpu_s += time.process_time() - c0  # CPU seconds: less sensitive to a busy machine than wall time
        score = mean_loss(model, test_enc, tok.pad_token_id) if is_text else exact_match(model, tok, splits.test)
        curve.append(round(score, 4))
        what = "test loss" if is_text else "exact match"
        print(f"  epoch {epoch}: train loss {loss.item():.3f}  {what} {score:.3f}  "
              f"train wall {train_s:.1f}s, cpu {cpu_s:.1f}s", flush=True)
    result = {"task": task, "dataset": dataset, "epochs": epochs, "train_rows": len(splits.train),
              "test_rows": len(splits.test), "train_seconds": round(train_s, 1), "cpu_seconds": round(cpu_s, 1)}
    if is_text:
        result.update(test_loss_before=round(before, 3), test_loss_after=curve[-1])
    else:
        result.update(exact_match=curve[-1], exact_match_per_epoch=curve)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=list(TASKS), action="append", help="repeatable; default: all")
    ap.add_argument("--epochs", type=int, help="default: per task (%s)" % {k: v[1] for k, v in TASKS.items()})
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--text-mode", choices=("stream", "truncate"), default="stream",
                    help="plain-text tasks: stream (training's default: blocks of --max-length) or truncate")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workspace", help="default: a temporary folder")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.workspace) if args.workspace else Path(tempfile.mkdtemp(prefix="measure-demo-"))
    ws = Workspace(root.resolve())
    make_demo(ws)
    print(f"workspace {ws.root}, torch threads {torch.get_num_threads()}, lr {args.lr}, batch {args.batch_size}")
    results = []
    for task in args.task or list(TASKS):
        results.append(measure(ws, task, args.epochs or TASKS[task][1], args.lr, args.batch_size, args.max_length,
                               args.text_mode))
    print("\nsummary")
    for r in results:
        figure = (f"exact match {r['exact_match']:.3f} (per epoch {r['exact_match_per_epoch']})" if "exact_match" in r
                  else f"test loss {r['test_loss_before']:.2f} -> {r['test_loss_after']:.2f}")
        print(f"  {r['task']:<9} {r['dataset']:<20} {r['epochs']} epoch(s)  wall {r['train_seconds']:>6.1f}s cpu {r['cpu_seconds']:>6.1f}s  {figure}")


if __name__ == "__main__":
    main()
