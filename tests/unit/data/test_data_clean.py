"""`data clean` in-process: the input is never changed, token limits and split sets, and near-duplicates
found fast and only for the same answer (the command: test_data_clean_cli.py)."""

from __future__ import annotations

import json
import random
import shutil

from data_helpers import chat_row, file_sha256, read_jsonl
from helpers import FIXTURES
from workspaces import make_tiny_model

from tunestudio.core.workspace import Workspace
from tunestudio.data.formats.load import load_file
from tunestudio.data.formats.records import Record
from tunestudio.data.quality.clean import clean_dataset
from tunestudio.data.quality.neardup import near_duplicates

BROKEN = FIXTURES / "data" / "broken"


def test_clean_broken_corpus_never_touches_input(tmp_path):
    ws = Workspace(tmp_path).ensure()
    shutil.copytree(BROKEN, ws.datasets_dir, dirs_exist_ok=True)
    hashes = {p.name: file_sha256(p) for p in ws.datasets_dir.iterdir()}
    for name in hashes:
        try:
            results = clean_dataset(ws, name)
        except Exception as e:   # files with nothing readable are refused with a UserError
            assert type(e).__name__ == "UserError" and name in str(e)
            continue
        for r in results:
            loaded = load_file(ws.datasets_dir / name)
            assert r.kept == len(loaded.records) - sum(rm.reason != "error" and rm.reason != "empty"
                                                       for rm in r.removals)
            reported = {(x["line"], x["reason"]) for x in read_jsonl(r.report)}
            assert {(p.line, "empty" if p.message.startswith("empty") else "error") for p in loaded.errors} <= reported
    assert {p.name: file_sha256(p) for p in ws.datasets_dir.iterdir() if p.name in hashes} == hashes


def test_max_tokens(tmp_path):
    ws = Workspace(tmp_path).ensure()
    make_tiny_model(ws.models_dir / "tiny")
    (ws.datasets_dir / "t.jsonl").write_text(
        json.dumps(chat_row("short one", "ok")) + "\n" + json.dumps(chat_row(" ".join(["w"] * 30), "ok")) + "\n")
    [r] = clean_dataset(ws, "t.jsonl", model="tiny", max_tokens=20)
    assert r.kept == 1 and r.removed == {"too-long": 1}
    assert read_jsonl(r.report)[0]["line"] == 2 and "33 tokens" in read_jsonl(r.report)[0]["detail"]


def test_split_set_cleans_into_a_split_set(tmp_path):
    ws = Workspace(tmp_path).ensure()
    (ws.datasets_dir / "s.train.jsonl").write_text(json.dumps(chat_row("a", "b")) + "\n"
                                                   + json.dumps(chat_row("a", "b")) + "\n")
    (ws.datasets_dir / "s.test.jsonl").write_text(json.dumps(chat_row("c", "d")) + "\n")
    results = clean_dataset(ws, "s")
    assert sorted(r.output.name for r in results) == ["s.clean.test.jsonl", "s.clean.train.jsonl"]
    from tunestudio.data.split import resolve_dataset
    assert set(resolve_dataset(ws, "s.clean")) == {"train", "test"}


def test_near_duplicates_fast_and_only_same_answer():
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    records = []
    for i in range(10_000):
        prompt = " ".join(rng.choice(words) for _ in range(rng.randint(8, 30)))
        records.append(Record("f", i + 1, messages=[{"role": "user", "content": prompt},
                                                     {"role": "assistant", "content": rng.choice(["yes", "no"])}]))
    # a copy with other case and an extra full stop, same answer; and a copy with another answer
    base = records[10].messages
    records.append(Record("f", 10_001, messages=[{"role": "user", "content": base[0]["content"].upper() + "."},
                                                  base[1]]))
    other = "no" if base[1]["content"] == "yes" else "yes"
    records.append(Record("f", 10_002, messages=[base[0], {"role": "assistant", "content": other}]))
    found = near_duplicates(records)   # bench/data_scale.py measures how fast
    assert found == {10_000: 10}


def test_large_blocks_use_minhash_and_find_the_same_rows(monkeypatch):
    """A block too large to compare exactly (a million-row classification set answers "yes" in
    half its rows) is searched with MinHash/LSH; with template text taken from a sample of the
    rows, the rows it drops are the ones the exact search drops."""
    from tunestudio.data.quality import neardup

    rng = random.Random(1)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(2000)]
    records = [Record("f", i + 1, messages=[
        {"role": "user", "content": "Answer yes or no. " + " ".join(rng.choice(words) for _ in range(rng.randint(8, 30)))},
        {"role": "assistant", "content": rng.choice(["yes", "no"])}]) for i in range(3000)]
    originals = rng.sample(range(3000), 25)
    for k, i in enumerate(originals):   # a copy with other case and a full stop
        user, answer = records[i].messages
        records.append(Record("f", 3001 + k, messages=[
            {"role": "user", "content": user["content"].upper() + "."}, answer]))
    exact = near_duplicates(records)
    assert exact == {3000 + k: i for k, i in enumerate(originals)}
    monkeypatch.setattr(neardup, "EXACT_BLOCK", 100)
    monkeypatch.setattr(neardup, "DF_SAMPLE", 500)
    assert near_duplicates(records) == exact


def test_shared_template_and_system_prompt_are_not_near_duplicates():
    system = "You are a careful assistant that classifies customer reviews. " * 10
    instruction = "Classify the sentiment of the following review as positive or negative."
    reviews = [f"{a} {b}" for a in ("Great", "Superb", "Loved it", "Works well", "Nice one", "Top notch")
               for b in ("phone", "lamp", "kettle", "chair", "bike")]
    records = [Record("f", i + 1, messages=[{"role": "system", "content": system},
                                            {"role": "user", "content": f"{instruction}\n\n{r}, order #{i}"},
                                            {"role": "assistant", "content": "positive"}])
               for i, r in enumerate(reviews)]
    assert near_duplicates(records) == {}
    # ... but the same review again with a small edit is one
    copy = records[7].messages[1]["content"].replace("Superb", "SUPERB ")
    records.append(Record("f", 99, messages=[records[7].messages[0], {"role": "user", "content": copy},
                                             records[7].messages[2]]))
    assert near_duplicates(records) == {30: 7}


def test_tool_rows_are_near_duplicates_only_with_the_same_calls_and_tools():
    """Calling turns have no text: their calls are what is compared; and the same words offered
    other functions are another example."""
    def row(line, city, tools):
        call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": city}}}
        return Record("f", line, tools=tools, messages=[
            {"role": "user", "content": "What is the weather like where I am going next week, please?"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "content": "sunny"},
            {"role": "assistant", "content": "It will be sunny."}])

    weather = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    more = weather + [{"type": "function", "function": {"name": "get_time", "parameters": {}}}]
    records = [row(1, "Reykjavik", weather), row(2, "Montevideo", weather), row(3, "Reykjavik", more),
               row(4, "Reykjavik", weather)]
    assert near_duplicates(records) == {3: 0}   # positions: the 4th row repeats the 1st (before: 2nd and 3rd too)
