"""Encoding: exactly which tokens are trained on, truncation counts, the cache, the preview."""

from __future__ import annotations

import copy

import pytest

from tunestudio.core.errors import UserError
from tunestudio.data.chat.template import ensure_chat_template
from tunestudio.data.encoding import encode as E
from tunestudio.data.formats.records import Record

CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "It is 4."},
]
EXPECTED_TRAINED = ["Hello! How can I help?<|im_end|>", "It is 4.<|im_end|>"]

# No {% generation %} markers, end of turn = eos: the encoder must not rely on markers.
ZEPHYR_LIKE = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + eos_token + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
# Renders the last turn differently from earlier ones (as reasoning templates do): rendering
# prefixes does not give prefixes of the whole text.
LAST_TURN_DIFFERS = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' }}"
    "{% if loop.last and m['role'] == 'assistant' %}{{ '(final) ' }}{% endif %}"
    "{{ m['content'] + eos_token + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def chat(messages=CONVERSATION, line=1):
    return Record("test.jsonl", line, messages=copy.deepcopy(messages))


def trained_runs(tok, example) -> list[str]:
    """The trained tokens, decoded run by run (a run: consecutive trained tokens)."""
    runs, cur = [], []
    for i, lab in zip(example["input_ids"], example["labels"]):
        if lab != E.IGNORE:
            assert lab == i  # a trained token's label is the token itself (the model shifts)
            cur.append(i)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return [tok.decode(r) for r in runs]


def test_only_assistant_turns_and_their_end_token_are_trained(tok):
    enc = E.encode([chat()], tok, max_length=512)
    ex = enc.examples[0]
    assert trained_runs(tok, ex) == EXPECTED_TRAINED
    # the ids are exactly what the template gives
    assert ex["input_ids"] == list(tok.apply_chat_template(CONVERSATION, tokenize=True)["input_ids"])
    assert enc.truncated == 0 and enc.dropped == 0
    assert enc.stats["trained_tokens"] == sum(lab != E.IGNORE for lab in ex["labels"])


def test_mask_matches_the_generation_markers(tok):
    """On a template with {% generation %} markers both ways of finding assistant tokens agree."""
    marked = tok.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True,
                                     return_assistant_tokens_mask=True)["assistant_masks"]
    ex = E.encode([chat()], tok, max_length=512).examples[0]
    assert [int(lab != E.IGNORE) for lab in ex["labels"]] == list(marked)


@pytest.mark.parametrize("template, expected", [
    (ZEPHYR_LIKE, EXPECTED_TRAINED),
    # what the template inserts between the header and the answer is prompt, not answer (issue 8:
    # Qwen3's empty think block); eval and chat ask with it, so the model never has to invent it
    # (the space after "(final)" rides on the answer's first token, as BPE pre-tokenizers attach it)
    (LAST_TURN_DIFFERS, [EXPECTED_TRAINED[0], " " + EXPECTED_TRAINED[1]]),
])
def test_templates_without_generation_markers(tok, template, expected):
    t = copy.deepcopy(tok)
    t.chat_template = template
    ex = E.encode([chat()], t, max_length=512).examples[0]
    assert trained_runs(t, ex) == expected


def test_plain_fallback_template(tok):
    t = copy.deepcopy(tok)
    t.chat_template = None
    with pytest.raises(UserError, match="no chat template"):
        E.encode([chat()], t, max_length=512)
    assert ensure_chat_template(t, "plain") == "plain"
    assert ensure_chat_template(t, "chatml") == "model"  # it has one now: left alone
    ex = E.encode([chat()], t, max_length=512).examples[0]
    assert trained_runs(t, ex) == EXPECTED_TRAINED
    t.chat_template = None
    with pytest.raises(UserError, match="unknown chat template"):
        ensure_chat_template(t, "nope")


def test_train_on_prompt_trains_everything(tok):
    ex = E.encode([chat()], tok, max_length=512, train_on_prompt=True).examples[0]
    assert ex["labels"] == ex["input_ids"]


def test_plain_text_trains_every_token_and_eos(tok):
    enc = E.encode([Record("t.txt", 1, text="Weather report for Oslo on Monday.")], tok, max_length=512)
    ex = enc.examples[0]
    assert ex["labels"] == ex["input_ids"]
    assert ex["input_ids"][-1] == tok.eos_token_id
    assert tok.decode(ex["input_ids"][:-1]) == "Weather report for Oslo on Monday."


def test_truncation_counts_cut_and_dropped_rows(tok):
    long_user = [{"role": "user", "content": "word " * 60}, {"role": "assistant", "content": "a fine answer"}]
    full = E.encode([chat(long_user)], tok, max_length=4096).examples[0]
    n = len(full["input_ids"])
    n_trained = sum(lab != E.IGNORE for lab in full["labels"])
    records = [chat(long_user, 1), chat(long_user, 2), chat([{"role": "user", "content": "hi"},
                                                             {"role": "assistant", "content": "yo"}], 3)]
    # cut inside the answer: truncated but kept; cut before it: truncated and dropped
    enc = E.encode(records, tok, max_length=n - 2)
    assert (enc.truncated, enc.dropped, len(enc.examples)) == (2, 0, 3)
    assert all(len(e["input_ids"]) <= n - 2 for e in enc.examples)
    enc = E.encode(records, tok, max_length=n - n_trained - 1)
    assert (enc.truncated, enc.dropped, len(enc.examples)) == (2, 2, 1)
    assert enc.dropped_rows == ["test.jsonl:1", "test.jsonl:2"]
    assert enc.stats["rows"] == 3 and enc.stats["examples"] == 1
    # a conversation with no assistant turn has nothing to learn from
    enc = E.encode([chat([{"role": "user", "content": "hello?"}])], tok, max_length=64)
    assert enc.dropped == 1 and enc.examples == []


def test_cache_hit_and_miss(tok, tmp_path):
    records = [chat(line=i) for i in range(1, 6)]
    first = E.encode(records, tok, 512, cache_dir=tmp_path)
    assert not first.from_cache
    assert len([p for p in tmp_path.iterdir() if (p / "meta.json").is_file()]) == 1   # one Arrow cache entry
    second = E.encode(records, tok, 512, cache_dir=tmp_path)
    assert second.from_cache
    assert second.examples == first.examples and second.stats == first.stats
    # any change in options, data or template is a different fingerprint
    assert not E.encode(records, tok, 256, cache_dir=tmp_path).from_cache
    assert not E.encode(records, tok, 512, train_on_prompt=True, cache_dir=tmp_path).from_cache
    changed = copy.deepcopy(records)
    changed[0].messages[-1]["content"] = "It is four."
    assert not E.encode(changed, tok, 512, cache_dir=tmp_path).from_cache
    t = copy.deepcopy(tok)
    t.chat_template = ZEPHYR_LIKE
    assert not E.encode(records, t, 512, cache_dir=tmp_path).from_cache
    assert len([p for p in tmp_path.iterdir() if (p / "meta.json").is_file()]) == 5


def test_preview_marks_trained_tokens(tok):
    pairs = E.preview(chat(), tok, max_length=512)
    assert "".join(p for p, _ in pairs) == tok.apply_chat_template(CONVERSATION, tokenize=False)
    assert "".join(p for p, t in pairs if t) == "".join(EXPECTED_TRAINED)
    text = E.render_preview(pairs)
    assert "[[Hello! How can I help?<|im_end|>]]" in text and "[[It is 4.<|im_end|>]]" in text
    assert "\x1b[32m" in E.render_preview(pairs, color=True)
    assert len(E.preview(chat(), tok, max_length=5)) == 5


def test_many_rows_in_one_call(tok):
    records = [chat(line=i) for i in range(2000)]
    enc = E.encode(records, tok, 512)
    assert enc.stats["examples"] == 2000
    assert enc.examples[1999] == enc.examples[0]
