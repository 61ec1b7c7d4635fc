"""A held-out file is read as the run read its data: its column mapping, and its shared system prompt."""

from __future__ import annotations

import json

from tunestudio.core.workspace import Workspace
from tunestudio.data.split import load_splits
from tunestudio.evaluate.heldout import file_records

SYSTEM = "Answer with the capital only."


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_held_out_file_gets_the_runs_mapping_and_system_prompt(workspace):
    ws = Workspace(workspace).ensure()
    # the run trained on conversations that all start with SYSTEM
    _write(ws.datasets_dir / "train.jsonl", [{"messages": [
        {"role": "system", "content": SYSTEM}, {"role": "user", "content": f"country {i}"},
        {"role": "assistant", "content": f"city {i}"}]} for i in range(20)])
    info = load_splits(ws, "train.jsonl").info
    # its held-out file holds question/answer columns, named by the run's --map
    _write(ws.datasets_dir / "capitals.jsonl", [{"question": "France?", "answer": "Paris"},
                                                 {"question": "Japan?", "answer": "Tokyo"},
                                                 {"question": "Peru?", "answer": "Lima"}])
    config = {"format": "alpaca", "mapping": "instruction=question,output=answer"}
    records = file_records(ws, "capitals.jsonl", config, info)
    assert [r.prompt() for r in records][0] == [{"role": "system", "content": SYSTEM},
                                                {"role": "user", "content": "France?"}]
    assert [r.reference() for r in records] == ["Paris", "Tokyo", "Lima"]   # every row: the file is the test set
    # a row with its own system message keeps it; no shared prompt in the run's data: none added
    _write(ws.datasets_dir / "own.jsonl", [{"messages": [{"role": "system", "content": "Be brief."},
                                                         {"role": "user", "content": "Chile?"},
                                                         {"role": "assistant", "content": "Santiago"}]}])
    (own,) = file_records(ws, "own.jsonl", {}, info)
    assert own.prompt()[0]["content"] == "Be brief." and len(own.prompt()) == 2
    (bare,) = file_records(ws, "own.jsonl", {}, None)
    assert bare.prompt()[0]["content"] == "Be brief."
