"""What a finished run leaves behind: final/ (the best checkpoint), its metrics, and a warning when
training ran but changed nothing (the loss flat, or the adapter still at its initial weights).

The engine (run.py) calls these once training has returned, stopped or not.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

from tunestudio.core import statefiles
from tunestudio.data.chat import turns
from tunestudio.train import checkpoint as ckpt
from tunestudio.train.methods import METHODS


def publish_final(trainer, monitor, tokenizer, run_dir: Path, main: bool) -> Path:
    """final/ = the best checkpoint (lowest validation loss), or the last weights without validation
    data. Written beside and renamed into place, like a checkpoint."""
    final, tmp = run_dir / "final", run_dir / ".final.tmp"
    best = ckpt.find_step(run_dir / "checkpoints", monitor.best_step) if monitor.best_step is not None else None
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        needed = ckpt.folder_bytes(best, model_only=True) if best is not None else trainer.checkpoint_bytes(model_only=True)
        ckpt.ensure_space(run_dir, needed, "the final model")
    trainer.accelerator.wait_for_everyone()
    try:
        if best is None:
            trainer.save_model(str(tmp))  # every rank takes part (sharded models gather here)
        if main:
            if best is not None:
                ckpt.copy_model(best, tmp)
            tokenizer.save_pretrained(str(tmp))
            turns.save_generation_config(trainer.accelerator.unwrap_model(trainer.model), tmp)
            config = tmp / "config.json"
            if config.is_file():  # the Trainer turned the cache off for training; generation wants it
                d = json.loads(config.read_text())
                d["use_cache"] = True
                config.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")
            statefiles.replace_dir(tmp, final)  # the old final/ goes only once the new one is whole
    except BaseException:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    trainer.accelerator.wait_for_everyone()
    return final


def run_metrics(trainer, monitor, data, started, model) -> dict:
    from tunestudio.train.callbacks import peak_memory_mb

    state = trainer.state
    runtime = time.time() - started
    m = {
        "steps": state.global_step,
        "epochs": round(state.epoch or 0, 4),
        "train_loss": monitor.train_losses[-1] if monitor.train_losses else None,
        "first_train_loss": monitor.train_losses[0] if monitor.train_losses else None,
        "train_token_accuracy": monitor.last_train.get("token_accuracy"),
        "best_step": monitor.best_step if monitor.best_step is not None else state.global_step,
        "tokens_seen": state.num_input_tokens_seen,
        "tokens_per_second": round((state.num_input_tokens_seen - monitor.tokens_at_start)
                                   / max(time.time() - monitor.t0, 1e-9), 1),
        "runtime_s": round(runtime, 2),
        "peak_memory_mb": peak_memory_mb(),
        "trainable_params": monitor.trainable_params,
        "total_params": monitor.total_params,
        "train_examples": data.train_rows,
        "val_examples": len(data.val),
        "truncated": (data.stats.get("train") or {}).get("truncated", 0),
        # a model taught to reason first is asked with its reasoning block open (turns.training_prompt)
        "reasoning_rows": (data.stats.get("train") or {}).get("reasoning_rows", 0)
        if (data.stats.get("train") or {}).get("reasoning") == "keep" else 0,
        "stopped_early": monitor.early_stopped,
    }
    if data.val:
        m.update(eval_loss=monitor.best_loss, eval_token_accuracy=monitor.best_accuracy,
                 last_eval_loss=monitor.last_eval_loss, initial_eval_loss=monitor.initial_eval_loss)
        if monitor.best_score is not None:  # the objective's own best metric, e.g. eval_rewards/accuracies
            m[monitor.best_key] = monitor.best_score
    return m


def adapter_snapshot(cfg, model):
    """A copy of an adapter's trainable weights at the start (small), to tell later whether they moved."""
    if not METHODS[cfg.method].adapter:
        return None
    return {n: p.detach().float().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


# A run on prompt/answer data whose best validation loss is still above this share of where it
# started learned little (a real model learning a task takes its answer loss down by 80-99%:
# SmolLM2 on demo-tickets 8.3 -> 0.05). Plain text is exempt: continued pre-training moves
# perplexity by a few per cent and that is real learning.
LEARNED_LITTLE_SHARE = 0.5


def nothing_changed(cfg, monitor, model, events, plain_text: bool = False) -> list[str]:
    """Warn when training ran but did nothing: the loss barely moved, the adapter stayed put, or
    the validation loss on the answers stayed near where it started."""
    warnings = []
    first, best = monitor.initial_eval_loss, monitor.best_loss
    if not plain_text and cfg.objective == "sft" and first and best is not None and best > LEARNED_LITTLE_SHARE * first:
        warnings.append("learned_little")
        events.warn("learned_little", f"the validation loss is still {best / first:.0%} of where it started "
                    f"({first:.4f} -> best {best:.4f}): the model learned little of this data. Likely causes: a "
                    f"learning rate too low for {cfg.method} (lr {cfg.lr:g}; leave --lr out for the preset), too few "
                    "steps (more epochs), or answers that are hard to predict from their prompts",
                    share=f"{best / first:.0%}", first=f"{first:.4f}", best=f"{best:.4f}", method=cfg.method,
                    lr=f"{cfg.lr:g}")
    losses = monitor.train_losses
    if len(losses) >= 2 and losses[0] > 0 and (losses[0] - min(losses[1:])) / losses[0] < 0.01:
        warnings.append("no_change")
        events.warn("no_change", f"the training loss barely moved ({losses[0]:.4f} -> {losses[-1]:.4f}): "
                    "try a higher --lr, more epochs, or check that the data has answers to learn",
                    first=f"{losses[0]:.4f}", last=f"{losses[-1]:.4f}")
    start = getattr(monitor, "initial_weights", None)
    if start:
        import torch

        now = {n: p.detach().float().cpu() for n, p in model.named_parameters() if n in start}
        delta = math.sqrt(sum(float(torch.sum((now[n] - start[n]) ** 2)) for n in now))
        size = math.sqrt(sum(float(torch.sum(start[n] ** 2)) for n in now)) or 1.0
        # LoRA's B starts at zero, so an unchanged adapter is exactly its initial value
        if delta / size < 1e-6 or all(float(now[n].abs().max()) < 1e-8 for n in now if "lora_B" in n):
            warnings.append("adapter_unchanged")
            events.warn("adapter_unchanged", "the adapter weights stayed at their initial values: the "
                        "fine-tuned model is the base model; check --lr and that the loss has tokens to train on")
    return warnings
