"""Shipping refusals and checks through the CLI: GGUF refusals are one clear message, a prompt-tuned run
cannot be merged, HF and adapter exports are round-trip checked (a different model is caught), and
`serve` refuses an open host without a key and a port in use."""

from __future__ import annotations

import json
import socket

from eval_helpers import make_adapter_run, make_full_run
from helpers import run_cli


def _one_error(r) -> str:
    assert r.returncode == 1, (r.stdout, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    lines = [x for x in r.stderr.strip().splitlines() if x.startswith("error:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_gguf_refusals_are_one_clear_message(demo_ws, tmp_path):
    make_full_run(demo_ws, "demo-run")
    r = run_cli("export", "demo-run", "--format", "gguf", "--output", tmp_path / "g", ws=demo_ws)
    msg = _one_error(r)
    assert "pre-tokenizer not recognized" in msg and "--format hf" in msg and "tiny-demo" in msg
    assert not (tmp_path / "g").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".g")]

    from tunestudio.ship.quantize import find_tool

    if not find_tool():  # with the tool built, test_ship_jobs checks the message with it hidden
        msg = _one_error(run_cli("export", "demo-run", "--format", "gguf", "--quant", "q4_k_m",
                                 "--output", tmp_path / "q4", ws=demo_ws))
        assert "llama-quantize" in msg and "cmake" in msg and "--build-quantize" in msg
    assert "no run 'nope'" in _one_error(run_cli("export", "nope", "--format", "gguf", "--output", tmp_path / "n",
                                                 ws=demo_ws))
    assert "no adapter" in _one_error(run_cli("export", "demo-run", "--format", "adapter", "--output", tmp_path / "a",
                                              ws=demo_ws))
    assert not (tmp_path / "a").exists()


def test_prompt_tuned_run_cannot_be_merged_for_gguf(demo_ws, tmp_path):
    import yaml
    from peft import PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = demo_ws / "models" / "tiny-demo"
    run = demo_ws / "training" / "runs" / "pt-run"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"model": "tiny-demo", "method": "prompt",
                                                     "dataset": "demo-reviews.jsonl"}))
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)),
                           PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
    model.save_pretrained(run / "final")
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(run / "final")
    msg = _one_error(run_cli("export", "pt-run", "--format", "gguf", "--output", tmp_path / "g", ws=demo_ws))
    assert "prompt" in msg and "no weights to merge" in msg


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


def test_serve_refuses_open_host_without_key_and_a_port_in_use(demo_ws):
    make_full_run(demo_ws, "full-run")
    msg = _one_error(run_cli("serve", "full-run", "--host", "0.0.0.0", ws=demo_ws))
    assert "--api-key" in msg and "127.0.0.1" in msg
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        msg = _one_error(run_cli("serve", "full-run", "--port", s.getsockname()[1], ws=demo_ws))
    assert "in use" in msg and "--port" in msg
    assert "no run 'nope'" in _one_error(run_cli("serve", "nope", ws=demo_ws))

