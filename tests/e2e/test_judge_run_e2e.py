"""`eval --judge RUN` with a run that is not served: the run's server is started for the evaluation,
judges it, and is stopped after; no process is left behind."""

from __future__ import annotations

import json

from eval_helpers import make_full_run
from helpers import run_cli


def test_a_run_that_is_not_served_is_served_for_the_evaluation_then_stopped(demo_ws):
    from tunestudio.core.workspace import Workspace
    from tunestudio.ship.background import server_status

    make_full_run(demo_ws, "full-run")
    r = run_cli("eval", "--run", "full-run", "--limit", "2", "--max-new-tokens", "4", "--metrics", "exact_match",
                "--judge", "full-run", "--judge-mode", "single", "--judge-parallel", "2", "--json", ws=demo_ws,
                timeout=600)
    assert r.returncode == 0, r.stderr
    assert "judge: run full-run served at http://127.0.0.1:" in r.stderr and "Traceback" not in r.stderr
    judge = json.loads(r.stdout)["judge"]
    # the random test model never writes the verdict format: every grade is counted unparseable, none guessed
    assert judge["endpoint"].startswith("http://127.0.0.1:") and judge["single"]["unparseable"] >= 1
    ws = Workspace(demo_ws)
    run_id = json.loads(r.stdout)["run_id"]
    assert server_status(ws, run_id)["status"] == "stopped"   # started here, so stopped here
