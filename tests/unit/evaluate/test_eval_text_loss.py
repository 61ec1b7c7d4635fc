"""Loss and perplexity on plain text are scored the way training cut its token stream: blocks of
the run's --max-length over the documents each ended by eos, --stride context not scored again;
each scored token counts for the document it belongs to (the command: test_eval_text_loss_e2e.py)."""

from __future__ import annotations

import math

import pytest
from eval_helpers import loss_by_hand

DOCS = [f"Note {i}: {'rain over the harbour and wind from the north ' * (1 + (i * 5) % 9)}end."
        for i in range(30)]


@pytest.mark.parametrize("stride", [0, 8])
def test_stream_losses_match_training_blocks(model_and_tok, stride):
    from tunestudio.evaluate.streamloss import TextBlocking, stream_losses

    model, tok = model_and_tok
    texts = DOCS[:9]
    ticks: list[int] = []
    got = stream_losses(model, tok, texts, TextBlocking("stream", 32, stride), batch_size=3, progress=ticks.append)
    want_nll, want_n, stream_len = loss_by_hand(model, tok, texts, 32, stride)
    assert sum(n for _, n in got) == want_n
    assert sum(l for l, _ in got) == pytest.approx(want_nll, rel=1e-4)
    # every token but each block's unpredicted first one is scored, and counts for its own document
    blocks = 1 + max(0, math.ceil((stream_len - 32) / (32 - stride)))
    assert want_n == (stream_len - 1 if stride else stream_len - blocks)
    sizes = [len(tok(t)["input_ids"]) + 1 for t in texts]
    assert all(0 < n <= size for (_, n), size in zip(got, sizes))
    assert sum(ticks) == len(texts)


