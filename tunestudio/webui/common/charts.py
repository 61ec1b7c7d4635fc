"""Every chart the web UI draws is made here, so each one reads the same way: every point belongs
to a named series shown in a legend, the axis and legend titles are texts of the UI language (said
again when it changes), and a chart without data is hidden rather than drawn as empty axes.

`chart(ctx, kind, ...)` builds the component; handlers fill it with `common.plotted(frame)`, a
frame holding the `x`, `y` and `color` columns (the color column's values are the legend's names,
already in the UI language)."""

from __future__ import annotations

import gradio as gr

from tunestudio.webui.common.context import Context
from tunestudio.webui.i18n.texts import DEFAULT, t

KINDS = {"line": gr.LinePlot, "bar": gr.BarPlot, "scatter": gr.ScatterPlot}

# every loss chart's columns and titles (Training, Runs, the overlay): frames of step, loss, series
LOSS_AXES = {"x": "step", "y": "loss", "x_title": "training.axis.step", "y_title": "training.axis.loss",
             "legend": "training.axis.series"}


def drawable(df, x: str = "step", color: str = "series") -> bool:
    """Whether a line chart of `df` shows anything: some series needs two points (a single point
    draws no line, only an empty frame, which reads as "nothing logged"; its caller says the point
    in words instead). None or an empty frame: False."""
    if df is None or len(df) == 0:
        return False
    counts = df.groupby(color)[x].nunique() if color in df.columns else [df[x].nunique()]
    return max(counts) >= 2


def chart(ctx: Context, kind: str, *, elem_id: str, label: str, x: str, y: str, x_title: str | None,
          y_title: str | None, legend: str, color: str = "series", visible: bool = False, **kw):
    """A plot component of `kind` (line, bar, scatter), hidden until a handler draws data into it.

    `label`, `x_title`, `y_title`, `legend` are locale keys (the chart's title, its axes' titles,
    the legend's title); an axis title of None is set by the handler instead (e.g. a sweep's
    parameter name, which is no text of ours). `color` names the frame column whose values are the
    series' names. Raises KeyError for an unknown kind."""
    titles = {"label": label, "color_title": legend}
    if x_title:
        titles["x_title"] = x_title
    if y_title:
        titles["y_title"] = y_title
    plot = KINDS[kind](x=x, y=y, color=color, elem_id=elem_id, visible=visible,
                       **{k: t(DEFAULT, v) for k, v in titles.items()}, **kw)
    ctx.tr(plot, **titles)
    return plot
