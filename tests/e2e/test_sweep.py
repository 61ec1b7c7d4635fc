"""`tunestudio sweep`: a 4-trial grid on a space with one clearly bad point (lr 1e-9) runs every trial
as a run through the job queue, prunes the bad trials from their validation losses, resumes after its
own process is killed mid-trial, and `sweep show --json` gives the best trial (bad sweep files:
test_sweep_cli.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import run_cli
from sweep_helpers import TINY_LR_SWEEP, needs_optuna

from tunestudio.core import registry

pytestmark = needs_optuna

ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def _trials(ws):
    import optuna

    db = ws.sweep_dir("tiny-lr") / "optuna.db"
    if not db.is_file():
        return []
    # read-only: opening the storage read-write would create its tables, racing the sweep doing the same
    url = f"sqlite:///file:{db}?mode=ro&uri=true"
    try:
        return optuna.load_study(study_name="tiny-lr", storage=url).get_trials(deepcopy=False)
    except Exception:  # noqa: BLE001 - not created yet
        return []


@pytest.mark.slow
def test_sweep_prunes_the_bad_trials_resumes_after_a_kill_and_shows_the_best(tiny_ws):
    spec = tiny_ws.root / "sweep.yaml"
    # early stopping off: it would end the flat lr-1e-9 trials itself, before the pruner could
    spec.write_text(TINY_LR_SWEEP.replace("  save_steps: 50\n", "  save_steps: 50\n  early_stopping_patience: 0\n"))
    env = {**os.environ, **ONE_THREAD}
    cmd = [sys.executable, "-m", "tunestudio", "sweep", "--config", str(spec), "--workspace", str(tiny_ws.root)]
    log = tiny_ws.root / "first-sweep.log"
    with open(log, "w") as err:
        first = subprocess.Popen(cmd, env=env, cwd=tiny_ws.root, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.time() + 600   # a loaded 2-core machine takes minutes per trial
        while time.time() < deadline:  # kill the sweep while its second trial trains
            trials = _trials(tiny_ws)
            if len(trials) >= 2 and trials[1].state.name == "RUNNING" and trials[1].user_attrs.get("job_id"):
                break
            assert first.poll() is None, f"the sweep ended before its second trial started: {log.read_text()[-2000:]}"
            time.sleep(0.5)
        else:
            pytest.fail("the second trial never started")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert _trials(tiny_ws)[1].state.name == "RUNNING"  # its job goes on without the sweep

    out = run_cli("sweep", "--config", spec, "--json", ws=tiny_ws.root, env=ONE_THREAD)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "trial 1 was running when the sweep stopped" in out.stderr

    shown = run_cli("sweep", "show", "tiny-lr", "--json", ws=tiny_ws.root)
    assert shown.returncode == 0, shown.stderr[-2000:]
    s = json.loads(shown.stdout)
    states = {t["number"]: t["state"] for t in s["trials"]}
    assert sorted(states) == [0, 1, 2, 3] and set(states.values()) <= {"complete", "pruned"}, s["trials"]
    bad = [t for t in s["trials"] if t["params"]["lr"] < 1e-6]
    assert len(bad) == 2 and all(t["state"] == "pruned" for t in bad), s["trials"]
    assert s["counts"]["pruned"] >= 2 and s["counts"]["complete"] >= 1
    assert s["trials"][0]["state"] == "complete"  # best first
    best = s["best"]
    assert best["number"] == s["trials"][0]["number"] and best["params"]["lr"] == 0.003
    assert best["config"]["lr"] == 0.003 and best["config"]["sweep"] == "tiny-lr"

    # every trial is an ordinary run in the registry, tagged with the sweep; pruned ones were stopped
    conn = registry.connect(tiny_ws.db_path)
    try:
        runs = {t["number"]: registry.get_run(conn, t["run_id"]) for t in s["trials"]}
    finally:
        conn.close()
    assert all(r["config"]["sweep"] == "tiny-lr" for r in runs.values())
    for t in s["trials"]:
        assert runs[t["number"]]["status"] == ("completed" if t["state"] == "complete" else "stopped"), t
    metrics = json.loads((tiny_ws.runs_dir / best["run_id"] / "metrics.json").read_text())
    assert best["value"] == pytest.approx(metrics["eval_loss"])

    # through the queue: one job per trial (the killed sweep's job was followed, not restarted),
    # and never two at once
    queue = json.loads((tiny_ws.jobs_dir / "queue.json").read_text())["jobs"]
    assert len(queue) == 4
    spans = sorted((j["started_at"], j["finished_at"]) for j in queue)
    assert all(a[1] <= b[0] + 1.0 for a, b in zip(spans, spans[1:])), spans

    table = run_cli("sweep", "show", "tiny-lr", ws=tiny_ws.root)
    assert table.returncode == 0 and "best: trial" in table.stdout and "pruned@" in table.stdout

    # the Runs tab's Sweeps panel: the same trials, every trial's curves overlaid, lr vs eval_loss
    from tunestudio.webui.tabs.runs.sweep_panel import sweep_view

    text, trials, curves, scatter, params, param = sweep_view(tiny_ws, "en", "tiny-lr", "lr")
    assert list(trials["trial"]) == [t["number"] for t in s["trials"]] and params == ["lr", "weight_decay"]
    assert {f"t{n} {kind}" for n in range(4) for kind in ("training", "validation")} <= set(curves["series"])
    assert param == "lr" and len(scatter) == 4 and sorted(scatter["x"]) == [1e-9, 1e-9, 3e-3, 3e-3]
    assert f"trial {best['number']}" in text


