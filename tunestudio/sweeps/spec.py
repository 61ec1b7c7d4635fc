"""sweep.yaml: what a hyper-parameter sweep searches, read with the line of every key so a mistake
is one message naming its line.

    name: lr-epochs                  # the sweep id (default: the file's name); same name = resume
    base:                            # the run config every trial starts from (any RunConfig field),
      model: tiny-demo               #   or `config: base.yaml` (a run-config file)
      dataset: demo-reviews.jsonl
    space:                           # run-config field: what to try
      lr: {log_uniform: [1e-5, 1e-3]}
      epochs: {int: [1, 3]}          # {int: [low, high]} or {int: [low, high, step]}
      warmup_ratio: {uniform: [0, 0.1]}
      lora_r: [8, 16, 32]            # a list: one of these
    objective: eval_loss             # eval_loss (metrics.json), or an eval metric on the validation
                                     #   split: exact_match, f1, bleu, rouge1, rouge2, rougeL
    direction: minimize              # default: minimize for losses/perplexity, else maximize
    sampler: tpe                     # tpe | random | grid (grid: every space entry a list)
    pruner: median                   # median | hyperband | none, or {name: median, n_startup_trials: 2, ...}
    trials: 8                        # how many trials in all (a resumed sweep counts the ones done)
    timeout_min: 0                   # stop starting trials after this many minutes (0: no budget)
    max_failures: 3                  # stop after this many failed trials in a row (0: never)
    seed: 0                          # the sampler's seed
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tunestudio.config.run_config import coerce, field_kind, fields_by_name, load_config
from tunestudio.core import yamlfile
from tunestudio.core.errors import CodedError, UserError

KEYS = {"name", "base", "config", "space", "objective", "direction", "sampler", "pruner", "trials",
        "timeout_min", "seed", "max_failures"}
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = {"median": {"n_startup_trials", "n_warmup_steps", "interval_steps"},
           "hyperband": {"min_resource", "max_resource", "reduction_factor"},
           "none": set()}
EVAL_METRICS = ("exact_match", "f1", "bleu", "rouge1", "rouge2", "rougeL")
LOSS_OBJECTIVES = ("eval_loss", "last_eval_loss", "train_loss")
DISTRIBUTIONS = ("log_uniform", "uniform", "int", "log_int")
NOT_SEARCHABLE = {"model", "dataset", "name", "from_run", "stages", "sweep", "report_to"}


@dataclass
class Param:
    name: str
    kind: str               # choice | log_uniform | uniform | int | log_int
    values: list            # choice: the values; else [low, high] or [low, high, step]
    line: int


@dataclass
class SweepSpec:
    name: str
    base: dict
    space: list[Param]
    objective: str = "eval_loss"
    direction: str = "minimize"
    sampler: str = "tpe"
    pruner: str = "median"
    pruner_args: dict = field(default_factory=dict)
    trials: int = 8
    timeout_min: float = 0.0
    seed: int = 0
    max_failures: int = 3   # failed trials in a row before the sweep stops (0: never); a bad base fails them all
    source: str = ""        # the YAML text, kept beside the study

    def grid(self) -> dict[str, list]:
        return {p.name: p.values for p in self.space}


def _line(node) -> int:
    return node.start_mark.line + 1


def _plain(node):
    """A YAML node as plain Python values (safe_load's types)."""
    return yaml.safe_load(yaml.serialize(node)) if node is not None else None


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check sweep.yaml. Raises UserError "FILE, line N: what is wrong" on the first mistake."""

    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"sweep file {path} not found", "sweep_file_not_found", path=str(path))
    text = path.read_text(encoding="utf-8")
    try:
        root = yamlfile.compose(text, str(path))
    except yaml.YAMLError as e:
        raise UserError(f"{path} is not valid YAML: {e}", "config_not_yaml", path=str(path),
                        detail=str(e).splitlines()[0][:200] if str(e) else type(e).__name__) from None

    def bad(node, why, code: str | None = None, **fields):
        # `why` the English; `code` and `fields` its engine.<code> text's parts, so the web UI
        # words it under the file and line; `why` a CodedError (coerce's): its own code and fields
        if isinstance(why, CodedError):
            problem = {"code": why.code, "message": str(why), **why.fields}
        else:
            problem = {"code": code, "message": why, **fields}
        raise UserError(f"{path}, line {_line(node)}: {why}", "sweep_bad_line", file=str(path), line=_line(node),
                        problem=problem)

    if root is None or not isinstance(root, yaml.MappingNode):
        raise UserError(f"{path}: expected a mapping with at least `base:` and `space:`", "sweep_not_mapping",
                        path=str(path))
    top = {}
    for key_node, value_node in root.value:
        key = key_node.value
        if key not in KEYS:
            bad(key_node, f"unknown key '{key}': use {', '.join(sorted(KEYS))}", "sweep_unknown_key", key=key,
                keys=", ".join(sorted(KEYS)))
        top[key] = (key_node, value_node)

    base: dict = {}
    if "config" in top:
        cfg_file = Path(_plain(top["config"][1]) or "")
        cfg_file = cfg_file if cfg_file.is_absolute() else path.parent / cfg_file
        base = {k: v for k, v in load_config(cfg_file).to_dict().items()}
    known = fields_by_name()
    if "base" in top:
        node = top["base"][1]
        if not isinstance(node, yaml.MappingNode):
            bad(node, "base: expected a mapping of run-config field: value", "sweep_base_not_mapping")
        for k_node, v_node in node.value:
            if k_node.value not in known:
                bad(k_node, f"unknown run-config field '{k_node.value}' in base "
                    "(`tunestudio train --help` lists them)", "sweep_unknown_base_field", field=k_node.value)
            try:
                base[k_node.value] = coerce(k_node.value, _plain(v_node))
            except UserError as e:
                bad(v_node, e)
    if "space" not in top:
        raise UserError(f"{path}: no `space:` to search (e.g. space: {{lr: {{log_uniform: [1e-5, 1e-3]}}}})",
                        "sweep_no_space", path=str(path), example="space: {lr: {log_uniform: [1e-5, 1e-3]}}")
    space_key, space_node = top["space"]
    if not isinstance(space_node, yaml.MappingNode) or not space_node.value:
        bad(space_node if space_node.value not in ("", None) else space_key,
            "the space is empty: give at least one run-config field to search, e.g. lr: {log_uniform: [1e-5, 1e-3]}",
            "sweep_space_empty", example="lr: {log_uniform: [1e-5, 1e-3]}")
    space = [_param(k, v, known, bad) for k, v in space_node.value]

    spec = SweepSpec(name=path.stem, base=base, space=space, source=text)
    if "name" in top:
        spec.name = str(_plain(top["name"][1]) or "")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}", spec.name):
            bad(top["name"][1], f"name '{spec.name}': use letters, digits, '.', '_' and '-'", "sweep_name_bad",
                name=spec.name)
    if "objective" in top:
        spec.objective = str(_plain(top["objective"][1]))
        if spec.objective not in LOSS_OBJECTIVES + EVAL_METRICS:
            bad(top["objective"][1], f"objective '{spec.objective}': use one of "
                f"{', '.join(LOSS_OBJECTIVES + EVAL_METRICS)}", "sweep_objective_unknown", value=spec.objective,
                choices=", ".join(LOSS_OBJECTIVES + EVAL_METRICS))
    spec.direction = "minimize" if spec.objective in LOSS_OBJECTIVES else "maximize"
    if "direction" in top:
        spec.direction = str(_plain(top["direction"][1])).lower()
        if spec.direction not in ("minimize", "maximize"):
            bad(top["direction"][1], "direction: minimize or maximize", "sweep_direction_bad")
    if "sampler" in top:
        spec.sampler = str(_plain(top["sampler"][1])).lower()
        if spec.sampler not in SAMPLERS:
            bad(top["sampler"][1], f"sampler '{spec.sampler}': use {', '.join(SAMPLERS)}", "sweep_sampler_unknown",
                value=spec.sampler, choices=", ".join(SAMPLERS))
    if spec.sampler == "grid":
        for p in spec.space:
            if p.kind != "choice":
                why = (f"the grid sampler needs a list of values for '{p.name}' (e.g. [1e-4, 3e-4]), "
                       f"not a {p.kind} range")
                raise UserError(f"{path}, line {p.line}: {why}", "sweep_bad_line", file=str(path), line=p.line,
                                problem={"code": "sweep_grid_needs_list", "message": why, "name": p.name,
                                         "range": p.kind})
    if "pruner" in top:
        _pruner(spec, top["pruner"][1], bad)
    for key, kind in (("trials", int), ("timeout_min", float), ("seed", int), ("max_failures", int)):
        if key in top:
            value = _plain(top[key][1])
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 \
                    or (kind is int and not float(value).is_integer()):
                bad(top[key][1], f"{key}: expected a {'whole ' if kind is int else ''}number of 0 or more",
                    "sweep_whole_number_bad" if kind is int else "sweep_number_bad", key=key)
            setattr(spec, key, kind(value))
    if spec.trials < 1 and not spec.timeout_min:
        bad(top["trials"][1], "trials: at least 1 (or set timeout_min)", "sweep_trials_too_few")
    if not base.get("dataset"):
        raise UserError(f"{path}: base has no dataset: every trial needs one", "sweep_no_dataset", path=str(path))
    if not base.get("model") and not base.get("from_run"):
        raise UserError(f"{path}: base has no model (or from_run): every trial needs one", "sweep_no_model",
                        path=str(path))
    return spec


def _param(key_node, node, known, bad) -> Param:
    name, line = key_node.value, _line(key_node)
    if name not in known:
        bad(key_node, f"unknown run-config field '{name}' in space (`tunestudio train --help` lists them)",
            "sweep_unknown_space_field", field=name)
    if name in NOT_SEARCHABLE:
        bad(key_node, f"'{name}' cannot be searched: set it in base", "sweep_not_searchable", name=name)
    kind_of = field_kind(known[name])
    value = _plain(node)
    if isinstance(value, list):
        if not value:
            bad(node, f"'{name}': the list of values is empty", "sweep_values_empty", name=name)

        try:
            values = [coerce(name, v) for v in value]
        except UserError as e:
            bad(node, f"'{name}': {e}", "sweep_value_bad", name=name,
                error={"code": e.code, "message": str(e), **e.fields})
        return Param(name, "choice", values, line)
    if isinstance(value, dict) and len(value) == 1:
        kind, bounds = next(iter(value.items()))
        if kind not in DISTRIBUTIONS:
            bad(node, f"'{name}': unknown range '{kind}': use {', '.join(DISTRIBUTIONS)} or a list of values",
                "sweep_range_unknown", name=name, range=str(kind), choices=", ".join(DISTRIBUTIONS))
        if kind_of not in ("int", "float"):
            bad(node, f"'{name}' is a {kind_of} option: give a list of values", "sweep_option_needs_list", name=name,
                kind=kind_of)
        if kind in ("int", "log_int") and kind_of != "int" and name != "epochs":
            bad(node, f"'{name}' is a float option: use uniform or log_uniform", "sweep_float_range_needed", name=name)
        try:
            nums = [float(b) for b in bounds] if isinstance(bounds, list) else []
        except (TypeError, ValueError):
            nums = []
        if len(nums) not in (2, 3) or not all(math.isfinite(n) for n in nums) or nums[0] >= nums[1]:
            bad(node, f"'{name}': {kind} needs [low, high] with low below high (got {bounds})", "sweep_bounds_bad",
                name=name, range=kind, bounds=str(bounds))
        if kind.startswith("log") and nums[0] <= 0:
            bad(node, f"'{name}': {kind} needs a low bound above 0 (got {bounds})", "sweep_log_low_bound_bad",
                name=name, range=kind, bounds=str(bounds))
        return Param(name, kind, nums, line)
    bad(node if value is not None else key_node,
        f"'{name}': empty; give a list of values or a range such as {{log_uniform: [1e-5, 1e-3]}}",
        "sweep_param_empty", name=name, example="{log_uniform: [1e-5, 1e-3]}")


def _pruner(spec: SweepSpec, node, bad) -> None:
    value = _plain(node)
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or str(value.get("name", "")).lower() not in PRUNERS:
        bad(node, f"pruner: use {', '.join(PRUNERS)} (or {{name: median, n_startup_trials: 2}})",
            "sweep_pruner_unknown", choices=", ".join(PRUNERS), example="{name: median, n_startup_trials: 2}")
    spec.pruner = str(value.pop("name")).lower()
    unknown = set(value) - PRUNERS[spec.pruner]
    if unknown:
        bad(node, f"pruner {spec.pruner}: unknown setting(s) {', '.join(sorted(unknown))} "
            f"(it takes {', '.join(sorted(PRUNERS[spec.pruner])) or 'none'})",
            "sweep_pruner_settings_unknown" if PRUNERS[spec.pruner] else "sweep_pruner_takes_nothing",
            pruner=spec.pruner, settings=", ".join(sorted(unknown)), takes=", ".join(sorted(PRUNERS[spec.pruner])))
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            if not (k == "max_resource" and v == "auto"):
                bad(node, f"pruner {spec.pruner}: {k} must be a whole number of 0 or more", "sweep_pruner_setting_bad",
                    pruner=spec.pruner, setting=k)
    spec.pruner_args = value
