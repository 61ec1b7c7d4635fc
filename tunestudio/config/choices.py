"""Every closed list of values a run config field accepts, in one place below everything that uses them.

The tables that give these names their meaning live higher up (train/methods.py, train/objectives.py,
train/launch.py, ...) and check at import that their keys are exactly these, so a new method or
objective is added here and there, and the CLI flags, the YAML checks and the web UI's drop-downs
follow.
"""

METHODS = ("full", "freeze", "lora", "dora", "ia3", "prefix", "prompt", "qlora")       # train/methods.py
OBJECTIVES = ("sft", "dpo", "orpo", "simpo", "kto", "grpo")                          # train/objectives.py
LAUNCHERS = ("single", "ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3")          # train/launch.py
TEXT_MODES = ("stream", "truncate")                       # plain text: data/encoding/stream.py
REASONING_MODES = ("keep", "drop")                        # a turn's reasoning: data/chat/turns.py
PADDING_FREE = ("auto", "on", "off")                      # train/attention.py
SCHEDULERS = ("linear", "cosine", "constant")
OPTIMIZERS = ("adamw", "sgd", "adafactor")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# TRL 1.16 DPOConfig.loss_type values (its _compute_loss): 'sft' alone is no preference loss, so not offered
PREF_LOSSES = ("sigmoid", "ipo", "robust", "hinge", "exo_pair", "nca_pair", "bco_pair", "sppo_hard", "aot",
               "aot_unpaired", "apo_zero", "apo_down", "discopop", "sigmoid_norm")
REFERENCES = ("parent", "base", "none")


def check_table(table, names: tuple[str, ...], where: str) -> None:
    """A table higher up (methods, objectives) names exactly the choices offered here."""
    if tuple(table) != names:
        raise RuntimeError(f"{where} has {tuple(table)} but config/choices.py offers {names}: change both")
