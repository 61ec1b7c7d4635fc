"""Plain text as a token stream: no token of any document is lost, the split is by document
before blocking, a one-article-per-line file is one document per line (`data stats` and
training on it: test_data_stream_e2e.py)."""

from __future__ import annotations

import pytest
from data_helpers import stream_documents

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.data.encoding import stream as S
from tunestudio.data.encoding.encode import IGNORE, encode
from tunestudio.data.formats.load import load_file
from tunestudio.data.formats.records import Record
from tunestudio.data.split import load_splits

MODEL = "tiny-demo"


def _blocks(enc) -> list[tuple[list[int], list[int]]]:
    return [(e["input_ids"], e["labels"]) for e in enc.examples]


def test_every_token_of_a_multi_document_file_is_in_exactly_one_block(demo_ws, tok):
    docs = stream_documents(40)
    (demo_ws / "training" / "datasets" / "corpus.txt").write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    splits = load_splits(Workspace(demo_ws), "corpus.txt", val_split=0.2, test_split=0.0, seed=3)
    assert len(splits.train) + len(splits.val) == 40 and len(splits.val) == 8
    cache = Workspace(demo_ws).encoded_cache_dir
    seen: list[int] = []   # each document's stream tokens, found back in the blocks
    for part in (splits.train, splits.val):
        enc = encode(part, tok, 32, cache_dir=cache, text_mode="stream")
        blocks = _blocks(enc)
        assert all(len(ids) == 32 for ids, _ in blocks[:-1]) and 0 < len(blocks[-1][0]) <= 32
        # the blocks of a split, end to end, are exactly its documents' tokens each ended by eos
        joined = [t for ids, _ in blocks for t in ids]
        want = S.document_ids(tok, [r.text for r in part])
        assert joined == [t for ids in want for t in ids]
        assert enc.stats["tokens"] == len(joined) and enc.stats["blocks"] == len(blocks)
        assert enc.stats["documents"] == len(part) and enc.truncated == 0 and enc.dropped == 0
        # with no overlap every token is trained (labels equal ids)
        assert all(ids == labels for ids, labels in blocks)
        seen += [len(x) for x in want]
    # every document is in one split: the token counts of the whole file, once each
    everything = S.document_ids(tok, docs)
    assert sorted(seen) == sorted(len(x) for x in everything)
    assert sum(seen) == sum(len(x) for x in everything) > 40 * 32 // 4
    # the longest documents are longer than a block: truncating would lose their tails
    assert max(len(x) for x in everything) > 32


def test_stride_repeats_context_and_trains_each_token_once(tok):
    docs = [Record("c.txt", i + 1, text=t) for i, t in enumerate(stream_documents(12))]
    enc = encode(docs, tok, 24, text_mode="stream", stride=8)
    blocks = _blocks(enc)
    stream = [t for ids in S.document_ids(tok, [d.text for d in docs]) for t in ids]
    trained = [lab for _, labels in blocks for lab in labels if lab != IGNORE]
    assert trained == stream                               # each token trained exactly once, in order
    for (prev, _), (ids, labels) in zip(blocks, blocks[1:]):
        assert ids[:8] == prev[-8:] and labels[:8] == [IGNORE] * 8   # the overlap is context only
    assert enc.stats["block_tokens"] == len(stream) + 8 * (len(blocks) - 1)
    with pytest.raises(UserError, match="--stride must be at least 0 and below --max-length 24"):
        encode(docs, tok, 24, text_mode="stream", stride=24)


def test_truncate_mode_keeps_one_row_per_document(tok):
    docs = [Record("c.txt", i + 1, text=t) for i, t in enumerate(stream_documents(12))]
    enc = encode(docs, tok, 24, text_mode="truncate")
    assert len(enc.examples) == 12 and enc.truncated > 0
    assert all(len(e["input_ids"]) <= 24 for e in enc.examples)


def test_a_file_of_one_article_per_line_is_one_document_per_line(tmp_path):
    lines = [f"Article {i}: a long line of text about topic {i}, read as one document." for i in range(50)]
    path = tmp_path / "articles.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = load_file(path)
    assert not r.errors and [rec.text for rec in r.records] == lines
    assert [rec.line for rec in r.records] == list(range(1, 51))
    # one blank line anywhere: blank lines separate documents, as before
    path.write_text("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:5]) + "\n", encoding="utf-8")
    assert [rec.text for rec in load_file(path).records] == ["\n".join(lines[:2]), "\n".join(lines[2:5])]


def test_block_lines_name_the_document_a_block_starts_in(tok):
    docs = [Record("c.txt", 10 * (i + 1), text=t) for i, t in enumerate(stream_documents(6))]
    enc = encode(docs, tok, 16, text_mode="stream")
    assert enc.examples.where(0) == "c.txt:10"
    lines = [int(x) for x in enc.examples.table.column("line").to_numpy()]
    assert lines == sorted(lines) and set(lines) <= {10, 20, 30, 40, 50, 60}


def test_a_long_document_is_scored_in_windows_not_only_its_tail(demo_template, tok):
    # evaluation on plain text (loss, perplexity, guard sets) counts every window of a long
    # document, as training trains every block: each window's first token has no context
    import torch
    from transformers import AutoModelForCausalLM

    from tunestudio.evaluate.metrics import reference_losses

    model = AutoModelForCausalLM.from_pretrained(demo_template / "models" / "tiny-demo", dtype=torch.float32)
    text = stream_documents(4)[3]
    n = len(tok(text, add_special_tokens=True)["input_ids"])
    assert n > 40
    ticks: list[int] = []
    (loss, count), (_, short) = reference_losses(model, tok, [(None, text), (None, "Short one.")], max_length=16,
                                                 progress=ticks.append)
    assert count == n - -(-n // 16) and short == len(tok("Short one.")["input_ids"]) - 1
    assert loss > 0 and sum(ticks) == 2


@pytest.mark.parametrize("ext", ["json", "csv", "parquet"])
def test_a_text_column_in_any_format_is_streamed(demo_ws, tok, ext):
    import pandas as pd

    from tunestudio.data.quality.stats import stats_dataset

    docs = stream_documents(25)
    path = demo_ws / "training" / "datasets" / f"web.{ext}"
    frame = pd.DataFrame({"text": docs, "url": [f"https://example.org/{i}" for i in range(25)]})
    {"json": lambda: frame.to_json(path, orient="records"), "csv": lambda: frame.to_csv(path, index=False),
     "parquet": lambda: frame.to_parquet(path)}[ext]()
    s = stats_dataset(Workspace(demo_ws), f"web.{ext}", model=MODEL, max_length=48)
    tokens = sum(len(x) for x in S.document_ids(tok, docs))
    assert s["format"] == "text" and s["documents"] == 25
    assert s["stream"]["tokens"] == tokens and s["stream"]["blocks"] == -(-tokens // 48)


def test_a_gutenberg_book_with_bom_and_crlf(tmp_path):
    """A Project Gutenberg book as downloaded: byte-order mark, CRLF line ends, hard-wrapped
    paragraphs between blank lines, the header and licence around marker lines: paragraphs are the
    documents, no CR is left in them, and a warning names the header's and licence's lines."""
    paras = ["Call me Ishmael. Some years ago,\r\nnever mind how long.", "It is a way I have\r\nof driving off the spleen."]
    book = ("The Project Gutenberg eBook of Moby Dick\r\n\r\n*** START OF THE PROJECT GUTENBERG EBOOK MOBY DICK ***\r\n"
            "\r\n\r\n" + "\r\n\r\n".join(paras) + "\r\n\r\n*** END OF THE PROJECT GUTENBERG EBOOK MOBY DICK ***\r\n"
            "\r\nSection 5. General Information.\r\n")
    (tmp_path / "moby.txt").write_bytes(b"\xef\xbb\xbf" + book.encode("utf-8"))
    r = load_file(tmp_path / "moby.txt")
    assert [x.text for x in r.records] == [
        "The Project Gutenberg eBook of Moby Dick", "*** START OF THE PROJECT GUTENBERG EBOOK MOBY DICK ***",
        "Call me Ishmael. Some years ago,\nnever mind how long.", "It is a way I have\nof driving off the spleen.",
        "*** END OF THE PROJECT GUTENBERG EBOOK MOBY DICK ***", "Section 5. General Information."]
    assert [x.line for x in r.records] == [1, 3, 6, 9, 12, 14]
    (w,) = r.warnings
    assert (w.line, w.code) == (3, "gutenberg_boilerplate")
    assert w.message.startswith("this is a Project Gutenberg book: its header and licence (lines 1-3 and 12-14,")
