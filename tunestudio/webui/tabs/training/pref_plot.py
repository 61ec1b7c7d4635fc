"""The Training tab's preference plot: for a DPO-family or KTO run, the rewards of the chosen and
rejected answers, the reward margin and the preference accuracy (share of pairs where the chosen answer's implicit reward is higher) on the
training batches and on validation, step by step, from the run's events.jsonl.

Kept out of tab_training.py: it has its own timer and plot, so the main monitor's outputs do not
change. The plot stays hidden for SFT runs (their events have no rewards).
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from tunestudio.core import run_progress
from tunestudio.jobs import queue as jobs
from tunestudio.webui.i18n.texts import DEFAULT, t

# event key -> locale key of its series name (training.pref_series.*), said in the UI's language
# rewards/chosen and rewards/rejected are the mean implicit rewards beta * log(pi/pi_ref) of each side
# (KTO: of desirable and undesirable answers): the margin alone hides which side moved
SERIES = (("rewards/chosen", "train_chosen"), ("rewards/rejected", "train_rejected"),
          ("rewards/margins", "train_margin"), ("rewards/accuracies", "train_accuracy"),
          ("eval_rewards/chosen", "val_chosen"), ("eval_rewards/rejected", "val_rejected"),
          ("eval_rewards/margins", "val_margin"), ("eval_rewards/accuracies", "val_accuracy"))


# one colour per series, training darker and validation lighter: sent with every draw as the plot's
# color_map, because Gradio's LinePlot fixes its colour domain at the first draw and later data only
# updates points, so a series that first appears later (training after the step-0 validation) can be
# left out of the chart; a changed color_map asks it to draw the chart anew, which in a browser test
# failed about one time in three, so the first draw also waits for every series (has_training_points)
COLOURS = {"train_chosen": "#1a7f37", "train_rejected": "#cf222e", "train_margin": "#0969da",
           "train_accuracy": "#8250df", "val_chosen": "#6fdd8b", "val_rejected": "#ff8182",
           "val_margin": "#80ccff", "val_accuracy": "#c297ff"}


def series_colours(df: pd.DataFrame, lang: str = "en") -> dict[str, str]:
    """{series name in `lang`: colour} for the series present in `df` (a preference_frame)."""

    present = set(df["series"])
    out = {}
    for _, name in SERIES:
        label = t(lang, f"training.pref_series.{name}")
        if label in present:
            out[label] = COLOURS[name]
    return out


def preference_frame(events: list[dict], lang: str = "en") -> pd.DataFrame | None:
    """(step, value, series) rows of every preference metric in `events`, series named in `lang`;
    None when there are none."""

    rows = []
    for e in events:
        if e.get("type") not in ("train", "eval"):
            continue
        for key, name in SERIES:
            if isinstance(e.get(key), (int, float)):
                rows.append({"step": e["step"], "value": float(e[key]),
                             "series": t(lang, f"training.pref_series.{name}")})
    return pd.DataFrame(rows, columns=["step", "value", "series"]) if rows else None


def has_training_points(events: list[dict]) -> bool:
    """Whether a training step has logged a preference metric yet."""
    train_keys = [k for k, _ in SERIES if not k.startswith("eval_")]
    return any(e.get("type") == "train" and any(isinstance(e.get(k), (int, float)) for k in train_keys)
               for e in events)


def attach(ctx) -> None:
    """Add the plot (hidden until a run logs preference metrics) and its own 2-second timer."""

    ws = ctx.ws
    from tunestudio.webui.common import charts

    plot = charts.chart(ctx, "line", elem_id="preference-plot", label="training.pref_plot", x="step", y="value",
                        x_title="training.axis.step", y_title="training.axis.value",
                        legend="training.axis.series", height=420)
    timer = gr.Timer(2.0)
    seen = gr.State(None)

    def tick(lang, last):
        job = jobs.latest_job(ws, jobs.list_jobs(ws))
        if job is None or not job.run_id:
            return gr.update(visible=False), None
        follower = run_progress.follow(job.run_id, ws)
        sig = (job.run_id, len(follower.events), lang)   # a language switch draws the names again
        if sig == last:
            return gr.skip(), last
        df = preference_frame(follower.events, lang or DEFAULT)
        if df is None or not has_training_points(follower.events):
            # the first draw waits for a training step: the validation series come first (the step-0
            # evaluation), and a series added after the first draw is not reliably drawn (see COLOURS)
            return gr.update(visible=False), None
        return gr.update(value=df, visible=True, color_map=series_colours(df, lang or DEFAULT)), sig

    # queued and never piled up, like the Training tab's other slow timers: an unqueued timer froze
    # the page after a language switch
    timer.tick(tick, [ctx.lang, seen], [plot, seen], api_visibility="private", trigger_mode="once")
