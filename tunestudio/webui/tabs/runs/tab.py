"""Runs tab: the registry as a table, two runs compared (config differences, metrics, loss curves
overlaid), a run's lineage, resume of a stopped run, a new run from a run's config
(config_to_form), export and serve in the Ship panel (ship_panel), any runs' curves overlaid
(runs_overlay) and sweeps (sweep_panel).

The dicts come from `tunestudio.runs.query` (the same ones `tunestudio runs` prints); the loss
curves from each run's events.jsonl through `tunestudio.jobs.queue`; resume is a queued
`tunestudio train --resume RUN` job.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from tunestudio.jobs import queue as jobs
from tunestudio.runs import query
from tunestudio.webui.common import charts
from tunestudio.webui.common.context import (
    Context,
    err,
    error_text,
    metric_label,
    msg,
    plotted,
    run_choices,
    say,
    shown,
)
from tunestudio.webui.i18n.texts import DEFAULT, engine_error, engine_warning, t
from tunestudio.webui.tabs.runs.table import fmt_cell, loss_curves, status_text, table


def run_failure(lang: str, d: dict) -> str:
    """Why the run `d` (runs.query.run_details) failed, in `lang`: worded from its failed event's
    code (or the registry's, for a process that died without one: `registry.crash_record`); any
    other registry text as the engine's English behind a lead in `lang`."""
    return engine_error(lang, d.get("error_event") or d["error"])


def duration_text(lang: str, d: dict) -> str:
    """A run's training time in seconds: of every process that trained it when it was resumed
    (`run_details`' duration_s), with how many there were and the last one's share."""
    total = fmt_cell(d.get("duration_s")) or "—"
    if (d.get("segments") or 1) > 1:
        total += " " + t(lang, "runs.segments", n=d["segments"], last=fmt_cell(d.get("last_segment_s")))
    return total


def resumed_message(ws, job) -> list:
    """Resume's answer: the job queued, and where it goes on from, in words (a run with no
    checkpoint starts again from step 0: said before it does, never a silent restart)."""
    step = jobs.resume_start(ws, job.run_id)
    where = msg("runs.resume_from_step", step=step) if step else msg("runs.resume_from_start", run=job.run_id)
    return msg("runs.resumed", job=job.id, command=job.command_line(),
               status=msg(f"training.state.{job.status}")) + where


def build(ctx: Context) -> None:
    ws = ctx.ws
    from tunestudio.webui.tabs.runs import manage as runs_manage

    refresh = gr.Button(t(DEFAULT, "common.refresh"), elem_id="runs-refresh")
    ctx.tr(refresh, value="common.refresh")
    table_inputs = runs_manage.filters(ctx)   # search, status, sort, descending
    runs_df = gr.Dataframe(value=table(ws, DEFAULT), interactive=False, elem_id="runs-table", wrap=True)
    opts = run_choices(ws)
    with gr.Row():
        run_a = gr.Dropdown(choices=opts, value=None, label=t(DEFAULT, "runs.run_a"), elem_id="runs-a")
        run_b = gr.Dropdown(choices=opts, value=None, label=t(DEFAULT, "runs.run_b"), elem_id="runs-b")
        ctx.tr(run_a, label="runs.run_a", info="runs.run_a_info")
        ctx.tr(run_b, label="runs.run_b")
        for pick in (run_a, run_b):   # a run's label holds its status: said in the new language at once
            ctx.tr(pick, choices=lambda lang: run_choices(ws, lang=lang))
    ctx.shared["runs_pick"] = (run_a, gr.State(False))   # the Training tab's "Export" picks a run here
    with gr.Row():
        compare = gr.Button(t(DEFAULT, "runs.compare"), variant="primary", elem_id="runs-compare")
        show = gr.Button(t(DEFAULT, "runs.details"), elem_id="runs-details")
        resume = gr.Button(t(DEFAULT, "runs.resume"), elem_id="runs-resume")
        use_config = gr.Button(t(DEFAULT, "runs.use_config"), elem_id="runs-use-config")
        for b, k in ((compare, "compare"), (show, "details"), (resume, "resume"), (use_config, "use_config")):
            ctx.tr(b, value=f"runs.{k}")
    message = gr.Markdown(elem_id="runs-message")
    differences = gr.Dataframe(interactive=False, elem_id="runs-differences", wrap=True,
                               label=t(DEFAULT, "runs.differences"), visible=False)
    metrics = gr.Dataframe(interactive=False, elem_id="runs-metrics", label=t(DEFAULT, "runs.metrics"), visible=False)
    curves = charts.chart(ctx, "line", elem_id="runs-curves", label="runs.curves", height=300, **charts.LOSS_AXES)
    for comp, key in ((differences, "differences"), (metrics, "metrics")):
        ctx.tr(comp, label=f"runs.{key}")

    def on_refresh(lang, a, b, *filters):
        opts = run_choices(ws, lang=lang)
        ids = {v for _, v in opts}
        return (table(ws, lang or DEFAULT, *filters), gr.update(choices=opts, value=a if a in ids else None),
                gr.update(choices=opts, value=b if b in ids else None))

    def on_compare(lang, a, b):
        lang = lang or DEFAULT
        if not a or not b:
            return t(lang, "runs.pick_two"), shown(None), shown(None), plotted(None)
        try:
            cmp = query.compare_runs(ws, a, b)
        except Exception as e:
            return error_text(lang, e), shown(None), shown(None), plotted(None)
        la, lb = f"A:{cmp['a']['name']}", f"B:{cmp['b']['name']}"
        head = t(lang, "runs.compared", a=la, b=lb, same=t(lang, "runs.same_data" if cmp["same_data"] else "runs.other_data"),
                 n=len(cmp["config_differences"]), same_keys=cmp["same_config_keys"])
        key = t(lang, "runs.col.key")
        diffs = pd.DataFrame([{key: metric_label(lang, d["key"]), "A": fmt_cell(d["a"], lang), "B": fmt_cell(d["b"], lang)}
                              for d in cmp["config_differences"]], columns=[key, "A", "B"])
        rows = [{key: metric_label(lang, m["key"]), "A": fmt_cell(m["a"], lang), "B": fmt_cell(m["b"], lang), "Δ (B−A)": fmt_cell(m["delta"], lang)}
                for m in cmp["metrics"] + [{**e, "key": f"test_{e['key']}"} for e in cmp["evaluation"]]]
        return head, shown(diffs), shown(pd.DataFrame(rows, columns=[key, "A", "B", "Δ (B−A)"])), \
            plotted(loss_curves(ws, lang, [(la, cmp["a"]["id"]), (lb, cmp["b"]["id"])]))

    def on_details(lang, a):
        lang = lang or DEFAULT
        if not a:
            return t(lang, "runs.pick_one"), shown(None), shown(None), plotted(None)
        try:
            d = query.run_details(ws, a)
        except Exception as e:
            return error_text(lang, e), shown(None), shown(None), plotted(None)
        lin = d.get("lineage") or {}
        chain = [f"{p['name']} ({status_text(lang, p['status'])})" for p in reversed(lin.get("parents") or [])]
        chain.append(f"**{d['name']}**")
        children = ", ".join(f"{c['name']} ({status_text(lang, c['status'])})" for c in lin.get("children") or []) or "—"
        text = t(lang, "runs.detail_text", name=d["name"], id=d["id"], status=status_text(lang, d["status"]), base=d.get("base_model"),
                 method=d.get("method"), dataset=d.get("dataset"), best=fmt_cell(d.get("best_eval_loss")) or "—",
                 duration=duration_text(lang, d), lineage=" → ".join(chain), children=children,
                 folder=d.get("run_dir"))
        if d.get("error"):
            text += "\n\n✖ " + run_failure(lang, d)
        if d.get("warnings"):
            text += "\n\n" + "\n".join(f"- ⚠ {engine_warning(lang, w)}" for w in d.get("warning_events") or d["warnings"] if w)
        key = t(lang, "runs.col.key")
        cfg = pd.DataFrame([{key: metric_label(lang, k), "A": fmt_cell(v, lang)} for k, v in (d.get("config") or {}).items()],
                           columns=[key, "A"])
        mets = pd.DataFrame([{key: metric_label(lang, k), "A": fmt_cell(v, lang)} for k, v in (d.get("metrics") or {}).items()],
                            columns=[key, "A"])
        return text, shown(cfg), shown(mets), plotted(loss_curves(ws, lang, [(d["name"], d["id"])]))

    def resume_work(lang, a):
        if not a:
            return msg("runs.pick_one")
        try:
            return resumed_message(ws, jobs.submit_resume(ws, a))
        except Exception as e:
            return err(e)

    def render_message(lang, spec):
        return say(lang, spec), gr.skip(), gr.skip(), gr.skip()

    refreshed = [ctx.lang, run_a, run_b, *table_inputs]
    refresh.click(on_refresh, refreshed, [runs_df, run_a, run_b], api_visibility="private")

    def only_table(lang, *filters):   # the table with the current search, filter and sort, in `lang`
        return table(ws, lang or DEFAULT, *filters)

    # in a newly chosen language, and as the search, status filter or sort change
    gr.on([c.change for c in table_inputs], only_table, [ctx.lang, *table_inputs], [runs_df],
          api_visibility="private")
    ctx.on_language(only_table, [ctx.lang, *table_inputs], [runs_df])
    if ctx.current_tab is not None:
        ctx.current_tab.select(on_refresh, refreshed, [runs_df, run_a, run_b], api_visibility="private")
    # what Compare, Details or Resume showed last is said again when the language changes
    shown_view = ctx.view([message, differences, metrics, curves])
    shown_view.on(compare.click, on_compare, [run_a, run_b])
    shown_view.on(show.click, on_details, [run_a])
    shown_view.act(resume.click, resume_work, render_message, [run_a])
    runs_manage.build(ctx, runs_df, run_a, run_b, table_inputs, only_table)
    ctx.shared["runs_message_view"] = shown_view

    from tunestudio.webui.common import config_to_form
    from tunestudio.webui.tabs.runs import overlay as runs_overlay
    from tunestudio.webui.tabs.runs import rollouts_panel, ship_panel, sweep_panel

    ship_panel.build(ctx, run_a)  # export run A (with the round-trip check) and serve it
    rollouts_panel.build(ctx, run_a)  # a GRPO run's sampled completions, rewards and advantages by step

    config_to_form.wire(ctx, use_config, run_a, message)  # the Training tab's form from run A's config
    runs_overlay.build(ctx)  # any runs' curves overlaid (a sweep's trials when one is shown)
    sweep_panel.build(ctx)   # a sweep's trials: table, parameter vs objective; start one from a YAML
