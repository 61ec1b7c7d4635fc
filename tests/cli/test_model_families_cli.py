"""Model families through the CLI: reasoning content is previewed (kept or dropped, as each family's
template renders it), and template refusals are listed in every split, all refused said once."""

from __future__ import annotations

import json

from families import ENDOFTEXT, MISTRAL, QWEN3, R1_DISTILL, family_model
from helpers import run_cli


def make(ws, name, template, **kw):
    return family_model(ws / "models" / "tiny-demo", ws / "models" / name, template, **kw)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


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

