"""Which run a training job's process created (a job knows its pid, the run knows its own id).

The engine creates the run folder and registry row some time after the job starts, so `jobs.advance`
asks here on each poll until the answer is known.
"""

from __future__ import annotations

import contextlib

from tunestudio.core import registry
from tunestudio.core.run_progress import read_events
from tunestudio.core.workspace import Workspace


def find_run(ws: Workspace, job) -> str | None:
    """The run the job's process created (`job`: a jobs.Job; None while it is not known yet): the
    registry row carrying its pid, else the run folder whose `started` event names that pid, else
    the newest folder made after the job started."""
    if not job.pid or not job.started_at:
        return None
    with contextlib.suppress(Exception):  # the registry may not have the row yet

        conn = registry.connect(ws.db_path, readonly=True)
        try:
            row = conn.execute(
                "SELECT id FROM runs WHERE pid = ? AND created_at >= ? ORDER BY created_at DESC LIMIT 1",
                (job.pid, job.started_at - 5),
            ).fetchone()
        finally:
            conn.close()
        if row:
            return row["id"]
    candidates = []
    if ws.runs_dir.is_dir():
        for d in ws.runs_dir.iterdir():
            events = d / "events.jsonl"
            if d.is_dir() and (d / "config.yaml").is_file() and (d / "config.yaml").stat().st_mtime >= job.started_at - 2:
                first = read_events(events, 0)[0][:1] if events.is_file() else []
                if first and first[0].get("pid") == job.pid:
                    return d.name
                if first and first[0].get("pid") not in (None, job.pid):
                    continue   # another process's run (a sweep's previous trial, ended seconds before)
                candidates.append(((d / "config.yaml").stat().st_mtime, d.name))
    if candidates and job.status == "running":
        # Only one job runs per device, so the newest new folder is ours when no pid was recorded.
        return max(candidates)[1]
    return None
