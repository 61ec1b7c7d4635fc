"""No traceback from any file: `tunestudio data check FILE --json` on a row nested 5,000 levels deep,
a lone surrogate, a CSV of 10^6 columns, an over-long line exits 1 with the Problem at its line;
a pickle-only model folder is refused by `train` and `chat` in one line, before it is loaded."""

from __future__ import annotations

import json
import time

import pytest
from helpers import run_cli

GOOD = '{"instruction": "a", "output": "b"}'
DEEP = '{"instruction": "q", "output": "b", "x": ' + "[" * 5000 + "]" * 5000 + "}"
SURROGATE = r'{"instruction": "a\ud800", "output": "b"}'

# file name, its text (or a function making it), the environment, the line and code of the error
CASES = [
    ("deep.jsonl", "\n".join([GOOD, DEEP, GOOD]) + "\n", {}, 2, "json_too_deep"),
    ("deep.json", "[\n" + ",\n".join([GOOD, GOOD, DEEP]) + "\n]\n", {}, 4, "json_too_deep"),
    ("surrogate.jsonl", "\n".join([GOOD, SURROGATE]) + "\n", {}, 2, "json_lone_surrogate"),
    ("surrogate.json", "[\n" + ",\n".join([GOOD, SURROGATE]) + "\n]\n", {}, 3, "json_lone_surrogate"),
    ("wide.csv", lambda: ",".join(f"c{i}" for i in range(10**6)) + "\n" + ",".join("x" * 10**6) + "\n", {}, 1,
     "csv_too_many_columns"),
    ("long.jsonl", "\n".join([GOOD, json.dumps({"instruction": "x" * 5000, "output": "b"}), GOOD]) + "\n",
     {"TUNESTUDIO_MAX_LINE_BYTES": "1000"}, 2, "line_too_long"),
]


@pytest.mark.parametrize("name,text,env,line,code", CASES, ids=[c[0] for c in CASES])
def test_data_check_names_the_line_of_a_hostile_row_without_a_traceback(workspace, name, text, env, line, code):
    (workspace / "training" / "datasets" / name).write_text(text() if callable(text) else text, encoding="utf-8")
    t = time.monotonic()
    p = run_cli("data", "check", name, "--json", ws=workspace, timeout=120, env=env)
    assert time.monotonic() - t < 60
    assert p.returncode == 1, p.stdout + p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    errors = json.loads(p.stdout)["errors"]
    assert [(e["file"], e["line"], e["code"]) for e in errors] == [(name, line, code)], errors


@pytest.fixture(scope="module")
def pickled_ws(tmp_path_factory):
    """A workspace whose models/pickled holds a tiny Llama's state dict saved by torch.save (no
    safetensors), a tokenizer and a dataset."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from workspaces import make_tiny_model

    from tunestudio.core.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("pickled-ws")).ensure()
    folder = make_tiny_model(ws.models_dir / "pickled")
    config = LlamaConfig(vocab_size=8, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    config.save_pretrained(folder)
    torch.save(LlamaForCausalLM(config).state_dict(), folder / "pytorch_model.bin")
    (ws.datasets_dir / "tiny.jsonl").write_text("\n".join([GOOD] * 8) + "\n")
    return ws


@pytest.mark.parametrize("command", [["train", "--model", "pickled", "--dataset", "tiny.jsonl", "--max-steps", "1"],
                                     ["chat", "--model", "pickled", "--prompt", "hi"]], ids=["train", "chat"])
def test_a_pickle_only_model_is_refused_in_one_line_with_the_conversion(pickled_ws, command):
    p = run_cli(*command, ws=pickled_ws.root, timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and "weights_only" not in p.stderr + p.stdout, p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, p.stderr
    assert "pytorch_model.bin" in lines[0] and "safetensors only" in lines[0] and "can run code" in lines[0]
    assert "save_pretrained(" in lines[0] and "safe_serialization=True" in lines[0]
    assert not any(pickled_ws.runs_dir.iterdir()), "no run is created for a refused model"
