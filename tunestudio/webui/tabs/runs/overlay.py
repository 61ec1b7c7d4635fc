"""The Runs tab's curve overlay: the training and validation loss of any runs picked by hand (a
multi-select), one pair of series per run, named '<run> train' / '<run> val' in the
legend. Showing a sweep (sweep_panel) picks its trials here by default.

The curves come from each run's events.jsonl (`table.loss_curves`), the names from the
registry (a run's name, with its id's tail when two picked runs share a name).
"""

from __future__ import annotations

import gradio as gr

from tunestudio.webui.common import charts
from tunestudio.webui.common.context import Context, list_runs, plotted, run_choices
from tunestudio.webui.i18n.texts import DEFAULT, t


def labels(ws, run_ids: list[str]) -> list[tuple[str, str]]:
    """(legend label, run id) for `run_ids`, in that order: the run's name (its id when it has none),
    plus ' #<last 6 of id>' where two picked runs would show the same label."""
    rows = {r["id"]: r for r in list_runs(ws)}
    names = [(rows.get(i) or {}).get("name") or i for i in run_ids]
    return [(n if names.count(n) == 1 else f"{n} #{i[-6:]}", i) for n, i in zip(names, run_ids)]


def overlay(ws, lang: str, run_ids: list[str]):
    """(frame of step, loss, series for the picked runs, or None; message). A run without any logged
    loss yet adds no series and is named in the message."""
    from tunestudio.webui.tabs.runs.table import loss_curves

    run_ids = [r for r in dict.fromkeys(run_ids or []) if r]
    if not run_ids:
        return None, t(lang, "overlay.pick")
    import pandas as pd

    pairs = labels(ws, run_ids)
    frames, empty = [], []
    for pair in pairs:
        # short split names ('train', 'val'): the legend cuts labels longer than ~30 characters
        one = loss_curves(ws, lang, [pair], ("overlay.split.train", "overlay.split.val"))
        (empty.append(pair[0]) if one is None else frames.append(one))
    frame = pd.concat(frames, ignore_index=True) if frames else None
    text = t(lang, "overlay.shown", n=len(pairs) - len(empty))
    if empty:
        text += " " + t(lang, "overlay.no_curves", runs=", ".join(empty))
    return frame, text


def build(ctx: Context) -> dict:
    """The overlay's components: {'pick', 'plot', 'message'} (also in ctx.shared['overlay'])."""
    ws = ctx.ws
    with gr.Group(elem_id="runs-overlay-box"):
        head = gr.Markdown(f"**{t(DEFAULT, 'overlay.title')}**")
        ctx.tr(head, value=lambda lang: f"**{t(lang, 'overlay.title')}**")
        with gr.Row():
            pick = gr.Dropdown(choices=run_choices(ws), value=[], multiselect=True, scale=4,
                               label=t(DEFAULT, "overlay.runs"), elem_id="runs-overlay-pick")
            draw = gr.Button(t(DEFAULT, "overlay.draw"), variant="primary", scale=0, min_width=160,
                             elem_id="runs-overlay-draw")
        ctx.tr(pick, label="overlay.runs", info="overlay.runs_info",
               choices=lambda lang: run_choices(ws, lang=lang))
        ctx.tr(draw, value="overlay.draw")
        message = gr.Markdown(elem_id="runs-overlay-message")
        plot = charts.chart(ctx, "line", elem_id="runs-overlay-plot", label="overlay.plot", height=340,
                            **charts.LOSS_AXES)   # shown once drawn

    def on_draw(lang, chosen):
        frame, text = overlay(ws, lang or DEFAULT, chosen or [])
        return plotted(frame), text

    def on_refresh(lang, chosen):
        opts = run_choices(ws, lang=lang)
        ids = {v for _, v in opts}
        if all(c in ids for c in chosen or []):
            # choices only: a value sent back is the picks as they were when the tab was opened,
            # which on a busy machine arrived after the user's newer picks and wiped them
            return gr.update(choices=opts)
        return gr.update(choices=opts, value=[c for c in chosen if c in ids])   # a picked run was deleted

    draw.click(on_draw, [ctx.lang, pick], [plot, message], api_visibility="private")
    if ctx.current_tab is not None:
        ctx.current_tab.select(on_refresh, [ctx.lang, pick], [pick], api_visibility="private")
    comps = {"pick": pick, "plot": plot, "message": message}
    ctx.shared["overlay"] = comps
    return comps
