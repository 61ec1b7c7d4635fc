"""Metric functions against hand-computed values and the libraries' own outputs."""

from __future__ import annotations

import math

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from tunestudio.core.errors import UserError
from tunestudio.evaluate import metrics as M


def test_normalisation_is_squad_style():
    assert M.normalize("The  Cat, sat!") == "cat sat"
    assert M.normalize("An apple; a pear.") == "apple pear"
    assert M.normalize("theory") == "theory"  # articles only as whole words


@pytest.mark.parametrize("pred, ref, em", [
    ("Positive.", "positive", 1.0),
    ("the positive", "Positive", 1.0),
    ("positive!", "negative", 0.0),
    ("15 March 2024", "15 march 2024", 1.0),
    ("15 March 2023", "15 March 2024", 0.0),
])
def test_exact_match(pred, ref, em):
    assert M.exact_match(pred, ref) == em


def test_f1_by_hand():
    # pred tokens {cat, sat}, ref tokens {cat, sat, down}: P = 1, R = 2/3, F1 = 0.8
    assert M.f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    # repeated tokens count once per occurrence: pred [a b b], ref [b b c] ("a" is an article, so
    # use other words): pred [x y y], ref [y y z]: overlap 2, P = 2/3, R = 2/3
    assert M.f1("x y y", "y y z") == pytest.approx(2 / 3)
    assert M.f1("nothing", "else") == 0.0
    assert M.f1("", "") == 1.0 and M.f1("", "word") == 0.0


def test_bleu_matches_sacrebleu():
    preds = ["the cat sat on a mat", "there is a dog in the garden", "hello"]
    refs = ["the cat sat on the mat", "a dog is in the garden", "hello there"]
    got = M.compute(["bleu"], preds, refs)["bleu"]
    assert got == pytest.approx(sacrebleu.corpus_bleu(preds, [refs]).score)
    assert M.compute(["bleu"], ["the cat sat on the mat"], ["the cat sat on the mat"])["bleu"] == pytest.approx(100)
    assert 0 < got < 100
    assert M.sentence_bleu("the cat sat on a mat", "the cat sat on the mat") == pytest.approx(
        sacrebleu.sentence_bleu("the cat sat on a mat", ["the cat sat on the mat"]).score)


def test_rouge_by_hand_and_library():
    # unigrams: 5 of 6 shared -> 5/6; bigrams: the-cat, cat-sat, sat-on shared of 5 -> 0.6
    s = M.rouge("the cat sat on a mat", "the cat sat on the mat")
    assert s["rouge1"] == pytest.approx(5 / 6)
    assert s["rouge2"] == pytest.approx(0.6)
    lib = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score("the cat sat on the mat", "the cat sat on a mat")
    assert s["rougeL"] == pytest.approx(lib["rougeL"].fmeasure)
    got = M.compute(["rouge1", "rouge2", "rougeL"], ["a b c", "x y"], ["a b c", "p q"])
    assert got == pytest.approx({"rouge1": 0.5, "rouge2": 0.5, "rougeL": 0.5})


def test_corpus_scores_are_means_and_names_checked():
    got = M.compute(["exact_match", "f1"], ["positive", "negative", "neutral", "x"],
                    ["positive", "negative", "positive", "y"])
    assert got == {"exact_match": 0.5, "f1": 0.5}
    with pytest.raises(UserError, match="unknown metric accuracy"):
        M.parse_names("exact_match,accuracy")
    assert M.parse_names(None) == list(M.ALL_METRICS)


def test_loss_metrics_weight_by_token():
    got = M.loss_metrics([(2.0, 1), (4.0, 3)])  # 6 nats over 4 tokens
    assert got["loss"] == pytest.approx(1.5)
    assert got["perplexity"] == pytest.approx(math.exp(1.5))


def test_custom_metric_file(tmp_path):
    f = tmp_path / "length_ratio.py"
    f.write_text("def score(prediction, reference, example):\n"
                 "    return min(len(prediction), len(reference)) / max(len(prediction), len(reference), 1)\n")
    got = M.compute(["exact_match"], ["abcd", "ab"], ["abcd", "abcd"], metric_file=f)
    assert got == {"exact_match": 0.5, "length_ratio": 0.75}


def test_custom_metric_file_errors_name_the_file_and_example(tmp_path):
    bad = tmp_path / "boom.py"
    bad.write_text("def score(prediction, reference, example):\n    raise ValueError('no labels here')\n")
    m = M.CustomMetric(bad)
    with pytest.raises(UserError) as e:
        M.score_examples([], ["p"], ["r"], [{}], [m], ["data.jsonl:7"])
    assert "boom.py" in str(e.value) and "data.jsonl:7" in str(e.value) and "no labels here" in str(e.value)

    (tmp_path / "noscore.py").write_text("x = 1\n")
    with pytest.raises(UserError, match="noscore.py has no function score"):
        M.CustomMetric(tmp_path / "noscore.py")
    (tmp_path / "broken.py").write_text("def score(:\n")
    with pytest.raises(UserError, match="broken.py failed to load"):
        M.CustomMetric(tmp_path / "broken.py")
    with pytest.raises(UserError, match="not found"):
        M.CustomMetric(tmp_path / "missing.py")
    (tmp_path / "text.py").write_text("def score(p, r, e):\n    return 'high'\n")
    with pytest.raises(UserError, match="must return a number"):
        M.score_examples([], ["p"], ["r"], None, [M.CustomMetric(tmp_path / "text.py")], ["d:1"])


def test_reference_loss_scores_only_the_answer(demo_template):
    """Teacher-forced loss equals the model's own loss with the prompt tokens masked."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = demo_template / "models" / "tiny-demo"
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    prompt = [{"role": "system", "content": "Classify the review."}, {"role": "user", "content": "Great lamp."}]
    items = [(prompt, "positive"), (prompt, "a much longer answer than that")]
    losses = M.reference_losses(model, tok, items, batch_size=2)  # one padded batch
    for (messages, ref), (nll, n) in zip(items, losses):
        ids, n_ctx = M.encode_for_loss(tok, messages, ref, 1024)
        assert n == len(ids) - n_ctx > 0
        x = torch.tensor([ids])
        labels = x.clone()
        labels[0, :n_ctx] = -100
        with torch.no_grad():
            expected = model(input_ids=x, labels=labels).loss.item()
        assert nll / n == pytest.approx(expected, rel=1e-4)
        # the scored span is the answer and the end-of-turn marker, nothing of the prompt
        assert ref in tok.decode(ids[n_ctx:])
