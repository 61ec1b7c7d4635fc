"""The registry rebuilt from the run folders, which stay the truth.

Each `training/runs/<run>/` holds what the registry row says about it: config.yaml (the whole
config), split.json, events.jsonl (start, progress, the end: completed, stopped or failed),
metrics.json and final/. `reindex(ws)` adds a row for every run folder the registry lacks
(`tunestudio runs reindex`); `repair_if_needed(ws)` runs it automatically, with a notice, when
tunestudio.db is missing, empty or unreadable. A damaged database is moved aside (kept for
inspection), never deleted. What only the registry held (evaluations, benchmarks, ratings) cannot
come back from the run folders: the notice says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import time
from pathlib import Path

from tunestudio.core import registry
from tunestudio.core.errors import UserError
from tunestudio.core.statefiles import NOTICES, describe_os_error, move_aside, read_json_or_none, read_jsonl

ENDS = ("completed", "stopped", "failed")


def run_folders(ws) -> list[Path]:
    """Folders under training/runs that hold a run (a config.yaml), oldest name first."""
    if not ws.runs_dir.is_dir():
        return []
    try:
        return sorted(d for d in ws.runs_dir.iterdir() if d.is_dir() and (d / "config.yaml").is_file())
    except OSError:
        return []


def row_from_folder(folder: Path) -> dict:
    """The registry row a run folder implies. Raises UserError when its config.yaml is unreadable."""
    import yaml

    try:
        config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        detail = str(e).splitlines()[0][:120]
        raise UserError(f"{folder / 'config.yaml'} is unreadable ({detail})", "run_config_unreadable",
                        path=str(folder / "config.yaml"), detail=detail) from None
    if not isinstance(config, dict):
        raise UserError(f"{folder / 'config.yaml'} is not a mapping of option: value", "run_config_not_mapping",
                        path=str(folder / "config.yaml"))
    events, _, _ = read_jsonl(folder / "events.jsonl")
    starts = [e for e in events if e.get("type") == "started"]
    ends = [e for e in events if e.get("type") in ENDS]
    last_start, last_end = (starts[-1] if starts else {}), (ends[-1] if ends else {})
    metrics_file = read_json_or_none(folder / "metrics.json") or {}
    split = read_json_or_none(folder / "split.json") or {}
    if last_end and last_end.get("time", 0) >= last_start.get("time", 0):
        status, error = last_end["type"], last_end.get("error")
    elif last_start and registry.pid_alive(last_start.get("pid")):
        status, error = "running", None
    else:  # started (or only created) and never ended: the process died
        status, error = "failed", f"{registry.CRASHED} (found by reindex)"
    metrics = {k: v for k, v in metrics_file.items() if k != "status"} or last_end.get("metrics") or None
    final = folder / "final"
    has_model = (final / "config.json").is_file() or (final / "adapter_config.json").is_file()
    times = [e.get("time") for e in events if isinstance(e.get("time"), (int, float))]
    created = min(times) if times else (folder / "config.yaml").stat().st_mtime
    summary = {k: v for k, v in split.items() if k != "rows"}
    summary["counts"] = {k: len(v) for k, v in (split.get("rows") or {}).items() if isinstance(v, list)}
    summary["file"] = f"training/runs/{folder.name}/split.json"
    parent = config.get("from_run") or None
    if parent and not (folder.parent / str(parent)).is_dir():
        parent = None
    return {
        "id": folder.name, "name": config.get("name") or folder.name, "status": status,
        "created_at": created, "started_at": last_start.get("time") or created,
        "finished_at": last_end.get("time") if status in ENDS else None,
        "pid": last_start.get("pid"), "base_model": last_start.get("model") or config.get("model"),
        "base_revision": None, "method": config.get("method"), "dataset": config.get("dataset"),
        "dataset_hash": split.get("hash"), "split": summary if split else None, "config": config,
        "parent_id": parent, "metrics": metrics, "output_dir": str(final) if has_model else None, "error": error,
    }


def reindex(ws, conn: sqlite3.Connection | None = None) -> dict:
    """Add a registry row for every run folder the registry lacks; rows it has are kept.

    Returns {"added": [run ids], "kept": n, "skipped": [{"folder", "reason"}]}. A folder made in
    the last minute with no events yet is skipped: a run being created right now registers itself.
    """
    own = conn is None
    conn = conn or registry.connect(ws.db_path)
    try:
        known = {r["id"] for r in conn.execute("SELECT id FROM runs")}
        added, skipped = [], []
        for folder in run_folders(ws):
            if folder.name in known:
                continue
            if not (folder / "events.jsonl").exists() and time.time() - (folder / "config.yaml").stat().st_mtime < 60:
                skipped.append({"folder": str(folder), "reason": "being created"})
                continue
            try:
                registry.insert_run(conn, **row_from_folder(folder))
                added.append(folder.name)
            except UserError as e:
                skipped.append({"folder": str(folder), "reason": str(e)})
        return {"added": added, "kept": len(known), "skipped": skipped}
    finally:
        if own:
            conn.close()


def health(ws) -> str | None:
    """None when the registry is usable, else what is wrong: missing, empty or unreadable (...)."""
    db = ws.db_path
    folders = run_folders(ws)
    if not db.is_file():
        return "missing" if folders else None
    # (a 0-byte file is not necessarily empty: in WAL mode everything may still be in -wal)
    try:
        conn = registry.connect(db, readonly=True)
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                return f"unreadable (damaged: {check})"
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "runs" not in tables:
                return "empty" if folders else None
            count = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError as e:  # locked, I/O: the file may be fine, so never move it aside
        raise UserError(f"cannot read the registry {db} ({e}): try again; if it persists, check the disk",
                        "registry_busy", path=str(db), detail=str(e)) from None
    except sqlite3.DatabaseError as e:  # "file is not a database", "database disk image is malformed"
        return f"unreadable ({e})"
    return "empty (no runs, but run folders exist)" if count == 0 and folders else None


@contextlib.contextmanager
def _repair_lock(ws):
    """One repair at a time per workspace (two UIs may start together)."""
    path = ws.db_lock_path
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def repair(ws, problem: str) -> str:
    """Rebuild the registry (moving a damaged file aside first); returns the notice to show."""
    moved = []
    if problem.startswith("unreadable"):
        for suffix in ("", "-wal", "-shm"):
            p = ws.db_path.with_name(ws.db_path.name + suffix)
            if p.exists():
                moved.append(move_aside(p))
    result = reindex(ws)
    notice = f"the registry {ws.db_path.name} was {problem}: rebuilt from the run folders " \
             f"({len(result['added'])} run(s) restored"
    if moved:
        notice += f"; the old file was kept as {moved[0].name}"
    if result["skipped"]:
        notice += "; skipped: " + "; ".join(f"{Path(s['folder']).name} ({s['reason']})" for s in result["skipped"])
    notice += "). Evaluations, benchmarks and ratings were recorded only in the registry"
    notice += f" and stay in {moved[0].name}." if moved else " and are not restored."
    return notice


def repair_if_needed(ws) -> str | None:
    """Check the registry and rebuild it when missing, empty or unreadable; the notice, or None.
    Raises UserError when it needs a rebuild that cannot be written (a read-only workspace)."""
    problem = health(ws)
    if problem is None:
        return None
    try:
        with _repair_lock(ws):
            problem = health(ws)  # another process may have repaired it while we waited
            if problem is None:
                return None
            notice = repair(ws, problem)
    except (OSError, sqlite3.Error) as e:
        why = describe_os_error(e) if isinstance(e, OSError) else str(e)
        raise UserError(f"the registry {ws.db_path} is {problem} and cannot be rebuilt here "
                        f"({why}): make the workspace writable, then run `tunestudio runs reindex`",
                        "registry_unrepairable", path=str(ws.db_path), problem=problem, detail=why) from None
    NOTICES.append(notice)
    return notice
