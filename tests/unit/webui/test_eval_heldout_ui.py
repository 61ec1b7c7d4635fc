"""The Evaluate tab's test-file picker and result lines, without a browser."""

from __future__ import annotations

import pytest

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.evaluate.metric_choice import metric_notes
from tunestudio.webui.tabs.evaluate.heldout import OWN, file_choices, stored_test_file
from tunestudio.webui.tabs.evaluate.tables import result_lines


def test_the_picker_offers_the_runs_split_then_every_dataset_file(workspace, tmp_path):
    ws = Workspace(workspace).ensure()
    (ws.datasets_dir / "b.jsonl").write_text("{}\n")
    upload = tmp_path / "heldout.jsonl"
    upload.write_text('{"prompt": "q", "completion": "a"}\n')
    assert stored_test_file(ws, str(upload)) == "heldout.jsonl"
    assert (ws.datasets_dir / "heldout.jsonl").read_bytes() == upload.read_bytes()
    assert stored_test_file(ws, str(upload)) == "heldout.jsonl"   # the same file again: picked, not refused
    assert file_choices(ws, "en") == [("the run's own split (pick it beside)", OWN), ("b.jsonl", "b.jsonl"),
                                           ("heldout.jsonl", "heldout.jsonl")]
    upload.write_text('{"prompt": "other", "completion": "b"}\n')
    with pytest.raises(UserError) as e:   # another file of that name: never overwritten
        stored_test_file(ws, str(upload))
    assert e.value.code == "upload_exists"


def _rows(*ems):
    return [{"where": f"f:{i}", "scores": {"exact_match": em}, "reference": "a", "prediction": "b"}
            for i, em in enumerate(ems)]


def test_the_result_says_how_many_are_right_and_why_bleu_reads_zero():
    assert result_lines("en", {"rows": _rows(1.0, 1.0), "primary_metric": "exact_match"}) == \
        "\n\nAll 2 examples are exactly right (exact match)."
    assert result_lines("en", {"rows": _rows(0.0, 1.0, 0.0), "primary_metric": "exact_match"}) == \
        "\n\n2 of 3 examples are not exactly right (exact match): the table lists them first."
    notes = [{"code": n.code, "message": str(n), **n.fields} for n in metric_notes(["bleu"], ["yes", "no"])]
    text = result_lines("tet", {"rows": _rows(1.0), "primary_metric": "exact_match", "metric_notes": notes})
    assert "bleu: BLEU konta sekuénsia liafuan 4" in text and "Ezemplu 1 hotu loos duni" in text
