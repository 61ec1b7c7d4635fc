"""Is this run config already training, or waiting to? A second Start with the same settings (a
double click, a second page) would queue an identical run, minutes of CPU for the same model, so
the queue asks first (`jobs.queue.submit`) and `tunestudio train` refuses it without
`--allow-duplicate`.

Two configs are the same run when every field but the name matches: the name (and so the run
folder) differs by design, and nothing else does.
"""

from __future__ import annotations

import contextlib
import json

from tunestudio.config.run_config import load_config
from tunestudio.core import registry
from tunestudio.core.errors import UserError
from tunestudio.core.procs import is_alive
from tunestudio.core.workspace import Workspace
from tunestudio.jobs.job import Job

IGNORED = ("name",)   # differs between two starts of the same settings, by design


def settings(cfg) -> dict:
    """The settings of `cfg` (a RunConfig) that make a run what it is, as plain comparable values."""
    return {k: v for k, v in json.loads(json.dumps(cfg.to_dict(), default=str)).items() if k not in IGNORED}


def same_run(new: dict, other: dict, filled: bool = False) -> bool:
    """Whether `new` and `other` (`settings` results) train the same run; `filled`: `other` is a
    run's own config.yaml, where the engine writes the values a preset chose (lr), so a setting
    `new` leaves empty matches any value there."""
    return all(other.get(k) == v for k, v in new.items() if not (filled and v is None))


def _job_config(ws: Workspace, job: Job):
    """The config a queued or running job trains (its --config file, or a resumed run's own)."""
    path = job.config_path or (str(ws.runs_dir / job.run_id / "config.yaml") if job.run_id else "")
    if not path:
        return None
    with contextlib.suppress(UserError, OSError):
        return load_config(path)
    return None


def find_duplicate(ws: Workspace, cfg, jobs: list[Job], skip_job: str | None = None) -> dict | None:
    """The queued or running job, or the running run (started from a shell), that trains the same
    settings as `cfg`: {"job": id or None, "run": id or None, "status": queued | running}; None when
    there is none. `jobs`: the queue's jobs; `skip_job`: the caller's own job."""
    key = settings(cfg)
    for j in jobs:
        if j.status in ("queued", "running") and j.id != skip_job:
            other = _job_config(ws, j)
            if other is not None and same_run(key, settings(other), filled=not j.config_path):
                return {"job": j.id, "run": j.run_id, "status": j.status}
    with contextlib.suppress(Exception):   # no registry yet, or a busy one: the queue is the check then
        conn = registry.connect(ws.db_path, readonly=True)
        try:
            rows = conn.execute("SELECT id, pid FROM runs WHERE status = 'running'").fetchall()
        finally:
            conn.close()
        for row in rows:
            path = ws.runs_dir / row["id"] / "config.yaml"
            if row["pid"] and is_alive(row["pid"], None) and path.is_file():
                if same_run(key, settings(load_config(path)), filled=True):
                    return {"job": None, "run": row["id"], "status": "running"}
    return None


def refuse_duplicate(found: dict, flag: str = "--allow-duplicate") -> UserError:
    """The error for starting a copy of `found` (find_duplicate's answer): names what already
    trains these settings, and how to start the copy anyway."""
    what = f"job {found['job']}" if found["job"] else f"run {found['run']}"
    return UserError(f"{what} is already {found['status']} with these same settings: starting again would train "
                     f"the same model twice. Give {flag} to start a copy anyway", "duplicate_run",
                     what=what, status=found["status"], flag=flag, job=found["job"], run=found["run"])
