"""Real model families' conventions (issue 8): a model stops where its template ends a turn, is asked
with exactly the prompt training showed it, a template that refuses a row is a listed error, and
content in other tools' shapes (parts, reasoning) is read, masked and previewed.

Each model is the demo model wearing another family's template and tokens (tests/families.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from families import ENDOFTEXT, MISTRAL, QWEN3, QWEN25, R1_DISTILL, family_model
from helpers import run_cli

from tunestudio.data.chat import turns
from tunestudio.data.encoding import encode as E
from tunestudio.data.formats.load import load_file
from tunestudio.data.formats.records import Record

DEMO_PRESET = ["--method", "full", "--lr", "1e-3", "--batch-size", "16", "--epochs", "1"]
LABELS = {"positive", "negative", "neutral"}


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


# ---- templates that refuse rows ------------------------------------------------------------

def test_template_refusals_are_row_errors_in_check_and_train(demo_ws):
    make(demo_ws, "mistral", MISTRAL, eos=ENDOFTEXT)
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
            for i in range(40)]
    rows[2] = {"messages": [{"role": "user", "content": "one"}, {"role": "user", "content": "two"},
                            {"role": "assistant", "content": "x"}]}
    rows[5] = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                            {"role": "assistant", "content": "a"}]}
    write_jsonl(demo_ws / "training" / "datasets" / "alt.jsonl", rows)

    r = run_cli("data", "check", "alt.jsonl", "--model", "mistral", ws=demo_ws)
    assert r.returncode == 1 and "Traceback" not in r.stderr + r.stdout
    assert ("alt.jsonl:3: the chat template refused this row: Conversation roles must alternate "
            "user/assistant/user/assistant/...") in r.stdout
    assert "alt.jsonl:6: the chat template refused this row: System role not supported" in r.stdout

    r = run_cli("train", "--model", "mistral", "--dataset", "alt.jsonl", "--method", "full", "--max-steps", "1",
                "--val-split", "0", "--test-split", "0", ws=demo_ws)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "alt.jsonl:3: the chat template refused this row" in r.stderr and "--skip-bad-rows" in r.stderr
    assert not (demo_ws / "training" / "runs").exists() or not any((demo_ws / "training" / "runs").iterdir())

    r = run_cli("train", "--model", "mistral", "--dataset", "alt.jsonl", "--method", "full", "--max-steps", "1",
                "--val-split", "0", "--test-split", "0", "--skip-bad-rows", "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    events = (demo_ws / "training" / "runs" / out["run_id"] / "events.jsonl").read_text()
    assert "skipped alt.jsonl:3: the chat template refused this row" in events
    assert "skipped alt.jsonl:6" in events


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


def test_reasoning_is_previewed_and_trained(demo_ws):
    make(demo_ws, "qwen3", QWEN3)
    write_jsonl(demo_ws / "training" / "datasets" / "think.jsonl", [
        {"messages": [{"role": "user", "content": "2+2?"},
                      {"role": "assistant", "content": "4", "reasoning_content": "Two and two."}]}] * 3)
    r = run_cli("data", "preview", "think.jsonl", "--model", "qwen3", ws=demo_ws)
    assert r.returncode == 0, r.stderr
    assert "[[Two and two.\n</think>\n\n4<|im_end|>]]" in r.stdout.replace("[[\n", "[[")
    assert "reasoning of the answer" in r.stdout and "'Two and two.'" in r.stdout
    # the template's generation prompt differs: both are shown, and which one is used
    assert "--generation-prompt training, used by default" in r.stdout and "assistant\\n<think>\\n" in r.stdout
    r = run_cli("data", "preview", "think.jsonl", "--model", "qwen3", "--reasoning", "drop", ws=demo_ws)
    assert "[[4<|im_end|>]]" in r.stdout and "[[Two and two" not in r.stdout
    assert "reasoning of the answer (dropped" in r.stdout
    make(demo_ws, "r1", R1_DISTILL, eos=ENDOFTEXT)
    r = run_cli("data", "preview", "think.jsonl", "--model", "r1", ws=demo_ws)
    assert "not rendered by this model's chat template, so not trained" in r.stdout


# ---- end to end: fine-tune, chat, eval, export ---------------------------------------------

def _train(ws, model, name, *extra):
    r = run_cli("train", "--model", model, "--dataset", "demo-reviews.jsonl", *DEMO_PRESET, *extra, "--name", name,
                "--json", ws=ws)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


@pytest.mark.slow
def test_qwen25_base_like_model_answers_one_label_and_stops_everywhere(demo_ws, tmp_path):
    """eos <|endoftext|>, turns closed by <|im_end|>, no pad token, tied embeddings."""
    make(demo_ws, "qwen25-base", QWEN25, eos=ENDOFTEXT, pad=False, tie=True)
    run = _train(demo_ws, "qwen25-base", "q25")
    final = demo_ws / "training" / "runs" / run["run_id"] / "final"
    tok = tokenizer(final)
    im_end, eot = tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids(ENDOFTEXT)
    assert set(json.loads((final / "generation_config.json").read_text())["eos_token_id"]) == {im_end, eot}

    r = run_cli("chat", "--run", "q25", "--prompt", "We use the camera every day and it is flimsy.", "--json",
                ws=demo_ws)
    assert r.returncode == 0, r.stderr[-2000:]
    answer = json.loads(r.stdout)
    assert answer["response"] in LABELS and answer["stopped"], answer   # one label, not labellabellabel...

    r = run_cli("eval", "--run", "q25", "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["metrics"]["exact_match"] >= 0.9 and out["metrics"]["stopped"] >= 0.95

    # the exported model stops in plain transformers, with nothing of ours loaded
    r = run_cli("export", "q25", "--output", str(tmp_path / "exported"), ws=demo_ws)
    assert r.returncode == 0, r.stderr
    exported = set(json.loads((tmp_path / "exported" / "generation_config.json").read_text())["eos_token_id"])
    assert exported == {im_end, eot}
    script = (
        "import sys; from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "d = sys.argv[1]; tok = AutoTokenizer.from_pretrained(d); m = AutoModelForCausalLM.from_pretrained(d)\n"
        "msgs = [{'role': 'user', 'content': 'The battery died after a week, very disappointing.'}]\n"
        "ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors='pt', return_dict=True)\n"
        "out = m.generate(**ids, max_new_tokens=40)[0][ids['input_ids'].shape[1]:]\n"
        "print(repr(tok.decode(out, skip_special_tokens=True)), len(out))\n")
    p = subprocess.run([sys.executable, "-c", script, str(tmp_path / "exported")], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    text, n = p.stdout.strip().rsplit(" ", 1)
    assert eval(text) in LABELS and int(n) < 40, p.stdout   # it stopped on <|im_end|>, well before the limit


def test_adapter_checkpoints_final_and_exports_carry_the_turn_end(demo_ws, tmp_path):
    make(demo_ws, "qwen25-base", QWEN25, eos=ENDOFTEXT, pad=False)
    r = run_cli("train", "--model", "qwen25-base", "--dataset", "demo-reviews.jsonl", "--method", "lora",
                "--max-steps", "2", "--save-steps", "1", "--name", "ad", "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr[-2000:]
    folder = demo_ws / "training" / "runs" / json.loads(r.stdout)["run_id"]
    tok = tokenizer(folder / "final")
    want = {tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids(ENDOFTEXT)}
    saved = [folder / "final", *sorted((folder / "checkpoints").glob("checkpoint-*"))]
    assert len(saved) >= 2
    for where in saved:
        assert set(json.loads((where / "generation_config.json").read_text())["eos_token_id"]) == want, where
    for flags, name in (([], "adapter"), (["--merge"], "merged")):
        r = run_cli("export", "ad", "--output", str(tmp_path / name), *flags, ws=demo_ws)
        assert r.returncode == 0, r.stderr
        assert set(json.loads((tmp_path / name / "generation_config.json").read_text())["eos_token_id"]) == want


@pytest.mark.slow
@pytest.mark.parametrize("family, template, eos", [("qwen3", QWEN3, None), ("r1", R1_DISTILL, ENDOFTEXT)])
def test_reasoning_templates_reach_the_demo_exact_match(demo_ws, family, template, eos):
    """The demo model reaches held-out exact match >= 0.95 on demo-reviews with the demo preset. Two
    epochs: these templates put more fixed tokens (an empty think block) before each answer, and one
    epoch leaves the Qwen3-style run short of the third label (0.59: every "negative" answered
    "neutral", measured after the demo tokenizer was retrained with the new tool data)."""
    make(demo_ws, family, template, eos=eos)
    _train(demo_ws, family, family, "--epochs", "2")
    r = run_cli("eval", "--run", family, "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["metrics"]["exact_match"] >= 0.95, out["rows"][:3] if "rows" in out else out
    assert out["metrics"]["stopped"] >= 0.95
    rows = [json.loads(l) for l in open(out["files"]["examples_jsonl"])]
    assert not any(row["prediction"].startswith("<think>") for row in rows)


def test_refusals_in_every_split_are_listed_and_all_refused_is_said(demo_ws):
    make(demo_ws, "mistral", MISTRAL, eos=ENDOFTEXT)
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
            for i in range(60)]
    bad = [3, 11, 20, 33, 47, 58]   # 1-based lines; wherever the seeded split puts them
    for line in bad:
        rows[line - 1] = {"messages": [{"role": "system", "content": "s"}, *rows[line - 1]["messages"]]}
    write_jsonl(demo_ws / "training" / "datasets" / "some.jsonl", rows)
    r = run_cli("train", "--model", "mistral", "--dataset", "some.jsonl", "--method", "full", "--max-steps", "1",
                ws=demo_ws)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert all(f"some.jsonl:{line}: the chat template refused this row" in r.stderr for line in bad), r.stderr

    r = run_cli("data", "check", "some.jsonl", "--model", "mistral", ws=demo_ws)
    assert "format messages, 54 usable rows" in r.stdout and "errors: 6" in r.stdout

    write_jsonl(demo_ws / "training" / "datasets" / "allbad.jsonl", [rows[line - 1] for line in bad] * 3)
    r = run_cli("train", "--model", "mistral", "--dataset", "allbad.jsonl", "--method", "full", "--max-steps", "1",
                "--skip-bad-rows", ws=demo_ws)
    assert r.returncode == 1 and "the chat template refused all" in r.stderr and "System role not supported" in r.stderr


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
