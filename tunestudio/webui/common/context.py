"""What every tab shares: the workspace, the translated texts, and small helpers for handlers.

Tabs talk to each other only through `Context.shared` (components another tab reads, such as
the chosen model) and `Context.after_build` (wiring that needs every tab built first).
"""

from __future__ import annotations

import tempfile
import traceback
from pathlib import Path

from tunestudio.core import registry
from tunestudio.core.errors import UserError, error_record
from tunestudio.core.statefiles import describe_os_error
from tunestudio.core.workspace import Workspace
from tunestudio.webui.i18n.texts import DEFAULT as DEFAULT_LANG
from tunestudio.webui.i18n.texts import PICKER_LABELS, Texts, engine_error, engine_warning, has, t


class Context:
    def __init__(self, ws: Workspace):
        self.ws = ws
        self.texts = Texts()
        self.lang = None                  # the ui-language dropdown, an input of handlers that write text
        self.shared: dict = {}            # name -> component, for tabs that read another tab's inputs
        self.loads: list[tuple] = []      # (fn, inputs, outputs) run when a page opens
        self.after_build: list = []       # callables(ctx) run once every tab exists
        self.current_tab = None           # the gr.Tab being built
        self.views: list[View] = []       # outputs re-rendered when the language changes (app.py wires them)
        self.language_handlers: list[tuple] = []   # (fn, inputs, outputs) also run at a language switch
        self.dataset_lists: list = []     # every dataset picker: the Datasets tab refreshes them all
        self.model_lists: list = []       # (model picker, fn(lang) -> its choices): a GGUF import refreshes them

    def tr(self, component, **props):
        """`Texts.bind` for a component of the tab being built (see `current_tab`)."""
        return self.texts.bind(component, tab=getattr(self.current_tab, "id", None), **props)

    def on_load(self, fn, inputs, outputs):
        self.loads.append((fn, inputs, outputs))

    def on_language(self, fn, inputs, outputs):
        """Run fn(*inputs) -> outputs at each language switch, after the labels are re-rendered
        (app.py chains it after them). Not `ctx.lang.change` directly: the browser sends a
        trigger's handlers one at a time, and the labels, what a person reads first, would wait
        behind every tab's own handler."""
        self.language_handlers.append((fn, inputs, outputs))

    def view(self, outputs, empty=None) -> "View":
        """A group of outputs whose shown texts follow the language switch (see `View`); `empty(lang)`:
        the outputs before anything was shown (empty tables' headers), so they follow it too."""
        return View(self, outputs, empty)

    def view_of(self, message) -> "View | None":
        """The view whose first output is `message` (a handler elsewhere that writes it must also
        write the view's state: `View.shown_message`), or None."""
        return next((v for v in self.views if v.outputs[0] is message), None)


# ---- texts that follow the language switch -------------------------------------------------------
# A message is kept as a spec (what to say), not as text, so it can be said again in another
# language: a list of parts, each ("t", key, {fmt}) (fmt values may be specs themselves),
# ("raw", text) for words that are not ours (file names, the engine's own messages), or
# ("err", kind, detail) for an error (`error_text`; a UserError's detail is its errors.error_record).

def msg(key: str, **fmt) -> list:
    """The spec of the locale text `key` formatted with `fmt`."""
    return [("t", key, fmt)]


def raw(text: str) -> list:
    """The spec of a text shown as it is in every language."""
    return [("raw", str(text))] if text else []


def problems(items: list[dict], total: int | None = None) -> list:
    """The spec of data problems (`Problem.to_dict()`s, the first of `total`): one "file:line:
    what is wrong" line each, worded in the UI language when shown (`problem_lines`)."""
    return [("problems", list(items), len(items) if total is None else total)]


def problem_lines(lang: str, items: list[dict], total: int) -> str:
    """`items` as "file:line: what is wrong" lines in `lang`, and how many more of `total` there are."""
    lines = [f"{p['file']}:{p['line']}: {engine_warning(lang, p)}" if p.get("line") else
             f"{p['file']}: {engine_warning(lang, p)}" for p in items]
    if total > len(items):
        lines.append(t(lang, "common.and_more", n=total - len(items)))
    return "\n".join(lines)


class FormError(UserError):
    """A UserError the web UI finds in its own inputs (a number box left empty): `spec` (a message
    spec of the tab's own locale texts) says it in each language; str() is its English."""

    def __init__(self, spec: list):
        super().__init__(say(DEFAULT_LANG, spec))
        self.spec = spec


def err(e: BaseException) -> list:
    """The spec of `error_text(lang, e)`: what the user should see of an exception."""

    if isinstance(e, FormError):
        return [("err", "form", e.spec)]
    if isinstance(e, UserError):   # kept with its code and fields: said again in each language
        return [("err", "user", error_record(e))]
    if isinstance(e, OSError):
        return [("err", "os", describe_os_error(e))]
    traceback.print_exc()   # our bug: logged whole once, here, not at each re-render
    return [("err", "internal", f"{type(e).__name__}: {e}")]


def say(lang: str, spec) -> str:
    """The text of a message spec in `lang` (parts joined by blank lines); a str is shown as it is."""
    if spec is None:
        return ""
    if isinstance(spec, str):
        return spec
    out = []
    for part in spec:
        if part[0] == "t":
            fmt = {k: say(lang, v) if isinstance(v, list) else v for k, v in part[2].items()}
            out.append(t(lang, part[1], **fmt))
        elif part[0] == "problems":
            out.append(problem_lines(lang, part[1], part[2]))
        elif part[0] == "err":
            kind, text = part[1], part[2]
            out.append("✖ " + (engine_error(lang, text) if kind == "user" else text if kind == "os"
                               else say(lang, text) if kind == "form"   # FormError: the tab's own texts
                               else t(lang, "common.internal_error", error=text)))
        else:
            out.append(part[1])
    return "\n\n".join(out)


class View:
    """Outputs (a message, a table, a plot...) whose texts are in the UI's language, re-rendered
    when the language changes, so nothing on screen stays in the language it was made in.

    Every handler that writes these outputs goes through `on` (a pure read, re-run with the same
    input values at a switch), `act` (work done once, e.g. a job submitted; its `render` re-runs
    on the spec the work returned) or writes `state` with `shown_message`. The gr.State keeps
    (which function, its arguments) per browser session.
    """

    def __init__(self, ctx: Context, outputs: list, empty=None):
        import gradio as gr

        self.ctx, self.outputs, self.empty = ctx, list(outputs), empty
        self.state = gr.State(None)
        self.fns: list = [self._message]
        ctx.views.append(self)

    def _message(self, lang, spec):
        import gradio as gr

        return [say(lang, spec)] + [gr.skip()] * (len(self.outputs) - 1)

    def shown_message(self, spec):
        """The state value for a handler outside this view that showed the message `spec` in the
        view's first output."""
        return (0, [spec])

    def _add(self, fn) -> int:
        self.fns.append(fn)
        return len(self.fns) - 1

    def on(self, event, fn, inputs, extra=(), **kw):
        """event(fn, [lang, *inputs], outputs + extra): fn(lang, *values) returns the view's outputs
        (then `extra`'s); a language switch runs it again with the values of that event."""
        i = self._add(fn)

        def run(lang, *args):
            return [*_listed(fn(lang or DEFAULT_LANG, *args)), (i, _kept(args))]

        run.__wrapped__ = fn   # Gradio reads fn's signature: its gr.Progress parameter still shows progress
        return event(run, [self.ctx.lang, *inputs], [*self.outputs, *extra, self.state], api_visibility="private", **kw)

    def act(self, event, work, render, inputs, extra=(), **kw):
        """event(...) running work(lang, *values) -> spec (or (spec, [extra values]) with `extra`)
        once; the outputs are render(lang, spec), again at each language switch."""
        i = self._add(render)

        def run(lang, *args):
            lang = lang or DEFAULT_LANG
            done = work(lang, *args)
            spec, more = (done[0], list(done[1])) if extra else (done, [])
            return [*_listed(render(lang, spec)), *more, (i, [spec])]

        run.__wrapped__ = work

        return event(run, [self.ctx.lang, *inputs], [*self.outputs, *extra, self.state], api_visibility="private", **kw)

    def load(self, fn, inputs):
        """`on` for the page opening: fn(lang, *inputs) fills the outputs when a page opens."""
        i = self._add(fn)

        def run(lang, *args):
            return [*_listed(fn(lang or DEFAULT_LANG, *args)), (i, _kept(args))]

        self.ctx.on_load(run, [self.ctx.lang, *inputs], [*self.outputs, self.state])

    def replay(self, lang, state):
        import gradio as gr

        n = len(self.outputs)
        if not state:   # nothing shown yet: the empty outputs in the new language, else as they are
            out = _listed(self.empty(lang or DEFAULT_LANG))[:n] if self.empty else [gr.skip()] * n
        else:
            i, args = state
            out = _listed(self.fns[i](lang or DEFAULT_LANG, *args))[:n]
        return out[0] if n == 1 else out   # Gradio takes a one-output handler's value as it is


def _kept(args) -> list:
    """A handler's input values as a view keeps them (a gr.Progress Gradio passed in is not kept:
    a re-render shows no progress)."""
    import gradio as gr

    return [a for a in args if not isinstance(a, gr.Progress)]


def _listed(out) -> list:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def number_problem(lang: str, key: str, value, default, least: int) -> str | None:
    """What is wrong with a number box's value (emptied, or below `least`), in `lang`; None when fine.
    The boxes carry no Gradio minimum=: Gradio's own check shows a raw red pill over the last
    result, where this says which box and what it takes."""
    if value is None:   # an emptied box: said, never replaced by a value the user does not see
        return "⚠ " + t(lang, "common.field_empty", field=t(lang, key), default=default)
    if value < least:
        return "⚠ " + t(lang, "common.at_least", field=t(lang, key), least=least, value=f"{value:g}")
    return None


def error_text(lang: str, e: BaseException) -> str:
    """A UserError is the user's to fix: show its message; an OSError says which file and why.
    Anything else is our bug: say so, with the last line of the traceback, and log it whole on the
    server. The text of `err(e)`: one place decides what an exception shows."""
    return say(lang, err(e))


def download_copy(path: Path) -> str:
    """A copy of a workspace file in the temp folder, the only place Gradio serves downloads from
    without exposing the whole workspace (allowed_paths would)."""
    import shutil

    path = Path(path)
    folder = Path(tempfile.mkdtemp(prefix="tunestudio-dl-"))
    if path.is_dir():
        return shutil.make_archive(str(folder / path.name), "zip", path)
    target = folder / path.name
    shutil.copyfile(path, target)
    return str(target)


def empty_table(lang: str, keys: list[str]):
    """A table with no rows and its column headers (locale keys) in `lang`: an empty Dataframe
    without columns shows bare column numbers (1 | 2 | 3)."""
    import pandas as pd

    return pd.DataFrame(columns=[t(lang, k) for k in keys])


def translated_columns(lang: str, df, prefix: str):
    """`df` with each column that has a locale key `<prefix><column>` (prefix: "area.group.")
    renamed to its text in `lang`; other columns keep their names."""
    return df.rename(columns={c: t(lang, f"{prefix}{c}") for c in df.columns if has(lang, f"{prefix}{c}")})


def metric_label(lang: str | None, key, with_id: bool = True) -> str:
    """A metric's or run option's engine key (`train_loss`, `exact_match`, `test_f1`, `lr`) as a
    table shows it in `lang`: its name from the locale (`metric.<key>`, a `test_` prefix worded,
    else the Training-tab label `param.<key>`) with the key beside it where the two differ, so the
    name the CLI and JSON use stays in sight ("training loss (train_loss)"); `with_id` False: the
    name alone (a compact cell). A key the files do not know is shown as it is."""
    key = str(key)
    if has(lang or DEFAULT_LANG, f"metric.{key}"):
        label = t(lang, f"metric.{key}")
    elif key.startswith("test_") and has(lang or DEFAULT_LANG, f"metric.{key[5:]}"):
        label = t(lang, "metric.test_of", metric=t(lang, f"metric.{key[5:]}"))
    elif has(lang or DEFAULT_LANG, f"param.{key}"):
        label = t(lang, f"param.{key}")
    elif key in PICKER_LABELS:   # model, dataset: picked outside the form, named by their pickers
        label = t(lang, PICKER_LABELS[key])
    else:
        return key
    return label if label == key or not with_id else t(lang, "metric.with_id", label=label, id=key)


def shown(df):
    """A result table: shown with rows, hidden without (an empty one shows only bare column numbers)."""
    import gradio as gr

    return gr.update(value=df, visible=df is not None and len(df) > 0)


PALETTE = ("#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04", "#db2777",
           "#4b5563", "#65a30d")


# Vega cuts a legend label wider than its labelLimit, 160 px (Gradio's plots keep that default and
# offer no setting for it), at its 10 px label font: "walk-resumed #1a2b3c validasaun" ends in "…".
LEGEND_LABEL_PX = 150   # what a label may take, with a margin for the font's real widths


def label_px(text: str) -> float:
    """About how wide `text` is in a legend label (10 px sans-serif), in pixels."""
    width = 0.0
    for ch in str(text):
        width += 3.0 if ch in "iljtfrI.,:;'|!()[]{} ·-" else 8.6 if ch in "mwMW@%" else \
            7.0 if ch.isupper() or ch in "#&" else 5.7
    return width


def fit_legend(df, color: str = "series"):
    """(`df` with each series name too wide for the legend replaced by a short key "#1", "#2"...,
    the caption that says which key is which name, or "" when every name fits). Every legend label
    then reads whole, whatever the language or the run names."""
    keys = legend_keys(df[color])
    if not keys:
        return df, ""
    return df.assign(**{color: df[color].map(lambda n: keys.get(n, n))}), " · ".join(f"{k} = {n}" for n, k in keys.items())


def legend_keys(names) -> dict:
    """{series name too wide for the legend: its short key "#1", "#2"...} (see fit_legend)."""
    long = [n for n in dict.fromkeys(names) if label_px(n) > LEGEND_LABEL_PX]
    return {n: f"#{i}" for i, n in enumerate(long, 1)}


def plotted(df, color: str = "series", **props):
    """A chart (webui/common/charts.py): drawn with data, hidden without (an empty chart is axes with
    nothing on them); `props` are further plot settings sent with the data (x_title, color_map...).

    Each draw names its series' colours (a color_map over the `color` column's values): Gradio's
    plot keeps the colour domain of its first draw, so series named anew (another run, another
    language) would otherwise be left out of the legend or not drawn. Series names too wide for
    the legend are drawn as short keys, spelled out in the chart's caption (`fit_legend`)."""
    import gradio as gr

    has_data = df is not None and len(df) > 0
    if has_data and color in df.columns:
        keys = legend_keys(df[color])
        df, caption = fit_legend(df, color)
        props.setdefault("caption", caption or None)
        if "color_map" in props:   # the caller's colours, under the names the legend now shows
            props["color_map"] = {keys.get(n, n): c for n, c in props["color_map"].items()}
        else:
            names = list(dict.fromkeys(df[color]))
            props["color_map"] = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    return gr.update(value=df if has_data else None, visible=has_data, **props)


def list_runs(ws: Workspace) -> list[dict]:
    """Registry rows, newest first ([] when there is no registry yet, or it cannot be read: the
    UI's polls only read, and a damaged registry is rebuilt at start, with a notice)."""
    import sqlite3


    if not ws.db_path.is_file():
        return []
    try:
        conn = registry.connect(ws.db_path, readonly=True)
        try:
            return registry.list_runs(conn)
        finally:
            conn.close()
    except sqlite3.Error as e:
        print(f"warning: cannot read the registry {ws.db_path}: {e}", flush=True)
        return []


def run_choices(ws: Workspace, finished_only: bool = False, lang: str | None = None) -> list[tuple[str, str]]:
    """(label, run id) for dropdowns: 'name · status · id', the status in `lang`."""
    out = []
    for r in list_runs(ws):
        if finished_only and r["status"] not in ("completed", "stopped"):
            continue
        out.append((run_label(r, lang), r["id"]))
    return out


def run_label(r: dict, lang: str | None = None) -> str:
    """'name · status · id' (the status in `lang`), without the name when the run has none (its
    name is then its id)."""
    parts = [r["name"]] if r.get("name") and r["name"] != r["id"] else []
    key = f"training.state.{r['status']}"
    status = t(lang, key) if has(lang or DEFAULT_LANG, key) else r["status"]
    return " · ".join(parts + [status, r["id"]])
