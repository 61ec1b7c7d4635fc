"""The default metrics are chosen from the answers, and "worst examples" never lists a right one."""

from __future__ import annotations

from tunestudio.evaluate import metrics as M
from tunestudio.evaluate.metric_choice import default_metrics, metric_notes
from tunestudio.evaluate.report import worst_examples, worst_first

LABELS = ["positive", "negative", "neutral", "positive"]
DATES = ["12 March 2021", "1 May 1999", "30 June 2010"]   # three words: still short answers
PARAGRAPHS = ["The kettle boils fast and the lid shuts firmly, but the handle gets hot after a minute.",
              "Restart the router, wait two minutes, then sign in again with the new password."]


def test_short_answers_get_exact_match_and_f1_without_bleu_or_rouge2():
    assert default_metrics(LABELS) == ["exact_match", "f1", "loss", "perplexity"]
    assert default_metrics(DATES) == ["exact_match", "f1", "loss", "perplexity"]
    # a predictions file has no model: no loss
    assert default_metrics(LABELS, loss=False) == ["exact_match", "f1"]


def test_long_answers_get_overlap_metrics_and_tool_calls_keep_theirs():
    assert default_metrics(PARAGRAPHS) == ["rougeL", "rouge1", "bleu", "loss", "perplexity"]
    assert default_metrics(LABELS, tool_calls=True) == ["exact_match", "f1", "tool_call_match", "tool_name_match",
                                                        "loss", "perplexity"]


def test_why_bleu_and_rouge2_read_zero_on_right_short_answers():
    # the reason for the choice: right one-word answers score 1 on exact match and 0 on these two
    assert M.compute(["exact_match", "bleu", "rouge2"], LABELS, LABELS) == {"exact_match": 1.0, "bleu": 0.0,
                                                                           "rouge2": 0.0}
    notes = metric_notes(["exact_match", "bleu", "rouge2"], LABELS)
    assert [(n.code, n.fields["metric"]) for n in notes] == [("eval_note_bleu_short", "bleu"),
                                                             ("eval_note_rouge2_short", "rouge2")]
    assert notes[0] == "bleu: BLEU counts 4-word sequences: answers of 1-3 words score 0 even when right " \
                       "(exact match and F1 judge short answers)"
    assert [n.code for n in metric_notes(["exact_match", "rougeL"], PARAGRAPHS)] == ["eval_note_exact_long"]
    assert metric_notes(["exact_match", "f1"], LABELS) == []


def _row(where, em, loss=0.5):
    return {"where": where, "scores": {"exact_match": em}, "loss": loss, "reference": "x", "prediction": "y"}


def test_worst_examples_lists_only_rows_that_are_not_right():
    rows = worst_first([_row("a:1", 1.0), _row("a:2", 0.0), _row("a:3", 1.0)], "exact_match")
    assert [r["where"] for r in worst_examples(rows, "exact_match")] == ["a:2"]
    assert worst_examples([_row("a:1", 1.0), _row("a:3", 1.0)], "exact_match") == []
    # BLEU tops at 100 (sacrebleu's scale); loss has no top, so its worst rows are always listed
    bleu = [{"where": "b:1", "scores": {"bleu": 100.0}}, {"where": "b:2", "scores": {"bleu": 40.0}}]
    assert [r["where"] for r in worst_examples(bleu, "bleu")] == ["b:2"]
    assert len(worst_examples([_row("a:1", 1.0), _row("a:2", 1.0)], "loss")) == 2
