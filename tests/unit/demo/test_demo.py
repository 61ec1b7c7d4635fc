"""`tunestudio demo`: a loadable tiny model, one dataset per format, idempotent, deterministic
(the command's --json: test_demo_cli.py)."""

from __future__ import annotations

import json

import pytest
from workspaces import DEMO_DATASETS, DEMO_PREFERENCE, DEMO_PROMPT_SETS

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.demo import datasets, make_demo
from tunestudio.demo.model import REQUIRED_FILES


def test_model_loads_with_plain_transformers(demo_template):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = demo_template / "models" / "tiny-demo"
    assert all((folder / f).is_file() for f in REQUIRED_FILES)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.model_type == "llama" and model.config.hidden_size == 256
    assert 3e6 < sum(p.numel() for p in model.parameters()) < 6e6
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|startoftext|>", "<|im_end|>", "<|pad|>")
    assert "{% generation %}" in tok.chat_template
    assert tok.eos_token_id in model.generation_config.eos_token_id
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] <= ids["input_ids"].shape[1] + 3


def test_tokenizer_covers_the_demo_tasks(demo_template):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(demo_template / "models" / "tiny-demo")
    for word in ["positive", "negative", "neutral", "billing", "shipping", "technical", "account",
                 " March", " September", " PM", " AM"]:
        assert len(tok(word, add_special_tokens=False)["input_ids"]) == 1, word
    text = (demo_template / "training" / "datasets" / "demo-reviews.jsonl").read_text()[:20000]
    assert len(text) / len(tok(text)["input_ids"]) > 3  # chars per token: words, not bytes


def test_every_demo_dataset_loads_cleanly(demo_template):
    from tunestudio.data.formats.load import load_file
    from tunestudio.rewards.data import load_prompts

    folder = demo_template / "training" / "datasets"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*DEMO_DATASETS, *DEMO_PROMPT_SETS, *DEMO_PREFERENCE])
    for name, rows in DEMO_PROMPT_SETS.items():  # prompts for GRPO: read by the rewards package
        assert len(load_prompts(folder / name)) == rows
    from tunestudio.data.preference import load_pref_file

    for name, (kind, rows) in DEMO_PREFERENCE.items():
        ld = load_pref_file(folder / name)
        assert (ld.kind, len(ld.records), ld.errors) == (kind, rows, []), name
    for name, (fmt, rows) in DEMO_DATASETS.items():
        result = load_file(folder / name)
        assert (result.format, len(result.records), result.errors) == (fmt, rows, []), name
    first = load_file(folder / "demo-dates.json").records[0]
    assert first.messages[-1]["role"] == "assistant"


def test_tool_rows_are_short_and_held_out_requests_are_new(demo_template):
    """The tool list is in every prompt: with the demo template's compact list the rows stay short
    (at ~220 tokens the demo model did not learn the task); every final request is distinct, so a
    held-out row is a new combination, and each city comes often enough to be learnt."""
    from collections import Counter

    from transformers import AutoTokenizer

    from tunestudio.data.formats.load import load_file

    tok = AutoTokenizer.from_pretrained(demo_template / "models" / "tiny-demo")
    records = load_file(demo_template / "training" / "datasets" / "demo-tools.jsonl").records
    tokens = sorted(len(tok(tok.apply_chat_template(r.messages, tools=r.tools, tokenize=False),
                            add_special_tokens=False)["input_ids"]) for r in records[:200])
    assert tokens[len(tokens) // 2] <= 140   # median; ~220 with the JSON schemas
    requests = [r.prompt()[-1]["content"] for r in records]
    assert len(set(requests)) == len(requests)
    cities = Counter(r.reference_calls()[0]["function"]["arguments"]["city"] for r in records
                     if r.reference_calls()[0]["function"]["name"] == "get_weather")
    assert min(cities.values()) >= 12, cities
    # every wording comes with at least two values (two cities; A to B and B to A), so the words
    # around a value never tell it: the model has to copy it from the request
    values_by_wording: dict[str, set] = {}
    for r in records:
        args = r.reference_calls()[0]["function"]["arguments"]
        wording = r.prompt()[-1]["content"]
        for key in ("city", "from", "to"):
            if key in args:
                wording = wording.replace(args[key], "{" + key + "}")
        values_by_wording.setdefault(wording, set()).add(json.dumps(args, sort_keys=True))
    assert min(len(v) for v in values_by_wording.values()) >= 2

def test_demo_is_idempotent_and_keeps_user_edits(demo_ws):
    ws = Workspace(demo_ws)
    model = ws.models_dir / "tiny-demo" / "model.safetensors"
    before = model.stat().st_mtime_ns
    edited = ws.datasets_dir / "demo-reviews.jsonl"
    edited.write_text('{"messages": [{"role": "user", "content": "mine"}, {"role": "assistant", "content": "x"}]}\n')
    (ws.datasets_dir / "demo-qa.csv").unlink()

    result = make_demo(ws)
    assert result["model_created"] is False and model.stat().st_mtime_ns == before
    assert "mine" in edited.read_text()  # never overwritten
    created = {n for n, d in result["datasets"].items() if d["created"]}
    assert created == {"demo-qa.csv"}  # only the missing one comes back
    assert not [p for p in ws.models_dir.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_incomplete_model_folder_is_not_touched(workspace):
    ws = Workspace(workspace)
    folder = ws.models_dir / "tiny-demo"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a complete model"):
        make_demo(ws)
    assert (folder / "notes.txt").read_text() == "mine"


def test_datasets_are_deterministic():
    a, b = datasets.build(), datasets.build()
    assert {k: v["content"] for k, v in a.items()} == {k: v["content"] for k, v in b.items()}


