"""`tunestudio export` end to end: a merged export loads in plain transformers and answers like the
adapter run, and a LoRA run trained and exported with the CLI prints no Python warning on the
user's terminal (the adapter export's refusals: test_export_cli.py; the library: test_export.py)."""

from __future__ import annotations

import json
import re

from eval_helpers import REVIEW_PROMPTS, make_adapter_run, plain_greedy
from helpers import run_cli

from tunestudio.core.workspace import Workspace
from tunestudio.models.generate import Sampling, generate
from tunestudio.models.loading import load_model


def test_merged_export_matches_the_adapter_model(demo_ws, tmp_path):
    ws = Workspace(demo_ws)
    make_adapter_run(demo_ws, "lora-run")
    model, tok, info = load_model(ws, run="lora-run")  # base + adapter, not merged
    assert info["kind"] == "adapter" and not info["merged"]
    adapter_answers = generate(model, tok, REVIEW_PROMPTS, Sampling(max_new_tokens=12))
    base_model, base_tok, _ = load_model(ws, model="tiny-demo")
    # the adapter matters
    assert adapter_answers != generate(base_model, base_tok, REVIEW_PROMPTS, Sampling(max_new_tokens=12))

    out = tmp_path / "merged"
    r = run_cli("export", "lora-run", "--merge", "--output", out, "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["kind"] == "merged"
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "README.md"} <= files
    assert not any(f.endswith((".bin", ".pt")) or f.startswith("adapter_") for f in files)
    plain, merged = plain_greedy(out, REVIEW_PROMPTS)
    assert plain == adapter_answers
    assert type(merged).__name__ == "LlamaForCausalLM"  # no peft wrapper left
    card = (out / "README.md").read_text()
    assert "tiny-demo" in card and "lora" in card and "demo-reviews.jsonl" in card
    split = json.loads((demo_ws / "training/runs/lora-run/split.json").read_text())
    assert split["hash"] in card  # the data's content hash


def test_a_lora_run_and_its_export_print_no_python_warning(demo_ws, tmp_path):
    """peft reads transformers' deprecated is_gradient_checkpointing on every adapter it wraps: that
    FutureWarning (and any other library warning) must not reach a user's terminal."""
    r = run_cli("train", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--method", "lora",
                "--max-steps", "2", "--batch-size", "4", "--name", "quiet", ws=demo_ws)
    assert r.returncode == 0, r.stderr[-3000:]
    e = run_cli("export", "quiet", "--merge", "--output", tmp_path / "m", "--verify-rows", "2", ws=demo_ws)
    assert e.returncode == 0, e.stderr[-3000:]
    for p in (r, e):
        assert not re.search(r"[A-Z]\w*Warning\b", p.stderr), p.stderr[-3000:]
