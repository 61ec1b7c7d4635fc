"""Real model families' conventions (issue 8), in-process: where a template ends a turn, the prompt
training showed, the span it trains, and content in other tools' shapes (parts, reasoning) read and
masked (through the CLI and fine-tuned end to end: test_model_families_e2e.py).

Each model is the demo model wearing another family's template and tokens (tests/families.py)."""

from __future__ import annotations

import json

from families import ENDOFTEXT, QWEN3, QWEN25, R1_DISTILL, family_model

from tunestudio.data.chat import turns
from tunestudio.data.encoding import encode as E
from tunestudio.data.formats.load import load_file
from tunestudio.data.formats.records import Record


def make(ws, name, template, **kw):
    return family_model(ws / "models" / "tiny-demo", ws / "models" / name, template, **kw)


def tokenizer(folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def trained_text(tok, ex) -> list[str]:
    runs, cur = [], []
    for i, lab in zip(ex["input_ids"], ex["labels"]):
        if lab != E.IGNORE:
            cur.append(i)
        elif cur:
            runs.append(cur)
            cur = []
    return [tok.decode(r) for r in runs + ([cur] if cur else [])]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


# ---- the probe: what the template does around an answer ----------------------------------------

def test_turn_end_differs_from_eos_and_prompts_are_read_from_the_template(demo_ws):
    qwen25 = tokenizer(make(demo_ws, "qwen25-base", QWEN25, eos=ENDOFTEXT, pad=False))
    info = turns.probe(qwen25)
    assert info.turn_end == "<|im_end|>" and qwen25.eos_token == ENDOFTEXT
    im_end = qwen25.convert_tokens_to_ids("<|im_end|>")
    assert turns.stop_token_ids(qwen25) == [im_end, qwen25.convert_tokens_to_ids(ENDOFTEXT)]
    assert not info.prompts_differ

    qwen3 = tokenizer(make(demo_ws, "qwen3", QWEN3))
    info = turns.probe(qwen3)
    assert info.training_prompt == "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    assert info.template_prompt == "<|im_start|>assistant\n" and info.prompts_differ
    assert "differs" in turns.prompt_difference(qwen3)
    ask = [{"role": "user", "content": "Is it good?"}]
    assert turns.training_prompt(qwen3, ask).endswith("assistant\n<think>\n\n</think>\n\n")
    assert turns.training_prompt(qwen3, ask, reasoning=True).endswith("assistant\n<think>\n")
    assert turns.generation_prompt(qwen3, ask, "template").endswith("assistant\n")

    r1 = tokenizer(make(demo_ws, "r1", R1_DISTILL, eos=ENDOFTEXT))
    assert turns.probe(r1).turn_end == ENDOFTEXT
    # no <think>: training never showed one (the space before the answer rides on its first token)
    assert turns.training_prompt(r1, ask).endswith("Assistant:")
    assert turns.generation_prompt(r1, ask, "template").endswith("Assistant: <think>\n")


def test_trained_span_is_the_answer_not_what_the_template_inserts(demo_ws):
    tok = tokenizer(make(demo_ws, "qwen3", QWEN3))
    conv = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "It is 4."}]
    ex = E.encode([Record("t.jsonl", 1, messages=conv)], tok, 512).examples[0]
    assert [t.strip() for t in trained_text(tok, ex)] == ["Hello.<|im_end|>", "It is 4.<|im_end|>"]
    # with reasoning, the reasoning and the block's close are trained too: the model learns to think
    conv[-1]["reasoning"] = "Two and two make four."
    ex = E.encode([Record("t.jsonl", 1, messages=conv)], tok, 512).examples[0]
    assert trained_text(tok, ex)[-1].strip() == "Two and two make four.\n</think>\n\nIt is 4.<|im_end|>"
    ex = E.encode([Record("t.jsonl", 1, messages=conv)], tok, 512, reasoning="drop").examples[0]
    assert trained_text(tok, ex)[-1].strip() == "It is 4.<|im_end|>"


def test_reference_loss_scores_the_trained_span(demo_ws):
    from tunestudio.evaluate.metrics import encode_for_loss

    tok = tokenizer(make(demo_ws, "qwen3", QWEN3))
    ids, n_ctx = encode_for_loss(tok, [{"role": "user", "content": "Hi"}], "Hello.", 512)
    assert tok.decode(ids[n_ctx:]).strip() == "Hello.<|im_end|>"
    assert tok.decode(ids[:n_ctx]).endswith("<think>\n\n</think>\n\n")


# ---- content shapes and reasoning ---------------------------------------------------------

def test_content_parts_media_and_reasoning_are_read(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Describe "}, {"type": "text", "value": "this."},
                                                   {"type": "image", "image": "cat.png"}]},
                      {"role": "assistant", "content": [{"type": "reasoning", "text": "It is a cat."},
                                                        {"type": "text", "text": "A cat."}]}]},
        {"messages": [{"role": "user", "content": "2+2?"},
                      {"role": "assistant", "content": "4", "reasoning_content": "Add them."}]},
        {"messages": [{"role": "user", "content": "3+3?"},
                      {"role": "assistant", "content": "<think>\nAdd.\n</think>\n\n6"}]},
        {"messages": [{"role": "user", "content": "Look"}, {"role": "assistant", "content": "Ok"}],
         "images": ["a.png"]},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
                      {"role": "assistant", "content": "?"}]},
    ]
    path = tmp_path / "mm.jsonl"
    write_jsonl(path, rows)
    res = load_file(path)
    (error,) = res.errors
    assert error.line == 5 and "only image content" in error.message and "trains on text" in error.message
    (warning,) = [w for w in res.warnings if "text-only" in w.message]   # once for the file, with a count
    assert "2 rows reference images, which are ignored" in warning.message and "lines 1, 4" in warning.message
    first, second, third, fourth = res.records
    assert first.messages[0]["content"] == "Describe this."
    assert first.messages[1] == {"role": "assistant", "content": "A cat.", "reasoning": "It is a cat."}
    assert second.messages[1]["reasoning"] == "Add them." and second.reference() == "4"
    assert third.messages[1] == {"role": "assistant", "content": "6", "reasoning": "Add."}
    assert "images" not in fourth.meta


def test_a_template_without_turn_end_gets_eos_trained_after_answers(demo_ws):
    plain = ("{% for m in messages %}{% if m['role'] == 'user' %}### User:\n{{ m['content'] }}\n\n"
             "{% else %}### Assistant:\n{{ m['content'] }}\n\n{% endif %}{% endfor %}"
             "{% if add_generation_prompt %}### Assistant:\n{% endif %}")
    tok = tokenizer(make(demo_ws, "plain", plain, eos=ENDOFTEXT))
    assert turns.probe(tok).turn_end is None
    conv = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Bye."}]
    ex = E.encode([Record("t.jsonl", 1, messages=conv)], tok, 512).examples[0]
    assert [t.strip() for t in trained_text(tok, ex)] == [f"Hello.{ENDOFTEXT}", f"Bye.{ENDOFTEXT}"]
    assert tok.eos_token_id in turns.stop_token_ids(tok)
