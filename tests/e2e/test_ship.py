"""Shipping a run end to end: GGUF for llama.cpp/Ollama (f16, q8_0, q4_k_m) answering like the run and
its refusals, the round-trip check after HF and adapter exports (a different model is caught), and
`tunestudio serve` (an OpenAI-compatible endpoint on transformers serve) answering like chat (quick
refusals: test_ship_cli.py; the converter's download: test_gguf_converter.py).

GGUF tests use a tiny Qwen2 model on Qwen2's real vocabulary (tests/gguf_helpers.py), fine-tuned
for a few steps: llama.cpp's converter refuses the demo model's own tokenizer by design."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from eval_helpers import make_adapter_run, make_full_run
from gguf_helpers import make_qwen2
from helpers import one_error, run_cli, served

PROMPT = "The kettle is great."


@pytest.fixture(scope="module")
def qwen2_run(demo_template, tmp_path_factory):
    """A workspace with models/tiny-qwen2 and run 'q2', a full fine-tune of 2 steps."""
    ws = tmp_path_factory.mktemp("qwen2") / "ws"
    shutil.copytree(demo_template, ws)
    make_qwen2(ws / "models" / "tiny-qwen2")
    r = run_cli("train", "--model", "tiny-qwen2", "--dataset", "demo-reviews.jsonl", "--method", "full",
                "--lr", "1e-4", "--batch-size", "4", "--max-steps", "2", "--name", "q2", "--json", ws=ws)
    assert r.returncode == 0, r.stderr[-3000:]
    run_id = json.loads(r.stdout)["run_id"]
    # Weights stored as half-precision values, as real checkpoints are (bf16/f16): an f16 GGUF then
    # holds them exactly, and the answers must be identical token for token. With arbitrary fp32
    # weights a random model's near-tied logits can flip after f16 rounding (seen: 3/4 identical,
    # the 4th differing after ~20 tokens), which the round-trip check rightly reports.
    from safetensors.torch import load_file, save_file

    weights = ws / "training" / "runs" / run_id / "final" / "model.safetensors"
    save_file({k: v.half().float() for k, v in load_file(str(weights)).items()}, str(weights),
              metadata={"format": "pt"})
    return ws, run_id


# ---- GGUF ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_gguf_f16_answers_like_the_run_and_carries_its_template_and_stops(qwen2_run, tmp_path):
    from transformers import AutoTokenizer

    from tunestudio.ship.gguf import metadata

    ws, run_id = qwen2_run
    out = tmp_path / "gguf"
    r = run_cli("export", "q2", "--format", "gguf", "--output", out, "--verify-rows", "4", "--json", ws=ws)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout)
    gguf = Path(res["file"])
    assert gguf.parent == out and gguf.name == "q2-f16.gguf" and gguf.stat().st_size > 1_000_000
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "README.md", "q2-f16.gguf", "roundtrip.json"]

    final = ws / "training" / "runs" / run_id / "final"
    tok = AutoTokenizer.from_pretrained(str(final))
    im_end, eot = tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")
    meta = metadata(gguf)
    assert meta["architecture"] == "qwen2" and meta["file_type"] == 1  # MOSTLY_F16
    # named after the run, not the temporary folder the converter read; the base is models/tiny-qwen2,
    # a local folder: no general.base_model.* (it was https://huggingface.co/<its path>)
    assert meta["name"] == "q2" and meta["base_models"] == []
    assert meta["chat_template"] == tok.chat_template  # the run's template, embedded
    assert {meta["eos"], meta["eot"]} == {im_end, eot}  # base-model eos AND the turn end

    rt = res["roundtrip"]
    assert rt["rows"] == 4 and rt["identical"] == 4 and rt["identical_share"] == 1.0
    assert rt["reference"].startswith("generated now") and rt["max_new_tokens"] >= 32
    assert all(a for a in rt["answers"])  # a 2-step model rambles: identical answers are long, not empty
    assert json.loads((out / "roundtrip.json").read_text())["identical"] == 4
    card = (out / "README.md").read_text()
    assert "## GGUF" in card and "## Round-trip check" in card and "| answers identical to the run's | 4/4 |" in card
    assert "base_model" not in card.split("---\n", 2)[1] and "Fine-tuned from the local model `tiny-qwen2`" in card
    assert str(ws) not in card

    mf = (out / "Modelfile").read_text()
    assert "FROM ./q2-f16.gguf" in mf.splitlines()
    assert 'PARAMETER stop "<|im_end|>"' in mf and 'PARAMETER stop "<|endoftext|>"' in mf
    assert 'SYSTEM """Classify the review as positive, negative or neutral."""' in mf
    # the Go template writes what training wrote before an answer (system block, user turn, header)
    template = mf.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    assert template.endswith("<|im_start|>assistant\n") and "{{ .System }}<|im_end|>" in template


@pytest.mark.slow
def test_gguf_q8_0_is_written_by_the_converter(qwen2_run, tmp_path):
    from tunestudio.ship.gguf import metadata

    ws, _ = qwen2_run
    r = run_cli("export", "q2", "--format", "gguf", "--quant", "q8_0", "--output", tmp_path / "q8", "--no-verify",
                "--json", ws=ws)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    meta = metadata(out["file"])
    assert "roundtrip" not in out and meta["file_type"] == 7  # MOSTLY_Q8_0
    assert meta["name"] == "q2" and meta["base_models"] == []


@pytest.mark.slow
def test_gguf_q4_k_m_with_llama_quantize(qwen2_run, tmp_path):
    """Needs llama-quantize (on PATH or built once with `--build-quantize`, minutes): skipped
    without it, with the way to get it."""
    from tunestudio.ship.gguf import metadata
    from tunestudio.ship.quantize import find_tool

    if not find_tool():
        pytest.skip("llama-quantize is not built: run `tunestudio export RUN --format gguf --quant q4_k_m "
                    "--build-quantize` once")
    ws, _ = qwen2_run
    r = run_cli("export", "q2", "--format", "gguf", "--quant", "q4_k_m", "--output", tmp_path / "q4",
                "--verify-rows", "2", "--json", ws=ws)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    meta = metadata(out["file"])
    assert Path(out["file"]).name == "q2-q4_k_m.gguf" and meta["file_type"] == 15  # MOSTLY_Q4_K_M
    assert meta["eot"] is not None and meta["chat_template"]  # the stop tokens survive quantisation
    assert sorted(p.name for p in (tmp_path / "q4").iterdir()) == ["Modelfile", "README.md", "q2-q4_k_m.gguf",
                                                                   "roundtrip.json"]
    rt = out["roundtrip"]
    assert rt["rows"] == 2 and "exact_match_delta" in rt  # q4 may answer differently: reported, not failed


def test_gguf_refusals_are_one_clear_message(demo_ws, tmp_path):
    make_full_run(demo_ws, "demo-run")
    r = run_cli("export", "demo-run", "--format", "gguf", "--output", tmp_path / "g", ws=demo_ws)
    msg = one_error(r)
    assert "pre-tokenizer not recognized" in msg and "--format hf" in msg and "tiny-demo" in msg
    assert not (tmp_path / "g").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".g")]

    from tunestudio.ship.quantize import find_tool

    if not find_tool():  # with the tool built, test_ship_jobs checks the message with it hidden
        msg = one_error(run_cli("export", "demo-run", "--format", "gguf", "--quant", "q4_k_m",
                                "--output", tmp_path / "q4", ws=demo_ws))
        assert "llama-quantize" in msg and "cmake" in msg and "--build-quantize" in msg
    assert "no run 'nope'" in one_error(run_cli("export", "nope", "--format", "gguf", "--output", tmp_path / "n",
                                                ws=demo_ws))
    assert "no adapter" in one_error(run_cli("export", "demo-run", "--format", "adapter", "--output", tmp_path / "a",
                                             ws=demo_ws))
    assert not (tmp_path / "a").exists()


# ---- round-trip check on HF exports ---------------------------------------------------------------

def test_hf_and_adapter_exports_are_checked_and_a_different_model_is_caught(demo_ws, tmp_path):
    from tunestudio.core.workspace import Workspace
    from tunestudio.ship.export import export_run
    from tunestudio.ship.roundtrip import check_export

    make_adapter_run(demo_ws, "lora-run")
    for fmt, extra in (("adapter", []), ("hf", ["--merge"])):
        r = run_cli("export", "lora-run", "--format", fmt, *extra, "--output", tmp_path / fmt, "--verify-rows", "5",
                    "--json", ws=demo_ws)
        assert r.returncode == 0, r.stderr[-3000:]
        rt = json.loads(r.stdout)["roundtrip"]
        assert (rt["rows"], rt["identical"]) == (5, 5), rt
        assert "## Round-trip check" in (tmp_path / fmt / "README.md").read_text()
        assert "WARNING" not in r.stderr or "stopped on its own" in r.stderr  # a random adapter may ramble

    # the base model exported in place of the run: the check must notice
    make_full_run(demo_ws, "base-as-run")
    out = export_run(Workspace(demo_ws), "base-as-run", tmp_path / "wrong")
    rt = check_export(Workspace(demo_ws), "lora-run", out, rows=5, write=False)
    assert rt["identical"] < 5 and any("ANSWERS DIFFERENTLY" in w for w in rt["warnings"])
    assert rt["differences"] and rt["differences"][0]["run"] != rt["differences"][0]["export"]

    r = run_cli("export", "lora-run", "--output", tmp_path / "nv", "--no-verify", "--json", ws=demo_ws)
    assert r.returncode == 0 and "roundtrip" not in json.loads(r.stdout)
    assert not (tmp_path / "nv" / "roundtrip.json").exists()


# ---- serve ----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_serve_answers_an_openai_client_like_chat_and_stops(demo_ws):
    import openai

    r = run_cli("train", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--method", "full",
                "--lr", "1e-3", "--batch-size", "16", "--epochs", "1", "--name", "served", "--json", ws=demo_ws)
    assert r.returncode == 0, r.stderr[-3000:]
    chat = run_cli("chat", "--run", "served", "--prompt", PROMPT, "--max-new-tokens", "32", "--json", ws=demo_ws)
    assert chat.returncode == 0, chat.stderr[-2000:]
    expected = json.loads(chat.stdout)
    assert expected["stopped"] and expected["response"] in ("positive", "negative", "neutral")

    with served(demo_ws, "served", api_key="k3y") as (client, _, port):
        models = client.models.list()
        assert [m.id for m in models.data] == ["served"]
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", max_retries=0).models.list()
        messages = [{"role": "user", "content": PROMPT}]
        got = client.chat.completions.create(model="served", messages=messages, max_tokens=32, temperature=0)
        assert got.choices[0].message.content.strip() == expected["response"]
        assert got.choices[0].finish_reason == "stop"  # ended on the turn end, not the token budget
        streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="served", messages=messages, max_tokens=32, temperature=0, stream=True) if c.choices)
        assert streamed.strip() == expected["response"]
