"""What every tab shares: the workspace, the translated texts, and small helpers for handlers.

Tabs talk to each other only through `Context.shared` (components another tab reads, such as
the chosen model) and `Context.after_build` (wiring that needs every tab built first).
"""

from __future__ import annotations

import importlib
import tempfile
import traceback
from pathlib import Path

from tunestudio.errors import UserError
from tunestudio.webui.i18n import Texts, has, t, ui_flags
from tunestudio.workspace import Workspace


class Context:
    def __init__(self, ws: Workspace):
        self.ws = ws
        self.texts = Texts()
        self.lang = None                  # the ui-language dropdown, an input of handlers that write text
        self.shared: dict = {}            # name -> component, for tabs that read another tab's inputs
        self.loads: list[tuple] = []      # (fn, inputs, outputs) run when a page opens
        self.after_build: list = []       # callables(ctx) run once every tab exists
        self.current_tab = None           # the gr.Tab being built
        self.missing: set[str] = set()    # functions of other areas that are not there: shown, and reported

    def tr(self, component, **props):
        return self.texts.bind(component, **props)

    def on_load(self, fn, inputs, outputs):
        self.loads.append((fn, inputs, outputs))


def optional(module: str, name: str | None = None, ctx: Context | None = None):
    """`module.name` (or the module), or None when that area has not been built (yet).

    Tabs show a "not available" message instead of faking results when this returns None.
    """
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            if ctx is not None:
                ctx.missing.add(f"{module}.{name}" if name else module)
            return None
        raise
    if name is None:
        return mod
    fn = getattr(mod, name, None)
    if fn is None and ctx is not None:
        ctx.missing.add(f"{module}.{name}")
    return fn


def not_available(lang: str, what: str) -> str:
    return "⚠️ " + t(lang, "common.not_available", what=what)


def error_text(lang: str, e: BaseException) -> str:
    """A UserError is the user's to fix: show its message; an OSError says which file and why.
    Anything else is our bug: say so, with the last line of the traceback, and log it whole on the
    server."""
    if isinstance(e, UserError):  # the engine's words name CLI flags: name the form's fields first
        return "❌ " + ui_flags(lang, str(e))
    if isinstance(e, OSError):  # a full or read-only disk, a missing file: what and where, no traceback
        from tunestudio.statefiles import describe_os_error

        return "❌ " + describe_os_error(e)
    traceback.print_exc()
    return "❌ " + t(lang, "common.internal_error", error=f"{type(e).__name__}: {e}")


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


def shown(df):
    """A result table: shown with rows, hidden without (an empty one shows only bare column numbers)."""
    import gradio as gr

    return gr.update(value=df, visible=df is not None and len(df) > 0)


def list_runs(ws: Workspace) -> list[dict]:
    """Registry rows, newest first ([] when there is no registry yet, or it cannot be read: the
    UI's polls only read, and a damaged registry is rebuilt at start, with a notice)."""
    import sqlite3

    from tunestudio import registry

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


def run_choices(ws: Workspace, finished_only: bool = False) -> list[tuple[str, str]]:
    """(label, run id) for dropdowns: 'name · status · id'."""
    out = []
    for r in list_runs(ws):
        if finished_only and r["status"] not in ("completed", "stopped"):
            continue
        out.append((run_label(r), r["id"]))
    return out


def run_label(r: dict) -> str:
    """'name · status · id', without the name when the run has none (its name is then its id)."""
    parts = [r["name"]] if r.get("name") and r["name"] != r["id"] else []
    return " · ".join(parts + [r["status"], r["id"]])
