"""The Training tab's form: one input per `RunConfig` field (label and help from the locale
files, the engine's own help in English), the demo preset, and the config a filled form makes
(`config_from_form`: the engine's `from_dict` + `validate`, what Start runs). Split out of
tab_training.py, which lays the tab out and wires it.
"""

from __future__ import annotations

import dataclasses

import gradio as gr

from tunestudio.config import presets, run_config
from tunestudio.config.presets import PRETRAINED_LR, RANDOM_LR, RANDOM_PRESET
from tunestudio.core.errors import UserError
from tunestudio.data.split import load_splits
from tunestudio.jobs import queue as jobs
from tunestudio.train.config_check import validate
from tunestudio.webui.common.context import Context, FormError, error_text, msg, raw, run_choices
from tunestudio.webui.i18n.texts import DEFAULT, has, t, ui_flags
from tunestudio.webui.tabs.training.groups import PICKED

ELEM_IDS = {"method": "method", "epochs": "epochs", "lr": "learning-rate", "batch_size": "batch-size"}
LAUNCH_FIELDS = ("launcher", "num_processes")  # offered only where more than one device is visible


def _label(lang: str, name: str) -> str:
    key = f"param.{name}"
    text = t(lang, key)
    return name.replace("_", " ").capitalize() if text == key else text


def _help(lang: str, f) -> str:
    """The engine's help text, unless the language file has its own translation of it."""
    key = f"param_help.{f.name}"
    text = t(lang, key)
    return f.metadata.get("help", "") if text == key else text


def shown_help(lang: str, f) -> str:
    """The help under a field: `_help` with the other fields it names by --flag named by their
    labels first (the form is what the user has in front of them)."""
    return ui_flags(lang, _help(lang, f))


def _choices(f) -> list | None:
    choices = f.metadata.get("choices")
    return list(choices) if choices else None


def _visible_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 1


def input_for(f, ctx: Context, run_list: list, initial: dict | None = None):
    """One Gradio input for a RunConfig field, labelled and helped in the current language;
    `initial` holds values to start from instead of the engine's defaults (the demo preset)."""
    kind, default = run_config.field_kind(f), run_config.field_default(f)
    if initial and f.name in initial:
        default = initial[f.name]
    common = dict(label=_label(DEFAULT, f.name), info=shown_help(DEFAULT, f), elem_id=ELEM_IDS.get(f.name, f"param-{f.name.replace('_', '-')}"))
    choices = _choices(f)
    if f.name in LAUNCH_FIELDS and _visible_devices() < 2:
        common["visible"] = False  # one device: nothing to launch on; the run stays single-process
    if f.name == "from_run":
        comp = gr.Dropdown(choices=run_list, value=None, allow_custom_value=True, **common)
    elif choices:
        comp = gr.Dropdown(choices=choices, value=default, **common)
    elif kind == "bool":
        comp = gr.Checkbox(value=default, **common)
    elif kind == "int":
        comp = gr.Number(value=default, precision=0, **common)
    elif kind == "float":
        comp = gr.Number(value=default, **common)
    elif kind == "list":
        import yaml

        comp = gr.Code(value=yaml.safe_dump(default) if default else "", language="yaml", **{k: v for k, v in common.items() if k != "info"})
    else:
        comp = gr.Textbox(value=default, **common)
    bind = {"label": lambda lang, n=f.name: _label(lang, n)}
    if kind != "list":
        bind["info"] = lambda lang, fld=f: shown_help(lang, fld)
    if f.name == "from_run":   # its labels hold each run's status, in the UI's language
        bind["choices"] = lambda lang: run_choices(ctx.ws, finished_only=True, lang=lang)
    ctx.tr(comp, **bind)
    return comp



def empty_field(f, default=None) -> list:
    """The message spec for field `f` left empty: its label (in the UI's language when shown) and
    the default `tunestudio train` would use without it (`default`: that value when it is not the
    field's own, such as the preset's learning rate), so the user sees the value instead of getting
    it silently."""
    label = msg(f"param.{f.name}") if has(DEFAULT, f"param.{f.name}") else raw(_label(DEFAULT, f.name))
    default = run_config.field_default(f) if default is None else default
    return msg("common.field_empty", field=label, default=f"{default:g}" if isinstance(default, float) else default)


def _is_empty(f, value) -> bool:
    """An emptied number box, or a dropdown with nothing picked where "" is none of its choices."""
    if run_config.field_kind(f) in ("int", "float"):
        return value is None or (isinstance(value, str) and not value.strip())
    return value in (None, "") and bool(f.metadata.get("choices")) and "" not in (_choices(f) or [])


def config_from_form(model: str, dataset: str, values: dict):
    """The RunConfig for what the form holds, built and checked by the engine's own functions
    (`from_dict` coerces each value as a flag would be, `validate` refuses bad options), so the
    UI and `tunestudio train --model ... --dataset ...` make the same config.

    Raises FormError naming each emptied number box or list (by its label, with the default it
    would take: never filled in silently), UserError for a value the engine refuses."""
    import yaml

    by_name = run_config.fields_by_name()

    # an emptied learning rate takes the preset's for the model and method (config/presets.py): say that one
    preset_lr = presets.preset(presets.model_kind(model), values.get("method") or "lora")
    preset_lr = presets.RANDOM_LR if "method" in preset_lr else preset_lr["lr"]
    empty = [empty_field(by_name[n], preset_lr if n == "lr" else None)
             for n, v in values.items() if _is_empty(by_name[n], v)]
    if empty:
        raise FormError([part for spec in empty for part in spec])
    out = {"model": model or "", "dataset": dataset or ""}
    for name, value in values.items():
        f = by_name[name]
        if run_config.field_kind(f) == "list":
            value = yaml.safe_load(value) if value and str(value).strip() else []
        elif value is None:  # an emptied text box or a list whose empty choice means "none"
            value = ""
        out[name] = value
    return validate(run_config.from_dict(out, source="web UI"))


def preset_for(ws, model, method=None) -> dict:
    """The Training tab's starting values for `model` with `method` (config/presets.py): a random
    model's whole preset (method, lr, batch size, epochs), a pretrained model's learning rate for
    the method; "reason" (a CodedText) says why."""

    try:
        kind = presets.model_kind(ws.model_path_or_id(model)) if model else "pretrained"
    except UserError:   # a name that is no model (a typo): the note says why; the form keeps a pretrained preset
        kind = "pretrained"
    return presets.preset(kind, method or "lora")


def preset_fields() -> list[str]:
    return list(RANDOM_PRESET)


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def is_preset_lr(value) -> bool:
    """The form still holds a preset's learning rate (the user has not typed their own)."""

    return value is None or any(_same(value, lr) for lr in (*PRETRAINED_LR.values(), RANDOM_LR, 0))


def apply_preset(ws, model, current: dict, names: list[str]) -> list:
    """Updates of the preset fields when the user picks `model`: a random model's whole preset; for
    a pretrained one the learning rate of its method, and the engine's defaults again where the form
    still holds the random model's preset (a value the user typed stays)."""

    defaults = form_defaults()
    method = current.get("method")
    if _same(method, RANDOM_PRESET["method"]):   # the random model's method goes back to the default
        method = defaults["method"]
    preset = preset_for(ws, model, method)
    if "method" in preset:   # a random model: its whole preset
        return [preset[n] for n in names]
    out = []
    for n in names:
        value = current.get(n)
        if n == "lr":
            out.append(preset["lr"] if is_preset_lr(value) else gr.skip())
        else:
            out.append(defaults[n] if _same(value, RANDOM_PRESET[n]) else gr.skip())
    return out


def lr_for_method(ws, model, method, lr):
    """The learning rate when the user picks another method: the preset's for it, unless the form
    holds a rate the user typed."""
    return preset_for(ws, model, method)["lr"] if is_preset_lr(lr) else gr.skip()


NOTE_FIELDS = ("method", "lr", "epochs", "max_steps", "batch_size", "grad_accum", "val_split", "test_split", "seed",
               "scheduler")


def model_note_text(ws, lang, model, method=None, dataset=None, values: dict | None = None) -> str:
    """The base-model line above the form, the preset it starts from with the reason, and (with the
    dataset and the form's values) a warning when the learning rate is unlikely to teach the model
    anything in the steps the run will have (train/presets.slow_learning): said before Start."""
    lang = lang or DEFAULT
    text = t(lang, "training.model_note", model=model or "—")
    if model:
        try:
            ws.model_path_or_id(model)
        except UserError as e:   # said here, in the UI's language, not as Gradio's English error pop-up
            return text + "\n\n" + error_text(lang, e)
        reason = preset_for(ws, model, method)["reason"]
        text += "\n\n" + t(lang, "training.preset_note", reason=t(lang, f"engine.{reason.code}", **reason.fields))
        slow = _slow_learning(ws, model, method, dataset, values or {})
        if slow is not None:
            text += "\n\n⚠ " + t(lang, f"engine.{slow.code}", **slow.fields)
    return text


def _slow_learning(ws, model, method, dataset, v: dict):
    import math


    try:
        kind = presets.model_kind(ws.model_path_or_id(model))
        lr = float(v.get("lr") or 0) or presets.preset(kind, method or "lora")["lr"]
        steps = int(v.get("max_steps") or 0)
        if not steps and dataset:
            rows = len(load_splits(ws, dataset, val_split=float(v.get("val_split") or 0),
                                   test_split=float(v.get("test_split") or 0), seed=int(v.get("seed") or 42)).train)
            per_step = max(1, int(v.get("batch_size") or 1)) * max(1, int(v.get("grad_accum") or 1))
            steps = math.ceil(float(v.get("epochs") or 0) * math.ceil(rows / per_step))
    except Exception:  # noqa: BLE001 - a file still being written, a half-typed value: no warning yet
        return None
    return presets.slow_learning(method or "lora", lr, steps, kind, v.get("scheduler") or "cosine") \
        if steps or kind == "random" else None


def job_form_values(ws, names: list[str]):
    """(job, {field: form value, plus model and dataset}) from the config of the job a page
    re-attaches to (the running one, else the newest): the job's own config file, else its run's
    config.yaml. (None, None) when there is no such job or its config cannot be read."""
    job = jobs.latest_job(ws)
    if job is None:
        return None, None
    paths = [p for p in (job.config_path,) if p]
    if job.run_id:
        paths.append(str(ws.runs_dir / job.run_id / "config.yaml"))
    for path in paths:
        try:
            cfg = run_config.load_config(path).to_dict()
        except Exception:  # gone or unreadable: try the next one
            continue
        from tunestudio.webui.common.config_to_form import form_values

        return job, form_values(cfg, names)
    return None, None


def form_defaults() -> dict:
    """What the form holds before the user touches it (every field but model and dataset)."""
    return {f.name: run_config.field_default(f) for f in dataclasses.fields(run_config.RunConfig) if f.name not in PICKED}


# ---- what the monitor shows ------------------------------------------------------------------
