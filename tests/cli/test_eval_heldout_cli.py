"""`tunestudio eval --run R --dataset FILE`: a held-out file is the test set, scored whole, asked as
the run asks (its system prompt), with the metrics that fit its answers."""

from __future__ import annotations

import json
import re

from eval_helpers import make_full_run
from helpers import run_cli

REVIEWS = [("The kettle is great, I love it.", "positive"), ("My lamp broke on day one.", "negative"),
           ("The chair is fine, nothing special.", "neutral"), ("Best headphones I have owned.", "positive"),
           ("The tent leaks and smells.", "negative"), ("It is an okay mouse.", "neutral")] * 3   # 18 rows
SYSTEM = "Classify the review as positive, negative or neutral."   # what every demo-reviews row starts with


def _write(path, system: bool) -> None:
    lines = []
    for i, (text, label) in enumerate(REVIEWS):
        msgs = ([{"role": "system", "content": SYSTEM}] if system else []) + [
            {"role": "user", "content": text}, {"role": "assistant", "content": label}]
        lines.append(json.dumps({"messages": msgs}))
        if i == 8:
            lines.append("")   # a blank line is no row
    path.write_text("\n".join(lines) + "\n")


def test_a_held_out_file_is_scored_whole_as_the_run_asks(demo_ws):
    make_full_run(demo_ws, "full-run")
    datasets = demo_ws / "training" / "datasets"
    _write(datasets / "heldout.jsonl", system=False)
    _write(datasets / "heldout-system.jsonl", system=True)
    args = ("eval", "--run", "full-run", "--max-new-tokens", "3", "--no-save", "--json")
    r = run_cli(*args, "--dataset", "heldout.jsonl", ws=demo_ws)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n"] == len(REVIEWS) and out["split"] == "all"   # every usable row, not its 10% "test" split
    # one-word labels: exact match and F1 (no BLEU or ROUGE-2 that read 0 for right answers), and the loss
    assert set(out["metrics"]) == {"exact_match", "f1", "loss", "perplexity", "stopped"}
    assert out["primary_metric"] == "exact_match" and out["metric_notes"] == []

    # the rows without a system message are asked with the one the run trained with: same scores as the
    # same rows that carry it
    with_system = json.loads(run_cli(*args, "--dataset", "heldout-system.jsonl", ws=demo_ws).stdout)
    assert with_system["metrics"] == out["metrics"]

    # a part of it only when asked; BLEU asked by name says why it reads 0
    r = run_cli(*args[:-1], "--dataset", "heldout.jsonl", "--split", "test", "--metrics", "exact_match,bleu",
                ws=demo_ws)
    assert r.returncode == 0, r.stderr
    n = int(re.search(r"heldout.jsonl \(test, (\d+) examples\)", r.stdout).group(1))
    assert 0 < n < len(REVIEWS) // 2   # its 10% test split (equal rows kept together)
    assert "note: bleu: BLEU counts 4-word sequences: answers of 1-3 words score 0 even when right" in r.stdout


def test_worst_examples_skip_right_answers_and_say_when_all_are(workspace):
    rows = [{"prediction": "positive", "reference": "positive"}, {"prediction": "neutral", "reference": "negative"},
            {"prediction": "neutral", "reference": "neutral"}]
    (workspace / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = run_cli("eval", "--predictions", "p.jsonl", "--no-save", ws=workspace)
    assert r.returncode == 0, r.stderr
    listed = r.stdout.split("worst examples by exact_match:\n")[1].splitlines()
    assert listed == ["  p.jsonl:2: expected 'negative', got 'neutral'"]   # the right rows are not "worst"
    (workspace / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[::2]))
    r = run_cli("eval", "--predictions", "p.jsonl", "--no-save", ws=workspace)
    assert "all 2 examples are exactly right (exact_match)" in r.stdout and "worst examples" not in r.stdout
