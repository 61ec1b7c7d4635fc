"""Give a workspace the content the web UI walkthrough looks at (scripts/walkthrough_check.py).

    python scripts/walkthrough_setup.py WORKSPACE

Every job goes through the job queue, as the UI's Start / Stop / Resume do (tunestudio.jobs.queue), so the
Training tab, the Runs table and the queue have the same history a person clicking would leave:
  walk-done     a completed run (6 steps of full fine-tuning on demo-reviews, validation every 3)
  walk-resumed  started for 40 steps, stopped after a checkpoint, resumed to completion
  walk-broken   a job on a data file with a broken row: it fails (no run, or a failed run)
  an evaluation of walk-done on 4 test rows (`tunestudio eval --limit 4`)
  walk-sweep    a sweep of two 4-step trials (`tunestudio sweep`, trials through the queue)
  an export of walk-done started as the Ship panel does (ship_jobs.start_export, Transformers folder)
Tiny on purpose (a couple of minutes on one CPU thread). Idempotent: what exists is kept."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tunestudio.jobs import queue as jobs
from tunestudio.core import registry
from tunestudio.ship import background as ship_jobs  # noqa: E402
from tunestudio.core.run_progress import read_events  # noqa: E402
from tunestudio.config.run_config import RunConfig  # noqa: E402
from tunestudio.core.workspace import Workspace  # noqa: E402

BASE = dict(model="tiny-demo", dataset="demo-reviews.jsonl", method="full", lr=1e-3, batch_size=8,
            eval_steps=3, logging_steps=1, max_length=96)
BROKEN = "walk-broken.jsonl"


def _cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunestudio", *args, "--workspace", str(ws.root)],
                          capture_output=True, text=True, timeout=900)


def _run_named(ws: Workspace, name: str) -> dict | None:
    if not ws.db_path.exists():
        return None
    conn = registry.connect(ws.db_path, readonly=True)
    try:
        return next((r for r in registry.list_runs(conn) if r["name"] == name), None)
    finally:
        conn.close()


def _drive(ws: Workspace, job_id: str, until=None, timeout: float = 900) -> jobs.Job:
    """Advance the queue (the UI's background thread does this) until the job ends or `until(job)`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        jobs.advance(ws)
        job = jobs.get_job(ws, job_id)
        if job.status not in ("queued", "running") or (until and until(job)):
            return job
        time.sleep(1)
    raise SystemExit(f"job {job_id} did not end in {timeout} s")


def _last_step(ws: Workspace, run_id: str | None) -> int:
    if not run_id:
        return 0
    events, _ = read_events(ws.runs_dir / run_id / "events.jsonl")
    return max((int(e.get("step") or 0) for e in events if e.get("type") == "checkpoint"), default=0)


def main(root: str) -> None:
    ws = Workspace(Path(root).resolve())
    r = _cli(ws, "demo")
    if r.returncode:
        raise SystemExit(r.stderr)
    if not _run_named(ws, "walk-done"):
        job = jobs.submit(ws, RunConfig(**BASE, max_steps=6, name="walk-done"))
        print("walk-done:", _drive(ws, job.id).status, flush=True)
    if not _run_named(ws, "walk-resumed"):
        job = jobs.submit(ws, RunConfig(**BASE, max_steps=40, save_steps=10, name="walk-resumed"))
        job = _drive(ws, job.id, until=lambda j: _last_step(ws, j.run_id) >= 10)
        jobs.stop(ws, job.id, grace=60)
        job = _drive(ws, job.id)
        print("walk-resumed first part:", job.status, flush=True)
        resumed = jobs.submit_resume(ws, job.run_id)
        print("walk-resumed after resume:", _drive(ws, resumed.id).status, flush=True)
    broken = ws.datasets_dir / BROKEN
    if not broken.exists():
        rows = (ws.datasets_dir / "demo-reviews.jsonl").read_text().splitlines()[:40]
        broken.write_text("\n".join(rows[:20] + ['{"messages": [{"role": "user"'] + rows[20:]) + "\n")
        job = jobs.submit(ws, RunConfig(**{**BASE, "dataset": BROKEN}, max_steps=4, name="walk-broken"))
        print("walk-broken:", _drive(ws, job.id).status, flush=True)
    done = _run_named(ws, "walk-done")
    conn = registry.connect(ws.db_path, readonly=True)
    try:
        evaluated = registry.run_evaluations(conn, done["id"])
    finally:
        conn.close()
    if not evaluated:
        r = _cli(ws, "eval", "--run", done["id"], "--limit", "4", "--compare-base", "--json")
        print("eval:", r.returncode, (r.stdout.strip() or r.stderr.strip())[-300:], flush=True)
    if not (ws.root / "training" / "sweeps" / "walk-sweep").exists():
        spec = ws.root / "walk-sweep.yaml"
        spec.write_text("name: walk-sweep\nbase:\n" + "".join(f"  {k}: {v}\n" for k, v in BASE.items())
                        + "  max_steps: 4\nspace:\n  lr: [0.001, 0.0003]\nobjective: eval_loss\n"
                          "sampler: grid\ntrials: 2\nseed: 0\n")
        r = _cli(ws, "sweep", "--config", str(spec))
        print("sweep:", r.returncode, (r.stdout.strip() or r.stderr.strip())[-300:], flush=True)
    if not ship_jobs.exports_dir(ws).is_dir() or not any(ship_jobs.exports_dir(ws).glob("*.json")):
        rec = ship_jobs.start_export(ws, done["id"], "hf", verify=False)
        for _ in range(600):
            status = ship_jobs.export_status(ws, rec["id"])
            if status["status"] != "running":
                break
            time.sleep(1)
        print("export:", status["status"], status.get("error") or "", flush=True)
    print(json.dumps({j.id: [j.status, j.run_id, j.name] for j in jobs.list_jobs(ws)}, indent=1))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
