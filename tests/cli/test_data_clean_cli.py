"""`tunestudio data clean`: the input is never changed; a new file and a report say what was removed
and why, the cleaned file passes `data check`, and cleaning again never overwrites (the cleaner
and near-duplicate finder in-process: test_data_clean.py)."""

from __future__ import annotations

import json

from data_helpers import chat_row, file_sha256, read_jsonl
from helpers import run_cli

from tunestudio.core.workspace import Workspace


def test_clean_removes_with_reasons_and_keeps_input(tmp_path):
    ws = Workspace(tmp_path).ensure()
    src = ws.datasets_dir / "mixed.jsonl"
    lines = [
        json.dumps(chat_row("  What is the capital of France?  ", "Paris ")),             # 1 kept, trimmed
        json.dumps(chat_row("What is the capital of France?", "Paris")),                  # 2 duplicate of 1
        json.dumps(chat_row("What is the capital of France ?", "paris")),                 # 3 near-duplicate of 1
        json.dumps(chat_row("What is the capital of Spain?", "Madrid")),                  # 4 kept
        "{broken json",                                                                    # 5 error
        json.dumps(chat_row("Say nothing", "")),                                           # 6 empty
        json.dumps(chat_row("Cafe\u0301 au lait?", "Oui")),                                # 7 kept, NFC
        json.dumps(chat_row("What is the capital of Spain?", "Barcelona")),               # 8 kept: other answer
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]}),  # 9 error
    ]
    src.write_text("\n".join(lines) + "\n")
    before = file_sha256(src)
    p = run_cli("data", "clean", "mixed.jsonl", "--json", ws=tmp_path, timeout=60)
    assert p.returncode == 0, p.stderr
    assert file_sha256(src) == before
    out = json.loads(p.stdout)
    assert out["kept"] == 4
    assert out["removed"] == {"error": 2, "empty": 1, "duplicate": 1, "near-duplicate": 1}
    cleaned = ws.datasets_dir / "mixed.clean.jsonl"
    report = ws.datasets_dir / "mixed.clean.report.jsonl"
    assert out["files"][0]["output"] == str(cleaned) and out["files"][0]["report"] == str(report)
    rows = [json.loads(line) for line in cleaned.read_text().splitlines()]
    assert rows[0] == chat_row("What is the capital of France?", "Paris")
    assert rows[2]["messages"][0]["content"] == "Caf\u00e9 au lait?"
    assert [r["messages"][1]["content"] for r in rows] == ["Paris", "Madrid", "Oui", "Barcelona"]
    assert [(r["file"], r["line"], r["reason"]) for r in read_jsonl(report)] == [
        ("mixed.jsonl", 2, "duplicate"), ("mixed.jsonl", 3, "near-duplicate"), ("mixed.jsonl", 5, "error"),
        ("mixed.jsonl", 6, "empty"), ("mixed.jsonl", 9, "error")]
    # The cleaned file passes the check.
    assert run_cli("data", "check", "mixed.clean.jsonl", ws=tmp_path, timeout=60).returncode == 0

    # Cleaning again never overwrites: a new name, and the earlier outputs are untouched.
    first_clean = file_sha256(cleaned)
    p = run_cli("data", "clean", "mixed.jsonl", ws=tmp_path, timeout=60)
    assert p.returncode == 0 and "mixed.clean-2.jsonl" in p.stdout
    assert file_sha256(cleaned) == first_clean and file_sha256(src) == before
    assert (ws.datasets_dir / "mixed.clean-2.report.jsonl").is_file()

