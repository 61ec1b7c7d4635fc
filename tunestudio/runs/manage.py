"""Rename and delete runs (the Runs tab's buttons): registry rows changed in one transaction.

Deleting a run removes its registry row (and its evaluation and export rows) so it leaves every
list; its folder under training/runs stays unless `delete_files` is set, so a slip costs no
trained model. A run that is training, or has a job queued or running for it, is refused, and so
is one whose lock another process holds (it trains, exports, evaluates or serves it: core/runlock.py).
"""

from __future__ import annotations

import shutil

from tunestudio.core import registry, runlock
from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.jobs import queue as jobs

MAX_NAME = 120


def _busy(ws: Workspace, run: dict) -> UserError | None:
    """Why `run` cannot be deleted now (it trains, or a job is queued or running for it), or None."""

    if run["status"] == "running":
        return UserError(f"cannot delete now: run {run['id']} is training; stop it on the Training tab first",
                         "delete_run_training", run=run["id"])
    for job in jobs.list_jobs(ws):
        if job.run_id == run["id"] and job.status in jobs.ACTIVE:
            return UserError(f"cannot delete now: job {job.id} is {job.status} for run {run['id']}; stop it on "
                             "the Training tab first", "delete_run_job", job=job.id, status=job.status, run=run["id"])
    return None


def rename_run(ws: Workspace, ref: str, name: str) -> dict:
    """Give run `ref` (id, name or id prefix) the display name `name` (1-120 characters, no line
    breaks). Returns the updated registry row. UserError for an unknown run, a bad name, or a
    name another run already has (names pick runs on the command line: they must stay unique)."""
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME or any(c in name for c in "\r\n\t"):
        raise UserError(f"a run name must be 1 to {MAX_NAME} characters on one line (got {name!r})",
                        "run_name_bad", max=MAX_NAME, name=name)
    if not ws.db_path.is_file():
        raise UserError(f"no runs yet in {ws.root}", "no_runs_yet", root=ws.root)
    conn = registry.connect(ws.db_path)
    try:
        run = registry.find_run(conn, ref)
        clash = conn.execute("SELECT id FROM runs WHERE (name = ? OR id = ?) AND id != ?",
                             (name, name, run["id"])).fetchone()
        if clash:
            raise UserError(f"another run ({clash['id']}) is already called '{name}': choose another name",
                            "run_name_taken", other=clash["id"], name=name)
        with registry.transaction(conn):
            registry.update_run(conn, run["id"], name=name)
        return registry.get_run(conn, run["id"])
    finally:
        conn.close()


def delete_run(ws: Workspace, ref: str, delete_files: bool = False) -> dict:
    """Remove run `ref` from the registry (with its evaluations and exports rows); with
    `delete_files`, its folder training/runs/<id> too. Returns {"id", "name", "folder",
    "files_deleted"}. UserError for an unknown run or one that is busy (`_busy`). Runs started
    from it keep their parent id: their lineage shows the parent as missing."""
    if not ws.db_path.is_file():
        raise UserError(f"no runs yet in {ws.root}", "no_runs_yet", root=ws.root)
    conn = registry.connect(ws.db_path)
    try:
        run = registry.find_run(conn, ref)
        busy = _busy(ws, run)
        if busy:
            raise busy
        folder = ws.runs_dir / run["id"]
        # the run's lock, held to the end: refused while a process trains, exports, evaluates or
        # serves it (core/runlock.py), and none of them can start meanwhile
        lock = runlock.acquire(folder, "delete", run["id"]) if folder.is_dir() else None
        try:
            with registry.transaction(conn):
                conn.execute("DELETE FROM evaluations WHERE run_id = ?", (run["id"],))
                conn.execute("DELETE FROM judgements WHERE run_id = ?", (run["id"],))
                conn.execute("DELETE FROM exports WHERE run_id = ?", (run["id"],))
                conn.execute("DELETE FROM runs WHERE id = ?", (run["id"],))
            deleted = False
            if delete_files and folder.is_dir():
                shutil.rmtree(folder)
                deleted = True
        finally:
            if lock is not None:
                lock.release()
    finally:
        conn.close()
    return {"id": run["id"], "name": run["name"], "folder": str(folder), "files_deleted": deleted}
