"""The Arrow data path gives exactly what the list-of-Records path gave: the same rows (streamed
or not), the same split, the same fingerprint, the same input_ids/labels, the same batches, and
a cache that is reused and memory-mapped."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import FIXTURES

from tunestudio.data.encoding import encode as E
from tunestudio.data.formats import load as L
from tunestudio.data.formats import readers
from tunestudio.data.formats.digest import content_key
from tunestudio.data.formats.records import Record
from tunestudio.data.formats.table import RecordsView

DATA = FIXTURES / "data"
DEMO_FILES = ("demo-reviews.jsonl", "demo-dates.json", "demo-sharegpt.jsonl", "demo-qa.csv", "demo-text.txt")


@pytest.fixture(scope="module")
def tok(demo_template):
    from transformers import AutoTokenizer

    from tunestudio.data.chat.template import ensure_chat_template

    t = AutoTokenizer.from_pretrained(demo_template / "models" / "tiny-demo")
    ensure_chat_template(t)
    return t


def reference(records: list[Record], tokenizer, max_lengths=(512,), train_on_prompt: bool = False):
    """The encoder as it was before Arrow (lists, one `encode_rows` call for all rows):
    {max_length: (examples, truncated, dropped)}."""
    out = {n: ([], [], []) for n in max_lengths}
    for r, (full_ids, full_mask, _, _) in zip(records, E.encode_rows(records, tokenizer, train_on_prompt)):
        for max_length, (examples, truncated, dropped) in out.items():
            ids, mask = full_ids[:max_length], full_mask[:max_length]
            if int(mask.sum()) < int(full_mask.sum()):
                truncated.append(r.where())
            if not mask.any():
                dropped.append(r.where())
                continue
            examples.append({"input_ids": list(ids), "labels": [i if m else E.IGNORE for i, m in zip(ids, mask)]})
    return out


def check_same(view, tok, want, cache_dir, num_proc):
    """`encode` on the view gives `want` (examples, truncated, dropped) for each max length."""
    rows = list(view)
    for max_length, (examples, truncated, dropped) in want.items():
        assert E.fingerprint(view, tok, max_length, False) == old_fingerprint(rows, tok, max_length, False)
        enc = E.encode(view, tok, max_length, cache_dir=cache_dir, num_proc=num_proc)
        assert not enc.from_cache
        assert list(enc.examples) == examples, (view.source, max_length, num_proc)
        assert (enc.truncated_rows, enc.dropped_rows) == (truncated, dropped), view.source
        assert enc.examples.lengths.tolist() == [len(e["input_ids"]) for e in examples]
        assert [enc.examples.where(i) for i in range(len(examples))] == \
            [r.where() for r in rows if r.where() not in dropped]   # provenance of each example


def old_fingerprint(records, tokenizer, max_length, train_on_prompt):
    import hashlib

    h = hashlib.sha256()
    h.update(json.dumps({"v": E.ENCODER_VERSION, "max_length": max_length, "train_on_prompt": bool(train_on_prompt),
                         "reasoning": "keep", "skip_bad_rows": False}).encode())
    h.update(E.tokenizer_fingerprint(tokenizer).encode())
    for r in records:
        h.update(json.dumps([r.messages, r.text, r.where()], ensure_ascii=False).encode() + b"\n")
    return h.hexdigest()[:32]


def usable_files():
    return [p for d in ("formats", "broken") for p in sorted((DATA / d).iterdir()) if L.load_file(p).records]


def test_arrow_encoding_equals_the_row_by_row_encoder_on_fixtures(tok, tmp_path, monkeypatch):
    monkeypatch.setattr(E, "PART_ROWS", 3)     # several parts per file, as a large file has
    for k, path in enumerate(usable_files()):
        view = L.load_file(path).records
        assert isinstance(view, RecordsView) and len(view), path.name
        want = reference(list(view), tok, (512, 24))
        for num_proc in (1, 2):   # one process, and forked workers writing their own parts
            check_same(view, tok, want, tmp_path / f"{k}-{num_proc}", num_proc)
        assert list(E.encode(list(view), tok, 24).examples) == want[24][0]   # a plain list of Records too


def test_arrow_encoding_equals_the_row_by_row_encoder_on_demo_datasets(tok, demo_template, tmp_path, monkeypatch):
    monkeypatch.setattr(E, "PART_ROWS", 700)
    for k, name in enumerate(DEMO_FILES):
        view = L.load_file(demo_template / "training" / "datasets" / name).records
        rows = list(view)
        check_same(view, tok, reference(rows, tok, (512,)), tmp_path / f"{k}-1", 1)
        head = view.take(range(min(len(view), 300)))   # cut short rows, and two worker processes
        check_same(head, tok, reference(rows[:300], tok, (48,)), tmp_path / f"{k}-2", 2)


def test_cache_is_reused_and_memory_mapped(tok, demo_template, tmp_path):
    import pyarrow as pa

    view = L.load_file(demo_template / "training" / "datasets" / "demo-reviews.jsonl").records
    first = E.encode(view, tok, 128, cache_dir=tmp_path)
    entries = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert [p.name for p in entries] == [first.fingerprint] and (entries[0] / "meta.json").is_file()
    assert list(entries[0].glob("part-*.arrow"))
    before = pa.total_allocated_bytes()
    second = E.encode(view, tok, 128, cache_dir=tmp_path)
    assert second.from_cache and second.stats == first.stats
    assert list(second.examples) == list(first.examples)
    # mapped, not read into Arrow's memory pool
    assert pa.total_allocated_bytes() - before < 64 * 1024
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())   # no staging folder left
    # a damaged entry is encoded again, not trusted
    (entries[0] / "meta.json").write_text("{")
    assert not E.encode(view, tok, 128, cache_dir=tmp_path).from_cache


def test_streamed_jsonl_reads_the_same_rows_and_problems(monkeypatch):
    files = [p for d in ("formats", "broken") for p in sorted((DATA / d).glob("*.jsonl"))]
    whole = {p.name: L.load_file(p) for p in files}
    monkeypatch.setattr(L, "JSONL_IN_MEMORY", 0)     # every JSONL file streamed, in 2-line chunks
    monkeypatch.setattr(readers, "JSONL_CHUNK", 2)
    for p in files:
        streamed = L.load_file(p)
        w = whole[p.name]
        assert (streamed.format, streamed.fields) == (w.format, w.fields), p.name
        assert list(streamed.records) == list(w.records), p.name
        assert [str(e) for e in streamed.errors] == [str(e) for e in w.errors], p.name
        assert [str(e) for e in streamed.warnings] == [str(e) for e in w.warnings], p.name


def test_records_view_behaves_like_a_list():
    records = [Record("f.jsonl", i, messages=[{"role": "user", "content": f"q{i}"},
                                              {"role": "assistant", "content": f"a{i}"}], meta={"n": i})
               for i in range(1, 6)] + [Record("f.jsonl", 9, text="plain")]
    view = RecordsView.from_records(records)
    assert len(view) == 6 and list(view) == records and view == records
    assert view[0] == records[0] and view[-1] == records[-1] and view[1:4] == records[1:4]
    sub = view.take([4, 0, 2])
    assert list(sub) == [records[4], records[0], records[2]] and sub.lines.tolist() == [5, 1, 3]
    assert sub.take([1])[0] == records[0]
    assert RecordsView.from_records([], "f.jsonl") == []
    with pytest.raises(IndexError):
        view[6]


def test_split_on_views_matches_string_keys(tmp_path):
    from tunestudio.core.workspace import Workspace
    from tunestudio.data import split as S

    ws = Workspace(tmp_path)
    ws.ensure()
    rows = [{"instruction": f"Q {i % 37}", "output": f"A {i % 37}"} for i in range(300)]   # many duplicates
    (ws.datasets_dir / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    s = S.load_splits(ws, "d.jsonl", 0.1, 0.2, seed=3)
    records = list(L.load_file(ws.datasets_dir / "d.jsonl").records)
    ids = S.row_ids("all", records)
    want = S.carve("d.jsonl", ids, [content_key(r) for r in records], 0.1, 0.2, 3)   # full-string keys
    assert s.info["rows"] == want
    by_id = dict(zip(ids, records))
    for k in ("train", "val", "test"):
        assert list(getattr(s, k)) == [by_id[i] for i in want[k]]
    again = S.splits_from_info(ws, s.info)
    assert list(again.test) == list(s.test)


def test_sampler_order_is_the_list_based_order():
    from tunestudio.train.batching import LengthGroupedSampler

    def old_order(lengths, group, seed, epoch):
        import torch

        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(len(lengths), generator=g).tolist()
        mega, groups = group * 50, []
        for start in range(0, len(order), mega):
            chunk = sorted(order[start:start + mega], key=lambda i: -lengths[i])
            groups += [chunk[k:k + group] for k in range(0, len(chunk), group)]
        full = [x for x in groups if len(x) == group]
        ragged = [x for x in groups if len(x) != group]
        perm = torch.randperm(len(full), generator=g).tolist()
        return [i for k in perm for i in full[k]] + [i for x in ragged for i in x]

    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 60, size=1234).tolist()    # many equal lengths: stability matters
    for epoch in (0, 1):
        s = LengthGroupedSampler(np.asarray(lengths, dtype=np.int32), 6, 42)
        s.set_epoch(epoch)
        assert list(s) == old_order(lengths, 6, 42, epoch)


def test_loaded_file_is_cached_and_mapped(tmp_path, monkeypatch):
    from tunestudio.core.workspace import Workspace
    from tunestudio.data.formats import loadcache
    from tunestudio.data.split import load_dataset, load_splits

    monkeypatch.setattr(loadcache, "CACHE_MIN_BYTES", 0)
    ws = Workspace(tmp_path)
    ws.ensure()
    path = ws.datasets_dir / "d.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"Q{i}", "output": f"A{i}"}) + "\n" for i in range(50))
                    + "not json\n")
    _, first = load_dataset(ws, "d.jsonl")
    entries = list(ws.loaded_cache_dir.glob("*.arrow"))
    assert len(entries) == 1
    calls = []
    monkeypatch.setattr(L, "load_file", lambda *a, **k: calls.append(a))   # must not be needed
    _, again = load_dataset(ws, "d.jsonl")
    assert calls == [] and list(again["all"].records) == list(first["all"].records)
    assert [str(p) for p in again["all"].errors] == [str(p) for p in first["all"].errors] == \
        ["d.jsonl:51: invalid JSON: Expecting value (column 1)"]
    assert again["all"].format == "alpaca" and again["all"].fields == first["all"].fields
    monkeypatch.undo()
    monkeypatch.setattr(loadcache, "CACHE_MIN_BYTES", 0)
    path.write_text("".join(json.dumps({"instruction": f"Q{i}", "output": f"B{i}"}) + "\n" for i in range(50)))
    s = load_splits(ws, "d.jsonl")          # a changed file is read again, not taken from the cache
    assert {r.reference()[0] for r in s.train} == {"B"}
    assert len(list(ws.loaded_cache_dir.glob("*.arrow"))) == 2
