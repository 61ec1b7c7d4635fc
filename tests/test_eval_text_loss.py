"""Loss and perplexity on plain text are scored the way training cut its token stream: blocks of
the run's --max-length over the documents each ended by eos, --stride context not scored again;
each scored token counts for the document it belongs to."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from eval_helpers import make_full_run
from helpers import run_cli

DOCS = [f"Note {i}: {'rain over the harbour and wind from the north ' * (1 + (i * 5) % 9)}end."
        for i in range(30)]


@pytest.fixture(scope="module")
def model_and_tok(demo_template):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = demo_template / "models" / "tiny-demo"
    return (AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval(),
            AutoTokenizer.from_pretrained(folder))


def _by_hand(model, tok, texts, length, stride):
    """Total nll and tokens, written out independently: tokens + eos per document, joined, block k
    starting at k * (length - stride), its first `stride` labels masked after the first block."""
    import torch

    stream = []
    for t in texts:
        stream += tok(t, add_special_tokens=True)["input_ids"] + [tok.eos_token_id]
    total, count, start, k = 0.0, 0, 0, 0
    while True:
        block = stream[start:start + length]
        if k and len(block) <= stride:
            break
        x = torch.tensor([block])
        labels = x.clone()
        if k:
            labels[0, :stride] = -100
        n = int((labels[0, 1:] != -100).sum())
        if n:
            with torch.no_grad():
                total += model(input_ids=x, labels=labels).loss.item() * n
            count += n
        if start + length >= len(stream):
            break
        start, k = start + length - stride, k + 1
    return total, count, len(stream)


@pytest.mark.parametrize("stride", [0, 8])
def test_stream_losses_match_training_blocks(model_and_tok, stride):
    from tunestudio.evaluate.streamloss import TextBlocking, stream_losses

    model, tok = model_and_tok
    texts = DOCS[:9]
    ticks: list[int] = []
    got = stream_losses(model, tok, texts, TextBlocking("stream", 32, stride), batch_size=3, progress=ticks.append)
    want_nll, want_n, stream_len = _by_hand(model, tok, texts, 32, stride)
    assert sum(n for _, n in got) == want_n
    assert sum(l for l, _ in got) == pytest.approx(want_nll, rel=1e-4)
    # every token but each block's unpredicted first one is scored, and counts for its own document
    blocks = 1 + max(0, math.ceil((stream_len - 32) / (32 - stride)))
    assert want_n == (stream_len - 1 if stride else stream_len - blocks)
    sizes = [len(tok(t)["input_ids"]) + 1 for t in texts]
    assert all(0 < n <= size for (_, n), size in zip(got, sizes))
    assert sum(ticks) == len(texts)


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
    want_nll, want_n, _ = _by_hand(model, tok, texts, 48, 8)
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
