"""Replay: the base model's own answers to general requests, mixed into a narrow task's training rows.

A few hundred rows of one task teach an instruct model the task, and also that every question is
that task: SmolLM2-135M-Instruct tuned on ticket routing answered "How many days are there in a
week?" with a team code. Training on some of what the model already does, its own greedy answers
to everyday requests (replay_prompts.txt), keeps it doing that while it learns the task; the loss
on those rows starts near its floor, so they cost the task little. The answers are generated once
per base model and cached (training/.cache/replay/), so a resumed run or a second run on the same
base trains on the same rows. Validation stays the task's own rows: early stopping watches the task.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from importlib import resources

from tunestudio.config.presets import REPLAY_MAX_NEW_TOKENS as MAX_NEW_TOKENS
from tunestudio.data.formats.records import Record
from tunestudio.models.generate import Sampling, generate_timed

SOURCE = "replay:general"   # where replay rows say they come from (messages, the data preview)
AUTO_SHARE = 0.1            # --replay -1 on chat data for a pretrained model: this share of the training rows
MIN_ROWS = 8
# Auto replay is for narrow task data; a dataset this large is broad enough on its own (and its rows
# stay a memory-mapped view instead of a list with the replay rows appended).
AUTO_MAX_ROWS = 50_000


def prompts() -> list[str]:
    text = resources.files("tunestudio.train").joinpath("replay_prompts.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def share(cfg, records: list, model_kind: str) -> float:
    """The share of replay rows this run trains with: --replay as given, or with -1 (auto) 0.1 for
    chat data on a pretrained model under SFT, else 0 (a random model has nothing to keep, and plain
    text has no answers to keep)."""
    if cfg.replay >= 0:
        return cfg.replay
    chat = bool(records) and records[0].is_chat and len(records) <= AUTO_MAX_ROWS
    return AUTO_SHARE if chat and cfg.objective == "sft" and model_kind == "pretrained" and not cfg.streaming else 0.0


def count(rows: int, fraction: float) -> int:
    if fraction <= 0:
        return 0
    return min(len(prompts()), max(MIN_ROWS, round(fraction * rows)))


def records(ws, base, tokenizer, n: int, seed: int) -> list[Record]:
    """`n` chat rows (a general request, the base model's own answer), answers that did not end on
    their own left out. Generated once per base model and prompt list, then read from the cache."""
    import random

    answers = _cached_answers(ws, base, tokenizer)
    usable = [(p, a) for p, a, ended in answers if ended and a.strip()]
    random.Random(seed).shuffle(usable)
    return [Record(source=SOURCE, line=i + 1, messages=[{"role": "user", "content": p},
                                                        {"role": "assistant", "content": a}])
            for i, (p, a) in enumerate(usable[:n])]


def _cached_answers(ws, base, tokenizer) -> list[tuple[str, str, bool]]:
    asked = prompts()
    key = hashlib.sha256(json.dumps([base.path, base.revision, base.adapter or "", tokenizer.chat_template or "",
                                     asked, MAX_NEW_TOKENS]).encode()).hexdigest()[:16]
    path = ws.replay_cache_dir / f"{key}.jsonl"
    if path.is_file():
        return [tuple(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    started = time.time()
    print(f"replay: asking the base model {len(asked)} general questions (once; cached in "
          f"{ws.shown_path(path)})", file=sys.stderr, flush=True)
    out = _generate(base, tokenizer, asked)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in out), encoding="utf-8")
    os.replace(tmp, path)
    print(f"replay: {sum(1 for _, _, e in out if e)} of {len(out)} answers ended on their own "
          f"({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
    return out


def _generate(base, tokenizer, asked: list[str]) -> list[tuple[str, str, bool]]:
    import torch
    from transformers import AutoModelForCausalLM


    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.bfloat16 if cuda else torch.float32)
    if base.adapter:   # a --from-run parent's adapter: its answers, not the bare base's
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, base.adapter).merge_and_unload()
    model.to("cuda" if cuda else "cpu").eval()
    gen = generate_timed(model, tokenizer, [[{"role": "user", "content": q}] for q in asked],
                         Sampling(max_new_tokens=MAX_NEW_TOKENS), batch_size=16)
    del model
    return [(q, a, ended) for q, a, ended in zip(asked, gen.texts, gen.stopped)]
