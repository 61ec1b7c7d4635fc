"""The Runs tab's Sweeps panel: a sweep's trials best first, their loss curves overlaid, and a
parameter against the objective (one point per trial), from `tunestudio.sweeps.search.summary` — the same
dict `tunestudio sweep show --json` prints; its trials' curves go to the Runs tab's overlay
(runs_overlay), and its best trial's config can fill the Training tab (config_to_form). A sweep is
started from a YAML here (sweep_start: a background `tunestudio sweep --config`) or from the command
line; its trials are ordinary jobs, so the Training tab follows the one running.
"""

from __future__ import annotations

import importlib.util

import gradio as gr
import pandas as pd

from tunestudio.sweeps import search as sweep
from tunestudio.webui.common import charts
from tunestudio.webui.common.context import (
    Context,
    err,
    metric_label,
    msg,
    plotted,
    run_choices,
    say,
    shown,
)
from tunestudio.webui.i18n.texts import DEFAULT, engine_error, has, t


def state_word(lang: str, state: str) -> str:
    """A trial's state (optuna's word: complete, pruned, fail, running, waiting) in `lang`."""
    return t(lang, f"sweeps.state.{state}") if has(lang, f"sweeps.state.{state}") else state


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))


def sweep_view(ws, lang: str, name: str, param: str | None = None):
    """(markdown, trials table, curves frame, scatter frame, parameter names, parameter shown) for
    sweep `name`.
    Curves: every trial's training and validation loss, series '<trial> train/validation'.
    Scatter: x = `param` (default: the most important one), y = the objective, one row per ended trial."""
    from tunestudio.webui.tabs.runs.table import loss_curves

    s = sweep.summary(ws, name)
    params = sorted({k for tr in s["trials"] for k in tr["params"]})
    trial, state, run = (t(lang, f"sweeps.col.{c}") for c in ("trial", "state", "run"))
    # the objective and the searched options by their names in `lang`, their keys beside them
    objective, names = metric_label(lang, s["objective"]), {p: metric_label(lang, p) for p in params}
    rows = [{trial: tr["number"], state: state_word(lang, tr["state"]), objective: _fmt(tr["value"]),
             **{names[p]: _fmt(tr["params"].get(p)) for p in params}, run: tr["run_id"] or ""} for tr in s["trials"]]
    table = pd.DataFrame(rows, columns=[trial, state, objective, *names.values(), run])
    curves = loss_curves(ws, lang, [(f"t{tr['number']}", tr["run_id"]) for tr in s["trials"] if tr["run_id"]])
    param = param if param in params else (next(iter(s["importances"]), None) or (params[0] if params else None))
    points = [{"x": float(tr["params"][param]), "y": tr["value"] if tr["value"] is not None else tr["last_intermediate"],
               "state": state_word(lang, tr["state"])} for tr in s["trials"]
              if param and isinstance(tr["params"].get(param), (int, float)) and tr["state"] in ("complete", "pruned")]
    scatter = pd.DataFrame([p for p in points if p["y"] is not None], columns=["x", "y", "state"]) if points else None
    best = s["best"]
    direction = t(lang, f"sweeps.direction.{s['direction']}") if has(lang, f"sweeps.direction.{s['direction']}") \
        else s["direction"]
    text = t(lang, "sweeps.summary", name=name, direction=direction, objective=s["objective"],
             counts=", ".join(f"{n} {state_word(lang, k)}" for k, n in s["counts"].items()))
    if s.get("stopped"):   # stopped early (failed trials in a row): why, whoever started it
        text += "\n\n✖ " + t(lang, "sweeps.failed", error=engine_error(lang, s["stopped"]))
    if best:
        text += "\n\n" + t(lang, "sweeps.best", number=best["number"], value=_fmt(best["value"]),
                           params=", ".join(f"{k} = {_fmt(v)}" for k, v in best["params"].items()),
                           run=best["run_id"] or "")
    if s["importances"]:
        text += "\n\n" + t(lang, "sweeps.importance") + " " + ", ".join(
            f"{k} {v:.2f}" for k, v in s["importances"].items())
    return text, table, curves, scatter, params, param


def build(ctx: Context) -> None:
    ws = ctx.ws
    if importlib.util.find_spec("optuna") is None:   # `pip install 'tunestudio[sweep]'`: no panel without it
        return
    from tunestudio.webui.common import config_to_form
    from tunestudio.webui.tabs.runs import overlay as runs_overlay
    from tunestudio.webui.tabs.runs import sweep_start

    overlay = ctx.shared.get("overlay")  # the Runs tab's curve overlay: a shown sweep's trials go there
    with gr.Accordion(t(DEFAULT, "sweeps.title"), open=False, elem_id="sweeps") as box:
        ctx.tr(box, label="sweeps.title")
        started = sweep_start.build(ctx)
        with gr.Row():
            pick = gr.Dropdown(choices=sweep.list_sweeps(ws), value=None, label=t(DEFAULT, "sweeps.pick"),
                               elem_id="sweeps-pick")
            param = gr.Dropdown(choices=[], value=None, label=t(DEFAULT, "sweeps.param"), elem_id="sweeps-param")
            show = gr.Button(t(DEFAULT, "sweeps.show"), variant="primary", elem_id="sweeps-show")
        ctx.tr(pick, label="sweeps.pick", info="sweeps.pick_info")
        ctx.tr(param, label="sweeps.param")
        ctx.tr(show, value="sweeps.show")
        text = gr.Markdown(elem_id="sweeps-text")
        use_best = gr.Button(t(DEFAULT, "sweeps.use_best"), elem_id="sweeps-use-best")
        ctx.tr(use_best, value="sweeps.use_best")
        best_run = gr.State(None)
        trials = gr.Dataframe(interactive=False, elem_id="sweeps-trials", label=t(DEFAULT, "sweeps.trials"),
                              visible=False)
        # its axes are the parameter and the objective, named as in the sweep file (set when shown)
        scatter = charts.chart(ctx, "scatter", elem_id="sweeps-scatter", label="sweeps.scatter", x="x", y="y",
                               x_title=None, y_title=None, legend="sweeps.legend", color="state", height=300)
        ctx.tr(trials, label="sweeps.trials")
    # `text` is a view: a message put there (why the best trial's config cannot be used) is said again
    # at a language switch; a shown sweep clears its state (on_language re-renders the sweep itself)
    said = ctx.view([text])
    config_to_form.wire(ctx, use_best, best_run, text, no_run=msg("sweeps.no_best"))
    sweep_start.wire(ctx, started, pick)

    def on_show(lang, name, chosen):
        lang = lang or DEFAULT
        keep = [gr.skip()] * (3 if overlay else 0)
        if not name:
            return [t(lang, "sweeps.pick_one"), shown(None), plotted(None), gr.update(choices=[], value=None),
                    gr.update(choices=sweep.list_sweeps(ws)), None] + keep + [
                said.shown_message(msg("sweeps.pick_one"))]
        try:
            md, table, _, points, params, used = sweep_view(ws, lang, name, chosen)
            s = sweep.summary(ws, name)
        except Exception as e:
            spec = err(e)
            return [say(lang, spec), shown(None), plotted(None), gr.update(), gr.update(), None] + keep + [
                said.shown_message(spec)]
        out = [md + "\n\n" + t(lang, "sweeps.overlaid"), shown(table),
               plotted(points, color="state", x_title=metric_label(lang, used) if used else "",
                       y_title=metric_label(lang, s["objective"])),
               gr.update(choices=[(metric_label(lang, p), p) for p in params], value=used),
               gr.update(choices=sweep.list_sweeps(ws), value=name),
               (s["best"] or {}).get("run_id")]
        if overlay:  # the trials' curves, and the trials picked in the overlay (the user may change them)
            runs = [r["run_id"] for r in s["trials"] if r["run_id"]]
            frame, note = runs_overlay.overlay(ws, lang, runs)
            out += [gr.update(choices=run_choices(ws, lang=lang), value=runs), plotted(frame), note]
        return out + [None]   # the sweep is shown: no message of the view's to say again

    outs = [text, trials, scatter, param, pick, best_run]
    if overlay:
        outs += [overlay["pick"], overlay["plot"], overlay["message"]]
    outs.append(said.state)
    show.click(on_show, [ctx.lang, pick, param], outs, api_visibility="private")

    def on_language(lang, name, chosen, table, message):
        """The shown sweep (its text, table, chart) said again in the new language; nothing shown:
        nothing; a message shown over its text (`said`) is the view's to say again."""
        if not name or table is None or len(table) == 0:
            return [gr.skip()] * len(outs)
        out = on_show(lang, name, chosen)
        if message is not None:
            out[0], out[-1] = gr.skip(), gr.skip()
        return out

    ctx.on_language(on_language, [ctx.lang, pick, param, trials, said.state], outs)
    param.input(on_show, [ctx.lang, pick, param], outs, api_visibility="private")
    if ctx.current_tab is not None:
        ctx.current_tab.select(lambda: gr.update(choices=sweep.list_sweeps(ws)), None, [pick],
                               api_visibility="private")
