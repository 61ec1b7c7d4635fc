"""The evaluation report's groupings: a confusion matrix of labels with per-label precision and recall,
scores by answer length, worst examples first (`tunestudio eval`: test_eval_cli.py)."""

from __future__ import annotations

from tunestudio.evaluate import report


def _row(ref, pred, words=3):
    return {"index": 0, "where": "d:1", "input": " ".join(["w"] * words), "reference": ref,
            "prediction": pred, "scores": {"exact_match": float(ref == pred)}, "loss": 1.0}


def test_groupings():
    rows = [_row("positive", "positive"), _row("positive", "negative"), _row("negative", "negative", 20),
            _row("neutral", "blah blah", 20)]
    c = report.confusion(rows)
    assert c["labels"] == ["negative", "neutral", "positive"]
    assert c["matrix"]["positive"] == {"negative": 1, "neutral": 0, "positive": 1, "(other)": 0}
    assert c["matrix"]["neutral"]["(other)"] == 1
    per = {p["label"]: p for p in c["per_label"]}
    assert per["positive"]["recall"] == 0.5 and per["negative"]["precision"] == 0.5
    buckets = report.by_length(rows, "exact_match")
    assert buckets == [{"bucket": "1-8", "n": 2, "exact_match": 0.5}, {"bucket": "17-32", "n": 2, "exact_match": 0.5}]
    assert report.confusion([_row("a long free text answer", "x"), _row("another one here", "y")]) is None
    assert [r["prediction"] for r in report.worst_first(rows, "exact_match")][-1] in ("positive", "negative")

