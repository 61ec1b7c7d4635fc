"""Training objectives as data: a table from name to what the run optimises, beside the methods table.

`--method` decides which parameters train (full, lora, dora, qlora, ...); `--objective` decides the
loss and the data it needs. Each Objective names:
  - `data`: the kind of rows it trains on: "sft" (conversations/text, data/encoding/encode.py), "pairs"
    (prompt + chosen + rejected, data/preference.py), "unpaired" (prompt + completion + a boolean
    label, data/preference.py), "prompts" (prompts with references, for reward functions);
  - `load_data(cfg, ws, tokenizer, split_info) -> dict` with the fields of run.Data (info, train, val,
    stats, warnings): the rows encoded the way this objective's Trainer takes them;
  - `build(ctx: TrainerContext) -> transformers.Trainer`: the Trainer, from the shared arguments;
  - `metrics`: the keys of the Trainer's logs the monitor writes to events.jsonl and the UI plots
    (beside loss, learning rate and throughput), e.g. "rewards/margins";
  - `best`: the validation metric that picks the best checkpoint and drives early stopping, and
    whether higher is better.
Adding an objective is adding one row here (and its builder module).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from tunestudio.config import choices
from tunestudio.config.choices import check_table
from tunestudio.core.errors import UserError
from tunestudio.train import grpo, preference, sft


def _no_checks(cfg) -> None:
    return None


def _check_preference(cfg) -> None:
    if not cfg.beta > 0:
        raise UserError(f"--beta: must be above 0, got {cfg.beta}", "option_above_zero", option="beta",
                        value=cfg.beta)
    if cfg.pref_loss == "robust" and not 0 <= cfg.label_smoothing < 0.5:
        raise UserError(f"--label-smoothing: robust DPO needs a flip probability in [0, 0.5), got {cfg.label_smoothing}",
                        "robust_flip_probability", option="label_smoothing", value=cfg.label_smoothing)
    if not 0 <= cfg.label_smoothing < 1:
        raise UserError(f"--label-smoothing: must be at least 0 and below 1, got {cfg.label_smoothing}",
                        "option_fraction", option="label_smoothing", value=cfg.label_smoothing)
    if cfg.streaming:
        raise UserError(f"--streaming: --objective {cfg.objective} prepares its pairs up front; drop --streaming",
                        "streaming_preference", option="streaming", objective=cfg.objective)
    if cfg.method in ("prefix", "prompt"):
        raise UserError(f"--method {cfg.method} with --objective {cfg.objective}: TRL's preference trainers "
                        "support full, freeze and LoRA-family methods (lora, dora, qlora, ia3)",
                        "preference_method_unsupported", option="method", method=cfg.method, objective=cfg.objective)
    if cfg.objective == "kto" and (cfg.desirable_weight <= 0 or cfg.undesirable_weight <= 0):
        raise UserError("--desirable-weight and --undesirable-weight must be above 0", "kto_weights_not_positive")
    if cfg.objective == "simpo" and cfg.simpo_gamma < 0:
        raise UserError(f"--simpo-gamma: must be 0 or more, got {cfg.simpo_gamma}", "option_not_negative",
                        option="simpo_gamma", value=cfg.simpo_gamma)
    if cfg.objective in ("orpo", "simpo") and cfg.reference != "parent":
        raise UserError(f"--reference {cfg.reference}: {cfg.objective} uses no reference model (it is "
                        "reference-free by design); leave --reference at its default", "reference_not_used",
                        option="reference", value=cfg.reference, objective=cfg.objective)


def _check_grpo(cfg) -> None:
    grpo.validate(cfg)


@dataclass(frozen=True)
class Objective:
    name: str
    help: str
    data: str                                   # "sft" | "pairs" | "unpaired" | "prompts"
    build: Callable                             # (TrainerContext) -> Trainer
    load_data: Callable                         # (cfg, ws, tokenizer, split_info) -> dict of run.Data fields
    metrics: tuple[str, ...] = ()               # extra log keys shown in events.jsonl and the plots
    best: tuple[str, bool] = ("eval_loss", False)   # (validation metric, higher is better)
    validate: Callable = field(default=_no_checks)  # (cfg) -> None, raises UserError


# what TRL's DPO/CPO/ORPO trainers log for each batch of pairs (the eval_ versions on validation)
PAIR_METRICS = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")

OBJECTIVES: dict[str, Objective] = {o.name: o for o in [
    Objective("sft", "supervised fine-tuning: next-token loss on the answers", "sft",
              build=sft.build_trainer,
              load_data=sft.load_data),
    Objective("dpo", "direct preference optimisation on chosen/rejected pairs, against a reference model "
              "(--pref-loss picks the DPO-family loss)", "pairs",
              build=preference.build_dpo,
              load_data=preference.load_pairs_data,
              metrics=PAIR_METRICS, best=("eval_rewards/accuracies", True), validate=_check_preference),
    Objective("orpo", "odds-ratio preference optimisation: SFT on chosen plus an odds-ratio penalty, "
              "no reference model", "pairs",
              build=preference.build_orpo,
              load_data=preference.load_pairs_data,
              metrics=PAIR_METRICS, best=("eval_rewards/accuracies", True), validate=_check_preference),
    Objective("simpo", "simple preference optimisation: length-normalised log-likelihood margin, no "
              "reference model", "pairs",
              build=preference.build_simpo,
              load_data=preference.load_pairs_data,
              metrics=PAIR_METRICS, best=("eval_rewards/accuracies", True), validate=_check_preference),
    Objective("kto", "Kahneman-Tversky optimisation on single answers labelled desirable or not", "unpaired",
              build=preference.build_kto,
              load_data=preference.load_unpaired_data,
              metrics=("rewards/chosen", "rewards/rejected", "rewards/margins", "kl"),
              best=("eval_loss", False), validate=_check_preference),
    # GRPO: TRL logs the weighted mean reward, each function's mean (rewards/NAME/mean), the KL to
    # the starting model (with --kl-beta above 0) and the sampled answers' length
    Objective("grpo", "group relative policy optimisation: sampled answers scored by reward functions", "prompts",
              build=grpo.build_trainer,
              load_data=grpo.load_data,
              metrics=("reward", "reward_std", "kl", "completions/mean_length", "rewards/*"),
              best=("eval_reward", True), validate=_check_grpo),
]}
check_table(OBJECTIVES, choices.OBJECTIVES, "train/objectives.py")
