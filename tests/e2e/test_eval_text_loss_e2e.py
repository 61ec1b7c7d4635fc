"""`tunestudio eval` on a run trained on plain text scores it with the run's own blocks (--max-length,
--stride), checked against the loss written out by hand (eval_helpers.loss_by_hand); the console's
worst examples show each row's loss and the start of its text (the scorer in-process:
test_eval_text_loss.py)."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from eval_helpers import loss_by_hand, make_full_run
from helpers import run_cli

DOCS = [f"Note {i}: {'rain over the harbour and wind from the north ' * (1 + (i * 5) % 9)}end."
        for i in range(30)]


def test_eval_run_scores_plain_text_with_the_runs_blocks(demo_ws, model_and_tok):
    model, tok = model_and_tok
    (demo_ws / "training" / "datasets" / "notes.txt").write_text("\n\n".join(DOCS) + "\n", encoding="utf-8")
    run = make_full_run(demo_ws, "text-run", dataset="notes.txt")
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "max_length": 48, "stride": 8}))
    r = run_cli("eval", "--run", "text-run", "--json", "--no-save", ws=demo_ws, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    split = json.loads((run / "split.json").read_text())
    test_lines = sorted(int(x.rsplit(":", 1)[1]) for x in split["rows"]["test"])
    text = (demo_ws / "training" / "datasets" / "notes.txt").read_text(encoding="utf-8")
    starts = {1 + text[:text.index(d)].count("\n"): d for d in DOCS}
    texts = [starts[line] for line in test_lines]
    want_nll, want_n, _ = loss_by_hand(model, tok, texts, 48, 8)
    assert out["n"] == len(texts) == 3
    assert out["metrics"]["loss"] == pytest.approx(want_nll / want_n, rel=1e-4)
    assert out["metrics"]["perplexity"] == pytest.approx(math.exp(want_nll / want_n), rel=1e-4)
    # the console's worst examples: each row's loss, tokens and the start of its text, not the
    # whole document as "expected" beside an empty prediction
    r = run_cli("eval", "--run", "text-run", "--no-save", ws=demo_ws, timeout=300)
    assert r.returncode == 0, r.stderr
    worst = r.stdout.split("worst examples by loss:\n")[1].splitlines()
    assert len(worst) == 3 and all(" tokens, text 'Note " in line and "expected" not in line for line in worst)
    assert all(len(line) < 200 for line in worst)

