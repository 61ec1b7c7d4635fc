"""`tunestudio train --streaming` end to end: the file is trained on as it is read."""

from __future__ import annotations

import json
import shutil

from helpers import run_cli

from tunestudio.core.workspace import Workspace


def test_train_streaming_end_to_end(demo_ws):
    ws = Workspace(demo_ws)
    src = ws.datasets_dir / "demo-reviews.jsonl"
    path = ws.datasets_dir / "stream.jsonl"
    shutil.copy(src, path)
    with open(path, "a") as f:
        f.write("not json\n")
    r = run_cli("train", "--model", "tiny-demo", "--dataset", "stream.jsonl", "--streaming", "--max-steps", "3",
                "--eval-rows", "20", "--batch-size", "4", "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["status"] == "completed"
    m = out["metrics"]
    assert m["steps"] == 3 and m["val_examples"] == 20 and m["train_examples"] is None
    assert m["eval_loss"] is not None
    lines = len(src.read_text().splitlines())
    assert f"skipped stream.jsonl:{lines + 1}: invalid JSON" in r.stderr
    split = json.loads((ws.runs_dir / out["run_id"] / "split.json").read_text())
    assert split["streaming"] and split["val_rows"] == 20 and split["files"]["all"]["sha256"]

