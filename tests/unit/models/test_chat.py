"""Generation on the demo model: the chat template, batching, streaming, stop strings and sampling
(`tunestudio chat`: test_chat_e2e.py)."""

from __future__ import annotations

import pytest

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.models.generate import Sampling, generate, generate_timed, render, stream
from tunestudio.models.loading import load_model

PROMPTS = ["The kettle is great.", "My new lamp feels flimsy and I am sending it back to the shop.",
           [{"role": "system", "content": "Classify the review."}, {"role": "user", "content": "It is fine."}]]


@pytest.fixture(scope="module")
def demo(demo_template):
    model, tok, info = load_model(Workspace(demo_template), model="tiny-demo")
    return model, tok


def test_prompt_uses_the_chat_template(demo):
    _, tok = demo
    text = render(tok, "Hi", system="Be brief.")
    assert text == tok.apply_chat_template([{"role": "system", "content": "Be brief."},
                                            {"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False)


def test_batched_left_padding_matches_one_by_one(demo):
    model, tok = demo
    sampling = Sampling(max_new_tokens=12)
    gen = generate_timed(model, tok, PROMPTS, sampling, batch_size=3)
    alone = [generate(model, tok, [p], sampling)[0] for p in PROMPTS]
    assert gen.texts == alone
    assert all(gen.texts) and gen.tokens > 0 and gen.seconds > 0
    assert len(gen.stopped) == len(PROMPTS)
    assert tok.padding_side == "right" or tok.padding_side == "left"  # restored, whatever it was


def test_stream_grows_to_the_greedy_answer(demo):
    model, tok = demo
    sampling = Sampling(max_new_tokens=10)
    pieces = list(stream(model, tok, PROMPTS[0], sampling))
    assert len(pieces) > 1
    assert all(b.startswith(a.rstrip()) for a, b in zip(pieces, pieces[1:]))
    assert pieces[-1].strip() == generate(model, tok, [PROMPTS[0]], sampling)[0]


def test_stop_strings_cut_the_answer(demo):
    model, tok = demo
    full = generate(model, tok, [PROMPTS[1]], Sampling(max_new_tokens=16))[0]
    assert len(full) > 4
    stop = full[2:4]  # something the answer is known to contain
    cut = generate(model, tok, [PROMPTS[1]], Sampling(max_new_tokens=16, stop=[stop]))[0]
    assert cut == full[:full.index(stop)].strip()
    streamed = list(stream(model, tok, PROMPTS[1], Sampling(max_new_tokens=16, stop=[stop])))[-1]
    assert stop not in streamed and streamed.strip() == cut


def test_sampling_is_seeded_and_validated(demo):
    model, tok = demo
    s = dict(max_new_tokens=10, temperature=1.5, top_p=0.9, top_k=50, repetition_penalty=1.1, seed=7)
    a = generate(model, tok, PROMPTS[:2], **s)
    assert a == generate(model, tok, PROMPTS[:2], **s)
    assert a != generate(model, tok, PROMPTS[:2], **{**s, "seed": 8})
    with pytest.raises(UserError, match="top-p"):
        Sampling(top_p=0).validate()
    with pytest.raises(UserError, match="temperature"):
        Sampling(temperature=-1).validate()


