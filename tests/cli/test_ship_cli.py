"""Quick shipping refusals through the CLI: a prompt-tuned run cannot be merged for GGUF, and `serve`
refuses an open host without a key and a port in use (exports end to end: test_ship.py)."""

from __future__ import annotations

import socket

from eval_helpers import make_full_run
from helpers import one_error, run_cli


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
    msg = one_error(run_cli("export", "pt-run", "--format", "gguf", "--output", tmp_path / "g", ws=demo_ws))
    assert "prompt" in msg and "no weights to merge" in msg


def test_serve_refuses_open_host_without_key_and_a_port_in_use(demo_ws):
    make_full_run(demo_ws, "full-run")
    msg = one_error(run_cli("serve", "full-run", "--host", "0.0.0.0", ws=demo_ws))
    assert "--api-key" in msg and "127.0.0.1" in msg
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        msg = one_error(run_cli("serve", "full-run", "--port", s.getsockname()[1], ws=demo_ws))
    assert "in use" in msg and "--port" in msg
    assert "no run 'nope'" in one_error(run_cli("serve", "nope", ws=demo_ws))



def test_serve_refuses_a_limit_below_one(demo_ws):
    for flag in ("--max-body-bytes", "--max-prompt-tokens", "--max-seconds"):
        msg = one_error(run_cli("serve", "tiny-demo", flag, "0", ws=demo_ws))
        assert flag in msg and "at least 1" in msg
