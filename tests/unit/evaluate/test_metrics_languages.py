"""Metrics outside English: Chinese, Japanese, Korean and Tetum, each against a value computed by
hand (the computation is in the comments). Before, a Chinese answer identical to its reference
scored BLEU 0 and ROUGE-L 0, and a Japanese answer differing only by a space scored F1 0."""

from __future__ import annotations

import math

import pytest

from tunestudio.core.errors import UserError
from tunestudio.evaluate import metrics as M
from tunestudio.evaluate import tokenize as T


def score(pred: str, ref: str, **kw) -> dict:
    return M.compute(None, [pred], [ref], **kw)


def test_chinese_identical_answer_scores_full_marks():
    s = score("我今天很高兴", "我今天很高兴")
    assert s["bleu"] == pytest.approx(100) and s["rougeL"] == 1.0 and s["f1"] == 1.0


def test_chinese_by_hand():
    # F1/ROUGE tokens are characters: pred 我 喜 欢 猫, ref 我 喜 欢 狗; 3 shared of 4 each side:
    #   F1 = rouge1 = 2*(3/4)*(3/4)/(3/4+3/4) = 0.75; rougeL: LCS 我喜欢 = 3 -> 0.75
    #   rouge2: bigrams 我喜 喜欢 欢猫 vs 我喜 喜欢 欢狗 -> 2 of 3 each side = 2/3
    # BLEU (zh, one char per token; corpus BLEU smooths a zero n-gram count "exp": 1/2 for the first):
    #   precisions 3/4, 2/3, 1/2, (0 of 1 -> 1/2); BP = 1 (same length)
    #   BLEU = 100 * (3/4 * 2/3 * 1/2 * 1/2) ** (1/4) = 100 * 0.125 ** 0.25 = 59.4604
    s = score("我喜欢猫", "我喜欢狗")
    assert s["f1"] == pytest.approx(0.75) and s["rouge1"] == pytest.approx(0.75)
    assert s["rouge2"] == pytest.approx(2 / 3) and s["rougeL"] == pytest.approx(0.75)
    assert s["bleu"] == pytest.approx(100 * 0.125 ** 0.25, abs=1e-6)
    assert s["exact_match"] == 0.0
    # The full stop: not punctuation to F1 (deleted), a token to BLEU (zh splits 。):
    #   pred 6 tokens, ref 7, every n-gram of pred matches: BLEU = 100 * exp(1 - 7/6) = 84.6482
    s = score("我今天很高兴", "我今天很高兴。")
    assert s["exact_match"] == 1.0 and s["f1"] == 1.0
    assert s["bleu"] == pytest.approx(100 * math.exp(1 - 7 / 6), abs=1e-6)


def test_japanese_space_does_not_change_the_answer():
    # 東京に行きます vs 東京 に 行きます: the same characters, so the same tokens
    s = score("東京に行きます", "東京 に 行きます")
    assert s["exact_match"] == 1.0 and s["f1"] == 1.0 and s["rougeL"] == 1.0
    assert s["bleu"] == pytest.approx(100)   # ja-mecab: 東京 に 行き ます on both sides


def test_japanese_by_hand():
    # characters: pred 東京に行きました (8), ref 東京に行きます (7), shared 東 京 に 行 き ま (6):
    #   F1 = 2*6 / (8+7) = 0.8
    s = score("東京に行きました", "東京に行きます")
    assert s["f1"] == pytest.approx(0.8) and s["rouge1"] == pytest.approx(0.8)
    # BLEU ja-mecab: pred 東京 に 行き ます (4 words), ref 東京 に 行き ます 。 (5 words); every n-gram
    #   of pred matches: BLEU = 100 * exp(1 - 5/4) = 77.8801
    s = score("東京に行きます", "東京に行きます。")
    assert s["bleu"] == pytest.approx(100 * math.exp(-0.25), abs=1e-6)


def test_korean_by_hand():
    # syllables: pred 나 는 학 교 에 갑 니 다 (8), ref 나 는 집 에 갑 니 다 (7), shared 6:
    #   F1 = rouge1 = 2*6 / (8+7) = 0.8
    s = score("나는 학교에 갑니다", "나는 집에 갑니다")
    assert s["f1"] == pytest.approx(0.8) and s["rouge1"] == pytest.approx(0.8)
    # BLEU ko-mecab: pred 나 는 학교 에 갑니다 (5), ref the same and "." (6): 100 * exp(1 - 6/5) = 81.8731
    s = score("나는 학교에 갑니다", "나는 학교에 갑니다.")
    assert s["bleu"] == pytest.approx(100 * math.exp(-0.2), abs=1e-6)
    assert s["exact_match"] == 1.0


def test_tetum_by_hand():
    # Tetum is Latin script with accents and apostrophes; "á" and "ó" count (rouge-score's own
    # tokenizer dropped them: "ó" vanished and "bá" became "b").
    # ROUGE tokens (apostrophe splits): pred ó bá ne ebé (4), ref ó atu bá ne ebé (5); shared 4:
    #   rouge1 = 2*4/(4+5) = 8/9; rougeL: LCS ó bá ne ebé = 4 -> 8/9
    # F1 tokens (punctuation deleted): pred ó bá neebé (3), ref ó atu bá neebé (4); shared 3: 6/7
    # BLEU, intl (non-ASCII letters): pred Ó bá ne ' ebé ? (6), ref Ó atu bá ne ' ebé ? (7)
    #   1-grams 6/6; 2-grams 4/5 (not "Ó bá"); 3-grams 3/4; 4-grams 2/3; BP = exp(1 - 7/6)
    #   BLEU = 100 * (1 * 4/5 * 3/4 * 2/3) ** (1/4) * exp(-1/6) = 100 * 0.4 ** 0.25 * 0.846482 = 67.3182
    s = score("Ó bá ne'ebé?", "Ó atu bá ne'ebé?")
    assert s["rouge1"] == pytest.approx(8 / 9) and s["rougeL"] == pytest.approx(8 / 9)
    assert s["f1"] == pytest.approx(6 / 7)
    assert s["bleu"] == pytest.approx(100 * 0.4 ** 0.25 * math.exp(-1 / 6), abs=1e-6)
    assert T.detect_bleu_tokenize(["Ó atu bá ne'ebé?"]) == "intl"


def test_english_scores_are_unchanged():
    # ASCII text keeps SQuAD's F1, rouge-score's stemmed tokens and sacrebleu's 13a
    import sacrebleu
    from rouge_score import rouge_scorer

    pred, ref = "The cats' hats were running.", "the cat's hat was run"
    want = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True).score(ref, pred)
    s = score(pred, ref)
    assert s["rouge1"] == pytest.approx(want["rouge1"].fmeasure) and s["rougeL"] == pytest.approx(want["rougeL"].fmeasure)
    assert s["bleu"] == pytest.approx(sacrebleu.corpus_bleu([pred], [[ref]]).score)
    assert T.detect_bleu_tokenize([ref]) == "13a"


@pytest.mark.parametrize("refs, want", [
    (["我喜欢吃苹果。"], "zh"), (["東京に行きます。"], "ja-mecab"), (["나는 학교에 갑니다."], "ko-mecab"),
    (["Привет, мир"], "intl"), (["plain English"], "13a"),
    # a name in katakana inside Chinese (3 kana of 40 Han + kana): still Chinese
    (["我喜欢ソニー的电视机。", "今天天气很好，我们去公园散步吧。", "他在北京大学学习计算机科学。"], "zh"),
])
def test_bleu_tokenizer_is_detected_from_the_references(refs, want):
    assert T.detect_bleu_tokenize(refs) == want


def test_bleu_tokenize_can_be_overridden():
    # 13a does not split Chinese: one word each side, different -> 0 (smoothed 1-gram 0 of 1)
    assert score("我喜欢猫", "我喜欢狗", bleu_tokenize="13a")["bleu"] < 1
    assert score("我喜欢猫", "我喜欢狗", bleu_tokenize="zh")["bleu"] == pytest.approx(100 * 0.125 ** 0.25, abs=1e-6)
    with pytest.raises(UserError, match="--bleu-tokenize must be one of"):
        score("a", "a", bleu_tokenize="klingon")


def test_missing_mecab_falls_back_to_characters_with_a_warning(monkeypatch):
    import sacrebleu.metrics.bleu as B

    class Missing:
        def __init__(self):
            raise RuntimeError("Japanese tokenization requires extra dependencies")

    monkeypatch.setattr(B, "_get_tokenizer", lambda name: Missing)
    warnings: list = []
    assert M.bleu_tokenize_for(["bleu"], ["東京に行きます"], None, warnings) == "char"
    assert "ja-mecab" in warnings[0] and "mecab-python3" in warnings[0]


@pytest.mark.parametrize("prediction, reference", [
    ("ＡＢＣ１２３", "ABC123"),          # full-width Latin and digits, common in Japanese output
    ("ｶﾀｶﾅです", "カタカナです"),        # half-width katakana
    ("東京　タワー", "東京 タワー"),      # ideographic space
])
def test_exact_match_and_f1_fold_compatibility_forms_nfkc(prediction, reference):
    assert M.exact_match(prediction, reference) == 1.0 and M.f1(prediction, reference) == 1.0


def test_nfkc_gives_partial_credit_per_token():
    # "ＡＢＣ１２３ 円" vs "abc123 ドル": NFKC tokens [abc123, 円] vs [abc123, ド, ル]: 1 shared,
    # precision 1/2, recall 1/3 -> F1 = 2 * (1/2 * 1/3) / (1/2 + 1/3) = 0.4
    assert M.f1("ＡＢＣ１２３ 円", "abc123 ドル") == pytest.approx(0.4)


def test_several_references_take_the_best_and_bleu_uses_them_all():
    import sacrebleu

    preds = ["Paris", "the big cat", "ＡＢＣ１２３"]
    refs = [["paris, France", "Paris"], ["a small cat", "big cat sat"], "abc123"]
    per = M.score_examples(["exact_match", "f1", "rougeL", "bleu"], preds, refs)
    # row 2: [big, cat] vs [small, cat] -> F1 0.5; vs [big, cat, sat] -> P 1, R 2/3, F1 0.8: the best is 0.8
    assert [s["exact_match"] for s in per] == [1.0, 0.0, 1.0]
    assert [s["f1"] for s in per] == pytest.approx([1.0, 0.8, 1.0])
    assert per[0]["rougeL"] == 1.0 and per[0]["bleu"] == pytest.approx(100.0)
    # corpus BLEU: sacrebleu's reference streams, a row with one reference padded with None
    preds = ["the cat sat on the mat today", "a quick brown fox jumps over it"]
    refs = [["a cat was on a mat", "the cat sat on the mat today"], "a quick brown fox jumps over it"]
    got = M.corpus_bleu(preds, refs)
    want = sacrebleu.corpus_bleu(preds, [["a cat was on a mat", "a quick brown fox jumps over it"],
                                         ["the cat sat on the mat today", None]])
    assert got == pytest.approx(want.score) and got == pytest.approx(100.0)
    # the first reference alone scores lower: the others really count
    assert M.corpus_bleu(preds, ["a cat was on a mat", "a quick brown fox jumps over it"]) < 90


def test_rouge_folds_full_width_forms_like_f1():
    # "東京タワーは３３３ｍ" vs "東京タワーは333m": NFKC tokens [東, 京, タ, ワ, ー, は, 333m] on both
    # sides: ROUGE-1 = 1.0 (before: ３３３ｍ and 333m were two tokens, 6 of 7 shared: 6/7)
    s = score("東京タワーは３３３ｍ", "東京タワーは333m")
    assert s["rouge1"] == pytest.approx(1.0) and s["rougeL"] == pytest.approx(1.0)
    # mixed with a wrong word: [gpt, 4, は, ３, 年] -> [gpt, 4, は, 3, 年] vs [gpt, 4, は, 2, 年]: 4 of 5
    assert score("GPT-４は３年", "GPT-4は2年")["rouge1"] == pytest.approx(0.8)
