"""Preference data and objectives through the CLI: `data check | stats | preview` on pairs, bad
objective options as clear errors, and `eval` on KTO rows reporting the separation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli
from workspaces import pairs_file


def test_data_commands_on_pairs(demo_ws):
    bad = demo_ws / "training" / "datasets" / "bad-prefs.jsonl"
    bad.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n"
                   + json.dumps({"prompt": "q", "chosen": "a", "rejected": "a"}) + "\n")
    r = run_cli("data", "check", "bad-prefs.jsonl", ws=demo_ws)
    assert r.returncode == 1 and "bad-prefs.jsonl:2" in r.stdout + r.stderr and "Traceback" not in r.stderr
    r = run_cli("data", "check", "demo-prefs.jsonl", "--model", "tiny-demo", ws=demo_ws)
    assert r.returncode == 0 and "1200 usable rows" in r.stdout, r.stdout + r.stderr
    r = run_cli("data", "stats", "demo-prefs.jsonl", "--json", ws=demo_ws)
    s = json.loads(r.stdout)
    assert s["rows"] == 1200 and 0 <= s["chosen_longer_share"] <= 1
    r = run_cli("data", "preview", "demo-prefs.jsonl", "--model", "tiny-demo", "--json", ws=demo_ws)
    p = json.loads(r.stdout)
    assert set(p["answers"]) == {"chosen", "rejected"} and all(t["trained"] for t in p["answers"]["chosen"])
    assert not any(t["trained"] for t in p["prompt"])


def test_bad_objective_options_are_clear_errors(demo_ws):
    r = run_cli("train", "--model", "tiny-demo", "--dataset", "demo-prefs.jsonl", "--objective", "ppo", ws=demo_ws)
    assert r.returncode == 1 and "unknown objective 'ppo'" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("train", "--model", "tiny-demo", "--dataset", "demo-prefs.jsonl", "--objective", "simpo",
                "--reference", "none", ws=demo_ws)
    assert r.returncode == 1 and "reference-free by design" in r.stderr
    # SFT on a pair file, and DPO on SFT rows, say what to do
    r = run_cli("train", "--model", "tiny-demo", "--dataset", "demo-prefs.jsonl", ws=demo_ws)
    assert r.returncode == 1 and "--objective dpo" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = run_cli("train", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--objective", "dpo", ws=demo_ws)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr


def test_eval_on_kto_rows_reports_separation(demo_ws):
    from tunestudio.core.workspace import Workspace

    ws = Workspace(demo_ws)
    ws.datasets_dir.joinpath("tiny.jsonl").write_text("".join(
        json.dumps({"messages": [{"role": "user", "content": f"review {i}: {w}"},
                                 {"role": "assistant", "content": w}]}) + "\n"
        for i, w in enumerate(["positive", "negative", "neutral"] * 4)))
    name = pairs_file(ws, rows=12, unpaired=True)
    r = run_cli("eval", "--model", "tiny-demo", "--dataset", name, "--json", ws=demo_ws)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    out = json.loads(r.stdout)
    m = out["metrics"]
    assert out["n"] == 12 and out["format"] == "unpaired" and out["primary_metric"] == "separation"
    assert 0 <= m["separation"] <= 1 and m["logp_margin"] == pytest.approx(
        m["desirable_logp_mean"] - m["undesirable_logp_mean"])
    rows = [json.loads(x) for x in Path(out["output_dir"], "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and {x["label"] for x in rows} == {True, False}
    # the metrics are what the saved per-row scores give
    from tunestudio.evaluate.kto import unpaired_metrics

    again = unpaired_metrics([x["logp"] for x in rows], [x["label"] for x in rows])
    assert again["separation"] == pytest.approx(m["separation"])
    text = run_cli("eval", "--model", "tiny-demo", "--dataset", name, "--no-save", ws=demo_ws)
    assert text.returncode == 0 and "separation" in text.stdout and "12 labelled answers" in text.stdout, text.stderr

