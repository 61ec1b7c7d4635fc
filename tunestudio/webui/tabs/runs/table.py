"""The Runs tab's table of runs and the loss curves of several runs: what the tab and its panels
(table controls, overlay, sweeps) all read."""

from __future__ import annotations

import json
import time

import pandas as pd

from tunestudio.core import run_progress
from tunestudio.runs import query
from tunestudio.webui.common.context import metric_label
from tunestudio.webui.i18n.texts import has, t


def fmt_cell(v, lang: str | None = None):
    """A table cell: floats to 4 significant digits, lists and dicts as JSON; a yes/no value in
    `lang` (pandas would show Python's True as "true", English on a Tetum page)."""
    if isinstance(v, bool) and lang is not None:
        return t(lang, f"common.{str(v).lower()}")
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, default=str)
    return "" if v is None else v


def status_text(lang: str, status: str) -> str:
    """A run's status (registry word: completed, failed...) in `lang`."""
    key = f"training.state.{status}"
    return t(lang, key) if has(lang, key) else status


def model_name(ws, path):
    """A base model under the workspace's models/ by its folder name (what the Model tab lists)."""
    from pathlib import Path

    if path and Path(path).parent == ws.models_dir.resolve():
        return Path(path).name
    return path


SORTS = ("created", "name", "status", "best_eval_loss", "method")   # the table's sort keys (newest first by default)


def table(ws, lang: str, search: str = "", status: str | None = None, sort: str | None = None,
          descending: bool = True) -> pd.DataFrame:
    """The registry as a table in `lang`: runs whose name, id, method, base model or dataset holds
    `search` (any case) and whose status is `status` (None: all), ordered by `sort` (one of SORTS;
    runs without a best validation loss last)."""
    cols = ["name", "status", "base_model", "method", "dataset", "best_eval_loss", "metrics", "parent", "id", "created"]
    headers = [t(lang, f"runs.col.{c}") for c in cols]
    runs = query.runs_table(ws)["runs"]
    needle = (search or "").strip().lower()
    if needle:
        runs = [r for r in runs if any(needle in str(r.get(k) or "").lower()
                                       for k in ("name", "id", "method", "base_model", "dataset"))]
    if status:
        runs = [r for r in runs if r["status"] == status]
    key = sort if sort in SORTS else "created"
    if key == "best_eval_loss":   # lowest loss first when descending is off; no loss always last
        runs.sort(key=lambda r: (r.get("best_eval_loss") is None, (r.get("best_eval_loss") or 0) * (-1 if descending else 1)))
    else:
        field = "created_at" if key == "created" else key
        runs.sort(key=lambda r: (str(r.get(field) or "").lower() if field != "created_at" else r[field]),
                  reverse=descending)
    rows = []
    for r in runs:
        values = [r["name"], status_text(lang, r["status"]), model_name(ws, r.get("base_model")), r.get("method"), r.get("dataset"),
                  r.get("best_eval_loss"),
                  # a metric without a value (a run stopped before its first evaluation) is left out,
                  # not shown as a name with nothing after it
                  ", ".join(f"{metric_label(lang, k, with_id=False)} {fmt_cell(v, lang)}"
                            for k, v in (r.get("metrics") or {}).items() if v is not None),
                  r.get("parent_id") or "", r["id"], time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"]))]
        rows.append([fmt_cell(v) if not isinstance(v, str) else v for v in values])
    return pd.DataFrame(rows, columns=headers)


ID_COLUMN = 8   # where table() puts the run id: a clicked row picks its run by it


SPLIT_NAMES = ("training.series.train", "training.series.val")   # 'training', 'validation'


def loss_curves(ws, lang: str, runs: list[tuple[str, str]], split_names: tuple[str, str] = SPLIT_NAMES
                ) -> pd.DataFrame | None:
    """Training and validation loss of several runs in one frame (series '<label> <split>', the
    splits named by the texts `split_names`: (train, validation) keys)."""
    rows = []
    for label, run_id in runs:
        summary = run_progress.summarize(run_progress.read_events(ws.runs_dir / run_id / "events.jsonl")[0])
        for key, points in ((split_names[0], summary["train"]), (split_names[1], summary["val"])):
            name = f"{label} {t(lang, key)}"
            rows += [{"step": s, "loss": v, "series": name} for s, v in points]
    return pd.DataFrame(rows, columns=["step", "loss", "series"]) if rows else None
