"""`tunestudio models import FILE.gguf` gives back the same model: the same logits and greedy tokens
in plain transformers (the GGUF file: gguf_helpers.make_tiny_gguf; the refusals: test_models_import.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from helpers import run_cli

PROMPT = "the cat sat on the mat"   # no digits: the demo tokenizer splits those, a plain gpt2 one does not


def test_import_gives_the_same_model_in_plain_transformers(workspace, tiny_gguf):
    """The command a user types: one JSON object on stdout; a folder that loads in plain
    transformers, tokenizes alike, gives the source's logits and greedy tokens, stops at the end of
    a turn, and names its file and sha256 in SOURCE.md."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src, gguf_file = tiny_gguf
    r = run_cli("models", "import", gguf_file, "--name", "tiny", "--dtype", "fp32", "--json", ws=workspace, timeout=300)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)   # exactly one JSON object
    digest = hashlib.sha256(gguf_file.read_bytes()).hexdigest()
    assert (result["name"], result["architecture"], result["sha256"], result["dtype"]) == ("tiny", "llama", digest, "fp32")
    folder = workspace / "models" / "tiny"
    assert Path(result["folder"]) == folder
    assert sorted(p.name for p in (workspace / "models").iterdir()) == ["tiny"]   # no temporary folder left

    tok_a, tok_b = AutoTokenizer.from_pretrained(src), AutoTokenizer.from_pretrained(folder)
    a = AutoModelForCausalLM.from_pretrained(src).eval()
    b = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = tok_a(PROMPT, return_tensors="pt")["input_ids"]
    assert tok_b(PROMPT)["input_ids"] == ids[0].tolist()
    assert tok_b.chat_template == tok_a.chat_template
    with torch.no_grad():
        torch.testing.assert_close(b(ids).logits, a(ids).logits, atol=1e-4, rtol=1e-4)
        same = dict(max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=tok_a.pad_token_id)
        assert b.generate(ids, **same).tolist() == a.generate(ids, **same).tolist()
    eos = b.generation_config.eos_token_id
    assert tok_b.convert_tokens_to_ids("<|im_end|>") in (eos if isinstance(eos, list) else [eos])

    source = (folder / "SOURCE.md").read_text(encoding="utf-8")
    assert "Tiny-Test.Q8_0.gguf" in source and digest in source and "dequantised" in source

    r = run_cli("models", "list", "--json", ws=workspace)
    listed = json.loads(r.stdout)["models"]
    assert [(m["name"], m["gguf"]["file"], m["gguf"]["sha256"]) for m in listed] == [("tiny", gguf_file.name, digest)]

