"""`--streaming` with input it cannot use is one clear message."""

from __future__ import annotations

import pytest
from helpers import run_cli


@pytest.mark.parametrize("args, message", [
    (["--dataset", "demo-reviews.jsonl", "--streaming"], "give --max-steps"),
    (["--dataset", "demo-qa.csv", "--streaming", "--max-steps", "2"], "--streaming reads JSON Lines"),
])
def test_streaming_bad_input(demo_ws, args, message):
    r = run_cli("train", "--model", "tiny-demo", *args, ws=demo_ws)
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-1500:]

