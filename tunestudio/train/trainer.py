"""`transformers.Trainer` with the few changes the engine needs, each a small override:

- our length-grouped, epoch-seeded sampler (same batches after a resume);
- the loss from logits at trained positions only, and token accuracy beside it;
- checkpoints written to a staging folder and published by an atomic rename.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from transformers import Trainer

from tunestudio.data.chat.turns import save_generation_config
from tunestudio.train import checkpoint as ckpt
from tunestudio.train.batching import IGNORE, LengthGroupedSampler
from tunestudio.train.linear_ce import linear_cross_entropy

# config attributes by which a model changes its logits after the output layer (Gemma 2's
# soft-capping, Cohere's and Granite's scaling): the fused loss would skip that change
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


def plain_head(model) -> bool:
    """Whether the model's logits are its output layer's output, nothing applied after it."""
    config = getattr(model, "config", None)
    return config is not None and all(getattr(config, name, None) in (None, 1, 1.0) for name in LOGIT_TRANSFORMS)


class AtomicCheckpoints:
    """Checkpoints written to a staging folder and published by an atomic rename, rotated to the
    newest `keep_checkpoints` (steps in `protected_steps()` are kept): mixed into any Trainer
    (TuneTrainer here, the TRL trainers of train/preference.py)."""

    keep_checkpoints: int = 2
    protected_steps = staticmethod(lambda: set())

    # ---- atomic checkpoints ----------------------------------------------------------------
    def checkpoint_bytes(self, model_only: bool = False) -> int:
        """Bytes the next checkpoint will take on disk (only its model files with `model_only`:
        what final/ takes): the last checkpoint's, else the weights saved (all of them, or only
        the trainable adapter) plus two fp32 optimizer moments per trainable parameter (AdamW)."""
        last = ckpt.last_checkpoint(Path(self.args.output_dir))
        if last is not None:
            return ckpt.folder_bytes(last, model_only=model_only)
        model = self.accelerator.unwrap_model(self.model)
        adapter = hasattr(model, "peft_config")
        saved = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad or not adapter)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        return saved + (0 if model_only else 8 * trainable) + (1 << 20)

    def _save_checkpoint(self, model, trial):
        root = Path(self.args.output_dir)
        staging = root / ckpt.STAGING
        step = self.state.global_step
        staged = staging / f"checkpoint-{step}"
        if self.args.should_save:  # refuse before writing rather than fill the disk half-way
            ckpt.ensure_space(root, self.checkpoint_bytes(), f"checkpoint-{step}")
        # The Trainer writes checkpoint-N under output_dir: point it at the staging folder, so a
        # crash mid-write leaves nothing that looks like a checkpoint.
        self.args.output_dir = str(staging)
        try:
            super()._save_checkpoint(model, trial)
        except BaseException as e:
            full = isinstance(e, Exception) and ckpt.out_of_space(e, root)
            shutil.rmtree(staged, ignore_errors=True)  # a half-written checkpoint only fills the disk
            if full and not isinstance(e, ckpt.NoSpace):
                raise ckpt.NoSpace(f"no space left on device while saving checkpoint-{step} in {root} "
                                   f"({ckpt.gib(ckpt.free_bytes(root))} free after removing the partial "
                                   "checkpoint): free some space and resume the run") from e
            raise
        finally:
            self.args.output_dir = str(root)
        self.accelerator.wait_for_everyone()  # every rank has written its part (RNG state)
        if self.args.should_save:
            try:
                # an adapter checkpoint has no generation config of its own: give it the one with the turn end
                save_generation_config(self.accelerator.unwrap_model(model), staged)
                ckpt.publish(staged, root, {"step": step, "epoch": self.state.epoch})
            except BaseException:
                shutil.rmtree(staged, ignore_errors=True)
                raise
            ckpt.rotate(root, self.keep_checkpoints, self.protected_steps() | {step})
        self.accelerator.wait_for_everyone()


class TuneTrainer(AtomicCheckpoints, Trainer):
    select_logits = True  # compute logits only at trained positions (False: every position, as Trainer does)
    fused_loss = True     # the head and the loss a chunk of positions at a time (False: all logits at once)

    def __init__(self, *args, group_by_length: bool = True, keep_checkpoints: int = 2,
                 protected_steps=lambda: set(), **kwargs):
        super().__init__(*args, **kwargs)
        self.group_by_length = group_by_length
        self.keep_checkpoints = keep_checkpoints
        self.protected_steps = protected_steps          # steps rotation must keep (the best one)
        self._acc = {"train": torch.zeros(2, dtype=torch.long), "eval": torch.zeros(2, dtype=torch.long)}

    # ---- data order ------------------------------------------------------------------------
    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        # one group per optimizer step across all processes: its micro-batches have similar lengths
        group = self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
        return LengthGroupedSampler(dataset.lengths, group, self.args.seed, self.group_by_length)

    # ---- loss and token accuracy -------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        head = self._output_layer(model, inputs)
        if head is None:
            return self._compute_loss_full_logits(model, inputs, return_outputs, num_items_in_batch)
        # Logits only where a label is: with the prompt masked (and a large vocabulary) most of the
        # (B, T, V) logits and their gradients would be computed only to be thrown away. A hook on
        # the output layer hands it just the hidden states of positions whose next token is trained.
        labels = inputs["labels"]                                                   # (B, T)
        ignore = torch.full_like(labels[:, :1], IGNORE)
        next_tokens = torch.cat([labels[:, 1:], ignore], dim=1)                     # (B, T): predict t+1 from t
        keep = next_tokens != IGNORE
        targets = next_tokens[keep]                                                 # (N,)
        # Without a logit transform after the head (soft-capping, scaling), the head's matmul and
        # the loss run together a chunk at a time (train/linear_ce.py): the model's own head call
        # gets no rows, and the (N, V) logits are never held at once.
        fused = (self.fused_loss and plain_head(self.accelerator.unwrap_model(model))
                 and not (self.is_fsdp_enabled or self.is_deepspeed_enabled)   # they shard the head's weight
                 and not (return_outputs and not self.args.prediction_loss_only))
        selected = {}

        def select(mod, args):  # prompt tuning puts virtual tokens before the input: keep the last T positions
            selected["hidden"] = args[0][:, -labels.shape[1]:][keep]                # (N, d)
            return (selected["hidden"][:0] if fused else selected["hidden"],)

        handle = head.register_forward_pre_hook(select)
        try:
            outputs = model(**{k: v for k, v in inputs.items() if k != "labels"})
        finally:
            handle.remove()
        if fused:
            loss, correct = linear_cross_entropy(selected["hidden"], head, targets)
        else:
            logits = outputs["logits"]                                              # (N, V)
            loss = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
            correct = (logits.detach().argmax(-1) == targets).sum()
        if self.model_accepts_loss_kwargs and num_items_in_batch is not None:
            # normalised over the whole accumulated batch, as the Trainer expects (see its compute_loss)
            loss = loss / num_items_in_batch
            if self.args.average_tokens_across_devices:
                loss = loss * (self.accelerator.num_processes // self.get_tp_size())
        else:
            loss = loss / max(targets.numel(), 1)
        counts = torch.stack([correct, targets.new_tensor(targets.numel())]).cpu()
        self._acc["train" if model.training else "eval"] += counts
        return (loss, outputs) if return_outputs else loss

    def _output_layer(self, model, inputs):
        """The output layer to feed only trained positions, or None to compute every logit (custom
        losses, label smoothing, DataParallel splitting the batch, a model without a linear head)."""
        if (self.label_smoother is not None or self.compute_loss_func is not None or self.args.n_gpu > 1
                or inputs.get("labels") is None or not self.select_logits):
            return None
        try:
            head = self.accelerator.unwrap_model(model).get_output_embeddings()
        except (AttributeError, NotImplementedError):
            return None
        return head if isinstance(head, torch.nn.Linear) else None

    def _compute_loss_full_logits(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        labels = inputs.get("labels")
        logits = outputs.get("logits") if isinstance(outputs, dict) else getattr(outputs, "logits", None)
        if labels is not None and logits is not None:
            with torch.no_grad():
                # prompt tuning puts virtual tokens before the input: keep the positions of the labels
                logits = logits[:, -labels.shape[1]:]                    # (B, T, V)
                pred, target = logits[:, :-1].argmax(-1), labels[:, 1:]  # predict token t+1 from t
                trained = target != IGNORE
                counts = torch.stack([((pred == target) & trained).sum(), trained.sum()]).cpu()
            self._acc["train" if model.training else "eval"] += counts
        return (loss, outputs) if return_outputs else loss

    def _take_accuracy(self, which: str) -> float | None:
        counts = self._acc[which].to(self.args.device)
        if self.args.world_size > 1:
            counts = self.accelerator.reduce(counts, reduction="sum")
        self._acc[which] = torch.zeros(2, dtype=torch.long)
        correct, total = counts.tolist()
        return correct / total if total else None

    def log(self, logs, start_time=None):
        if "loss" in logs and not any(k.startswith("eval_") for k in logs):
            acc = self._take_accuracy("train")
            if acc is not None:
                logs["token_accuracy"] = acc
        super().log(logs, start_time)

    def evaluation_loop(self, *args, **kwargs):
        self._acc["eval"].zero_()
        output = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
        acc = self._take_accuracy("eval")
        if acc is not None:
            output.metrics[f"{prefix}_token_accuracy"] = acc
        return output
