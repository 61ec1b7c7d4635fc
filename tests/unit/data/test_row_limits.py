"""Hostile or broken data files never raise: a row nested too deep, a lone surrogate, too many
columns, an over-long line are each a Problem at their file:line, the other rows still load, and
each limit is raised by its environment variable (data/formats/readers.py, docs/data.md)."""

from __future__ import annotations

import json
import time

import pytest

from tunestudio.core.errors import UserError
from tunestudio.data.formats import readers
from tunestudio.data.formats.load import load_file
from tunestudio.data.preference import load_pref_file, sniff

GOOD = '{"instruction": "a", "output": "b"}'


def deep(n: int) -> str:
    return "[" * n + "]" * n


def deep_row(n: int, instruction: str = "q") -> str:
    return json.dumps({"instruction": instruction, "output": "b"})[:-1] + f', "x": {deep(n)}}}'


def codes(result) -> list[tuple[int, str]]:
    return [(p.line, p.code) for p in result.errors]


@pytest.mark.parametrize("levels", [150, 5000])
def test_a_jsonl_row_nested_too_deep_is_a_problem_at_its_line(tmp_path, levels):
    f = tmp_path / "deep.jsonl"
    f.write_text("\n".join([GOOD, deep_row(levels), '{"instruction": "c", "output": "d"}']) + "\n")
    r = load_file(f)
    assert codes(r) == [(2, "json_too_deep")]
    assert [rec.line for rec in r.records] == [1, 3]
    assert "nested more than 100 levels deep" in str(r.errors[0]) and "TUNESTUDIO_MAX_DEPTH" in str(r.errors[0])


@pytest.mark.parametrize("levels", [150, 5000])
def test_a_json_array_element_nested_too_deep_is_a_problem_at_its_line(tmp_path, levels):
    f = tmp_path / "deep.json"
    f.write_text("[\n" + GOOD + ",\n" + deep_row(levels) + ',\n{"instruction": "c", "output": "d"}\n]\n')
    r = load_file(f)
    assert codes(r) == [(3, "json_too_deep")]
    assert [rec.line for rec in r.records] == [2, 4]


def test_a_wrapped_json_file_and_a_single_record_too_deep(tmp_path):
    f = tmp_path / "wrapped.json"
    f.write_text('{"data": [\n' + GOOD + ",\n" + deep_row(5000) + "\n]}\n")
    r = load_file(f)
    assert codes(r) == [(3, "json_too_deep")] and [rec.line for rec in r.records] == [2]
    one = tmp_path / "one.json"
    one.write_text("\n" + deep_row(5000) + "\n")
    assert codes(load_file(one)) == [(2, "json_too_deep")]


def test_the_depth_limit_is_raised_by_the_environment_up_to_its_ceiling(tmp_path, monkeypatch):
    f = tmp_path / "deep.jsonl"
    f.write_text(deep_row(150) + "\n" + GOOD + "\n")
    monkeypatch.setenv("TUNESTUDIO_MAX_DEPTH", "200")
    r = load_file(f)
    assert r.errors == [] and len(r.records) == 2
    monkeypatch.setenv("TUNESTUDIO_MAX_DEPTH", "100000")
    assert readers.row_limits().depth == readers.DEPTH_CEILING
    assert codes(load_file(tmp_path / "deep.jsonl")) == []
    (tmp_path / "deeper.jsonl").write_text(deep_row(5000) + "\n" + GOOD + "\n")
    assert codes(load_file(tmp_path / "deeper.jsonl")) == [(1, "json_too_deep")]
    monkeypatch.setenv("TUNESTUDIO_MAX_DEPTH", "lots")
    with pytest.raises(UserError) as e:
        load_file(f)
    assert e.value.code == "row_limit_bad"


@pytest.mark.parametrize("ext", [".jsonl", ".json"])
def test_a_lone_surrogate_is_a_problem_and_a_whole_pair_is_text(tmp_path, ext):
    rows = [GOOD, r'{"instruction": "a\ud800", "output": "b"}', r'{"instruction": "smile \ud83d\ude00", "output": "b"}',
            r'{"instruction": "a", "output": "b", "\udc00key": 1}']
    f = tmp_path / f"s{ext}"
    f.write_text("\n".join(rows) + "\n" if ext == ".jsonl" else "[\n" + ",\n".join(rows) + "\n]\n")
    r = load_file(f)
    first = 1 if ext == ".jsonl" else 2
    assert codes(r) == [(first + 1, "json_lone_surrogate"), (first + 3, "json_lone_surrogate")]
    assert r.errors[0].fields == {"escape": "\\ud800"} and r.errors[1].fields == {"escape": "\\udc00"}
    assert [rec.line for rec in r.records] == [first, first + 2]
    assert r.records[1].messages[0]["content"] == "smile \U0001F600"


def test_a_csv_header_of_a_million_columns_is_refused_at_once(tmp_path):
    f = tmp_path / "wide.csv"
    n = 10**6
    f.write_text(",".join(f"c{i}" for i in range(n)) + "\n" + ",".join("x" * n) + "\n")
    t = time.monotonic()
    r = load_file(f)
    assert time.monotonic() - t < 10
    assert codes(r) == [(1, "csv_too_many_columns")]
    assert r.errors[0].fields == {"columns": n, "limit": readers.MAX_COLUMNS}


def test_the_column_limit_counts_a_json_rows_keys_and_is_raised_by_the_environment(tmp_path, monkeypatch):
    wide = json.dumps({"instruction": "a", "output": "b", **{f"k{i}": i for i in range(20)}})
    f = tmp_path / "keys.jsonl"
    f.write_text(GOOD + "\n" + wide + "\n")
    monkeypatch.setenv("TUNESTUDIO_MAX_COLUMNS", "10")
    r = load_file(f)
    assert codes(r) == [(2, "row_too_many_keys")] and len(r.records) == 1
    c = tmp_path / "wide.csv"
    c.write_text(",".join(f"c{i}" for i in range(11)) + "\n" + ",".join("x" * 11) + "\n")
    assert codes(load_file(c)) == [(1, "csv_too_many_columns")]
    monkeypatch.setenv("TUNESTUDIO_MAX_COLUMNS", "100")
    assert codes(load_file(f)) == []


@pytest.mark.parametrize("ext", [".jsonl", ".csv"])
def test_an_over_long_line_is_a_problem_and_the_lines_after_it_keep_their_numbers(tmp_path, monkeypatch, ext):
    monkeypatch.setenv("TUNESTUDIO_MAX_LINE_BYTES", "1000")
    long = "x" * 3000
    f = tmp_path / f"long{ext}"
    if ext == ".jsonl":
        f.write_text("\n".join([GOOD, json.dumps({"instruction": long, "output": "b"}), '{"instruction": "c", "output": "d"}']) + "\n")
        bad, kept = 2, [1, 3]
    else:
        f.write_text(f"instruction,output\na,b\n{long},y\nc,d\n")
        bad, kept = 3, [2, 4]
    r = load_file(f)
    assert codes(r) == [(bad, "line_too_long")]
    assert r.errors[0].fields["limit"] == 1000 and r.errors[0].fields["size"] > 3000
    assert [rec.line for rec in r.records] == kept


def test_a_large_jsonl_file_read_in_chunks_skips_an_over_long_line_unread(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESTUDIO_MAX_LINE_BYTES", "20000")   # the deep row (10 KB) is within it
    f = tmp_path / "big.jsonl"
    f.write_text("\n".join([GOOD, json.dumps({"instruction": "x" * 50000, "output": "b"}), deep_row(5000),
                            r'{"instruction": "\ud800", "output": "b"}', GOOD]) + "\n")
    errors = []
    rows = [r for chunk in readers.jsonl_chunks(f.name, f, errors) for r in chunk]
    assert [r.line for r in rows] == [1, 5]
    assert [(p.line, p.code) for p in errors] == [(2, "line_too_long"), (3, "json_too_deep"), (4, "json_lone_surrogate")]
    assert errors[0].fields["size"] == len(json.dumps({"instruction": "x" * 50000, "output": "b"}))


def test_preference_files_report_the_same_problems(tmp_path):
    pair = '{"prompt": "p", "chosen": "a", "rejected": "b"}'
    f = tmp_path / "pairs.jsonl"
    f.write_text("\n".join([deep_row(5000), pair, r'{"prompt": "\ud800", "chosen": "a", "rejected": "b"}']) + "\n")
    assert sniff(f) == "pairs"
    ld = load_pref_file(f)
    assert [(p.line, p.code) for p in ld.errors] == [(1, "json_too_deep"), (3, "json_lone_surrogate")]
    assert [r.line for r in ld.records] == [2]


@pytest.mark.parametrize("ext", [".jsonl", ".json"])
def test_grpo_prompt_files_report_a_row_too_deep_or_a_lone_surrogate(tmp_path, ext):
    from tunestudio.data.formats.problems import ProblemError
    from tunestudio.rewards.data import load_prompts

    for bad, code in (('{"prompt": "p", "x": ' + deep(5000) + "}", "json_too_deep"),
                      (r'{"prompt": "p\ud800"}', "json_lone_surrogate")):
        f = tmp_path / f"prompts{ext}"
        rows = ['{"prompt": "fine"}', bad]
        f.write_text("\n".join(rows) + "\n" if ext == ".jsonl" else "[\n" + ",\n".join(rows) + "\n]\n")
        with pytest.raises(ProblemError) as e:
            load_prompts(f)
        assert e.value.problem.code == code
        assert e.value.problem.line == (2 if ext == ".jsonl" else 0)
