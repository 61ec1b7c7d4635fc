"""`tunestudio rate`: scripted choices from the terminal, and `rate new` generating both sides."""

from __future__ import annotations

import json

from eval_helpers import rating_session
from helpers import run_cli

from tunestudio.core.workspace import Workspace
from tunestudio.evaluate import ratings


def test_rate_cli_scripted_choices(workspace):
    ws = Workspace(workspace)
    sid = rating_session(ws, seed=11)
    items = ratings.get_session(ws, sid)["items"]
    # prefer the base answer on the first 4 items, tie on the rest
    choices = [("A" if it["a"].startswith("base") else "B") for it in items[:4]] + ["tie"] * 4
    r = run_cli("rate", "session", sid, "--rater", "ann", "--choices", ",".join(choices), "--json", ws=workspace)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert (s["wins_a"], s["wins_b"], s["ties"]) == (4, 0, 4)
    r = run_cli("rate", "summary", sid, ws=workspace)
    assert r.returncode == 0 and "base:run1 wins 4" in r.stdout
    r = run_cli("rate", "session", sid, "--rater", "ann", "--choices", "A", ws=workspace)
    assert r.returncode == 1 and "0 unrated item(s)" in r.stderr
    r = run_cli("rate", "list", "--json", ws=workspace)
    assert json.loads(r.stdout)["sessions"][0] == {**json.loads(r.stdout)["sessions"][0], "items": 8, "rated": 8}


def test_rate_new_generates_both_sides(demo_ws):
    from eval_helpers import make_adapter_run

    make_adapter_run(demo_ws, "lora-run")
    r = run_cli("rate", "new", "--a", "base:lora-run", "--b", "lora-run", "--prompt", "The kettle is great.",
                "--prompt", "My lamp broke.", "--max-new-tokens", "6", "--seed", "1", "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr
    sid = json.loads(r.stdout)["session_id"]
    session = ratings.get_session(Workspace(demo_ws), sid)
    assert (session["a_label"], session["b_label"]) == ("base:lora-run", "run:lora-run")
    assert len(session["items"]) == 2 and all(it["a"] and it["b"] for it in session["items"])
    # the run answers unlike its base (a small adapter may leave one short answer unchanged)
    assert any(it["a"] != it["b"] for it in session["items"])

