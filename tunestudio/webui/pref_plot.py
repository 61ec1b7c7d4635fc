"""The Training tab's preference plot: for a DPO-family or KTO run, the reward margin and the
preference accuracy (share of pairs where the chosen answer's implicit reward is higher) on the
training batches and on validation, step by step, from the run's events.jsonl.

Kept out of tab_training.py: it has its own timer and plot, so the main monitor's outputs do not
change. The plot stays hidden for SFT runs (their events have no rewards).
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from tunestudio import jobs

SERIES = (("rewards/margins", "train margin"), ("rewards/accuracies", "train accuracy"),
          ("eval_rewards/margins", "validation margin"), ("eval_rewards/accuracies", "validation accuracy"))


def preference_frame(events: list[dict]) -> pd.DataFrame | None:
    """(step, value, series) rows of every preference metric in `events`; None when there are none."""
    rows = []
    for e in events:
        if e.get("type") not in ("train", "eval"):
            continue
        for key, name in SERIES:
            if isinstance(e.get(key), (int, float)):
                rows.append({"step": e["step"], "value": float(e[key]), "series": name})
    return pd.DataFrame(rows, columns=["step", "value", "series"]) if rows else None


def attach(ctx) -> None:
    """Add the plot (hidden until a run logs preference metrics) and its own 2-second timer."""
    from tunestudio.webui.i18n import DEFAULT, t

    ws = ctx.ws
    plot = gr.LinePlot(x="step", y="value", color="series", elem_id="preference-plot", visible=False,
                       label=t(DEFAULT, "training.pref_plot"), height=300)
    ctx.tr(plot, label="training.pref_plot")
    timer = gr.Timer(2.0)
    seen = gr.State(None)

    def tick(last):
        job = jobs.latest_job(ws, jobs.list_jobs(ws))
        if job is None or not job.run_id:
            return gr.update(visible=False), None
        follower = jobs.follow(job.run_id, ws)
        sig = (job.run_id, len(follower.events))
        if sig == last:
            return gr.skip(), last
        df = preference_frame(follower.events)
        return (gr.update(value=df, visible=True) if df is not None else gr.update(visible=False)), sig

    timer.tick(tick, [seen], [plot, seen], api_visibility="private", queue=False)
