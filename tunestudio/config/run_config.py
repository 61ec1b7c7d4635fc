"""The run config: one dataclass holding every training option, its default and its help.

The CLI flags are generated from these fields (`add_arguments`), a YAML file holds the same keys,
and the web UI builds the same object, so the three can never drift apart. `save_config` writes
every field in declaration order, so the same settings give byte-for-byte the same config.yaml
whichever face started the run.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from tunestudio.config.choices import (
    LAUNCHERS,
    METHODS,
    OBJECTIVES,
    OPTIMIZERS,
    PADDING_FREE,
    PRECISIONS,
    PREF_LOSSES,
    REASONING_MODES,
    REFERENCES,
    SCHEDULERS,
    TEXT_MODES,
)
from tunestudio.core import yamlfile
from tunestudio.core.errors import UserError

DEFAULT_PATIENCE = 3   # early_stopping_patience -1: evaluations without improvement (4 per epoch by default)


def opt(default, help: str, group: str, choices=None, flag: str | None = None, **extra):
    """A config field with its help text (shown by --help and the web UI) and its group."""
    meta = {"help": help, "group": group, "choices": choices, "flag": flag, **extra}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RunConfig:
    # ---- what to train, on what -------------------------------------------------------------
    model: str = opt("", "base model: a folder under models/, a path, or a hub id", "model")
    revision: str = opt("", "hub revision (branch, tag or commit) when --model is a hub id", "model")
    dataset: str = opt("", "dataset: a file under training/datasets, a path, or a split set NAME "
                       "(NAME.train.*, NAME.val.*, NAME.test.*)", "data")
    format: str = opt("", "dataset format (text, alpaca, messages, sharegpt); empty: detect it", "data")
    mapping: str = opt("", "column mapping, e.g. 'instruction=question,output=answer'", "data", flag="--map")
    separator: str = opt("", "for .txt datasets: the line that separates documents (empty: blank lines separate "
                         "them; a file without blank lines holds one document per line)", "data")
    val_split: float = opt(0.1, "fraction of the rows held out for validation (0: none)", "data")
    test_split: float = opt(0.1, "fraction of the rows held out for the final test (0: none)", "data")
    max_length: int = opt(512, "longest sequence in tokens; longer rows are cut (and reported)", "data")
    text_mode: str = opt("stream", "plain-text data: stream joins the documents (each ended by eos) into one token "
                         "stream cut into --max-length blocks, so no token is lost; truncate trains one row per "
                         "document, cut at --max-length", "data", choices=TEXT_MODES)
    stride: int = opt(0, "stream mode: tokens each block repeats from the end of the one before, as context "
                      "(trained once only); 0: blocks do not overlap", "data")
    train_on_prompt: bool = opt(False, "also train on the prompt tokens, not only the answers", "data")
    reasoning: str = opt("keep", "assistants' reasoning (reasoning_content, <think> blocks): keep trains on it "
                         "where the chat template renders it, drop leaves it out", "data", choices=REASONING_MODES)
    skip_bad_rows: bool = opt(False, "leave out (and list) rows the model's chat template refuses, instead of "
                              "stopping before the run starts", "data")
    num_proc: int = opt(0, "processes that encode the data (0: one per CPU core, up to 8, from 20,000 "
                        "rows; encoded rows are cached, so a second run on the same data starts at once)", "data")
    replay: float = opt(-1.0, "mix the base model's own answers to general requests into training, as this share of "
                        "the training rows, so a narrow task does not overwrite what the model does elsewhere "
                        "(-1: 0.1 for chat data on a pretrained model, else off; 0: off); train/replay.py", "data")
    eval_rows: int = opt(1000, "evaluate on at most this many validation rows, spread evenly over the "
                         "validation split (0: all of them); a large split would make every evaluation long", "data")

    streaming: bool = opt(False, "read the training file as a stream instead of preparing it all first, for data "
                          "larger than memory or disk: JSON Lines only, needs --max-steps, the first --eval-rows "
                          "rows are the validation set", "data")
    shuffle_buffer: int = opt(10000, "with --streaming: examples held in memory to shuffle from (more: better "
                              "mixed, more memory)", "data")

    # ---- method -------------------------------------------------------------------------------
    method: str = opt("lora", "how to fine-tune: full (full fine-tuning) or lora (LoRA, low-rank adaptation: less "
                     "memory, faster), or freeze, dora, ia3, prefix, prompt, qlora",
                      "method", choices=METHODS)
    lora_r: int = opt(16, "LoRA/DoRA/QLoRA rank", "method")
    lora_alpha: float = opt(32.0, "LoRA/DoRA/QLoRA scaling alpha (the update is scaled by alpha/r)", "method")
    lora_dropout: float = opt(0.05, "dropout on the LoRA/DoRA/QLoRA input", "method")
    target_modules: str = opt("all-linear", "layers to adapt (LoRA, DoRA, QLoRA, IA3): all-linear, "
                              "or a comma list of module names such as q_proj,v_proj", "method")
    freeze_layers: int = opt(2, "freeze method: how many of the LAST transformer blocks to train "
                             "(with the output head); all earlier blocks stay frozen", "method")
    num_virtual_tokens: int = opt(20, "prefix/prompt tuning: number of virtual tokens", "method")
    prompt_init_text: str = opt("", "prompt tuning: initialise the virtual tokens from this text "
                                "(empty: random)", "method")

    # ---- objective: what the loss rewards (train/objectives.py); --method decides what is trained --
    objective: str = opt("sft", "training objective: sft (next-token loss on answers), dpo, orpo, simpo (preference "
                         "pairs: prompt, chosen, rejected), kto (answers labelled good/bad), grpo (prompts + reward "
                         "functions)", "objective", choices=OBJECTIVES)
    pref_loss: str = opt("sigmoid", "dpo: the preference loss (TRL DPOConfig.loss_type): sigmoid (DPO), ipo, robust "
                         "(noisy labels, with --label-smoothing), hinge, exo_pair, nca_pair, bco_pair, sppo_hard, aot, "
                         "aot_unpaired, apo_zero, apo_down, discopop, sigmoid_norm", "objective", choices=PREF_LOSSES)
    beta: float = opt(0.1, "dpo/orpo/simpo/kto: strength of the preference (dpo, kto: how far the model may move "
                      "from the reference; orpo: weight of the odds-ratio term; simpo: reward scale)", "objective")
    reference: str = opt("parent", "dpo/kto reference model: parent (the model this run starts from: the base, or "
                         "the --from-run result), base (the original base model), none (reference-free: "
                         "the reference log-probabilities count as 0)", "objective", choices=REFERENCES)
    label_smoothing: float = opt(0.0, "dpo robust/exo_pair: the assumed share of pairs whose labels are flipped "
                                 "(robust: below 0.5)", "objective")
    simpo_gamma: float = opt(0.5, "simpo: target reward margin between chosen and rejected", "objective")
    desirable_weight: float = opt(1.0, "kto: weight of the loss on desirable (label true) rows", "objective")
    undesirable_weight: float = opt(1.0, "kto: weight of the loss on undesirable (label false) rows", "objective")

    # ---- GRPO: reward functions and sampling (tunestudio/rewards, train/grpo.py) -----------------
    rewards: str = opt("", "grpo: rewards with weights, a comma list of NAME[:WEIGHT]: a reward file in the workspace "
                       "(rewards/x.py defining reward(prompt, completion, **row) -> float) or a built-in "
                       "(exact_match, regex, json_valid, length_penalty), e.g. 'rewards/format.py:1.0,exact_match:0.5'",
                       "grpo")
    num_generations: int = opt(8, "grpo: answers sampled per prompt (a group); each is scored against its "
                               "group's mean; --batch-size x --grad-accum must be a multiple of it", "grpo")
    max_completion_length: int = opt(64, "grpo: longest sampled answer in tokens", "grpo")
    grpo_temperature: float = opt(1.0, "grpo: sampling temperature of the answers", "grpo")
    kl_beta: float = opt(0.04, "grpo: weight of the KL penalty that keeps the model near the one it started from "
                         "(TRL GRPOConfig.beta; 0: no reference model, faster, no KL logged)", "grpo")
    reward_timeout: float = opt(30.0, "grpo: seconds a reward file may take for one batch before its process is "
                                "stopped and the run ends with an error", "grpo")
    reward_regex: str = opt("", "grpo: the pattern of the regex built-in reward (must match the whole answer)", "grpo")
    reward_max_chars: int = opt(200, "grpo: length_penalty built-in: answers longer than this lose reward "
                                "(-1 at twice this length)", "grpo")

    # ---- optimisation -------------------------------------------------------------------------
    epochs: float = opt(3.0, "passes over the training data (ignored when --max-steps is set)", "training")
    max_steps: int = opt(0, "stop after this many optimizer steps (0: use --epochs)", "training")
    lr: float = opt(0.0, "peak learning rate (0: the preset for the model and method: 2e-4 for LoRA/DoRA, 2e-5 "
                    "for full fine-tuning of a pretrained model, 1e-3 for a random-initialised one; "
                    "config/presets.py)", "training")
    scheduler: str = opt("cosine", "learning-rate schedule after warmup", "training", choices=SCHEDULERS)
    warmup_steps: int = opt(0, "linear warmup over this many steps", "training")
    warmup_ratio: float = opt(0.0, "linear warmup over this fraction of all steps (instead of --warmup-steps)",
                              "training")
    optimizer: str = opt("adamw", "optimizer", "training", choices=OPTIMIZERS)
    momentum: float = opt(0.9, "SGD momentum", "training")
    weight_decay: float = opt(0.0, "weight decay (decoupled for AdamW)", "training")
    dropout: float = opt(-1.0, "model dropout (attention and hidden) while fine-tuning; -1 keeps the "
                         "model's own setting", "training")
    max_grad_norm: float = opt(1.0, "clip the gradient norm to this (0: no clipping)", "training")
    batch_size: int = opt(8, "sequences per device per micro-batch", "training")
    grad_accum: int = opt(1, "micro-batches per optimizer step (effective batch = batch size x this "
                          "x devices)", "training")
    group_by_length: bool = opt(True, "batch rows of similar length together (less padding, faster)",
                                "training")
    precision: str = opt("auto", "number format: auto (bf16 autocast where the GPU or CPU has native bf16 "
                         "(avx512_bf16/AMX), else fp16 on a GPU, fp32 on a CPU), fp32, bf16, fp16; "
                         "weights are kept and saved in fp32", "training", choices=PRECISIONS)
    padding_free: str = opt("auto", "pack each micro-batch into one row without padding (position_ids "
                            "restarting per row); auto: on with CUDA and FlashAttention-2 (its varlen "
                            "kernel), where it pays, off elsewhere", "training", choices=PADDING_FREE)
    gradient_checkpointing: bool = opt(False, "recompute activations in the backward pass: less memory, "
                                       "~30% slower", "training")
    seed: int = opt(42, "random seed (data split, order, initialisation)", "training")

    # ---- evaluation, monitoring, checkpoints ---------------------------------------------------
    eval_steps: int = opt(0, "evaluate on the validation split every N steps, and at each epoch end "
                          "(0: four times per epoch)", "monitoring")
    early_stopping_patience: int = opt(-1, "stop when the validation loss has not improved for N "
                                       "evaluations (0: never; -1: 3 when there is validation data); the final "
                                       "model is the best one either way", "monitoring")
    early_stopping_threshold: float = opt(0.0, "an improvement must lower the validation loss by more "
                                          "than this", "monitoring")
    overfitting_window: int = opt(3, "warn of overfitting when the validation loss rose while the "
                                  "training loss fell for this many evaluations in a row", "monitoring")
    logging_steps: int = opt(5, "log loss, learning rate and throughput every N steps", "monitoring")
    save_steps: int = opt(0, "save a resumable checkpoint every N steps (0: at each evaluation, or four "
                          "times per epoch without validation data)", "monitoring")
    keep_checkpoints: int = opt(2, "keep the newest N checkpoints (the best one is always kept)",
                                "monitoring")
    report_to: str = opt("", "also stream metrics, the config and the lineage to these trackers: a comma list "
                         "of tensorboard, mlflow, wandb, trackio (offline by default; needs "
                         "pip install 'tunestudio[trackers]')", "monitoring")

    # ---- run -----------------------------------------------------------------------------------
    name: str = opt("", "a label for the run (the run id stays unique)", "run")
    from_run: str = opt("", "start from a finished run's result (its full model, or its adapter, "
                        "which keeps training)", "run")
    sweep: str = opt("", "the sweep this run is a trial of (set by `tunestudio sweep`)", "run")
    launcher: str = opt("single", "how many processes train: single (one), or accelerate launch with "
                        "configs/accelerate/<launcher>.yaml: ddp (each device a full copy; on a CPU, gloo "
                        "processes), fsdp, deepspeed_zero2, deepspeed_zero3 (sharded, GPUs only)", "run",
                        choices=LAUNCHERS)
    num_processes: int = opt(0, "processes for a multi-process --launcher (one per device; 0: one per "
                             "visible GPU); the effective batch is multiplied by it", "run")
    stages: list = opt([], "train in stages: a list of option sets (e.g. [{dataset: general.jsonl}, "
                       "{dataset: task.jsonl}]), each a run whose parent is the stage before", "run")

    # ------------------------------------------------------------------------------------------
    def patience(self, has_val: bool) -> int:
        """Evaluations without improvement before early stopping (0: never): -1 means 3 when the run has
        validation data, so a default run stops before it overfits and a run without any still starts."""
        if self.early_stopping_patience < 0:
            return DEFAULT_PATIENCE if has_val else 0
        return self.early_stopping_patience

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def bf16_supported() -> bool:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((check and check()) or (amx and amx()))


def resolve_precision(precision: str | None) -> str:
    """What "auto" means on this machine: bf16 autocast where the hardware does bf16 natively (it is
    ~2x faster than fp32 on a CPU with avx512_bf16/AMX, ~4x in matmul peak, and trains to within ~1%
    of the fp32 loss), fp16 on older GPUs, fp32 on other CPUs (emulated bf16 is slower than fp32)."""
    import torch

    precision = (precision or "fp32").lower()
    if precision != "auto":
        return precision
    if bf16_supported():
        return "bf16"
    return "fp16" if torch.cuda.is_available() else "fp32"


def fields_by_name() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in fields(RunConfig)}


def field_kind(f: dataclasses.Field) -> str:
    """A RunConfig field's type name ("int", "float", "bool", "str", "list", "dict"), whether or not
    annotations are postponed; what decides its flag, its form input and how a value is coerced."""
    return f.type if isinstance(f.type, str) else f.type.__name__


def field_default(f: dataclasses.Field):
    """A RunConfig field's default (a fresh copy for a list or dict)."""
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def flag_name(field_or_name: dataclasses.Field | str) -> str:
    """The command-line flag of a RunConfig field (the field or its name): its own where it has one
    (`mapping` -> `--map`), else its name with dashes (`max_length` -> `--max-length`). The one
    place a flag is spelled: the parser, the shown `tunestudio train` command and the messages."""
    if isinstance(field_or_name, str):
        name, f = field_or_name, fields_by_name().get(field_or_name)
    else:
        name, f = field_or_name.name, field_or_name
    return (f.metadata.get("flag") if f is not None else None) or "--" + name.replace("_", "-")


def stage_config(cfg: RunConfig, index: int, from_run: str | None = None) -> RunConfig:
    """The config of stage `index`: the shared options with that stage's own on top."""
    stage = dict(cfg.stages[index])
    unknown = set(stage) - set(fields_by_name()) | ({"stages"} & set(stage))
    if unknown:
        raise UserError(f"unknown option(s) in stage {index + 1}: {', '.join(sorted(unknown))}",
                        "stage_unknown_options", stage=index + 1, options=", ".join(sorted(unknown)))
    values = {**cfg.to_dict(), **{k: coerce(k, v) for k, v in stage.items()}, "stages": []}
    if from_run is not None:
        values["from_run"] = from_run
    if "name" not in stage:
        values["name"] = f"{cfg.name}-stage{index + 1}" if cfg.name else f"stage{index + 1}"
    return RunConfig(**values)


# ---- YAML and flags --------------------------------------------------------------------------

def coerce(name: str, value):
    """`value` (from YAML or a flag) as the type of field `name`, or a UserError saying why not."""
    f = fields_by_name()[name]
    kind = field_kind(f)
    flag = flag_name(f)
    try:
        if kind == "bool":
            if isinstance(value, str):
                if value.lower() in ("true", "yes", "1", "on"):
                    return True
                if value.lower() in ("false", "no", "0", "off"):
                    return False
                raise ValueError
            if isinstance(value, (bool, int)):
                return bool(value)
            raise ValueError
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(str(value).replace("_", "")) if isinstance(value, str) else int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)  # also takes "1e-3", which YAML 1.1 reads as a string
        if kind == "list":
            if isinstance(value, str):
                value = yaml.safe_load(value) if value.strip() else []
            if not isinstance(value, list):
                raise ValueError
            return value
        if kind == "str":
            if name in ("target_modules", "report_to") and isinstance(value, list):
                return ",".join(str(v).strip() for v in value)
            if value is None:
                return ""
            if isinstance(value, (list, dict)):
                raise ValueError
            return str(value)
    except (TypeError, ValueError, yaml.YAMLError):
        raise UserError(f"{flag}: '{value}' is not a valid {kind}", "option_bad_value", option=name, value=str(value),
                        kind=kind) from None
    return value


def from_dict(values: dict, source: str = "config") -> RunConfig:
    if not isinstance(values, dict):
        raise UserError(f"{source}: expected a mapping of option: value", "config_not_mapping", source=source)
    known = fields_by_name()
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UserError(f"{source}: unknown option(s) {', '.join(unknown)}; "
                        "`tunestudio train --help` lists them", "config_unknown_options", source=source,
                        options=", ".join(unknown))
    return RunConfig(**{k: coerce(k, v) for k, v in values.items()})


def load_config(path: str | Path | None, overrides: dict | None = None) -> RunConfig:
    """The config in YAML file `path` (optional), with `overrides` (e.g. CLI flags) on top."""
    values: dict = {}
    if path:
        path = Path(path).expanduser()
        if not path.is_file():
            raise UserError(f"config file {path} not found", "config_not_found", path=str(path))
        try:
            values = yamlfile.safe_load(path.read_text(encoding="utf-8"), str(path)) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise UserError(f"{path} is not valid YAML: {e}", "config_not_yaml", path=str(path),
                            detail=str(e).splitlines()[0][:200] if str(e) else type(e).__name__) from None
        except OSError as e:
            raise UserError(f"cannot read {path}: {e.strerror or e}", "config_unreadable", path=str(path),
                            detail=str(e.strerror or e)) from None
        if not isinstance(values, dict):
            raise UserError(f"{path}: expected a mapping of option: value, got {type(values).__name__}",
                            "config_not_mapping", source=str(path))
    return from_dict({**values, **(overrides or {})}, source=str(path) if path else "options")


def dump_config(cfg: RunConfig) -> str:
    """Every field in declaration order: the same settings always give the same text."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=False)


def save_config(cfg: RunConfig, path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dump_config(cfg), encoding="utf-8")
    tmp.replace(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field. Defaults are suppressed so only what the user typed overrides
    the config file (`overrides_from_args`)."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in fields(RunConfig):
        meta = f.metadata
        group = groups.get(meta["group"]) or parser.add_argument_group(f"{meta['group']} options")
        groups[meta["group"]] = group
        flag = flag_name(f)
        default = field_default(f)
        help_text = f"{meta['help']} (default: {default!r})".replace("%", "%%")   # argparse formats help with %
        kind = field_kind(f)
        common = dict(dest=f.name, default=argparse.SUPPRESS, help=help_text)
        if kind == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        else:
            group.add_argument(flag, metavar=f.name.upper(), **common)


def overrides_from_args(args: argparse.Namespace) -> dict:
    return {f.name: getattr(args, f.name) for f in fields(RunConfig) if hasattr(args, f.name)}
