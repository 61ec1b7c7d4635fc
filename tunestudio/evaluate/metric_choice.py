"""Which metrics to score when none are asked for: chosen from the references, the same for
`tunestudio eval` (a run, a model, a predictions file) and the Evaluate tab.

A metric that counts word sequences says nothing about one-word answers: corpus BLEU counts
4-word sequences, so answers of 1-3 words score 0 even when every one is right, and ROUGE-2
counts word pairs, so a one-word answer scores 0 against itself. Exact match on long answers is
the opposite case: a paraphrase of a good paragraph scores 0. So:

- short answers (median at most SHORT_WORDS words, or a few labels): exact match and token F1;
- longer text: ROUGE-L, ROUGE-1 and BLEU (overlap, not identity);
- tool-call references: the tool metrics as well; loss and perplexity always (a model gives them).

A metric asked for by name is scored all the same; `metric_notes` gives the one line that says
why it reads 0 (or near it) on this data.
"""

from __future__ import annotations

from statistics import median

from tunestudio.core.errors import CodedText
from tunestudio.evaluate.metrics import LOSS_METRICS, reference_list
from tunestudio.evaluate.report import labels_of
from tunestudio.evaluate.tokenize import answer_tokens
from tunestudio.evaluate.tool_metrics import TOOL_METRICS

SHORT_WORDS = 3                          # a median answer this long or shorter is a "short answer"
SHORT_METRICS = ("exact_match", "f1")
LONG_METRICS = ("rougeL", "rouge1", "bleu")

def answer_words(references) -> float:
    """The median length of the references in words (`answer_tokens`: each CJK character a word);
    a row with several right answers counts each."""
    lengths = [len(answer_tokens(r)) for given in references for r in reference_list(given)]
    return median(lengths) if lengths else 0.0


def short_answers(references) -> bool:
    """True when the answers are short: a median of at most SHORT_WORDS words, or labels (few
    distinct short answers, report.labels_of)."""
    firsts = [reference_list(r)[0] for r in references]
    return answer_words(references) <= SHORT_WORDS or labels_of(firsts) is not None


def default_metrics(references, tool_calls: bool = False, loss: bool = True) -> list[str]:
    """The metrics to score on these references when none are asked for (module docstring).
    `tool_calls`: some reference calls a tool; `loss`: a model is evaluated (not a predictions file)."""
    names = list(SHORT_METRICS if short_answers(references) else LONG_METRICS)
    if tool_calls:
        names += TOOL_METRICS
    if loss:
        names += LOSS_METRICS
    return names


def metric_notes(names: list[str], references) -> list[CodedText]:
    """One line for each metric of `names` (asked for by name) that does not fit these references:
    why it reads 0 or near it even for right answers. [] when every one fits."""
    short = short_answers(references)
    return [note for note in (_note(name, short) for name in names) if note is not None]


def _note(name: str, short: bool) -> CodedText | None:
    if short and name == "bleu":
        return CodedText(f"{name}: BLEU counts 4-word sequences: answers of 1-3 words score 0 even when right "
                         "(exact match and F1 judge short answers)", "eval_note_bleu_short", metric=name)
    if short and name == "rouge2":
        return CodedText(f"{name}: ROUGE-2 counts word pairs: a one-word answer scores 0 even when right "
                         "(exact match and F1 judge short answers)", "eval_note_rouge2_short", metric=name)
    if not short and name == "exact_match":
        return CodedText(f"{name}: exact match asks for every word of a long answer: a good paraphrase scores 0 "
                         "(ROUGE-L and F1 measure the overlap)", "eval_note_exact_long", metric=name)
    return None
