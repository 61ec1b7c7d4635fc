"""Splits: seeded and reproducible, explicit split files used, recorded info reloads the same rows."""

from __future__ import annotations

import json

import pytest

from tunestudio.data.split import load_splits, resolve_dataset, splits_from_info
from tunestudio.errors import UserError
from tunestudio.workspace import Workspace


def write_rows(path, n, start=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + "\n"
                            for i in range(start, start + n)))


def answers(records):
    return [r.reference() for r in records]


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path).ensure()


def test_same_seed_same_split_other_seed_other_split(ws):
    write_rows(ws.datasets_dir / "d.jsonl", 100)
    a = load_splits(ws, "d.jsonl", val_split=0.1, test_split=0.2, seed=1)
    b = load_splits(ws, "d.jsonl", val_split=0.1, test_split=0.2, seed=1)
    c = load_splits(ws, "d.jsonl", val_split=0.1, test_split=0.2, seed=2)
    assert (len(a.train), len(a.val), len(a.test)) == (70, 10, 20)
    assert answers(a.test) == answers(b.test) and answers(a.val) == answers(b.val)
    assert answers(a.test) != answers(c.test)
    everything = answers(a.train) + answers(a.val) + answers(a.test)
    assert sorted(everything) == sorted(f"a{i}" for i in range(100))   # disjoint and complete
    assert a.info["seed"] == 1 and a.info["files"]["all"]["sha256"] and a.info["hash"]
    assert a.info["rows"]["test"] == [f"all:{r.line}" for r in a.test]


def test_splits_from_info_reproduces_and_refuses_changed_file(ws):
    write_rows(ws.datasets_dir / "d.jsonl", 30)
    s = load_splits(ws, "d.jsonl", seed=7)
    info = json.loads(json.dumps(s.info))   # what a run folder stores
    again = splits_from_info(ws, info)
    assert [r.to_dict() for r in again.test] == [r.to_dict() for r in s.test]
    assert [r.to_dict() for r in again.train] == [r.to_dict() for r in s.train]
    write_rows(ws.datasets_dir / "d.jsonl", 31)
    with pytest.raises(UserError, match="changed since the split"):
        splits_from_info(ws, info)


def test_split_files_are_used(ws):
    write_rows(ws.datasets_dir / "set.train.jsonl", 20)
    write_rows(ws.datasets_dir / "set.val.jsonl", 3, start=100)
    write_rows(ws.datasets_dir / "set.test.csv".replace(".csv", ".jsonl"), 4, start=200)
    s = load_splits(ws, "set")
    assert answers(s.val) == ["a100", "a101", "a102"]
    assert answers(s.test) == ["a200", "a201", "a202", "a203"]
    assert len(s.train) == 20
    assert set(s.info["files"]) == {"train", "val", "test"}
    assert answers(splits_from_info(ws, s.info).test) == answers(s.test)


def test_missing_val_file_is_carved_from_train(ws):
    write_rows(ws.datasets_dir / "set.train.jsonl", 20)
    write_rows(ws.datasets_dir / "set.test.jsonl", 5, start=100)
    s = load_splits(ws, "set", val_split=0.1, test_split=0.3)
    assert len(s.val) == 2 and len(s.train) == 18     # test fraction ignored: there is a test file
    assert answers(s.test) == [f"a{i}" for i in range(100, 105)]


def test_tiny_datasets(ws):
    write_rows(ws.datasets_dir / "three.jsonl", 3)
    s = load_splits(ws, "three.jsonl")
    assert (len(s.train), len(s.val), len(s.test)) == (1, 1, 1)   # a fraction > 0 keeps at least one row
    write_rows(ws.datasets_dir / "two.jsonl", 2)
    with pytest.raises(UserError, match="too few"):
        load_splits(ws, "two.jsonl")
    s = load_splits(ws, "two.jsonl", val_split=0, test_split=0)
    assert len(s.train) == 2 and s.val == [] and s.test == []


def test_errors_name_file_and_line(ws):
    write_rows(ws.datasets_dir / "bad.jsonl", 30)
    with open(ws.datasets_dir / "bad.jsonl", "a") as f:
        f.write("{oops\n" * 25)
    with pytest.raises(UserError) as e:
        load_splits(ws, "bad.jsonl")
    msg = str(e.value)
    assert "bad.jsonl:31: invalid JSON" in msg and "bad.jsonl:50:" in msg and "bad.jsonl:51:" not in msg
    assert "... and 5 more" in msg


def test_resolve_names(ws):
    write_rows(ws.datasets_dir / "only.jsonl", 3)
    assert resolve_dataset(ws, "only")["all"].name == "only.jsonl"       # extension may be left out
    assert resolve_dataset(ws, str(ws.datasets_dir / "only.jsonl"))["all"].name == "only.jsonl"
    with pytest.raises(UserError, match="available: only.jsonl"):
        resolve_dataset(ws, "other")
    with pytest.raises(UserError):
        load_splits(ws, "only.jsonl", val_split=0.6, test_split=0.5)
