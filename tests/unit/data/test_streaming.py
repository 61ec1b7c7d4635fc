"""`--streaming`: a file is trained on as it is read, with the same templates, masking and
truncation as a prepared run, validation from its first rows, and unreadable rows skipped with
their file:line (bad input: test_streaming_cli.py; a run: test_streaming_e2e.py)."""

from __future__ import annotations

import json

import pytest

from tunestudio.config.run_config import RunConfig
from tunestudio.data.encoding import streamed
from tunestudio.data.encoding.encode import encode
from tunestudio.data.formats.load import load_file


@pytest.fixture(scope="module")
def tok(demo_template):
    """The demo tokenizer with its chat template (as test_data_arrow.py's)."""
    from transformers import AutoTokenizer

    from tunestudio.data.chat.template import ensure_chat_template

    t = AutoTokenizer.from_pretrained(demo_template / "models" / "tiny-demo")
    ensure_chat_template(t)
    return t

def write_rows(path, n: int, bad_lines=()) -> None:
    lines = []
    for i in range(1, n + 1):
        if i in bad_lines:
            lines.append('{"instruction": "broken')
        else:
            lines.append(json.dumps({"instruction": f"Say the number {i} in words " + "please " * (i % 7),
                                     "output": f"number {i} " * (1 + i % 5)}))
    path.write_text("\n".join(lines) + "\n")


def test_record_chunks_skip_limit_and_report(tmp_path, monkeypatch):
    from tunestudio.data.formats import readers

    monkeypatch.setattr(readers, "JSONL_CHUNK", 8)   # several chunks from a small file
    path = tmp_path / "rows.jsonl"
    write_rows(path, 40, bad_lines={5, 23})
    problems = []
    views = list(streamed.record_chunks(path, report=problems.append))
    lines = [r.line for v in views for r in v]
    assert lines == [i for i in range(1, 41) if i not in (5, 23)]
    assert [(p.file, p.line) for p in problems] == [("rows.jsonl", 5), ("rows.jsonl", 23)]
    assert "invalid JSON" in problems[0].message
    # the first 10 rows (validation) and the rest (training) never overlap and miss nothing
    head = [r.line for v in streamed.record_chunks(path, limit=10) for r in v]
    tail = [r.line for v in streamed.record_chunks(path, skip=10) for r in v]
    assert head + tail == lines and len(head) == 10


def test_streamed_examples_are_the_prepared_ones(tmp_path, tok):
    path = tmp_path / "rows.jsonl"
    write_rows(path, 300)
    cfg = RunConfig(model="m", dataset=str(path), max_length=40, streaming=True, max_steps=1, shuffle_buffer=50)
    got = list(streamed.examples(path, tok, cfg, skip=30, seed=0))
    records = load_file(path).records
    want = encode(records[30:], tok, 40)   # cut at 40 tokens, answers only, like a prepared run
    assert want.truncated > 100   # the cut matters here
    want = want.examples
    assert len(got) == len(want)
    key = lambda e: (tuple(e["input_ids"]), tuple(e["labels"]))  # noqa: E731
    assert sorted(map(key, got)) == sorted(map(key, want))
    assert [key(e) for e in got] != [key(e) for e in want]     # shuffled through the buffer
    assert any(-100 in e["labels"] for e in got)                 # prompts masked


