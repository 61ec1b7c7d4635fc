"""Splits: seeded and reproducible, explicit split files used, recorded info reloads the same rows."""

from __future__ import annotations

import json

import pytest

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.data.split import load_splits, resolve_dataset, splits_from_info


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


# ---- duplicates stay together; leakage between split files is reported ----

def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"instruction": q, "output": a}) + "\n" for q, a in rows))


def test_duplicates_never_cross_splits_and_split_is_reproducible(ws):
    from tunestudio.data.formats.digest import content_key

    rows = [(f"q{i}", f"a{i}") for i in range(60)]
    # exact and normalised duplicates (case, spacing) of a dozen rows, some several times
    rows += [(f"q{i}", f"a{i}") for i in range(0, 12)]
    rows += [(f"  Q{i} ", f"A{i}") for i in range(0, 12, 2)]
    rows += [(f"q{i}", f"a{i}") for i in range(0, 6)]
    write_jsonl(ws.datasets_dir / "dups.jsonl", rows)
    for seed in range(8):
        s = load_splits(ws, "dups.jsonl", val_split=0.15, test_split=0.15, seed=seed)
        where = {}
        for name in ("train", "val", "test"):
            for r in getattr(s, name):
                where.setdefault(content_key(r), set()).add(name)
        assert all(len(v) == 1 for v in where.values()), seed   # each group in one split
        assert len(s.train) + len(s.val) + len(s.test) == len(rows)
        n = len(rows)
        assert 0 < len(s.test) <= round(0.15 * n) and 0 < len(s.val) <= round(0.15 * n)
        assert not [w for w in s.warnings if "leakage" in w.message]
        again = load_splits(ws, "dups.jsonl", val_split=0.15, test_split=0.15, seed=seed)
        assert again.info["rows"] == s.info["rows"]                           # deterministic
        info = json.loads(json.dumps(s.info))
        back = splits_from_info(ws, info)
        for name in ("train", "val", "test"):
            assert [r.to_dict() for r in getattr(back, name)] == [r.to_dict() for r in getattr(s, name)]


def test_without_duplicates_the_split_is_unchanged(ws):
    """Grouping must not move rows of a file without duplicates (recorded runs stay comparable)."""
    import hashlib

    write_rows(ws.datasets_dir / "d.jsonl", 50)
    s = load_splits(ws, "d.jsonl", val_split=0.1, test_split=0.2, seed=3)
    ids = s.info["rows"]["train"] + s.info["rows"]["val"] + s.info["rows"]["test"]
    order = sorted(ids, key=lambda rid: hashlib.sha256(f"3:{rid}".encode()).hexdigest())
    assert set(s.info["rows"]["test"]) == set(order[:10])
    assert set(s.info["rows"]["val"]) == set(order[10:15])


def test_all_rows_equal_keeps_training_rows(ws):
    write_jsonl(ws.datasets_dir / "same.jsonl", [("q", "a")] * 10)
    s = load_splits(ws, "same.jsonl")
    assert len(s.train) == 10 and s.val == [] and s.test == []
    assert any("split is empty" in w.message for w in s.warnings)


def test_split_files_sharing_rows_warn_with_files_and_lines(ws):
    train = [(f"q{i}", f"a{i}") for i in range(20)]
    test = [("q3", "a3"), ("new", "x"), ("  Q5\n", "A5 "), ("q7", "other answer")] + \
           [(f"q{i}", f"a{i}") for i in range(10, 18)]
    write_jsonl(ws.datasets_dir / "set.train.jsonl", train)
    write_jsonl(ws.datasets_dir / "set.test.jsonl", test)
    s = load_splits(ws, "set", val_split=0)
    leaks = [w for w in s.warnings if "leakage" in w.message]
    assert len(leaks) == 1
    w = leaks[0]
    assert w.file == "set.test.jsonl"
    assert "10 of 12 test row(s)" in w.message
    assert "set.test.jsonl:1 = set.train.jsonl:4" in w.message       # first ones named, with lines
    assert "set.test.jsonl:3 = set.train.jsonl:6" in w.message       # case and spaces ignored
    assert "set.test.jsonl:2 " not in w.message and "set.test.jsonl:4 " not in w.message
    assert "and 5 more" in w.message
    again = splits_from_info(ws, json.loads(json.dumps(s.info)))
    assert [x.message for x in again.warnings] == [x.message for x in s.warnings]


def test_split_files_without_shared_rows_do_not_warn(ws):
    write_rows(ws.datasets_dir / "set.train.jsonl", 20)
    write_rows(ws.datasets_dir / "set.val.jsonl", 3, start=100)
    assert not [w for w in load_splits(ws, "set").warnings if "leakage" in w.message]
