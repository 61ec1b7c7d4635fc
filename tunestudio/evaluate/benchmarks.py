"""Standard benchmarks (EleutherAI's lm-evaluation-harness): what `--benchmark` names, local task
files, and the base-vs-tuned table with each difference's standard error.

`--benchmark` takes lm-eval task names (`hellaswag`, `arc_easy`: the harness fetches their data from
the Hub) or task files in lm-eval's own YAML format. A task file is found under
training/benchmarks/, then as a path; its local data (`dataset_kwargs: {data_files: ...}`) is read
relative to the file's folder and, like every file tunestudio reads, inside the workspace. The file
is read as plain YAML: `!function` (Python code beside the file) and `include:` are refused.

No lm-eval import here (harness.py runs it): the table, the console lines and the registry's
flat metrics are needed by `runs show` and the web UI without loading the harness.
"""

from __future__ import annotations

import html as H
import math
from pathlib import Path

import yaml

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace, is_explicit_path

TASK_SUFFIXES = (".yaml", ".yml")
FORGETTING_SE = 2.0   # a tuned score below the base's by more than this many standard errors of Δ: forgetting


def parse_tasks(text: str | list[str] | None) -> list[str]:
    """`--benchmark`'s comma-separated list (or a list), duplicates dropped, order kept."""
    items = text if isinstance(text, list) else str(text or "").split(",")
    tasks = list(dict.fromkeys(t.strip() for t in items if t and t.strip()))
    if not tasks:
        raise UserError("--benchmark needs at least one lm-eval task name or task file (comma-separated)",
                        "benchmark_no_tasks")
    return tasks


def is_task_file(spec: str) -> bool:
    return spec.lower().endswith(TASK_SUFFIXES)


def task_file(ws: Workspace, spec: str) -> Path:
    """A task file as the user typed it: under training/benchmarks/, else a path (workspace-confined)."""
    p = Path(spec).expanduser()
    for candidate in (ws.benchmarks_dir / spec, p if p.is_absolute() else ws.root / p, p):
        if candidate.is_file():
            return ws.check_readable(candidate, spec, "benchmark task file")
    raise UserError(f"benchmark task file '{spec}' not found: put it in {ws.benchmarks_dir} or give its path",
                    "benchmark_file_not_found", task=spec, folder=str(ws.benchmarks_dir))


def read_task_file(ws: Workspace, spec: str) -> dict:
    """The task config of a local YAML file, its data files made absolute (relative to the file)."""
    path = task_file(ws, spec)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise UserError(f"benchmark task file {spec} is not plain YAML ({str(e).splitlines()[0]}); "
                        "tags such as !function (Python code) are not read", "benchmark_file_invalid",
                        task=spec, detail=str(e).splitlines()[0]) from None
    if not isinstance(config, dict) or not config.get("task"):
        raise UserError(f"benchmark task file {spec} has no 'task:' name (lm-eval's task YAML format)",
                        "benchmark_file_invalid", task=spec, detail="no 'task:' key")
    if "include" in config or "group" in config:
        raise UserError(f"benchmark task file {spec}: 'include:' and 'group:' are not supported in a local task "
                        "file; write the whole task in one file", "benchmark_file_invalid", task=spec,
                        detail="include/group")
    kwargs = config.get("dataset_kwargs")
    if isinstance(kwargs, dict) and kwargs.get("data_files"):
        kwargs["data_files"] = _data_paths(ws, spec, path.parent, kwargs["data_files"])
    return config


def _data_paths(ws: Workspace, spec: str, folder: Path, files):
    """`data_files` (a path, a list, or {split: path or list}) with each path absolute and checked."""
    if isinstance(files, dict):
        return {k: _data_paths(ws, spec, folder, v) for k, v in files.items()}
    if isinstance(files, list):
        return [_data_paths(ws, spec, folder, v) for v in files]
    p = Path(str(files)).expanduser()
    p = p if p.is_absolute() else folder / p
    if not p.is_file():
        raise UserError(f"benchmark task {spec}: its data file {files} is not there ({p})", "benchmark_data_missing",
                        task=spec, file=str(files), path=str(p))
    # the data may leave the workspace only where the task file itself was typed as a path outside it
    # (on the command line): a path written inside a task file is not one the user typed
    if not ws.inside(p) and (ws.confined or not is_explicit_path(spec)):
        where = p.resolve()
        raise UserError(f"benchmark task {spec}: its data file {files} resolves to {where}, outside the workspace "
                        f"{ws.root}: put the data beside the task file", "benchmark_data_outside", task=spec,
                        file=str(files), where=str(where), workspace=str(ws.root))
    return str(p)


# ---- lm-eval's results as tunestudio keeps them ------------------------------------------------

def side_metrics(results: dict) -> dict:
    """simple_evaluate's result as {task: {"n", "metrics": {acc, acc_stderr, ...}, "higher_is_better"}}:
    lm-eval's "acc,none" is "acc", a filtered "exact_match,strict-match" keeps its filter; a stderr
    lm-eval could not compute ("N/A") is None."""
    out = {}
    for task, values in (results.get("results") or {}).items():
        metrics = {}
        for key, v in values.items():
            if "," not in key:   # "alias", "sample_len": not metrics
                continue
            name = key.removesuffix(",none")
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                metrics[name] = float(v)
            elif "_stderr" in key:
                metrics[name] = None
        n = ((results.get("n-samples") or {}).get(task) or {}).get("effective")
        better = (results.get("higher_is_better") or {}).get(task) or {}
        out[task] = {"n": n, "metrics": metrics, "higher_is_better": {k: bool(b) for k, b in better.items()}}
    return out


def stderr_key(metric: str) -> str:
    """acc -> acc_stderr; exact_match,strict-match -> exact_match_stderr,strict-match (lm-eval's names)."""
    name, _, filt = metric.partition(",")
    return f"{name}_stderr" + (f",{filt}" if filt else "")


def delta_error(se_base: float | None, se_tuned: float | None) -> float | None:
    """The standard error of tuned - base for two independent scores: sqrt(se_base² + se_tuned²)."""
    if se_base is None or se_tuned is None:
        return None
    return math.sqrt(se_base ** 2 + se_tuned ** 2)


def table(tuned: dict, base: dict | None = None) -> list[dict]:
    """One row per task and metric: {task, metric, tuned, tuned_stderr, base, base_stderr, delta, error,
    forgetting}. `forgetting`: the score moved the wrong way by more than FORGETTING_SE errors."""
    rows = []
    for task, side in tuned.items():
        for metric, value in side["metrics"].items():
            if "_stderr" in metric or value is None:
                continue
            se = side["metrics"].get(stderr_key(metric))
            row = {"task": task, "metric": metric, "n": side.get("n"), "tuned": value, "tuned_stderr": se}
            b = (base or {}).get(task)
            if b is not None and b["metrics"].get(metric) is not None:
                row["base"] = b["metrics"][metric]
                row["base_stderr"] = b["metrics"].get(stderr_key(metric))
                row["delta"] = value - row["base"]
                row["error"] = delta_error(row["base_stderr"], se)
                up = side.get("higher_is_better", {}).get(metric.partition(",")[0], True)
                drop = -row["delta"] if up else row["delta"]
                row["forgetting"] = bool(row["error"] is not None and drop > FORGETTING_SE * row["error"])
            rows.append(row)
    return rows


def flat(side: dict) -> dict:
    """{"task/metric": value} for the registry's metrics column (numbers only, as every eval keeps)."""
    return {f"{task}/{m}": v for task, s in side.items() for m, v in s["metrics"].items() if v is not None}


def registry_name(names: list[str]) -> str:
    """The evaluations row's dataset for a benchmark evaluation (its split is "benchmark")."""
    return "benchmark: " + ", ".join(names)


def _num(v, se=None) -> str:
    if v is None:
        return "-"
    return f"{v:.4f}" + (f" ± {se:.4f}" if se is not None else "")


def row_cells(r: dict) -> list[str]:
    """A table row as text: task, metric, base, tuned, Δ ± error (the console, the report and the UI)."""
    delta = "-" if r.get("delta") is None else f"{r['delta']:+.4f}" + (
        f" ± {r['error']:.4f}" if r.get("error") is not None else "") + (" FORGETTING" if r.get("forgetting") else "")
    return [r["task"], r["metric"], _num(r.get("base"), r.get("base_stderr")), _num(r["tuned"], r.get("tuned_stderr")),
            delta]


HEADERS = ["task", "metric", "base", "tuned", "Δ ± error"]


def lines(rows: list[dict]) -> list[str]:
    cells = [HEADERS, *(row_cells(r) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    return ["  ".join(c.ljust(w) for c, w in zip(cell, widths)).rstrip() for cell in cells]


def report_html(rows: list[dict], title: str, settings: dict) -> str:
    """The benchmark report page (report.html of a benchmark evaluation)."""
    escape = H.escape
    head = "".join(f"<th>{escape(h)}</th>" for h in HEADERS)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row_cells(r)) + "</tr>" for r in rows)
    shown = ", ".join(f"{k} {v}" for k, v in settings.items() if v is not None)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head><body>"
            f"<h1>{escape(title)}</h1><p>lm-evaluation-harness; {escape(shown)}. ± is the standard error; "
            f"the error of Δ is sqrt(se_base² + se_tuned²); FORGETTING: the tuned score is worse by more than "
            f"{FORGETTING_SE:g} errors.</p><table border='1'><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            "</table></body></html>")
