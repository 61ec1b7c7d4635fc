"""Model families through the CLI, each model the demo model wearing another family's template and
tokens (tests/families.py): reasoning previewed (kept or dropped, as the template renders it), a row
the template refuses listed in every split by `data check` and `train` (skipped when asked to be),
then fine-tuned, chatted with, evaluated and exported: it stops where its template ends a turn and
is asked with exactly the prompt training showed it (in-process: test_model_families.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from families import ENDOFTEXT, MISTRAL, QWEN3, QWEN25, R1_DISTILL, family_model
from helpers import run_cli

DEMO_PRESET = ["--method", "full", "--lr", "1e-3", "--batch-size", "16", "--epochs", "1"]

LABELS = {"positive", "negative", "neutral"}


def make(ws, name, template, **kw):
    return family_model(ws / "models" / "tiny-demo", ws / "models" / name, template, **kw)


def tokenizer(folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


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
