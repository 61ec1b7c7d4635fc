"""`tunestudio data check` on a corpus of broken files, run as a user runs it (a subprocess):
exit 1, the file and the line named, no traceback. And the --json contract."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import FIXTURES, run_cli

BROKEN = FIXTURES / "data" / "broken"
FORMATS = FIXTURES / "data" / "formats"

# file, the line the error must name (0: the file as a whole), words the message must contain
CASES = [
    ("invalid_json.jsonl", 3, "invalid JSON"),
    ("missing_response.jsonl", 2, "missing column 'output'"),
    ("empty_response.json", 4, "empty response"),
    ("wrong_type.jsonl", 2, "wrong type"),
    ("unknown_role.jsonl", 2, "unknown role \"narrator\""),
    ("no_assistant.jsonl", 3, "no assistant turn"),
    ("null_content.json", 3, "null content"),
    ("non_utf8.jsonl", 3, "not valid UTF-8"),
    ("non_utf8.csv", 4, "not valid UTF-8"),
    ("spreadsheet.xlsx", 0, "unsupported file type"),
    ("empty.jsonl", 0, "empty file"),
    ("missing_columns.csv", 1, "missing column"),
    ("row_not_object.jsonl", 2, "must be a JSON object"),
    ("extra_fields.csv", 3, "3 fields but the header has 2"),
    ("unclosed_quote.csv", 3, "cannot parse this CSV row"),
    ("sharegpt_bad_from.json", 4, "unknown role"),
    ("truncated.json", 4, "invalid JSON"),
    ("header_only.csv", 0, "no rows below the header"),
    ("empty_conversation.jsonl", 2, "empty conversation"),
    ("trailing_comma.json", 3, "trailing comma"),
    ("content_object.jsonl", 1, "wrong type"),
    ("unknown_columns.jsonl", 0, "cannot tell the format"),
    ("blank_answer.tsv", 3, "empty response"),
    ("null_instruction.jsonl", 1, "null value in 'instruction'"),
]


def test_corpus_is_complete():
    assert len({c[0] for c in CASES}) >= 15
    assert {c[0] for c in CASES} == {p.name for p in BROKEN.iterdir()}


@pytest.fixture(scope="module")
def broken_ws(tmp_path_factory):
    ws = tmp_path_factory.mktemp("broken-ws")
    shutil.copytree(BROKEN, ws / "training" / "datasets")
    return ws


@pytest.mark.parametrize("name,line,words", CASES, ids=[c[0] for c in CASES])
def test_broken_file_fails_with_file_and_line(broken_ws, name, line, words):
    p = run_cli("data", "check", name, ws=broken_ws, timeout=60)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert "Traceback" not in out
    where = f"{name}:{line}:" if line else f"{name}:"
    assert where in out, out
    assert words in out, out
    # stderr ends with one line saying what failed
    assert p.stderr.strip().splitlines()[-1].startswith(f"error: {where}")


@pytest.mark.parametrize("name,line,words", CASES[:6], ids=[c[0] for c in CASES[:6]])
def test_broken_file_json(broken_ws, name, line, words):
    p = run_cli("data", "check", name, "--json", ws=broken_ws, timeout=60)
    assert p.returncode == 1
    report = json.loads(p.stdout)
    assert set(report) == {"format", "rows", "errors", "warnings"}
    first = report["errors"][0]
    assert (first["file"], first["line"]) == (name, line) and words in first["message"]


def test_good_file_passes_with_json(tmp_path):
    ws = tmp_path
    shutil.copytree(FORMATS, ws / "training" / "datasets")
    p = run_cli("data", "check", "alpaca.json", "--json", ws=ws, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"format": "alpaca", "rows": 3, "errors": [], "warnings": []}
    p = run_cli("data", "check", "messages.jsonl", ws=ws, timeout=60)
    assert p.returncode == 0 and "format messages" in p.stdout and "OK" in p.stdout


def test_many_errors_list_20_and_count_the_rest(tmp_path):
    rows = ['{"instruction": "q", "output": ""}'] * 25 + ['{"instruction": "q", "output": "a"}']
    (tmp_path / "training" / "datasets").mkdir(parents=True)
    (tmp_path / "training" / "datasets" / "many.jsonl").write_text("\n".join(rows) + "\n")
    p = run_cli("data", "check", "many.jsonl", ws=tmp_path, timeout=60)
    assert p.returncode == 1
    assert "many.jsonl:20: empty response" in p.stdout
    assert "many.jsonl:21:" not in p.stdout
    assert "... and 5 more" in p.stdout
    data = json.loads(run_cli("data", "check", "many.jsonl", "--json", ws=tmp_path, timeout=60).stdout)
    assert len(data["errors"]) == 25 and data["rows"] == 1   # --json lists all of them


def test_warnings_do_not_fail(tmp_path):
    d = tmp_path / "training" / "datasets"
    d.mkdir(parents=True)
    rows = [{"instruction": f"q{i}", "output": "a"} for i in range(10)]
    rows.append({"instruction": "q3", "output": "a"})            # duplicate of line 4
    rows.append({"instruction": "x" * 5000, "output": "a"})      # very long
    (d / "warn.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    p = run_cli("data", "check", "warn.jsonl", "--json", ws=tmp_path, timeout=60)
    assert p.returncode == 0, p.stderr
    warnings = {(w["line"], w["message"].split(":")[0]) for w in json.loads(p.stdout)["warnings"]}
    assert (11, "duplicate of warn.jsonl") in warnings
    assert (12, "very long row") in warnings


def test_missing_dataset_lists_what_exists(tmp_path):
    (tmp_path / "training" / "datasets").mkdir(parents=True)
    (tmp_path / "training" / "datasets" / "real.jsonl").write_text('{"text": "x"}\n')
    p = run_cli("data", "check", "nope.jsonl", ws=tmp_path, timeout=60)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "nope.jsonl" in p.stderr and "real.jsonl" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_split_set_leakage_is_a_warning(tmp_path):
    d = tmp_path / "training" / "datasets"
    d.mkdir(parents=True)
    train = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(10)]
    val = [{"instruction": "Q2", "output": "a2"}, {"instruction": "fresh", "output": "b"},
           {"instruction": "q9", "output": "a9  "}]
    (d / "qa.train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (d / "qa.val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in val))
    p = run_cli("data", "check", "qa", "--json", ws=tmp_path, timeout=60)
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["rows"] == 13 and report["errors"] == []
    leaks = [w for w in report["warnings"] if "leakage" in w["message"]]
    assert len(leaks) == 1 and leaks[0]["file"] == "qa.val.jsonl"
    msg = leaks[0]["message"]
    assert "2 of 3 val row(s)" in msg
    assert "qa.val.jsonl:1 = qa.train.jsonl:3" in msg and "qa.val.jsonl:3 = qa.train.jsonl:10" in msg
    p = run_cli("data", "check", "qa", ws=tmp_path, timeout=60)
    assert p.returncode == 0 and "train/val leakage" in p.stdout
    # one file of the set checked alone: nothing to leak into
    p = run_cli("data", "check", "qa.val.jsonl", "--json", ws=tmp_path, timeout=60)
    assert not [w for w in json.loads(p.stdout)["warnings"] if "leakage" in w["message"]]
