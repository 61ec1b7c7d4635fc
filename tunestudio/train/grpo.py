"""GRPO: the model samples several answers per prompt, reward functions score them, and TRL's
GRPOTrainer pushes up the answers that scored above their group's mean (train/objectives.py row
"grpo").

Prompts come from a prompt dataset (rewards/data.py) and are rendered here with the model's chat
template exactly as SFT training and generation render them (evaluate/generate.render, "training"
mode), so a run started --from-run an SFT run is asked what it learned to answer. TRL receives the
rendered text; its completions are cut at the template's turn end, as generation cuts them.
Every reward runs through rewards.RewardSet (user files in their own process, with a time limit).
Each generation step appends its rollouts (prompt, each completion, each reward, advantage) to
the run's rollouts.jsonl.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.data.chat import turns
from tunestudio.data.split import sha256_file
from tunestudio.models.generate import cut_at_stop, render
from tunestudio.rewards import RewardSet, parse_spec
from tunestudio.rewards.data import load_prompts
from tunestudio.train.context import quiet, training_kwargs

ROLLOUTS = "rollouts.jsonl"


def validate(cfg) -> None:
    """GRPO options, checked before anything loads. UserError naming the flag."""

    parse_spec(cfg.rewards)  # an unknown built-in or a bad weight fails here
    if cfg.num_generations < 2:
        raise UserError(f"--num-generations: GRPO compares answers within a group: at least 2, got {cfg.num_generations}",
                        "grpo_generations_too_few", option="num_generations", value=cfg.num_generations)
    if (cfg.batch_size * cfg.grad_accum) % cfg.num_generations:
        raise UserError(f"--batch-size {cfg.batch_size} x --grad-accum {cfg.grad_accum} counts completions per "
                        f"step and must be a multiple of --num-generations {cfg.num_generations} (each prompt's "
                        f"group is sampled together): e.g. --batch-size {cfg.num_generations}",
                        "grpo_batch_not_multiple", batch_size=cfg.batch_size, grad_accum=cfg.grad_accum,
                        generations=cfg.num_generations)
    if cfg.max_completion_length < 1:
        raise UserError(f"--max-completion-length: at least 1 token, got {cfg.max_completion_length}",
                        "option_at_least_one_token", option="max_completion_length", value=cfg.max_completion_length)
    if cfg.max_completion_length >= cfg.max_length:
        raise UserError(f"--max-completion-length {cfg.max_completion_length} leaves no room for the prompt "
                        f"within --max-length {cfg.max_length}", "grpo_completion_fills_length",
                        option="max_completion_length", value=cfg.max_completion_length, max_length=cfg.max_length)
    if cfg.kl_beta < 0 or cfg.reward_timeout <= 0 or cfg.grpo_temperature <= 0:
        raise UserError("--kl-beta must be 0 or more; --reward-timeout and --grpo-temperature above 0",
                        "grpo_values_bad")
    if cfg.streaming:
        raise UserError("--streaming: --objective grpo reads its prompts up front; drop --streaming",
                        "streaming_grpo", option="streaming")
    if cfg.method in ("prefix", "prompt"):
        raise UserError(f"--method {cfg.method} with --objective grpo: use full, freeze or a LoRA-family method",
                        "grpo_method_unsupported", option="method", method=cfg.method)


# ---- data ----------------------------------------------------------------------------------------

def load_data(cfg, ws, tokenizer, split_info: dict | None = None) -> dict:
    """The prompts split train/val/test (seeded, recorded in split.json) and rendered for the model.
    Returns the fields of run.Data: info, train/val (lists of {"prompt": text, "source": json,
    "row": json}), stats, warnings."""

    path = ws.dataset_path(cfg.dataset)
    rows = load_prompts(path)
    digest = sha256_file(path)
    if split_info is not None:  # a resumed run trains on exactly the prompts it started with
        if split_info["files"]["all"]["sha256"] != digest:
            raise UserError(f"{path.name} changed since the run started: its prompts are not the ones recorded",
                            "prompts_changed", file=path.name)
        parts = split_info["rows"]
    else:
        parts = _split(len(rows), cfg.val_split, cfg.test_split, cfg.seed)
    info = {"dataset": cfg.dataset, "format": "prompts", "val_split": cfg.val_split, "test_split": cfg.test_split,
            "seed": cfg.seed, "rows": parts,
            "files": {"all": {"path": str(path.relative_to(ws.root)) if ws.inside(path) else str(path),
                              "name": path.name, "sha256": digest, "rows": len(rows)}}}
    info["hash"] = hashlib.sha256(f"all:{digest}".encode()).hexdigest()
    limit = cfg.max_length - cfg.max_completion_length
    warnings, stats = [], {}
    encoded = {}
    for key in ("train", "val"):
        kept, too_long = [], []
        for i in parts[key]:
            item = _example(tokenizer, rows[i])
            if item["prompt_tokens"] > limit:
                too_long.append(rows[i].row["_where"])
            else:
                kept.append(item)
        encoded[key] = kept
        stats[key] = {"rows": len(parts[key]), "dropped": len(too_long), "truncated": 0,
                      "prompt_tokens": sum(x["prompt_tokens"] for x in kept)}
        if too_long:
            warnings.append({"code": "prompts_too_long", "message": (
                f"{len(too_long)} {key} prompts are longer than --max-length {cfg.max_length} minus "
                f"--max-completion-length {cfg.max_completion_length} tokens and were left out; first: "
                f"{', '.join(too_long[:3])}"),
                # the parts of that message: the web UI words it in its language (engine.prompts_too_long)
                "fields": {"split": {"train": "training", "val": "validation"}.get(key, key), "count": len(too_long),
                           "max_length": cfg.max_length, "completion": cfg.max_completion_length,
                           "first": ", ".join(too_long[:3])}})
    if not encoded["train"]:
        raise UserError(f"{path.name}: no training prompt is left (every one is too long at --max-length "
                        f"{cfg.max_length}); raise --max-length", "grpo_no_prompt_left", file=path.name,
                        max_length=cfg.max_length)
    if cfg.early_stopping_patience > 0 and not encoded["val"]:
        raise UserError("--early-stopping-patience watches the mean validation reward, and there is no "
                        "validation data: set --val-split above 0", "early_stopping_no_val_reward",
                        option="early_stopping_patience")
    val = encoded["val"]
    if cfg.eval_rows and len(val) > cfg.eval_rows:  # every evaluation samples each prompt: cap it
        val = [val[(i * len(val)) // cfg.eval_rows] for i in range(cfg.eval_rows)]
    return {"info": info, "train": encoded["train"], "val": val, "stats": stats, "warnings": warnings}


def _split(n: int, val: float, test: float, seed: int) -> dict:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_test, n_val = round(n * test), round(n * val)
    return {"test": sorted(order[:n_test]), "val": sorted(order[n_test:n_test + n_val]),
            "train": sorted(order[n_test + n_val:])}


def _example(tokenizer, row) -> dict:
    text = render(tokenizer, row.prompt)  # the chat template, asked as training asked
    n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return {"prompt": text, "source": json.dumps(row.prompt, ensure_ascii=False),
            "row": json.dumps(row.row, ensure_ascii=False, default=str), "prompt_tokens": n}


# ---- rewards as TRL reward functions ---------------------------------------------------------------

def reward_funcs(rewards, stop_strings: list[str]) -> list:
    """One TRL reward function per reward of `rewards` (a RewardSet), named as it is logged
    (rewards/NAME/mean): called with the batch's rendered prompts, completions and dataset columns."""

    def make(spec, name):
        def func(prompts, completions, source=None, row=None, **_):
            texts = [cut_at_stop(c, stop_strings)[0].strip() for c in completions]
            return rewards.score(spec, [json.loads(s) for s in source], texts, [json.loads(r) for r in row])

        func.__name__ = name
        return func

    return [make(spec, name) for spec, name in zip(rewards.specs, rewards.names)]


# ---- the Trainer --------------------------------------------------------------------------------

def _trainer_class():
    from trl import GRPOTrainer

    from tunestudio.train.trainer import AtomicCheckpoints

    class TuneGRPOTrainer(AtomicCheckpoints, GRPOTrainer):
        """GRPOTrainer that tokenizes our rendered prompts as they are (the template already holds
        any special tokens) and writes each generation step's rollouts to rollouts.jsonl."""

        rollouts_path: Path | None = None
        stop_strings: list = []

        def _tokenize_prompts(self, prompts: list):
            if prompts and isinstance(prompts[0], str):
                return self.processing_class(text=prompts, add_special_tokens=False)["input_ids"], None, {}
            return super()._tokenize_prompts(prompts)

        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            if self.model.training and self.rollouts_path is not None and self.accelerator.is_main_process:
                self._write_rollouts(len(inputs) * self.accelerator.num_processes)
            return output

        def _write_rollouts(self, n: int) -> None:
            logs = self._logs
            take = lambda seq: list(seq)[-n:]  # noqa: E731 - the deques hold the last generation batch
            prompts, completions, advantages = take(logs["prompt"]), take(logs["completion"]), take(logs["advantages"])
            rewards = {name: take(values) for name, values in logs["rewards"].items()}
            step = self.state.global_step + 1  # the optimizer step these completions train
            with open(self.rollouts_path, "a", encoding="utf-8") as f:
                for i, (p, c, a) in enumerate(zip(prompts, completions, advantages)):
                    f.write(json.dumps({
                        "step": step, "group": i // self.num_generations, "prompt": p,
                        "completion": cut_at_stop(c, self.stop_strings)[0].strip(),
                        "rewards": {k: v[i] for k, v in rewards.items()},
                        "reward": sum(w * v[i] for w, v in zip(self.reward_weights.tolist(), rewards.values())),
                        "advantage": a}, ensure_ascii=False) + "\n")

    return TuneGRPOTrainer


def build_trainer(ctx):
    """The GRPO Trainer for `ctx` (objectives.TrainerContext)."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig


    cfg = ctx.cfg
    rewards = RewardSet(ctx.ws, cfg.rewards, cfg.reward_timeout, cfg.reward_regex, cfg.reward_max_chars)
    rewards.start()  # a broken reward file fails now, naming its line, not after the first generation
    stops = list(dict.fromkeys(turns.stop_strings(ctx.tokenizer)))
    args = GRPOConfig(
        **training_kwargs(ctx),
        num_generations=cfg.num_generations, num_generations_eval=cfg.num_generations,
        max_completion_length=cfg.max_completion_length, temperature=cfg.grpo_temperature,
        beta=cfg.kl_beta, reward_weights=rewards.weights, remove_unused_columns=False,
        # the Trainer cannot count GRPO's tokens (its batches are prompts, not input_ids): it would warn each step
        log_completions=False, include_num_input_tokens_seen="no",
        # TRL's configs default to activation checkpointing (1.7x slower on CPU): take ours
        gradient_checkpointing=cfg.gradient_checkpointing,
    )
    columns = ("prompt", "source", "row")
    as_dataset = lambda rows: Dataset.from_list([{k: r[k] for k in columns} for r in rows])  # noqa: E731
    cls = _trainer_class()
    trainer = cls(model=ctx.model, reward_funcs=reward_funcs(rewards, stops), args=args,
                  train_dataset=as_dataset(ctx.data.train),
                  eval_dataset=as_dataset(ctx.data.val) if ctx.data.val else None,
                  processing_class=ctx.tokenizer, callbacks=[ctx.monitor])
    trainer.keep_checkpoints = cfg.keep_checkpoints
    trainer.protected_steps = lambda: {ctx.monitor.best_step} if ctx.monitor.best_step is not None else set()
    trainer.rollouts_path = Path(ctx.run_dir) / ROLLOUTS if ctx.run_dir else None
    trainer.stop_strings = stops

    class CloseRewards(TrainerCallback):
        def on_train_end(self, *a, **k):
            rewards.close()  # the worker process ends with the run (it restarts if evaluation follows)

    trainer.add_callback(CloseRewards())
    return quiet(trainer)
