"""Training tab: the run form, Start/Stop, the queue, and the live monitor of the running job.

The form is generated from `RunConfig`'s fields and their help text, so a new engine option
appears here without touching this file. Start builds the config with the engine's own
`from_dict` + `validate` and hands it to `tunestudio.jobs.queue`, which runs
`tunestudio train --config FILE` as a detached process: the run is the same as from the CLI.
The monitor reads only files (the job queue, the run's events.jsonl, the job's log), so a
reloaded page or a second browser shows the same job.
"""

from __future__ import annotations

import dataclasses

import gradio as gr

from tunestudio.config import run_config
from tunestudio.core.errors import UserError
from tunestudio.demo import demo_pick
from tunestudio.jobs import queue as jobs
from tunestudio.webui.common import charts
from tunestudio.webui.common.context import (
    Context,
    empty_table,
    err,
    error_text,
    msg,
    problems,
    run_choices,
    say,
)
from tunestudio.webui.common.safety import check_form_inputs
from tunestudio.webui.i18n.texts import DEFAULT, t
from tunestudio.webui.tabs.training import form_io, layout

# The form and the live view are their own modules; the names below are also imported from here
# (by tests and config_to_form.py), so they are re-exported.
from tunestudio.webui.tabs.training.form import (  # noqa: F401
    NOTE_FIELDS,
    PICKED,
    apply_preset,
    config_from_form,
    form_defaults,
    input_for,
    job_form_values,
    lr_for_method,
    model_note_text,
    preset_fields,
    preset_for,
    shown_help,
)
from tunestudio.webui.tabs.training.groups import MAIN  # noqa: F401
from tunestudio.webui.tabs.training.status import (  # noqa: F401
    device_line,
    memory_text,
    monitor,
    precheck,
    startup_progress,
)

# Start/Stop messages about a job in flight: once nothing trains or waits, they are no longer true
IN_FLIGHT = {"training.already_stopping", "training.stopping", "training.stopping_now", "training.duplicate_job",
             "training.started", "training.queued"}


def stale(ws, shown) -> bool:
    """Whether the message a view shows (its state: (render index, [spec])) speaks of a job in flight
    while no job is running or queued any more."""
    try:
        spec = shown[1][0]
        key = spec[0][1] if spec and spec[0][0] == "t" else None
    except (TypeError, IndexError, KeyError):
        return False
    if key not in IN_FLIGHT:
        return False
    return not any(j.status in ("running", "queued") for j in jobs.list_jobs(ws))   # one look at the queue


def duplicate_message(fields: dict) -> list:
    """Start's question when the same settings already train (UserError duplicate_run's fields)."""
    if not fields.get("job"):
        return msg("training.duplicate_run", run=fields.get("run"))
    return msg("training.duplicate_job", job=fields["job"], status=msg(f"training.state.{fields.get('status')}"))


def build(ctx: Context) -> None:
    ws = ctx.ws
    model_select = ctx.shared.get("model")
    all_fields = [f for f in dataclasses.fields(run_config.RunConfig) if f.name not in PICKED]
    by_name = {f.name: f for f in all_fields}
    runs_now = run_choices(ws, finished_only=True)
    # The form starts from the preset for the model the page opens on (config/presets.py).
    initial = {k: v for k, v in preset_for(ws, getattr(model_select, "value", None)).items() if k != "reason"}

    with gr.Row():
        datasets = ws.list_datasets()
        wanted = demo_pick(ws)["dataset"]
        preselect = wanted if wanted in datasets else None
        dataset = gr.Dropdown(choices=datasets, value=preselect, label=t(DEFAULT, "training.dataset"),
                              elem_id="dataset-select", allow_custom_value=True, scale=2)
        ctx.tr(dataset, label="training.dataset", info="training.dataset_info")
        refresh = gr.Button(t(DEFAULT, "common.refresh"), scale=0, min_width=100)
        ctx.tr(refresh, value="common.refresh")
        with gr.Column(scale=3):
            model_note = gr.Markdown(elem_id="training-model-note")   # the base model and its preset
    ctx.shared["training_dataset"] = dataset

    # the common path in one row, then "Find an option" and the folded groups (layout.py, groups.py)
    inputs = layout.build_form(ctx, by_name, runs_now, initial)

    from tunestudio.webui.tabs.training import rewards_panel

    rewards_panel.build(ctx, inputs["objective"])   # GRPO: edit a reward file, try it on 8 samples
    with gr.Row():
        start = gr.Button(t(DEFAULT, "training.start"), variant="primary", elem_id="start-training")
        # asks before a second job with the same settings (jobs/duplicates.py); shown only then
        queue_copy = gr.Button(t(DEFAULT, "training.queue_copy"), visible=False, elem_id="queue-copy")
        stop = gr.Button(t(DEFAULT, "training.stop"), variant="stop", elem_id="stop-training")
        # the separate, worded kill: shown only while a job is stopping (a second Stop never escalates)
        stop_now = gr.Button(t(DEFAULT, "training.stop_now"), variant="stop", visible=False, elem_id="stop-now")
        ctx.tr(start, value="training.start")
        ctx.tr(queue_copy, value="training.queue_copy")
        ctx.tr(stop, value="training.stop")
        ctx.tr(stop_now, value="training.stop_now")
    memory = gr.Markdown(elem_id="memory-estimate")   # under Start: the button stays in sight at 1280x800
    message = gr.Markdown(elem_id="training-message")
    names = list(inputs)
    components = [inputs[n] for n in names]
    model_input = model_select if model_select is not None else gr.State("")
    # the same run as a `tunestudio train ...` command, kept current; the form as run-config YAML
    form_io.build(ctx, [model_input, dataset, *components], names,
                  lambda m, d, values: config_from_form(m, d, values))
    command = gr.Code(label=t(DEFAULT, "training.command"), language="shell", interactive=False,
                      elem_id="training-command", lines=1)
    ctx.tr(command, label="training.command")

    # ---- the monitor ---------------------------------------------------------------------------
    status = gr.Markdown(t(DEFAULT, "training.no_job"), elem_id="training-status")
    progress = gr.HTML(elem_id="training-progress")
    with gr.Row():
        # hidden until the run logs (no empty axes while it starts, or for a job that never made a run)
        loss_plot = charts.chart(ctx, "line", elem_id="loss-plot", label="training.loss_plot", height=340, scale=2,
                                 **charts.LOSS_AXES)
        lr_plot = charts.chart(ctx, "line", elem_id="lr-plot", label="training.lr_plot", x="step", y="lr",
                               x_title="training.axis.step", y_title="training.axis.lr",
                               legend="training.axis.series", height=340, scale=1)
    from tunestudio.webui.tabs.training import pref_plot

    pref_plot.attach(ctx)  # DPO-family / KTO runs: reward margin and preference accuracy (own timer)
    alerts = gr.Markdown(elem_id="training-alerts")
    timer = gr.Timer(1.0)
    from tunestudio.webui.tabs.runs.manage import training_next_steps

    training_next_steps(ctx, timer)   # evaluate, chat with, export the run once it has completed
    with gr.Accordion(t(DEFAULT, "training.console"), open=False, elem_id="training-console-box") as console_box:
        ctx.tr(console_box, label="training.console")
        # labelled (Gradio names an unlabelled code box "Code", in English on any page), the label
        # hidden: the accordion above already says what it is
        console = gr.Code(language=None, interactive=False, elem_id="training-console", lines=12,
                          label=t(DEFAULT, "training.console"), show_label=False)
        ctx.tr(console, label="training.console")
    with gr.Accordion(t(DEFAULT, "training.queue"), open=True, elem_id="training-queue-box") as queue_box:
        ctx.tr(queue_box, label="training.queue")
        with gr.Row(equal_height=False):   # the table and what cancels a job in it, side by side
            heads = [f"training.col.{c}" for c in ("job", "name", "since")]
            queue_table = gr.Dataframe(value=empty_table(DEFAULT, heads), interactive=False, elem_id="training-queue",
                                       wrap=True, scale=3)
            with gr.Column(scale=1, min_width=220):
                cancel_pick = gr.Dropdown(choices=[], value=None, label=t(DEFAULT, "training.cancel_pick"),
                                          elem_id="cancel-pick")
                cancel = gr.Button(t(DEFAULT, "training.cancel"), elem_id="cancel-job")
            ctx.tr(cancel_pick, label="training.cancel_pick")
            ctx.tr(cancel, value="training.cancel")
    seen = gr.State(None)   # what the plots last showed, so unchanged ticks do not redraw them


    def start_work(lang, model, dataset_name, *values, allow_duplicate=False):
        hide = gr.update(visible=False)
        try:
            cfg = config_from_form(model, dataset_name, dict(zip(names, values)))
            check_form_inputs(ws, cfg.model, cfg.dataset, cfg.name)  # nothing outside the workspace
            bad = precheck(ws, cfg)
            if bad:   # said here, before a job exists, not as "exit code 1" in a console log
                return msg("training.precheck_failed", n=bad[0], rows=problems(bad[1], bad[0])), [gr.skip(), hide]
            running = jobs.current_job(ws)
            job = jobs.submit(ws, cfg, allow_duplicate=allow_duplicate)
        except UserError as e:
            if e.code == "duplicate_run":   # ask first: "Queue another copy" queues it
                return duplicate_message(e.fields), [gr.skip(), gr.update(visible=True)]
            return err(e), [gr.skip(), hide]
        except Exception as e:
            return err(e), [gr.skip(), hide]
        if job.status == "queued":   # the command box stays the running job's, beside its status
            return msg("training.queued", job=job.id, running=running.id if running else "?"), [gr.skip(), hide]
        return msg("training.started", job=job.id), [job.command_line(), hide]

    def copy_work(lang, model, dataset_name, *values):
        return start_work(lang, model, dataset_name, *values, allow_duplicate=True)

    def stop_work(lang):
        before = jobs.current_job(ws)
        job = jobs.stop(ws)   # a second Stop while stopping is ignored by the queue itself
        if job is None:
            return msg("training.nothing_running")
        if before is not None and before.stopping:
            return msg("training.already_stopping", job=job.id)
        return msg("training.stopping", job=job.id)

    def stop_now_work(lang):
        job = jobs.stop(ws, now=True)
        return msg("training.stopping_now", job=job.id) if job else msg("training.nothing_running")

    def cancel_work(lang, job_id):
        if not job_id:
            return msg("training.cancel_none")
        try:
            jobs.cancel(ws, job_id)
        except Exception as e:
            return err(e)
        return msg("training.cancelled", job=job_id)

    def tick(lang, last, shown):
        lang = lang or DEFAULT
        try:
            out = monitor(ws, lang, last)
        except (OSError, UserError) as e:  # a read-only or full workspace: say so, keep polling
            return [error_text(lang, e)] + [gr.skip()] * 13
        if stale(ws, shown):   # "already stopping", "same settings already train": true no more
            return out + ["", None, gr.update(visible=False)]
        return out + [gr.skip()] * 3

    def refresh_lists(current, lang=None):
        names_now = ws.list_datasets()
        return gr.update(choices=names_now, value=current if current in names_now else None), \
            gr.update(choices=run_choices(ws, finished_only=True, lang=lang))

    def estimate(lang, model, method, batch_size, max_length, precision, checkpointing, lora_r, data):
        return memory_text(ws, lang, model, method, batch_size, max_length, precision, checkpointing, lora_r,
                           dataset=data)

    said = ctx.view([message])   # Start/Stop/Cancel's message, said again when the language changes
    said.act(start.click, start_work, say, [model_input, dataset, *components], extra=[command, queue_copy])
    said.act(queue_copy.click, copy_work, say, [model_input, dataset, *components], extra=[command, queue_copy])
    said.act(stop.click, stop_work, say, [])
    said.act(stop_now.click, stop_now_work, say, [])
    said.act(cancel.click, cancel_work, say, [cancel_pick])
    refresh.click(refresh_lists, [dataset, ctx.lang], [dataset, inputs["from_run"]], api_visibility="private")
    if ctx.current_tab is not None:   # files stored and runs finished since the page opened
        ctx.current_tab.select(refresh_lists, [dataset, ctx.lang], [dataset, inputs["from_run"]],
                               api_visibility="private")
    monitor_outputs = [status, progress, loss_plot, lr_plot, alerts, console, queue_table, cancel_pick, command, seen,
                       stop_now, message, said.state, queue_copy]
    timer.tick(tick, [ctx.lang, seen, said.state], monitor_outputs, api_visibility="private", queue=False)
    ctx.on_load(tick, [ctx.lang, gr.State(None), said.state], monitor_outputs)

    mem_inputs = [ctx.lang, model_input, inputs["method"], inputs["batch_size"], inputs["max_length"],
                  inputs["precision"], inputs["gradient_checkpointing"], inputs["lora_r"], dataset]
    for comp in mem_inputs[1:]:
        comp.change(estimate, mem_inputs, [memory], api_visibility="private")
    ctx.on_load(estimate, mem_inputs, [memory])
    ctx.on_language(estimate, mem_inputs, [memory])
    if model_select is not None:
        note_names = [n for n in NOTE_FIELDS if n in inputs]

        def note(lang, model, data, *values):
            v = dict(zip(note_names, values))
            return model_note_text(ws, lang, model, v.get("method"), data, v)

        note_inputs = [ctx.lang, model_select, dataset, *[inputs[n] for n in note_names]]
        for comp in note_inputs[1:]:   # off the queue: the command preview and Start never wait behind it
            comp.change(note, note_inputs, [model_note], api_visibility="private", queue=False,
                        show_progress="hidden")
        ctx.on_load(note, note_inputs, [model_note])
        ctx.on_language(note, note_inputs, [model_note])
        # Only a user's pick applies the preset (`input`, not `change`): a form restored from a job on
        # reload also sets the model and the method, and must keep the job's values.
        preset_names = [n for n in preset_fields() if n in inputs]
        preset_inputs = [inputs[n] for n in preset_names]

        def on_model_pick(m, *current):
            return apply_preset(ws, m, dict(zip(preset_names, current)), preset_names)

        def on_method_pick(m, method, lr):
            return lr_for_method(ws, m, method, lr)

        model_select.input(on_model_pick, [model_select, *preset_inputs], preset_inputs, api_visibility="private")
        inputs["method"].input(on_method_pick, [model_select, inputs["method"], inputs["lr"]], [inputs["lr"]],
                               api_visibility="private")

    # A reloaded page (or a second browser) shows the settings of the job it re-attaches to.
    restore_outputs = ([model_select] if model_select is not None else []) + [dataset, *components, message, said.state]

    def on_restore(lang):
        lang = lang or DEFAULT
        job, values = job_form_values(ws, names)
        if values is None:
            return [gr.skip()] * len(restore_outputs)
        head = [values.pop("model")] if model_select is not None else []
        head.append(values.pop("dataset"))
        note = msg("training.restored", job=job.id)
        return head + [values[n] for n in names] + [say(lang, note), said.shown_message(note)]

    ctx.on_load(on_restore, [ctx.lang], restore_outputs)
    # "Start a run from this config" (Runs tab) fills these (webui/common/config_to_form.py)
    ctx.shared["training_form"] = {"names": names, "components": components, "dataset": dataset,
                                   "model": model_select, "message": message, "message_view": said}
    ctx.dataset_lists.append(dataset)
    ctx.shared["run_lists"] = ctx.shared.get("run_lists", []) + [inputs["from_run"]]
