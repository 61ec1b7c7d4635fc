"""Training tab: the run form, Start/Stop, the queue, and the live monitor of the running job.

The form is generated from `RunConfig`'s fields and their help text, so a new engine option
appears here without touching this file. Start builds the config with the engine's own
`from_dict` + `validate` and hands it to `tunestudio.jobs`, which runs
`tunestudio train --config FILE` as a detached process: the run is the same as from the CLI.
The monitor reads only files (the job queue, the run's events.jsonl, the job's log), so a
reloaded page or a second browser shows the same job.
"""

from __future__ import annotations

import dataclasses
import html
import time

import gradio as gr
import pandas as pd

from tunestudio import jobs, run_progress
from tunestudio.errors import UserError
from tunestudio.webui import form_io
from tunestudio.webui.common import Context, empty_table, err, error_text, msg, optional, run_choices, say
from tunestudio.webui.i18n import DEFAULT, t, ui_flags
from tunestudio.webui.safety import check_form_inputs

# Shown above the fold, in this order; every other field goes under "Advanced". model and
# dataset have their own pickers; stages is a YAML list, edited in the advanced section.
MAIN = ("method", "objective", "epochs", "lr", "batch_size", "val_split", "early_stopping_patience", "save_steps",
        "from_run", "name")
PICKED = ("model", "dataset")
ELEM_IDS = {"method": "method", "epochs": "epochs", "lr": "learning-rate", "batch_size": "batch-size"}
FALLBACK_METHODS = ("full", "freeze", "lora", "dora", "ia3", "prefix", "prompt", "qlora")
LAUNCH_FIELDS = ("launcher", "num_processes")  # offered only where more than one device is visible
STATUS_ICONS: dict[str, str] = {}  # plain text: emoji fonts are often missing (boxes on Debian's Chromium)


def _kind(f) -> str:
    return f.type if isinstance(f.type, str) else f.type.__name__


def _default(f):
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def _label(lang: str, name: str) -> str:
    key = f"param.{name}"
    text = t(lang, key)
    return name.replace("_", " ").capitalize() if text == key else text


def _help(lang: str, f) -> str:
    """The engine's help text, unless the language file has its own translation of it."""
    key = f"param_help.{f.name}"
    text = t(lang, key)
    return f.metadata.get("help", "") if text == key else text


def _shown_help(lang: str, f) -> str:
    """The help under a field: `_help` with the other fields it names by --flag named by their
    labels first (the form is what the user has in front of them)."""
    return ui_flags(lang, _help(lang, f))


def _choices(f, config_mod) -> list | None:
    choices = f.metadata.get("choices")
    if choices == "methods":
        try:
            return list(config_mod._method_names())
        except ImportError:  # the methods table is not built yet: the documented names
            return list(FALLBACK_METHODS)
    if choices == "objectives":
        return list(config_mod._objective_names())
    return list(choices) if choices else None


def _visible_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 1


def _input_for(f, config_mod, ctx: Context, run_list: list, initial: dict | None = None):
    """One Gradio input for a RunConfig field, labelled and helped in the current language;
    `initial` holds values to start from instead of the engine's defaults (the demo preset)."""
    kind, default = _kind(f), _default(f)
    if initial and f.name in initial:
        default = initial[f.name]
    common = dict(label=_label(DEFAULT, f.name), info=_shown_help(DEFAULT, f), elem_id=ELEM_IDS.get(f.name, f"param-{f.name.replace('_', '-')}"))
    choices = _choices(f, config_mod)
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
        bind["info"] = lambda lang, fld=f: _shown_help(lang, fld)
    if f.name == "from_run":   # its labels hold each run's status, in the UI's language
        bind["choices"] = lambda lang: run_choices(ctx.ws, finished_only=True, lang=lang)
    ctx.tr(comp, **bind)
    return comp


def build(ctx: Context) -> None:
    config_mod = optional("tunestudio.train.config", ctx=ctx)
    ws = ctx.ws
    model_select = ctx.shared.get("model")
    if config_mod is None:
        gr.Markdown(t(DEFAULT, "common.not_available", what="tunestudio.train.config"))
        return
    all_fields = [f for f in dataclasses.fields(config_mod.RunConfig) if f.name not in PICKED]
    by_name = {f.name: f for f in all_fields}
    inputs: dict[str, gr.components.Component] = {}
    runs_now = run_choices(ws, finished_only=True)
    # The form starts from the demo preset when the page opens on the demo model.
    initial = preset_for(getattr(model_select, "value", None)) or {}

    with gr.Row():
        datasets = ws.list_datasets()
        preselect = "demo-reviews.jsonl" if "demo-reviews.jsonl" in datasets else None
        dataset = gr.Dropdown(choices=datasets, value=preselect, label=t(DEFAULT, "training.dataset"),
                              elem_id="dataset-select", allow_custom_value=True, scale=3)
        ctx.tr(dataset, label="training.dataset", info="training.dataset_info")
        refresh = gr.Button(t(DEFAULT, "common.refresh"), scale=0, min_width=100)
        ctx.tr(refresh, value="common.refresh")
        model_note = gr.Markdown(elem_id="training-model-note")
    ctx.shared["training_dataset"] = dataset

    with gr.Row():
        for name in MAIN[:4]:
            inputs[name] = _input_for(by_name[name], config_mod, ctx, runs_now, initial)
    with gr.Row():
        for name in MAIN[4:]:
            inputs[name] = _input_for(by_name[name], config_mod, ctx, runs_now, initial)

    with gr.Accordion(t(DEFAULT, "training.advanced"), open=False) as advanced:
        ctx.tr(advanced, label="training.advanced")
        groups: dict[str, list] = {}
        for f in all_fields:
            if f.name not in MAIN:
                groups.setdefault(f.metadata.get("group", "other"), []).append(f)
        for group, fs in groups.items():
            head = gr.Markdown(f"**{t(DEFAULT, f'training.group.{group}')}**")
            ctx.tr(head, value=lambda lang, g=group: f"**{t(lang, f'training.group.{g}')}**")
            for i in range(0, len(fs), 3):
                with gr.Row():
                    for f in fs[i:i + 3]:
                        inputs[f.name] = _input_for(f, config_mod, ctx, runs_now, initial)

    from tunestudio.webui import rewards_panel

    rewards_panel.build(ctx, inputs["objective"])   # GRPO: edit a reward file, try it on 8 samples
    memory = gr.Markdown(elem_id="memory-estimate")
    with gr.Row():
        start = gr.Button(t(DEFAULT, "training.start"), variant="primary", elem_id="start-training")
        stop = gr.Button(t(DEFAULT, "training.stop"), variant="stop", elem_id="stop-training")
        ctx.tr(start, value="training.start")
        ctx.tr(stop, value="training.stop")
    message = gr.Markdown(elem_id="training-message")
    names = list(inputs)
    components = [inputs[n] for n in names]
    model_input = model_select if model_select is not None else gr.State("")
    # the same run as a `tunestudio train ...` command, kept current; the form as run-config YAML
    form_io.build(ctx, config_mod, [model_input, dataset, *components], names,
                  lambda m, d, values: config_from_form(config_mod, m, d, values))
    command = gr.Code(label=t(DEFAULT, "training.command"), language="shell", interactive=False,
                      elem_id="training-command", lines=1)
    ctx.tr(command, label="training.command")

    # ---- the monitor ---------------------------------------------------------------------------
    status = gr.Markdown(t(DEFAULT, "training.no_job"), elem_id="training-status")
    progress = gr.HTML(elem_id="training-progress")
    with gr.Row():
        loss_plot = gr.LinePlot(x="step", y="loss", color="series", elem_id="loss-plot",
                                label=t(DEFAULT, "training.loss_plot"), height=340, scale=2,
                                x_title=t(DEFAULT, "training.axis.step"), y_title=t(DEFAULT, "training.axis.loss"),
                                color_title=t(DEFAULT, "training.axis.series"))
        lr_plot = gr.LinePlot(x="step", y="lr", elem_id="lr-plot", label=t(DEFAULT, "training.lr_plot"),
                              height=340, scale=1, x_title=t(DEFAULT, "training.axis.step"),
                              y_title=t(DEFAULT, "training.axis.lr"))
        ctx.tr(loss_plot, label="training.loss_plot", x_title="training.axis.step", y_title="training.axis.loss",
               color_title="training.axis.series")
        ctx.tr(lr_plot, label="training.lr_plot", x_title="training.axis.step", y_title="training.axis.lr")
    from tunestudio.webui import pref_plot

    pref_plot.attach(ctx)  # DPO-family / KTO runs: reward margin and preference accuracy (own timer)
    alerts = gr.Markdown(elem_id="training-alerts")
    timer = gr.Timer(1.0)
    from tunestudio.webui.runs_manage import training_next_steps

    training_next_steps(ctx, timer)   # evaluate, chat with, export the run once it has completed
    with gr.Accordion(t(DEFAULT, "training.console"), open=False) as console_box:
        ctx.tr(console_box, label="training.console")
        console = gr.Code(language=None, interactive=False, elem_id="training-console", lines=12)
    with gr.Accordion(t(DEFAULT, "training.queue"), open=True) as queue_box:
        ctx.tr(queue_box, label="training.queue")
        queue_table = gr.Dataframe(value=empty_table(DEFAULT, [f"training.col.{c}" for c in ("job", "name", "since")]),
                                   interactive=False, elem_id="training-queue", wrap=True)
        with gr.Row():
            cancel_pick = gr.Dropdown(choices=[], value=None, label=t(DEFAULT, "training.cancel_pick"),
                                      elem_id="cancel-pick", scale=3)
            cancel = gr.Button(t(DEFAULT, "training.cancel"), elem_id="cancel-job", scale=0, min_width=120)
            ctx.tr(cancel_pick, label="training.cancel_pick")
            ctx.tr(cancel, value="training.cancel")
    seen = gr.State(None)   # what the plots last showed, so unchanged ticks do not redraw them


    def start_work(lang, model, dataset_name, *values):
        try:
            cfg = config_from_form(config_mod, model, dataset_name, dict(zip(names, values)))
            check_form_inputs(ws, cfg.model, cfg.dataset, cfg.name)  # nothing outside the workspace
            problems = precheck(ws, cfg)
            if problems:   # said here, before a job exists, not as "exit code 1" in a console log
                return msg("training.precheck_failed", n=problems[0], rows=problems[1]), [gr.skip()]
            running = jobs.current_job(ws)
            job = jobs.submit(ws, cfg)
        except Exception as e:
            return err(e), [gr.skip()]
        if job.status == "queued":
            return msg("training.queued", job=job.id, running=running.id if running else "?"), [job.command_line()]
        return msg("training.started", job=job.id), [job.command_line()]

    def stop_work(lang):
        job = jobs.stop(ws)
        return msg("training.stopping", job=job.id) if job else msg("training.nothing_running")

    def cancel_work(lang, job_id):
        if not job_id:
            return msg("training.cancel_none")
        try:
            jobs.cancel(ws, job_id)
        except Exception as e:
            return err(e)
        return msg("training.cancelled", job=job_id)

    def tick(lang, last):
        lang = lang or DEFAULT
        try:
            return monitor(ws, lang, last)
        except (OSError, UserError) as e:  # a read-only or full workspace: say so, keep polling
            return [error_text(lang, e)] + [gr.skip()] * 9

    def refresh_lists(current, lang=None):
        names_now = ws.list_datasets()
        return gr.update(choices=names_now, value=current if current in names_now else None), \
            gr.update(choices=run_choices(ws, finished_only=True, lang=lang))

    def estimate(lang, model, method, batch_size, max_length, precision, checkpointing, lora_r):
        return memory_text(ws, lang, model, method, batch_size, max_length, precision, checkpointing, lora_r)

    said = ctx.view([message])   # Start/Stop/Cancel's message, said again when the language changes
    said.act(start.click, start_work, say, [model_input, dataset, *components], extra=[command])
    said.act(stop.click, stop_work, say, [])
    said.act(cancel.click, cancel_work, say, [cancel_pick])
    refresh.click(refresh_lists, [dataset, ctx.lang], [dataset, inputs["from_run"]], api_visibility="private")
    monitor_outputs = [status, progress, loss_plot, lr_plot, alerts, console, queue_table, cancel_pick, command, seen]
    timer.tick(tick, [ctx.lang, seen], monitor_outputs, api_visibility="private", queue=False)
    ctx.on_load(tick, [ctx.lang, gr.State(None)], monitor_outputs)

    mem_inputs = [ctx.lang, model_input, inputs["method"], inputs["batch_size"], inputs["max_length"],
                  inputs["precision"], inputs["gradient_checkpointing"], inputs["lora_r"]]
    for comp in mem_inputs[1:]:
        comp.change(estimate, mem_inputs, [memory], api_visibility="private")
    ctx.on_load(estimate, mem_inputs, [memory])
    ctx.on_language(estimate, mem_inputs, [memory])
    if model_select is not None:
        model_select.change(model_note_text, [ctx.lang, model_select], [model_note], api_visibility="private")
        ctx.on_load(model_note_text, [ctx.lang, model_select], [model_note])
        ctx.on_language(model_note_text, [ctx.lang, model_select], [model_note])
        # Only a user's pick applies the preset (`input`, not `change`): a form restored from a job on
        # reload also sets the model, and must keep the job's values.
        preset_names = [n for n in preset_fields() if n in inputs]
        preset_inputs = [inputs[n] for n in preset_names]

        def on_model_pick(m, *current):
            return apply_preset(config_mod, m, dict(zip(preset_names, current)), preset_names)

        model_select.input(on_model_pick, [model_select, *preset_inputs], preset_inputs, api_visibility="private")

    # A reloaded page (or a second browser) shows the settings of the job it re-attaches to.
    restore_outputs = ([model_select] if model_select is not None else []) + [dataset, *components, message, said.state]

    def on_restore(lang):
        lang = lang or DEFAULT
        job, values = job_form_values(ws, config_mod, names)
        if values is None:
            return [gr.skip()] * len(restore_outputs)
        head = [values.pop("model")] if model_select is not None else []
        head.append(values.pop("dataset"))
        note = msg("training.restored", job=job.id)
        return head + [values[n] for n in names] + [say(lang, note), said.shown_message(note)]

    ctx.on_load(on_restore, [ctx.lang], restore_outputs)
    # "Start a run from this config" (Runs tab) fills these (webui/config_to_form.py)
    ctx.shared["training_form"] = {"names": names, "components": components, "dataset": dataset,
                                   "model": model_select, "message": message, "message_view": said}
    ctx.shared["dataset_lists"] = ctx.shared.get("dataset_lists", []) + [dataset]
    ctx.shared["run_lists"] = ctx.shared.get("run_lists", []) + [inputs["from_run"]]


def config_from_form(config_mod, model: str, dataset: str, values: dict):
    """The RunConfig for what the form holds, built and checked by the engine's own functions
    (`from_dict` coerces each value as a flag would be, `validate` refuses bad options), so the
    UI and `tunestudio train --model ... --dataset ...` make the same config."""
    import yaml

    by_name = config_mod.fields_by_name()
    out = {"model": model or "", "dataset": dataset or ""}
    for name, value in values.items():
        f = by_name[name]
        if _kind(f) == "list":
            value = yaml.safe_load(value) if value and str(value).strip() else []
        elif value is None:  # an emptied number box or dropdown: the engine's default
            value = "" if _kind(f) == "str" else _default(f)
        out[name] = value
    return config_mod.from_dict(out, source="web UI").validate()


def preset_for(model) -> dict | None:
    """The Training tab's starting values for `model`: the demo preset for the demo model, else None."""
    from tunestudio.demo import DEMO_PRESET, MODEL_NAME

    return dict(DEMO_PRESET) if model == MODEL_NAME else None


def preset_fields() -> list[str]:
    from tunestudio.demo import DEMO_PRESET

    return list(DEMO_PRESET)


def apply_preset(config_mod, model, current: dict, names: list[str]) -> list:
    """Updates of the preset fields when the user picks `model`: the demo preset for the demo model;
    leaving it, the engine's defaults again, but only where the form still holds the preset (a
    value the user typed stays)."""
    preset = preset_for(model)
    if preset is not None:
        return [preset[n] for n in names]
    from tunestudio.demo import DEMO_PRESET

    defaults = form_defaults(config_mod)
    out = []
    for n in names:
        value = current.get(n)
        still_preset = value == DEMO_PRESET[n] or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                                  and isinstance(DEMO_PRESET[n], (int, float))
                                                  and float(value) == float(DEMO_PRESET[n]))
        out.append(defaults[n] if still_preset else gr.skip())
    return out


def model_note_text(lang, model) -> str:
    """The base-model line above the form, and why the demo model starts from the preset."""
    lang = lang or DEFAULT
    text = t(lang, "training.model_note", model=model or "—")
    preset = preset_for(model)
    if preset is not None:
        text += "\n\n" + t(lang, "training.demo_preset", **preset)
    return text


def job_form_values(ws, config_mod, names: list[str]):
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
            cfg = config_mod.load_config(path).to_dict()
        except Exception:  # gone or unreadable: try the next one
            continue
        from tunestudio.webui.config_to_form import form_values

        return job, form_values(config_mod, cfg, names)
    return None, None


def form_defaults(config_mod) -> dict:
    """What the form holds before the user touches it (every field but model and dataset)."""
    return {f.name: _default(f) for f in dataclasses.fields(config_mod.RunConfig) if f.name not in PICKED}


# ---- what the monitor shows ------------------------------------------------------------------

def memory_text(ws, lang, model, method, batch_size, max_length, precision, checkpointing, lora_r) -> str:
    memory = optional("tunestudio.train.memory")
    if memory is None:
        return t(lang, "common.not_available", what="tunestudio.train.memory")
    if not model:
        return ""
    for name, value in (("batch_size", batch_size), ("max_length", max_length), ("lora_r", lora_r)):
        if value is not None and int(value) < 1:   # the estimate of an impossible setting would mislead
            return "⚠️ " + t(lang, "training.at_least_one", field=t(lang, f"param.{name}"), value=int(value))
    try:
        from tunestudio.train.config import resolve_precision

        precision = resolve_precision(precision or "auto")   # what the engine picks for "auto" on this machine
        est = memory.estimate(ws.model_path_or_id(model), method=method or "full", batch_size=int(batch_size or 1),  # empty field: the default
                              max_length=int(max_length or 512), precision=precision,
                              grad_checkpointing=bool(checkpointing), lora_rank=int(lora_r or 16))
        text = t(lang, "training.memory", estimate=breakdown(lang, memory, est),
                 trainable=f"{est['trainable_params']:,}", params=f"{est['params']:,}")
        try:
            ok, why = memory.check_fits(est, memory.available_memory())
            if not ok:
                text += "\n\n⚠️ " + why
        except Exception:  # the machine's free memory could not be read: the estimate alone still helps
            pass
        return text
    except Exception as e:
        return error_text(lang, e)


def _mib(mb) -> str:
    from tunestudio.train.memory import human_bytes

    return human_bytes(float(mb) * 2**20) if isinstance(mb, (int, float)) else "—"


def device_line(lang: str, summary: dict) -> str:
    """Where the run trains and in what precision, and the training process's memory at its latest
    logged step (CPU resident memory; GPU memory allocated, with its peak), from its events."""
    text = t(lang, "training.device_line", device=summary["device"], precision=summary.get("precision") or "?")
    if summary.get("rss_mb") is not None:
        gpu = (t(lang, "training.gpu_memory", now=_mib(summary["gpu_mb"]), peak=_mib(summary.get("peak_memory_mb")))
               if summary.get("gpu_mb") is not None else t(lang, "training.no_gpu"))
        text += " · " + t(lang, "training.live_memory", rss=_mib(summary["rss_mb"]), gpu=gpu)
    return text


def breakdown(lang: str, memory, est: dict) -> str:
    """`memory.breakdown` (the engine's English line) in `lang`: total, then weights, gradients,
    optimizer and activations, as MiB/GiB."""
    return t(lang, "training.breakdown", **{k: memory.human_bytes(est[k]) for k in
                                            ("total", "weights", "gradients", "optimizer", "activations")})


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


PRECHECK_MAX_BYTES = 64 << 20   # larger datasets are checked by the job itself (the UI stays quick)


def precheck(ws, cfg) -> tuple[int, str] | None:
    """(number of unusable rows, the first ones as "file:line: what is wrong" lines) of the form's
    dataset, read as the run would read it; None when every row can be used, or when the dataset
    is too large to read here (or streamed): then the job's own check reports them."""
    from tunestudio.data.check import check_dataset
    from tunestudio.data.split import format_problems, resolve_dataset

    files = resolve_dataset(ws, cfg.dataset)
    if cfg.streaming or sum(p.stat().st_size for p in files.values()) > PRECHECK_MAX_BYTES:
        return None
    kind = _objective_data(cfg.objective)
    if kind in ("pairs", "unpaired"):   # preference rows: checked as the preference loader reads them
        from tunestudio.data.preference import load_pref_file

        errors = [p for path in files.values() for p in load_pref_file(path).errors]
        return (len(errors), format_problems(errors, limit=10)) if errors else None
    if kind == "prompts":   # GRPO's prompts: the loader raises a UserError naming file:line
        from tunestudio.rewards.data import load_prompts

        for path in files.values():
            load_prompts(path)
        return None
    report = check_dataset(ws, cfg.dataset, cfg.format or None, cfg.mapping or None,
                           separator=cfg.separator or None)
    if not report.errors:
        return None
    return len(report.errors), format_problems(report.errors, limit=10)


def _objective_data(objective: str | None) -> str:
    """The kind of rows `objective` trains on (objectives table: sft, pairs, unpaired, prompts)."""
    from tunestudio.train.objectives import OBJECTIVES

    o = OBJECTIVES.get(objective or "sft")
    return o.data if o is not None else "sft"


def _startup_progress(report: dict | None, lang: str) -> str | None:
    """A bar for the data stage a starting job is in (reading, encoding...), with rate and ETA."""
    if not report:
        return None
    done, total = report.get("done") or 0, report.get("total")
    pct = int(100 * done / total) if total else 0
    unit = report.get("unit", "")
    if unit == "B":   # bytes read: MB are what a person reads
        done, total, rate, unit = done / 1e6, total / 1e6 if total else None, (report.get("rate") or 0) / 1e6, "MB"
    else:
        rate = report.get("rate") or 0
    text = t(lang, "training.preparing", stage=html.escape(str(report.get("stage", ""))), done=f"{done:,.0f}",
             total=f"{total:,.0f}" if total else "?", unit=unit, rate=f"{rate:,.1f}",
             eta=_fmt_eta(report.get("eta_s")))
    return (f'<div class="ts-progress" title="{pct}%"><div style="width:{pct}%"></div></div>'
            f'<div>{pct}% · {text}</div>')


def monitor(ws, lang: str, last) -> list:
    """The monitor's outputs for the job a page should show (the running one, else the newest)."""
    listed = jobs.list_jobs(ws)  # one look at the queue per tick (each look also advances it)
    job = jobs.latest_job(ws, listed)
    queued = jobs.queued_jobs(ws, listed)
    queue_df = pd.DataFrame(
        [{t(lang, "training.col.job"): j.id, t(lang, "training.col.name"): j.name or "—",
          t(lang, "training.col.since"): time.strftime("%H:%M:%S", time.localtime(j.created_at))} for j in queued],
        columns=[t(lang, "training.col.job"), t(lang, "training.col.name"), t(lang, "training.col.since")],
    )
    queue_sig = tuple(j.id for j in queued)
    last = last or {}
    # The queue widgets change only when the queue does, so a pick in the cancel list survives ticks.
    if last.get("queue") == (queue_sig, lang):
        queue_out = [gr.skip(), gr.skip()]
    else:
        queue_out = [queue_df, gr.update(choices=[(j.id, j.id) for j in queued], value=None)]
    if job is None:
        sig = {"view": ("none", lang), "queue": (queue_sig, lang)}
        if last.get("view") == sig["view"]:
            return [gr.skip()] * 6 + queue_out + [gr.skip(), sig]
        no_plot = gr.update(value=None, visible=False)   # no job: no empty axes either
        return [t(lang, "training.no_job"), "", no_plot, no_plot, "", ""] + queue_out + [gr.skip(), sig]

    summary = {"status": "starting", "train": [], "val": [], "lrs": [], "warnings": [], "step": 0,
               "total_steps": None, "progress": 0.0, "eta_s": None, "tokens_per_second": None, "epoch": None,
               "error": None, "lr": None}
    n_events = 0
    if job.run_id:
        follower = run_progress.follow(job.run_id, ws)
        summary = run_progress.summarize(follower.events)
        n_events = len(follower.events)
    state = summary["status"]
    if job.status in jobs.ACTIVE and job.started_at and (summary.get("started_at") or 0) < job.started_at - 1:
        state = "starting"   # a resumed run: its events so far are of an earlier process
    if job.status in jobs.ENDED and state in ("starting", "running"):
        state = "failed"  # the process ended without saying why in its events: the log tells
        summary["error"] = summary["error"] or t(lang, "training.ended_without_event", code=job.returncode)
    # before the run exists the job reports its data stages (reading, encoding) in a file of its own
    startup = jobs.read_progress(ws, job) if state == "starting" and job.status == "running" else None
    sig = {"view": (job.id, job.run_id, n_events, job.status, lang, startup and startup.get("at")),
           "queue": (queue_sig, lang)}
    log = run_progress.tail(job.log_path, 60)
    if last.get("view") == sig["view"]:
        sig["series"] = last.get("series")
        return [gr.skip()] * 5 + [log] + queue_out + [gr.skip(), sig]

    status_text = t(lang, "training.status_line", icon=STATUS_ICONS.get(state, ""),
                    status=t(lang, f"training.state.{state}"), run=job.run_id or "…", job=job.id)
    if summary.get("device"):
        status_text += "\n\n" + device_line(lang, summary)
    parts = []
    if summary["total_steps"]:
        parts.append(t(lang, "training.step_of", step=summary["step"], total=summary["total_steps"]))
    if summary["epoch"] is not None:
        parts.append(t(lang, "training.epoch", epoch=f"{float(summary['epoch']):.2f}"))
    if state == "running":
        parts.append(t(lang, "training.eta", eta=_fmt_eta(summary["eta_s"])))
    if summary["tokens_per_second"]:
        parts.append(t(lang, "training.speed", tps=f"{float(summary['tokens_per_second']):,.0f}"))
    if summary["lr"] is not None:
        parts.append(t(lang, "training.lr_now", lr=f"{float(summary['lr']):.2e}"))
    if summary["train"]:
        parts.append(t(lang, "training.last_loss", loss=f"{summary['train'][-1][1]:.4f}"))
    if summary["val"]:
        parts.append(t(lang, "training.last_val_loss", loss=f"{summary['val'][-1][1]:.4f}"))
    pct = int(round(100 * summary["progress"]))
    progress_html = (f'<div class="ts-progress" title="{pct}%"><div style="width:{pct}%"></div></div>'
                     f'<div>{pct}% · {" · ".join(parts)}</div>')
    progress_html = _startup_progress(startup, lang) or progress_html

    train_name, val_name = t(lang, "training.series.train"), t(lang, "training.series.val")
    rows = [{"step": s, "loss": v, "series": train_name} for s, v in summary["train"]]
    rows += [{"step": s, "loss": v, "series": val_name} for s, v in summary["val"]]
    loss_df = pd.DataFrame(rows, columns=["step", "loss", "series"]) if rows else None
    series = tuple(sorted({r["series"] for r in rows}))
    sig["series"] = series
    if last.get("series") and series != last["series"]:
        # The plot keeps the colour domain of the data it first drew (often only validation, evaluated
        # at step 0) through later updates: clear it now and draw it afresh on the next tick.
        loss_df = None
        sig["view"] = None
    lr_df = pd.DataFrame(summary["lrs"], columns=["step", "lr"]) if summary["lrs"] else None

    alerts = [f"⚠️ {w}" for w in summary["warnings"]]
    if summary.get("early_stop"):
        es = summary["early_stop"]
        alerts.append("⏹ " + t(lang, "training.early_stop", step=es.get("step"), best=es.get("best_step"),
                                patience=es.get("patience")))
    if summary["error"]:
        alerts.append(f"❌ {summary['error']}")
    loss_out, lr_out = gr.update(value=loss_df, visible=True), gr.update(value=lr_df, visible=True)
    return [status_text, progress_html, loss_out, lr_out, "\n\n".join(alerts), log] + queue_out + \
        [job.command_line(), sig]
