"""Preference objectives on TRL 1.16: dpo (DPOTrainer, --pref-loss = DPOConfig.loss_type), orpo
(experimental ORPOTrainer), simpo (experimental CPOTrainer with loss_type="simpo", cpo_alpha=0),
kto (KTOTrainer). The rows, the chat template and the stop tokens are ours (data/encoding/pref_encode.py): each
Trainer gets pre-tokenized examples and its own tokenisation step is bypassed.

Reference model (dpo, kto; --reference):
  parent - the model the run starts from. With an adapter method TRL uses the adapter's starting
           copy (adapters off for a new adapter, a frozen "ref" copy of a continued one); with
           full/freeze a frozen copy of the starting weights;
  base   - the original base model of the run's lineage, loaded beside the policy;
  none   - reference-free (dpo only): the reference log-probabilities count as 0.
"""

from __future__ import annotations

import copy
from pathlib import Path

from tunestudio.core import registry
from tunestudio.core.errors import UserError
from tunestudio.data.encoding.pref_encode import encode_prefs
from tunestudio.data.formats.problems import problem_list
from tunestudio.data.preference import load_pref_splits
from tunestudio.train.context import TrainerContext, quiet, training_kwargs
from tunestudio.train.methods import METHODS

# ---- data ----------------------------------------------------------------------------------------

def _load(cfg, ws, tokenizer, split_info, kind: str) -> dict:
    splits = load_pref_splits(ws, cfg.dataset, cfg.val_split, cfg.test_split, cfg.seed, split_info)
    if splits.kind != kind:
        want = {"pairs": "pairs (prompt, chosen, rejected)", "unpaired": "answers with a boolean label"}
        raise UserError(f"--objective {cfg.objective} trains on {want[kind]}, and {cfg.dataset} holds "
                        f"{want[splits.kind]}: use --objective {'kto' if splits.kind == 'unpaired' else 'dpo'}",
                        "objective_needs_pairs" if kind == "pairs" else "objective_needs_unpaired", option="objective",
                        objective=cfg.objective, dataset=cfg.dataset, use="kto" if splits.kind == "unpaired" else "dpo")
    train = encode_prefs(splits.train, tokenizer, cfg.max_length, cfg.reasoning)
    val = encode_prefs(splits.val, tokenizer, cfg.max_length, cfg.reasoning)
    errors = train.errors + val.errors
    if errors:
        shown = "\n  ".join(str(p) for p in errors[:20])
        raise UserError(f"{len(errors)} problem(s) in the preference data:\n  {shown}", "pref_problems",
                        count=len(errors), problems=problem_list(errors, 20))
    if not train.examples:
        raise UserError(f"no training row is left at --max-length {cfg.max_length}: every prompt fills it "
                        f"({len(train.dropped)} rows dropped); raise --max-length", "pref_no_row_left",
                        max_length=cfg.max_length, dropped=len(train.dropped))
    if cfg.early_stopping_patience > 0 and not val.examples:
        raise UserError("--early-stopping-patience watches the validation data, and there is none: set "
                        "--val-split above 0 (or give a NAME.val.* file)", "early_stopping_no_val_data",
                        option="early_stopping_patience")
    warnings = []
    for name, enc in (("training", train), ("validation", val)):
        if enc.truncated or enc.dropped:
            warnings.append({"code": "pref_truncated", "message": (
                f"{len(enc.truncated)} of {enc.rows} {name} rows lose answer tokens at --max-length {cfg.max_length}"
                + (f" and {len(enc.dropped)} have nothing left (dropped)" if enc.dropped else "")
                + f"; first: {', '.join((enc.truncated + enc.dropped)[:3])}"),
                # the parts of that message: the web UI words it in its language (engine.pref_truncated)
                "fields": {"split": name, "count": len(enc.truncated), "rows": enc.rows, "max_length": cfg.max_length,
                           "dropped": len(enc.dropped), "first": ", ".join((enc.truncated + enc.dropped)[:3])}})
    step = max(1, len(val.examples) // cfg.eval_rows) if cfg.eval_rows else 1
    return dict(info=splits.info, train=train.examples, val=val.examples[::step][:cfg.eval_rows or None],
                stats={"train": train.stats, "val": val.stats}, warnings=warnings)


def load_pairs_data(cfg, ws, tokenizer, split_info=None) -> dict:
    """Pairs of `cfg.dataset` as {"prompt_ids", "chosen_ids", "rejected_ids"} examples (run.Data fields)."""
    return _load(cfg, ws, tokenizer, split_info, "pairs")


def load_unpaired_data(cfg, ws, tokenizer, split_info=None) -> dict:
    """Labelled answers of `cfg.dataset` as {"prompt_ids", "completion_ids", "label"} examples."""
    return _load(cfg, ws, tokenizer, split_info, "unpaired")


def _dataset(examples: list[dict]):
    from datasets import Dataset

    return Dataset.from_list(examples)


# ---- reference model -----------------------------------------------------------------------------

def _lineage_root(ctx: TrainerContext) -> str:
    """The base model at the root of the run's lineage (parent runs followed up)."""
    base = ctx.base
    if base.parent_id is None:
        return base.path
    conn = registry.connect(ctx.ws.db_path)
    try:
        run = registry.get_run(conn, base.parent_id)
        while run.get("parent_id"):
            run = registry.get_run(conn, run["parent_id"])
    finally:
        conn.close()
    return run["base_model"]


def reference_model(ctx: TrainerContext):
    """The frozen reference to pass TRL, or None where TRL's own choice is the parent (adapters)."""

    cfg = ctx.cfg
    if cfg.reference == "base" and ctx.base.parent_id is not None:
        from transformers import AutoModelForCausalLM

        root = _lineage_root(ctx)
        path = ctx.ws.model_path_or_id(root) if not Path(root).is_dir() else root
        ref = AutoModelForCausalLM.from_pretrained(path, dtype=next(ctx.model.parameters()).dtype)
    elif cfg.reference == "none" or METHODS[cfg.method].adapter:
        return None
    else:  # full/freeze: a frozen copy of the weights the run starts from (the parent, merged or not)
        ref = copy.deepcopy(ctx.model)
    ref.requires_grad_(False)
    return ref.eval()


# ---- trainers ------------------------------------------------------------------------------------

def _classes():
    """Our Trainer subclasses, made on first use (importing TRL takes seconds)."""
    from trl import DPOTrainer, KTOTrainer
    from trl.experimental.cpo import CPOTrainer
    from trl.experimental.orpo import ORPOTrainer

    from tunestudio.train.trainer import AtomicCheckpoints

    class PrefDPO(AtomicCheckpoints, DPOTrainer):
        reference_free = False

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset  # already {"prompt_ids", "chosen_ids", "rejected_ids"}, rendered our way

        def _precompute_ref_logps(self, dataset, name, batch_size):
            if not self.reference_free:
                return super()._precompute_ref_logps(dataset, name, batch_size)
            zeros = [0.0] * len(dataset)  # reference-free: log pi_ref = 0, the loss sees the policy alone
            return dataset.add_column("ref_chosen_logps", zeros).add_column("ref_rejected_logps", zeros)

    class PrefKTO(AtomicCheckpoints, KTOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if self.calculate_KL:
                # as TRL does: the KL term's answers are the batch's answers paired with other prompts
                def rotate(batch):
                    batch["KL_completion_ids"] = [batch["completion_ids"][-1]] + batch["completion_ids"][:-1]
                    return batch

                dataset = dataset.map(rotate, batched=True, batch_size=args.per_device_train_batch_size)
            return dataset

    class PairRows:
        """CPO/ORPO tokenise strings themselves: hand them our ids in the keys their collator pads."""

        def tokenize_row(self, feature, model=None):
            p, c, r = feature["prompt_ids"], feature["chosen_ids"], feature["rejected_ids"]
            out = {"prompt_input_ids": p, "prompt_attention_mask": [1] * len(p)}
            for name, ids in (("chosen", c), ("rejected", r)):
                out[f"{name}_input_ids"] = p + ids
                out[f"{name}_attention_mask"] = [1] * (len(p) + len(ids))
                out[f"{name}_labels"] = [-100] * len(p) + ids
            return out

        def _track_num_input_tokens(self, inputs):
            # Trainer counts the batch's "input_ids", and CPO/ORPO batches have none (only
            # chosen_/rejected_input_ids): it warned and counted 0, so tokens/s read 0. Count both
            # sequences' non-padding tokens, as DPO's stacked input_ids are counted.
            if self.args.include_num_input_tokens_seen == "no":
                return
            import torch

            n = sum(pair_tokens(inputs, name, self.processing_class) for name in ("chosen", "rejected"))
            n = torch.as_tensor(n, device=self.args.device, dtype=torch.int64)
            self.state.num_input_tokens_seen += self.accelerator.gather(n).sum().item()

    class PrefCPO(AtomicCheckpoints, PairRows, CPOTrainer):
        pass

    class PrefORPO(AtomicCheckpoints, PairRows, ORPOTrainer):
        pass

    return PrefDPO, PrefKTO, PrefCPO, PrefORPO


def pair_tokens(inputs: dict, name: str, tokenizer) -> int:
    """Non-padding tokens of a CPO/ORPO batch's `name` ("chosen"/"rejected") sequences: the sum of
    `{name}_attention_mask`, else the ids that are not the pad token."""
    mask = inputs.get(f"{name}_attention_mask")
    if mask is not None:
        return int(mask.sum())
    ids = inputs[f"{name}_input_ids"]
    pad = getattr(tokenizer, "pad_token_id", None)
    return int((ids != pad).sum()) if pad is not None else ids.numel()


def _finish(cls, ctx: TrainerContext, args, **extra):
    """`cls` built on the run's pairs (train, validation), tokenizer and monitor, with our staged
    checkpoints kept as --keep-checkpoints says (the best step protected), and quiet."""
    trainer = cls(model=ctx.model, args=args, train_dataset=_dataset(ctx.data.train),
                  eval_dataset=_dataset(ctx.data.val) if ctx.data.val else None,
                  processing_class=ctx.tokenizer, callbacks=[ctx.monitor], **extra)
    monitor = ctx.monitor
    trainer.keep_checkpoints = ctx.cfg.keep_checkpoints
    trainer.protected_steps = lambda: {monitor.best_step} if monitor.best_step is not None else set()
    return quiet(trainer)


def _common(ctx: TrainerContext) -> dict:
    # TRL's configs default to bf16 and activation checkpointing: take ours (training_kwargs) instead
    return dict(training_kwargs(ctx), max_length=ctx.cfg.max_length, beta=ctx.cfg.beta,
                gradient_checkpointing=ctx.cfg.gradient_checkpointing, remove_unused_columns=False,
                include_num_input_tokens_seen="non_padding")


def build_dpo(ctx: TrainerContext):
    """DPOTrainer with --pref-loss, --beta, --label-smoothing and the --reference model."""
    from trl import DPOConfig

    PrefDPO, _, _, _ = _classes()
    cfg = ctx.cfg
    args = DPOConfig(**_common(ctx), loss_type=[cfg.pref_loss], label_smoothing=cfg.label_smoothing,
                     precompute_ref_log_probs=cfg.reference == "none")
    PrefDPO.reference_free = cfg.reference == "none"
    return _finish(PrefDPO, ctx, args, ref_model=reference_model(ctx))


def build_kto(ctx: TrainerContext):
    """KTOTrainer with --beta and --desirable-weight/--undesirable-weight, against the --reference."""
    from trl import KTOConfig

    _, PrefKTO, _, _ = _classes()
    cfg = ctx.cfg
    args = KTOConfig(**_common(ctx), desirable_weight=cfg.desirable_weight,
                     undesirable_weight=cfg.undesirable_weight)
    return _finish(PrefKTO, ctx, args, ref_model=reference_model(ctx))


def build_simpo(ctx: TrainerContext):
    """CPOTrainer in SimPO mode: length-normalised margin loss, --beta scale, --simpo-gamma margin."""
    from trl.experimental.cpo import CPOConfig

    _, _, PrefCPO, _ = _classes()
    cfg = ctx.cfg
    args = CPOConfig(**_common(ctx), loss_type="simpo", cpo_alpha=0.0, simpo_gamma=cfg.simpo_gamma)
    return _finish(PrefCPO, ctx, args)


def build_orpo(ctx: TrainerContext):
    """ORPOTrainer: NLL on the chosen answer plus --beta x the odds-ratio term."""
    from trl.experimental.orpo import ORPOConfig

    _, _, _, PrefORPO = _classes()
    args = ORPOConfig(**_common(ctx))
    return _finish(PrefORPO, ctx, args)
