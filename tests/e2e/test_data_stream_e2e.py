"""Training on a plain-text file streams it: `tunestudio train` on one article per line (the token
stream in-process: test_data_stream.py)."""

from __future__ import annotations

import json

import numpy as np
from helpers import run_cli

MODEL = "tiny-demo"


def _documents(n: int) -> list[str]:
    # lengths from a few tokens to several blocks, so blocks start mid-document and span documents
    return [f"Document {i} about {'the weather in Lisbon and Oslo ' * (1 + (i * 7) % 23)}ends here."
            for i in range(n)]


def test_training_on_a_text_file_streams_it(demo_ws):
    docs = _documents(60)
    (demo_ws / "training" / "datasets" / "long.txt").write_text("\n".join(docs) + "\n", encoding="utf-8")
    p = run_cli("train", "--model", MODEL, "--dataset", "long.txt", "--method", "full", "--max-steps", "2",
                "--batch-size", "4", "--max-length", "64", "--val-split", "0.1", "--test-split", "0",
                "--json", ws=demo_ws, timeout=600)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    from tunestudio.core import registry

    conn = registry.connect(demo_ws / "tunestudio.db")
    try:
        split = json.loads(conn.execute("SELECT split FROM runs WHERE id = ?", (out["run_id"],)).fetchone()[0])
    finally:
        conn.close()
    train, val = split["encoded"]["train"], split["encoded"]["val"]
    assert train["text_mode"] == "stream" and train["documents"] == 54 and val["documents"] == 6
    assert train["truncated"] == 0 and train["blocks"] == -(-train["tokens"] // 64)
    assert np.isfinite(out["metrics"]["eval_loss"])

