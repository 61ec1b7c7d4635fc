"""Token counts through a model's tokenizer, and `data check` on them: rows over the max length
named, truncated or dropped (`data stats` errors: test_data_stats_cli.py; the counts in-process:
test_data_stats.py)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import run_cli
from workspaces import make_tiny_model

from tunestudio.cli.data import render_stats
from tunestudio.core.workspace import Workspace
from tunestudio.data.quality.stats import stats_dataset


def write_jsonl(path: Path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_token_counts_with_model(tmp_path):
    ws = Workspace(tmp_path).ensure()
    make_tiny_model(ws.models_dir / "tiny")
    write_jsonl(ws.datasets_dir / "t.jsonl", [
        {"messages": [{"role": "user", "content": "one two three"}, {"role": "assistant", "content": "four"}]},
        {"messages": [{"role": "user", "content": " ".join(["w"] * 70)}, {"role": "assistant", "content": "x"}]},
    ])
    s = stats_dataset(ws, "t.jsonl", model="tiny")
    # template: "<user> one two three <assistant> four " -> 6 tokens; the second 2 + 70 + 1 = 73
    assert s["unit"] == "tokens" and s["cutoff"] == 64
    assert (s["length"]["min"], s["length"]["max"]) == (6, 73)
    assert s["over_cutoff"] == 1 and s["histogram"][-1]["count"] == 1

    p = run_cli("data", "check", "t.jsonl", "--model", "tiny", "--max-length", "10", "--json", ws=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    warnings = json.loads(p.stdout)["warnings"]
    assert [(w["line"], w["message"].split(",")[0]) for w in warnings if w["line"]] == [(2, "73 tokens")]
    # this template has no generation prompt and no turn-end token: both are said, once, for the file
    file_level = [w["message"] for w in warnings if not w["line"]]
    assert any("generation prompt '' differs" in m and "'<assistant> '" in m for m in file_level)
    assert any("no special token" in m for m in file_level)

    text = render_stats(s)   # what `data stats --model` prints
    assert "tokens per row" in text and "over the cutoff" in text

    # a row cut inside its answer is truncated; a row cut inside its prompt loses the whole answer
    # and training drops it: check says which, and the OK line counts the dropped
    p = run_cli("data", "check", "t.jsonl", "--model", "tiny", "--max-length", "6", ws=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "t.jsonl:2: 73 tokens, over the max length of 6: no answer token fits: the row will be dropped" in p.stdout
    assert "but 1 will be dropped by training at max length 6" in p.stdout
    write_jsonl(ws.datasets_dir / "t2.jsonl", [
        {"messages": [{"role": "user", "content": " ".join(["w"] * 70)}, {"role": "assistant", "content": "x y z"}]}])
    p = run_cli("data", "check", "t2.jsonl", "--model", "tiny", "--max-length", "73", ws=tmp_path, timeout=120)
    assert "75 tokens, over the max length of 73: it will be truncated" in p.stdout
    assert "OK: every row can be used" in p.stdout

