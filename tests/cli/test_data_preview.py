"""`tunestudio data preview`: one row as the model is trained on it, and the truncation count (plain
text: test_data_preview_e2e.py)."""

from __future__ import annotations

import json

from helpers import run_cli

MODEL = "tiny-demo"


def test_preview_marks_the_answer_and_counts_no_truncation(demo_ws):
    p = run_cli("data", "preview", "demo-reviews.jsonl", "--model", MODEL, "--row", "2", ws=demo_ws, timeout=300)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "demo-reviews.jsonl:2 (row 2 of 2000)" in out
    rule = "-" * 60 + "\n"
    body = out.split(rule)[1]                                                  # the row, as rendered
    assert body.startswith("<|im_start|>system\n") and "<|im_start|>user\n" in body
    assert "<|im_start|>assistant\n[[" in body                                # the template, as trained
    trained = body[body.index("[[") + 2:body.index("]]")]
    assert trained.endswith("<|im_end|>") and trained[:-len("<|im_end|>")] in ("positive", "negative", "neutral")
    assert body.count("[[") == 1                                              # the prompt is not trained
    assert "truncated: 0 of 2000 rows" in out
    assert "Traceback" not in p.stderr


def test_preview_json_truncation_matches_encode(demo_ws):
    from tunestudio.core.workspace import Workspace
    from tunestudio.data.encoding.encode import encode
    from tunestudio.data.formats.load import load_file
    from tunestudio.data.quality.stats import load_tokenizer

    p = run_cli("data", "preview", "demo-reviews.jsonl", "--model", MODEL, "--max-length", "36", "--json",
                ws=demo_ws, timeout=300)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["row"] == 1 and d["rows"] == 2000 and d["max_length"] == 36 and d["n_tokens"] <= 36
    ws = Workspace(demo_ws)
    records = load_file(ws.datasets_dir / "demo-reviews.jsonl").records
    expected = encode(records, load_tokenizer(ws, MODEL), 36)
    assert 0 < d["truncated"] == expected.truncated < 2000
    assert d["dropped"] == expected.dropped
    assert d["truncated_rows"] == expected.truncated_rows[:20]
    assert d["truncation"] and d["truncation"] in d["warnings"] and f"{d['truncated']} of 2000 rows" in d["truncation"]
    text = "".join(t["text"] for t in d["tokens"])
    assert text.startswith("<|im_start|>system\n")
    if not d["row_truncated"]:
        assert "".join(t["text"] for t in d["tokens"] if t["trained"]) == records[0].reference() + "<|im_end|>"




def test_preview_by_line_counts_the_files_lines_as_check_does(demo_ws):
    """`--line N` is the line `data check` names; a line holding no usable row shows the next one."""
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
            for i in range(4)]
    text = "\n".join([json.dumps(rows[0]), "{broken", json.dumps(rows[1]), json.dumps(rows[2])]) + "\n"
    (demo_ws / "training" / "datasets" / "lines.jsonl").write_text(text)
    p = run_cli("data", "preview", "lines.jsonl", "--model", MODEL, "--line", "3", "--json", ws=demo_ws,
                timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert (out["line"], out["row"], out["asked_line"]) == (3, 2, None)   # line 3 is the 2nd usable row
    p = run_cli("data", "preview", "lines.jsonl", "--model", MODEL, "--line", "2", ws=demo_ws, timeout=120)
    assert p.returncode == 0 and "line 2 holds no usable row" in p.stdout and "lines.jsonl:3 " in p.stdout, p.stdout
