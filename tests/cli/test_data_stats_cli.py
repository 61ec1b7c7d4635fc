"""`tunestudio data stats` as a user runs it: a missing model is a clean error, --json and the text
report (token counts: test_data_stats_e2e.py; the counts in-process: test_data_stats.py)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import run_cli

from tunestudio.core.workspace import Workspace


def write_jsonl(path: Path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_stats_cli_errors(tmp_path):
    ws = Workspace(tmp_path).ensure()
    write_jsonl(ws.datasets_dir / "t.jsonl", [{"text": "hello"}])
    p = run_cli("data", "stats", "t.jsonl", "--model", "./no-such-model", ws=tmp_path, timeout=120)
    assert p.returncode == 1 and "Traceback" not in p.stderr and "no-such-model" in p.stderr
    p = run_cli("data", "stats", "t.jsonl", "--json", ws=tmp_path, timeout=60)
    assert p.returncode == 0 and json.loads(p.stdout)["rows"] == 1
    p = run_cli("data", "stats", "t.jsonl", ws=tmp_path, timeout=60)
    assert p.returncode == 0 and "format text, 1 rows" in p.stdout

