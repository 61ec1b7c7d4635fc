"""Plain text as a token stream through the CLI: `data stats` counts documents, tokens and blocks,
and `train` on one article per line streams it (the token stream in-process: test_data_stream.py)."""

from __future__ import annotations

import json

import numpy as np
from data_helpers import stream_documents
from helpers import run_cli

from tunestudio.data.encoding import stream as S

MODEL = "tiny-demo"


def test_data_stats_counts_documents_tokens_and_blocks_for_a_text_column(demo_ws, tok):
    docs = stream_documents(30)
    path = demo_ws / "training" / "datasets" / "web.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in docs), encoding="utf-8")
    p = run_cli("data", "stats", "web.jsonl", "--model", MODEL, "--max-length", "64", "--json", ws=demo_ws, timeout=300)
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    tokens = sum(len(x) for x in S.document_ids(tok, docs))
    assert s["stream"]["documents"] == 30 and s["stream"]["tokens"] == tokens
    assert s["stream"]["blocks"] == -(-tokens // 64)
    assert not any("truncated" in w for w in s["warnings"])
    p = run_cli("data", "stats", "web.jsonl", "--model", MODEL, "--max-length", "64", ws=demo_ws, timeout=300)
    assert f"text stream: 30 documents, {tokens} tokens" in p.stdout
    p = run_cli("data", "stats", "web.jsonl", "--model", MODEL, "--max-length", "64", "--text-mode", "truncate",
                "--json", ws=demo_ws, timeout=300)
    s = json.loads(p.stdout)
    assert "stream" not in s and any("truncated" in w for w in s["warnings"])


def test_training_on_a_text_file_streams_it(demo_ws):
    docs = stream_documents(60)
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
