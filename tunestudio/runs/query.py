"""What the registry knows about runs, as plain JSON-able dicts.

`tunestudio runs list | show | compare` print these, and the web UI's Runs tab shows the same
dicts, so both faces always agree. Reading never creates a registry: a folder without
tunestudio.db simply has no runs.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path

from tunestudio.core import registry
from tunestudio.core.errors import UserError
from tunestudio.core.statefiles import read_jsonl
from tunestudio.train import tracking
from tunestudio.train.events import earlier_segments

# The metrics worth a column in the table, in this order (training first, then evaluation).
KEY_METRICS = ("steps", "train_loss", "eval_loss", "best_step", "exact_match", "f1", "bleu",
               "rougeL", "perplexity")


@contextmanager
def _registry(ws, must_exist: bool):
    """A read-only registry connection (listing never writes: it works on a full or read-only
    disk); None when there is no registry. A damaged file is one clear message."""
    if not ws.db_path.is_file():
        if must_exist:
            raise UserError(f"no runs in {ws.root} (no {ws.db_path.name}): start one with `tunestudio train`",
                            "no_registry", root=str(ws.root), file=ws.db_path.name)
        yield None
        return
    try:
        conn = registry.connect(ws.db_path, readonly=True)
    except sqlite3.Error as e:
        raise UserError(f"cannot read the registry {ws.db_path} ({e}): `tunestudio runs reindex` "
                        "rebuilds it from the run folders", "registry_unreadable", path=str(ws.db_path),
                        detail=str(e)) from None
    try:
        yield conn
    except sqlite3.DatabaseError as e:
        raise UserError(f"the registry {ws.db_path} is damaged ({e}): `tunestudio runs reindex` "
                        "rebuilds it from the run folders", "registry_damaged", path=str(ws.db_path),
                        detail=str(e)) from None
    finally:
        conn.close()


def best_eval_loss(metrics: dict | None) -> float | None:
    metrics = metrics or {}
    value = metrics.get("best_eval_loss", metrics.get("eval_loss"))
    return value if isinstance(value, (int, float)) else None


def _key_metrics(run: dict, evaluation: dict | None) -> dict:
    """Training metrics of the run, then the newest evaluation's scores (prefixed `test_`)."""
    found = {k: v for k, v in (run.get("metrics") or {}).items() if k in KEY_METRICS}
    for k, v in ((evaluation or {}).get("metrics") or {}).items():
        if k in KEY_METRICS:
            found[f"test_{k}"] = v
    return found


def _short(run: dict | None) -> dict | None:
    if run is None:
        return None
    return {"id": run["id"], "name": run["name"], "status": run["status"]}


def runs_table(ws) -> dict:
    """Every run, newest first: {"runs": [{id, name, status, base_model, method, dataset,
    best_eval_loss, metrics, parent_id, created_at}]}."""
    with _registry(ws, must_exist=False) as conn:
        if conn is None:
            return {"runs": []}
        rows = []
        for run in registry.list_runs(conn):
            evals = registry.run_evaluations(conn, run["id"])
            rows.append({
                "id": run["id"], "name": run["name"], "status": run["status"],
                "base_model": run.get("base_model"), "method": run.get("method"), "dataset": run.get("dataset"),
                "best_eval_loss": best_eval_loss(run.get("metrics")),
                # the newest held-out evaluation (a benchmark's, split "benchmark", has no test_ metrics)
                "metrics": _key_metrics(run, next((e for e in evals if e.get("split") != "benchmark"), None)),
                "parent_id": run.get("parent_id"), "created_at": run["created_at"],
            })
        return {"runs": rows}


def _lineage(conn, run: dict) -> dict:
    parents, seen, pid = [], {run["id"]}, run.get("parent_id")
    while pid and pid not in seen:  # `seen` guards against a hand-edited cycle
        seen.add(pid)
        try:
            parent = registry.get_run(conn, pid)
        except UserError:
            parents.append({"id": pid, "name": None, "status": "missing"})
            break
        parents.append(_short(parent))
        pid = parent.get("parent_id")
    return {"parents": parents, "children": [_short(c) for c in registry.child_runs(conn, run["id"])]}


def lineage(ws, ref: str) -> dict:
    """{"run": {id, name, status}, "parents": [nearest first ... the first stage],
    "children": [runs started from this one]}."""
    with _registry(ws, must_exist=True) as conn:
        run = registry.find_run(conn, ref)
        return {"run": _short(run), **_lineage(conn, run)}


def split_summary(split: dict | None) -> dict | None:
    """The split without its row ids: rows per split, fractions, seed, files and hashes, and
    (when the engine recorded them) token statistics per split and where split.json lies.
    Takes the engine's registry summary (`counts`) or a full split info (`rows`: id lists)."""
    if not split:
        return None
    counts = split.get("counts") or {name: len(ids) for name, ids in (split.get("rows") or {}).items()}
    return {
        "dataset": split.get("dataset"),
        "format": split.get("format"),
        "rows": counts,
        "val_split": split.get("val_split"), "test_split": split.get("test_split"), "seed": split.get("seed"),
        "hash": split.get("hash"),
        "files": {k: {"name": f.get("name"), "rows": f.get("rows"), "sha256": f.get("sha256")}
                  for k, f in (split.get("files") or {}).items()},
        # per split (train, val): its token statistics; the engine also records how many replay rows it mixed in
        "tokens": {k: v for k, v in (split.get("encoded") or {}).items() if isinstance(v, dict)},
        "replay_rows": (split.get("encoded") or {}).get("replay") or 0,
        "split_file": split.get("file"),
    }


def _events_summary(run_dir: Path) -> dict:
    """From events.jsonl: the start (world size, memory estimate), the last progress, warnings."""
    path = run_dir / "events.jsonl"
    out = {"events_file": str(path) if path.is_file() else None, "started": None, "progress": None,
           "warnings": [], "warning_events": [], "oom_retries": 0, "bad_event_lines": 0, "error_event": None}
    if not path.is_file():
        return out
    events, _, bad = read_jsonl(path)  # damaged lines (a crash mid-write, a hand edit) are skipped
    out["bad_event_lines"] = bad
    for event in events:
        kind = event.get("type")
        if kind == "started":   # a resumed run's new process: an earlier failure is not its end
            out["error_event"] = None
            out["started"] = {k: event.get(k) for k in ("world_size", "total_steps", "train_rows", "val_rows",
                                                         "trainable_params", "total_params", "memory")}
        elif kind == "train":
            out["progress"] = {k: event.get(k) for k in ("step", "total_steps", "epoch", "loss",
                                                         "tokens_per_second", "eta_s")}
        elif kind == "warning":
            out["warnings"].append(event.get("message"))
            out["warning_events"].append(event)
        elif kind == "oom_retry":
            out["oom_retries"] += 1
        elif kind == "failed":   # why, with its code and fields (the web UI words it)
            out["error_event"] = {"code": event.get("code"), "message": event.get("error") or event.get("message"),
                                  "fields": event.get("fields") or {}}
    return out


def _final_dir(ws, run: dict) -> str | None:
    candidates = [ws.runs_dir / run["id"] / "final"]
    if run.get("output_dir"):
        out = Path(run["output_dir"])
        candidates[:0] = [out] if out.name == "final" else [out / "final"]
    return next((str(p) for p in candidates if p.is_dir()), None)


def run_details(ws, ref: str) -> dict:
    """Everything about one run: its registry row (config, metrics, status, error...), the split
    summary, lineage, evaluations, the output and final folders, and what events.jsonl says."""
    with _registry(ws, must_exist=True) as conn:
        run = registry.find_run(conn, ref)
        evals = registry.run_evaluations(conn, run["id"])
        family = _lineage(conn, run)
    run_dir = ws.runs_dir / run["id"]
    finished, started = run.get("finished_at"), run.get("started_at")
    details = {k: v for k, v in run.items() if k not in ("split",)}
    last = round(finished - started, 1) if finished and started else None
    earlier = earlier_segments(run_dir / "events.jsonl")
    details.update({
        "best_eval_loss": best_eval_loss(run.get("metrics")),
        # a resumed run: every process that trained it counts, not only the last one
        "duration_s": round(last + sum(earlier), 1) if last is not None else None,
        "last_segment_s": last,
        "segments": len(earlier) + 1,
        "split": split_summary(run.get("split")),
        "lineage": family,
        "evaluations": [{k: e.get(k) for k in ("id", "created_at", "dataset", "split", "n", "metrics",
                                               "base_metrics", "output_dir")} for e in evals],
        "run_dir": str(run_dir),
        "final_dir": _final_dir(ws, run),
        "trackers": tracking.links(run_dir),  # where --report-to sent it (TensorBoard, MLflow...)
        **_events_summary(run_dir),
    })
    if details["status"] == "failed" and not details["error_event"]:   # died without saying why
        details["error_event"] = registry.crash_record(run.get("error"))
    return details


def _flatten(d: dict, prefix: str = "") -> dict:
    flat = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict) and v:
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v
    return flat


def _side_by_side(a: dict, b: dict) -> list[dict]:
    rows = []
    for key in sorted(set(a) | set(b), key=lambda k: (k not in KEY_METRICS, k)):
        va, vb = a.get(key), b.get(key)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (va, vb))
        rows.append({"key": key, "a": va, "b": vb, "delta": round(vb - va, 6) if numeric else None})
    return rows


def compare_runs(ws, ref_a: str, ref_b: str) -> dict:
    """Two runs side by side: {"a", "b" (id, name, status, base_model, method, dataset),
    "same_data" (same dataset content hash), "config_differences": [{key, a, b}],
    "same_config_keys", "metrics": [{key, a, b, delta}], "evaluation": [...] (newest of each)}."""
    with _registry(ws, must_exist=True) as conn:
        runs = [registry.find_run(conn, ref) for ref in (ref_a, ref_b)]
        evals = [registry.run_evaluations(conn, r["id"]) for r in runs]
    a, b = runs
    ca, cb = _flatten(a.get("config") or {}), _flatten(b.get("config") or {})
    differences = [{"key": k, "a": ca.get(k), "b": cb.get(k)} for k in sorted(set(ca) | set(cb))
                   if ca.get(k) != cb.get(k)]
    head = ("id", "name", "status", "base_model", "method", "dataset", "dataset_hash", "parent_id")
    return {
        "a": {k: a.get(k) for k in head}, "b": {k: b.get(k) for k in head},
        "same_data": bool(a.get("dataset_hash")) and a.get("dataset_hash") == b.get("dataset_hash"),
        "config_differences": differences,
        "same_config_keys": len((set(ca) | set(cb))) - len(differences),
        "metrics": _side_by_side(a.get("metrics") or {}, b.get("metrics") or {}),
        "evaluation": _side_by_side(*((e[0]["metrics"] or {}) if e else {} for e in evals)),
    }
