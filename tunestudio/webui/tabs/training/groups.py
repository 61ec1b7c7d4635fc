"""Where each option sits on the Training tab, and which options a search finds (no Gradio here).

The common path (the guide's seven steps: dataset, method, epochs, learning rate, batch size,
Start) is on the first screen; every other RunConfig field is in one folded group named by what
it is for. "Find an option" shows the options whose label (in the UI's language) or CLI flag
holds what the user typed, and opens their groups.
"""

from __future__ import annotations

import dataclasses
import unicodedata

from tunestudio.config import run_config
from tunestudio.webui.i18n.texts import has, t

# Above the fold, in this order (model and dataset have their own pickers).
MAIN = ("method", "epochs", "lr", "batch_size")
PICKED = ("model", "dataset")

# The folded groups, in the order they are shown; a field's place in its group is its place here.
GROUPS: dict[str, tuple[str, ...]] = {
    "data": ("val_split", "test_split", "max_length", "format", "mapping", "separator", "text_mode", "stride",
             "train_on_prompt", "reasoning", "skip_bad_rows", "replay", "eval_rows", "num_proc", "streaming",
             "shuffle_buffer"),
    "optimisation": ("max_steps", "scheduler", "warmup_steps", "warmup_ratio", "optimizer", "momentum",
                     "weight_decay", "grad_accum", "max_grad_norm", "dropout", "group_by_length", "seed"),
    "method": ("lora_r", "lora_alpha", "lora_dropout", "target_modules", "freeze_layers", "num_virtual_tokens",
               "prompt_init_text", "revision"),
    "stopping": ("eval_steps", "early_stopping_patience", "early_stopping_threshold", "save_steps",
                 "keep_checkpoints", "logging_steps", "overfitting_window", "report_to"),
    "objective": ("objective", "pref_loss", "beta", "reference", "label_smoothing", "simpo_gamma",
                  "desirable_weight", "undesirable_weight", "rewards", "num_generations", "max_completion_length",
                  "grpo_temperature", "kl_beta", "reward_timeout", "reward_regex", "reward_max_chars"),
    "devices": ("precision", "gradient_checkpointing", "padding_free", "launcher", "num_processes"),
    "run": ("name", "from_run", "stages", "sweep"),
}
# A field added to RunConfig but not placed above still shows: in the group of its engine group.
BY_ENGINE_GROUP = {"model": "method", "data": "data", "method": "method", "objective": "objective",
                   "grpo": "objective", "training": "optimisation", "monitoring": "stopping", "run": "run"}


def form_fields() -> list[str]:
    """Every RunConfig field the form has an input for, in declaration order."""
    return [f.name for f in dataclasses.fields(run_config.RunConfig) if f.name not in PICKED]


def group_of(name: str) -> str | None:
    """The folded group field `name` is in, or None for a field of the common path."""
    if name in MAIN:
        return None
    for group, names in GROUPS.items():
        if name in names:
            return group
    engine = run_config.fields_by_name()[name].metadata.get("group")
    return BY_ENGINE_GROUP.get(engine, "run")


def layout() -> dict[str, list[str]]:
    """{group: its fields in the order shown}: the table's order, then any field it does not list."""
    out: dict[str, list[str]] = {g: [n for n in names if n in run_config.fields_by_name()]
                                 for g, names in GROUPS.items()}
    for name in form_fields():
        group = group_of(name)
        if group is not None and name not in out[group]:
            out[group].append(name)
    return out


def _plain(text: str) -> str:
    """Lower case without accents, "-" and "_" as spaces: "Époka" and "epoka", "--warmup-steps"
    and "warmup steps" are found the same way."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.replace("-", " ").replace("_", " ").split())


def search_text(lang: str, name: str) -> str:
    """What "Find an option" looks in for field `name`: its label in `lang`, its CLI flag, and the
    words a guide uses for what it sets (`param_find.<name>`: "full fine-tuning", "afina total" and
    "LoRA" lead to Method, whose label says none of them)."""
    key = f"param.{name}"
    label = t(lang, key)
    label = name.replace("_", " ") if label == key else label
    words = t(lang, f"param_find.{name}") if has(lang, f"param_find.{name}") else ""
    return _plain(f"{label} {run_config.flag_name(name)} {words}")


def matching(lang: str, query: str, names: list[str] | None = None) -> set[str]:
    """The fields among `names` (default: every form field) whose label or flag holds `query`."""
    wanted = _plain(query or "")
    names = form_fields() if names is None else names
    return {n for n in names if wanted in search_text(lang, n)}
