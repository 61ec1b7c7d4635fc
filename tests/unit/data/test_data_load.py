"""Every supported format and alias read into the records a user expects, with source and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import FIXTURES

from tunestudio.core.errors import UserError
from tunestudio.data.formats.load import load_file, parse_mapping

FORMATS = FIXTURES / "data" / "formats"


def chat(*turns):
    return [{"role": r, "content": c} for r, c in turns]


def load(name, **kw):
    result = load_file(FORMATS / name, **kw)
    assert result.errors == [], [str(p) for p in result.errors]
    return result


def test_alpaca_json_array_lines_system_input_and_meta():
    r = load("alpaca.json")
    assert r.format == "alpaca"
    assert [x.line for x in r.records] == [2, 8, 9]  # the line where each array element starts
    assert r.records[0].messages == chat(("user", "Translate to French.\n\nGood morning"), ("assistant", "Bonjour"))
    assert r.records[1].messages == chat(("user", "Name a primary colour."), ("assistant", "Red"))  # empty input: no "\n\n"
    assert r.records[2].messages == chat(("system", "You are terse."), ("user", "Add the numbers.\n\n2 and 3"),
                                         ("assistant", "5"))
    assert r.records[0].meta == {"category": "translation"}
    assert {x.source for x in r.records} == {"alpaca.json"}


def test_alpaca_jsonl_skips_blank_lines_keeps_line_numbers():
    r = load("alpaca.jsonl")
    assert [x.line for x in r.records] == [1, 3]
    assert r.records[1].messages == chat(("user", "Say hi."), ("assistant", "hi"))
    assert r.records[1].meta == {"id": 7}


def test_prompt_completion():
    r = load("prompt_completion.jsonl")
    assert r.format == "alpaca" and r.fields == {"instruction": "prompt", "output": "completion"}
    assert r.records[0].messages == chat(("user", "The capital of France is"), ("assistant", " Paris"))
    assert r.records[0].reference() == " Paris"


def test_question_answer_csv_multiline_cell_and_row_lines():
    r = load("qa.csv")
    assert r.fields == {"instruction": "question", "output": "answer"}
    assert [x.line for x in r.records] == [2, 4]  # header is line 1; row 1 spans lines 2-3
    assert r.records[0].messages[1]["content"] == "Water,\nthe liquid"
    assert r.records[1].meta == {"source": "bio"}


def test_query_context_response_tsv():
    r = load("query_response.tsv")
    assert r.fields == {"instruction": "query", "input": "context", "output": "response"}
    assert r.records[0].messages == chat(("user", "Summarise\n\nA long text."), ("assistant", "Short."))
    assert r.records[1].messages == chat(("user", "Count the words"), ("assistant", "three"))


def test_openai_messages_multi_turn_and_content_parts():
    r = load("messages.jsonl")
    assert r.format == "messages"
    assert r.records[0].messages == chat(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!"),
                                         ("user", "Bye"), ("assistant", "Goodbye."))
    assert r.records[0].meta == {"id": "a1"}
    assert r.records[0].reference() == "Goodbye."
    assert r.records[1].messages[0]["content"] == "Part one. Part two."


def test_openai_developer_role_is_the_system_turn(tmp_path):
    import json

    row = {"messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                        {"role": "assistant", "content": "Hello!", "refusal": None, "annotations": []}]}
    (tmp_path / "dev.jsonl").write_text(json.dumps(row) + "\n")
    r = load_file(tmp_path / "dev.jsonl")
    assert not r.errors and r.records[0].messages == chat(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!"))


def test_sharegpt_wrapped_object_and_role_names():
    r = load("sharegpt.json")
    assert r.format == "sharegpt"
    assert [x.line for x in r.records] == [3, 10]  # the "{" of each conversation
    assert r.records[0].messages == chat(("system", "You help."), ("user", "What is 1+1?"), ("assistant", "2"))
    assert [m["role"] for m in r.records[1].messages] == ["user", "assistant", "user", "assistant"]
    assert r.records[1].meta == {"source": "chat-log"}


def test_sharegpt_top_level_system_column():
    r = load("sharegpt.jsonl")
    assert r.records[0].messages == chat(("system", "Reply with one word."), ("user", "Ping"), ("assistant", "Pong"))


def test_plain_text_blank_lines_and_separator():
    r = load("text.txt")
    assert r.format == "text"
    assert [(x.line, x.text) for x in r.records] == [
        (1, "First document,\nstill the first."), (5, "Second document."), (7, "Third\ndocument.")]
    r = load("text_sep.txt", separator="<|doc|>")
    assert [(x.line, x.text) for x in r.records] == [(1, "doc one"), (2, "doc two\nline two"), (3, "doc three")]


def test_plain_text_separator_as_typed_and_split_warnings(tmp_path):
    articles = [f"Article {i} is about topic {i}." for i in range(30)]
    (tmp_path / "lines.txt").write_text("\n".join(articles) + "\n")
    r = load_file(tmp_path / "lines.txt", separator="\\n")   # typed in a shell: backslash and n
    assert len(r.records) == 30 and not r.warnings
    r = load_file(tmp_path / "lines.txt", separator="<|doc|>")
    assert len(r.records) == 1 and "the separator '<|doc|>' does not occur in the file" in r.warnings[0].message
    # one stray blank line in a one-article-per-line corpus: two documents, and a warning that says why
    (tmp_path / "stray.txt").write_text("\n".join(articles[:15]) + "\n\n" + "\n".join(articles[15:]) + "\n")
    r = load_file(tmp_path / "stray.txt")
    assert len(r.records) == 2
    assert r.warnings[0].message.startswith("split on blank lines into 2 document(s) of 30 lines")
    # real paragraphs: no warning
    (tmp_path / "paras.txt").write_text("\n\n".join("\n".join(articles[i:i + 3]) for i in range(0, 30, 3)))
    r = load_file(tmp_path / "paras.txt")
    assert len(r.records) == 10 and not r.warnings


def test_text_jsonl():
    r = load("text.jsonl")
    assert r.format == "text"
    assert [x.text for x in r.records] == ["Once upon a time.", "The end."]
    assert r.records[1].meta == {"lang": "en"}


def test_text_label_csv_is_an_instruction_pair():
    r = load("classify.csv")
    assert r.format == "alpaca" and r.fields == {"instruction": "text", "output": "label"}
    assert r.records[1].messages == chat(("user", "Boring and long"), ("assistant", "negative"))


def test_explicit_format_and_mapping():
    bad = load_file(FORMATS / "custom.jsonl")
    assert bad.errors and "cannot tell the format" in bad.errors[0].message
    r = load("custom.jsonl", fmt="alpaca", mapping="instruction=q,output=a")
    assert r.records[0].messages == chat(("user", "Colour of the sky?"), ("assistant", "Blue"))
    assert r.records[0].meta == {"note": "easy"}
    assert r.describe() == "alpaca (instruction=q, output=a)"


def test_mapping_overrides_detection():
    # Without a mapping "label"-less qa.csv reads question->answer; map the answer to another column.
    r = load("qa.csv", mapping={"output": "source"})
    assert r.records[0].messages[1]["content"] == "chem"
    assert r.records[0].meta == {"answer": "Water,\nthe liquid"}


def test_bad_mapping_and_format_are_user_errors():
    with pytest.raises(UserError, match="unknown field 'answer'"):
        parse_mapping("answer=x")
    with pytest.raises(UserError, match="FIELD=COLUMN"):
        parse_mapping("instruction")
    with pytest.raises(UserError, match="--format 'xml'"):
        load_file(FORMATS / "alpaca.json", fmt="xml")


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist([
        {"instruction": "a", "output": "b", "n": 1},
        {"instruction": "c", "output": None, "n": 2},
        {"messages": None, "instruction": "e", "output": "f", "n": 3},
    ]), path)
    r = load_file(path)
    assert r.format == "alpaca"
    assert [(x.line, x.messages[1]["content"], x.meta["n"]) for x in r.records] == [(1, "b", 1), (3, "f", 3)]
    assert [(p.line, p.message) for p in r.errors] == [(2, "null value in 'output' (response)")]


def test_parquet_conversations(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "chat.parquet"
    pq.write_table(pa.Table.from_pylist([
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}]), path)
    r = load_file(path)
    assert r.format == "sharegpt"
    assert r.records[0].messages == chat(("user", "hi"), ("assistant", "yo"))


def test_json_lines_in_a_json_file_and_bom(tmp_path):
    shutil.copy(FORMATS / "prompt_completion.jsonl", tmp_path / "pc.json")
    r = load_file(tmp_path / "pc.json")
    assert [x.line for x in r.records] == [1, 2] and r.warnings
    (tmp_path / "bom.csv").write_bytes("\ufeffinstruction,output\nå,ø\n".encode())
    r = load_file(tmp_path / "bom.csv")
    assert r.errors == [] and r.records[0].messages[0]["content"] == "å"


def test_strict_raises_for_unusable_file(tmp_path):
    (tmp_path / "x.doc").write_text("hi")
    assert load_file(tmp_path / "x.doc").errors[0].line == 0
    with pytest.raises(UserError, match="x.doc"):
        load_file(tmp_path / "x.doc", strict=True)


def test_corpus_document_columns_are_text(tmp_path):
    """The Stack's `content` and RedPajama's `raw_content` are a corpus's documents, read as text
    without --map; `content` beside an answer column is not a corpus."""
    import json

    (tmp_path / "stack.jsonl").write_text(
        "".join(json.dumps({"content": f"def f{i}():\n    return {i}\n", "size": 30}) + "\n" for i in range(3)))
    (tmp_path / "rp.jsonl").write_text(json.dumps({"raw_content": "Ein Dokument.", "doc_id": 7}) + "\n")
    (tmp_path / "labels.jsonl").write_text(json.dumps({"content": "good film", "label": "positive"}) + "\n")
    stack = load_file(tmp_path / "stack.jsonl")
    assert stack.format == "text" and stack.fields == {"text": "content"} and not stack.errors
    assert [r.text for r in stack.records] == [f"def f{i}():\n    return {i}\n" for i in range(3)]
    assert stack.records[0].meta == {"size": 30}
    rp = load_file(tmp_path / "rp.jsonl")
    assert rp.fields == {"text": "raw_content"} and rp.records[0].text == "Ein Dokument."
    assert load_file(tmp_path / "labels.jsonl").format != "text"


def test_compressed_file_says_how_to_decompress_it(tmp_path):
    import gzip

    with gzip.open(tmp_path / "c4.json.gz", "wt") as f:
        f.write('{"text": "a"}\n')
    (err,) = load_file(tmp_path / "c4.json.gz").errors
    assert err.line == 0 and err.message == (
        "compressed file: decompress it first (gunzip -k c4.json.gz, which writes c4.json), then use c4.json")


@pytest.mark.parametrize("encoding, iconv, language, rows", [
    ("cp932", "CP932", "Japanese", [("質問", "回答"), ("日本の首都はどこですか？", "東京です。"), ("富士山の高さは？", "３７７６ｍです。")]),
    ("gbk", "GB18030", "Chinese", [("问题", "回答"), ("中国的首都是哪里？", "北京。"), ("给出一个建议", "多吃蔬菜。")]),
    ("cp949", "CP949", "Korean", [("질문", "답변"), ("한국의 수도는 어디인가요?", "서울입니다."), ("안녕하세요", "반갑습니다.")]),
])
def test_a_cjk_file_not_in_utf8_names_its_encoding_once(tmp_path, encoding, iconv, language, rows):
    """Excel saves CSV in the system's legacy encoding: one error naming it and the command that
    converts the file, instead of a 'not valid UTF-8' error on every line."""
    (tmp_path / "qa.csv").write_bytes("".join(f"{a},{b}\n" for a, b in rows).encode(encoding))
    r = load_file(tmp_path / "qa.csv")
    assert [(e.line, e.code) for e in r.errors] == [(0, "legacy_encoding")]
    assert f"it reads as {iconv} ({language})," in r.errors[0].message
    assert r.errors[0].message.endswith(f"iconv -f {iconv} -t UTF-8 qa.csv > utf8-qa.csv")


def test_a_json_array_on_one_line_says_problems_cannot_name_rows(tmp_path):
    """json.dump without indent puts every row on line 1: said once, with how to fix it."""
    import json

    rows = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(5)]
    (tmp_path / "compact.json").write_text(json.dumps(rows))
    r = load_file(tmp_path / "compact.json")
    assert len(r.records) == 5 and not r.errors
    assert [(w.line, w.code, w.fields) for w in r.warnings] == [(1, "json_rows_share_lines", {"rows": 5})]
    (tmp_path / "indented.json").write_text(json.dumps(rows, indent=1))
    assert load_file(tmp_path / "indented.json").warnings == []


def test_the_load_cache_key_covers_every_module_that_reads_rows():
    """The load cache is keyed by the source of the modules that decide what a row becomes: a
    module load.py reaches (directly or not) and the key leaves out would serve stale rows after
    it changes (glaive.py, pycalls.py and textdocs.py were missing once)."""
    import ast
    import inspect

    from tunestudio.data.formats import loadcache

    data = Path(loadcache.__file__).resolve().parents[1]   # tunestudio/data
    reached, todo = set(), ["formats/load.py"]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        for node in ast.walk(ast.parse((data / name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tunestudio.data."):
                modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                todo += [m.removeprefix("tunestudio.data.").replace(".", "/") + ".py" for m in modules
                         if (data / (m.removeprefix("tunestudio.data.").replace(".", "/") + ".py")).exists()]
    source = ast.parse(inspect.getsource(loadcache._code_version))
    keyed = {e.value for t in ast.walk(source) if isinstance(t, ast.Tuple) for e in t.elts if isinstance(e, ast.Constant)}
    assert reached - {"formats/loadcache.py"} <= keyed, sorted(reached - keyed)


def test_a_large_jsonl_not_in_utf8_names_its_encoding_once(tmp_path, monkeypatch):
    """The same for a JSON Lines file read in streaming passes (over 32 MB)."""
    import json

    from tunestudio.data.formats import load as L

    monkeypatch.setattr(L, "JSONL_IN_MEMORY", 0)
    rows = [{"instruction": f"给出三个关于健康饮食的建议。第{i}条", "output": "多吃蔬菜，少喝含糖饮料，规律进食。"} for i in range(50)]
    (tmp_path / "belle.jsonl").write_bytes("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("gbk"))
    r = load_file(tmp_path / "belle.jsonl")
    assert [(e.line, e.code) for e in r.errors] == [(0, "legacy_encoding")]
    assert r.errors[0].message.endswith("iconv -f GB18030 -t UTF-8 belle.jsonl > utf8-belle.jsonl")
