"""A JSON array written on one line (json.dump without indent, common for files other tools
write): every row starts on line 1, so anything keyed by a row's file:line must tell them apart."""

from __future__ import annotations

import json

from tunestudio.data.formats.load import load_file
from tunestudio.data.formats.records import unique_wheres

REFUSING = ("{% for m in messages %}{% if m.content == 'bad' %}{{ raise_exception('no bad rows') }}{% endif %}"
            "<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _compact(tmp_path, questions):
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": f"a{i}"}]}
            for i, q in enumerate(questions)]
    (tmp_path / "compact.json").write_text(json.dumps(rows))
    return load_file(tmp_path / "compact.json").records


def test_rows_on_one_line_get_distinct_keys(tmp_path):
    records = _compact(tmp_path, ["q0", "q1", "q2"])
    assert [r.where() for r in records] == ["compact.json:1"] * 3
    assert unique_wheres(records) == ["compact.json:1", "compact.json:1#1", "compact.json:1#2"]


def test_eval_leaves_out_only_the_row_the_template_refuses(tmp_path, demo_template):
    """Before: the refused row's file:line was every row's, so eval left them all out."""
    from transformers import AutoTokenizer

    from tunestudio.evaluate.run_eval import _accepted

    tok = AutoTokenizer.from_pretrained(demo_template / "models" / "tiny-demo")
    tok.chat_template = REFUSING
    records = _compact(tmp_path, ["q0", "q1", "bad", "q3"])
    warnings: list = []
    kept = _accepted(records, tok, "keep", warnings)
    assert [r.messages[0]["content"] for r in kept] == ["q0", "q1", "q3"]
    assert "compact.json:1#2" in warnings[0]
