"""Scores: each metric gives a per-example value and a corpus value.

Names and ranges follow docs/dev/architecture.md: exact_match, f1, rouge1/2/L in 0-1; bleu in 0-100 as
sacrebleu reports it (corpus BLEU over all examples, smoothed sentence BLEU per example); loss
and perplexity are teacher-forced on the reference tokens only (the prompt is context, not scored).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from pathlib import Path
from typing import Callable

from tunestudio.core.errors import UserError
from tunestudio.data.encoding.base import IGNORE  # a label not scored (the prompt; context a block repeats)
from tunestudio.data.encoding.encode import last_answer_tokens
from tunestudio.evaluate.metric_file import METRIC_TIMEOUT_S, MetricFile
from tunestudio.evaluate.tokenize import RougeTokenizer, answer_tokens, bleu_tokenizer
from tunestudio.evaluate.tool_metrics import TOOL_METRICS

TEXT_METRICS = ("exact_match", "f1", "bleu", "rouge1", "rouge2", "rougeL")
LOSS_METRICS = ("loss", "perplexity")
ALL_METRICS = TEXT_METRICS + TOOL_METRICS + LOSS_METRICS   # tool metrics: tool_metrics.py
LOWER_IS_BETTER = {"loss", "perplexity"}


def parse_names(spec: str | list[str] | None) -> list[str]:
    """`--metrics exact_match,f1` as a checked list (default: all built-in metrics)."""
    if not spec:
        return list(ALL_METRICS)
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    unknown = [n for n in names if n not in ALL_METRICS]
    if unknown:
        raise UserError(f"unknown metric {', '.join(unknown)}: choose from {', '.join(ALL_METRICS)} "
                        "(or give your own with --metric-file)", "unknown_metric", names=unknown,
                        choices=list(ALL_METRICS))
    return list(dict.fromkeys(names))


# ---- exact match and F1 (SQuAD normalisation, any script: tokenize.answer_tokens) -----------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when both give the same `answer_tokens` (so "東京です" equals "東京 です。")."""
    return float(answer_tokens(prediction) == answer_tokens(reference))


def f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 over `answer_tokens` (each CJK character one token)."""
    pred, ref = answer_tokens(prediction), answer_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)  # both empty: a perfect answer; one empty: nothing right
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


# ---- BLEU and ROUGE (the libraries' own implementations, script-aware tokens) -------------------

_bleu: dict[tuple[str, bool], object] = {}


def _bleu_metric(tokenize: str, sentence: bool):
    """One sacrebleu BLEU object per tokenizer (a MeCab tagger is slow to build): corpus BLEU as
    `sacrebleu.corpus_bleu`, sentence BLEU with effective order as `sacrebleu.sentence_bleu`."""
    key = (tokenize, sentence)
    if key not in _bleu:
        from sacrebleu.metrics import BLEU

        _bleu[key] = BLEU(tokenize=tokenize, effective_order=sentence)
    return _bleu[key]


def corpus_bleu(predictions: list[str], references: list[str | list[str]], tokenize: str = "13a") -> float:
    """sacrebleu corpus BLEU (0-100) with its tokenizer `tokenize` (see tokenize.bleu_tokenizer).
    A row's reference may be a list: sacrebleu's reference streams, a row with fewer references
    padded with None (which sacrebleu skips: a variable number of references per row)."""
    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    width = max((len(r) for r in refs), default=1)
    streams = [[r[k] if k < len(r) else None for r in refs] for k in range(width)]
    return float(_bleu_metric(tokenize, False).corpus_score(predictions, streams).score)


def sentence_bleu(prediction: str, reference: str | list[str], tokenize: str = "13a") -> float:
    refs = [reference] if isinstance(reference, str) else list(reference)
    return float(_bleu_metric(tokenize, True).sentence_score(prediction, refs).score)


_scorer = None


def rouge(prediction: str, reference: str) -> dict[str, float]:
    """F-measures of rouge1, rouge2 and rougeL (with stemming, as most papers report), on
    tokenize.rouge_tokens: rouge-score's own tokens on ASCII, every script kept, CJK per character."""
    global _scorer
    if _scorer is None:
        from rouge_score import rouge_scorer

        _scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=RougeTokenizer(use_stemmer=True))
    scores = _scorer.score(reference, prediction)  # rouge-score takes (target, prediction)
    return {k: float(v.fmeasure) for k, v in scores.items()}


# ---- custom metric files -----------------------------------------------------------------------

class CustomMetric(MetricFile):
    """A custom metric file (metric_file.py: run in the process box) whose column never shadows a
    built-in metric's."""

    def __init__(self, path: str | Path, cwd: str | Path | None = None, timeout: float = METRIC_TIMEOUT_S):
        super().__init__(path, cwd, timeout, reserved=ALL_METRICS)


# ---- putting it together ------------------------------------------------------------------------

def reference_list(reference: str | list[str]) -> list[str]:
    """One reference or several (a list, for a question with more than one right answer)."""
    return [reference] if isinstance(reference, str) else list(reference)


def score_examples(names: list[str], predictions: list[str], references: list[str | list[str]],
                   examples: list[dict] | None = None, custom: list[CustomMetric] = (),
                   wheres: list[str] | None = None, bleu_tokenize: str = "13a") -> list[dict[str, float]]:
    """Per-example scores for the text metrics in `names` and every custom metric.
    `bleu_tokenize`: sacrebleu's tokenizer (`bleu_tokenize_for` picks it for the references).

    A reference may be a list of references (several right answers): exact match, F1 and each
    ROUGE are the best over them (as SQuAD scores a question with several gold answers), BLEU is
    sacrebleu's multi-reference BLEU (n-gram matches clipped by the most any reference holds, the
    closest reference length for the brevity penalty); a custom metric gets the first reference
    (the example dict holds them all)."""
    want_rouge = any(n.startswith("rouge") for n in names)
    rows = []
    for i, (p, given) in enumerate(zip(predictions, references)):
        refs = reference_list(given)
        s: dict[str, float] = {}
        if "exact_match" in names:
            s["exact_match"] = max(exact_match(p, r) for r in refs)
        if "f1" in names:
            s["f1"] = max(f1(p, r) for r in refs)
        if "bleu" in names:
            s["bleu"] = sentence_bleu(p, refs, bleu_tokenize)
        if want_rouge:
            each = [rouge(p, r) for r in refs]
            s.update({k: max(e[k] for e in each) for k in each[0] if k in names})
        for m in custom:
            s[m.name] = m(p, refs[0], (examples or [{}] * len(predictions))[i], (wheres or [""] * len(predictions))[i])
        rows.append(s)
    return rows


def aggregate(names: list[str], per_example: list[dict[str, float]], predictions: list[str],
              references: list[str | list[str]], custom: list[CustomMetric] = (),
              bleu_tokenize: str = "13a") -> dict[str, float]:
    """Corpus scores: the mean of per-example scores, except BLEU (corpus BLEU, as sacrebleu, with
    every reference of a row that has several)."""
    out: dict[str, float] = {}
    n = len(per_example)
    for name in [*[m for m in names if m in TEXT_METRICS], *(c.name for c in custom)]:
        if name == "bleu":
            out[name] = corpus_bleu(predictions, references, bleu_tokenize) if n else 0.0
        elif n:
            out[name] = sum(s[name] for s in per_example) / n
    return out


def bleu_tokenize_for(names: list[str], references: list[str], wanted: str | None = None,
                      warnings: list | None = None) -> str:
    """The sacrebleu tokenizer for BLEU on `references` (`wanted`: a name, or None/"auto" to detect
    it from their script); a fallback's warning goes into `warnings`. "13a" when BLEU is not asked."""
    if "bleu" not in names:
        return "13a"
    name, warning = bleu_tokenizer(wanted, references)
    if warning and warnings is not None:
        warnings.append(warning)
    return name


def compute(names, predictions: list[str], references: list[str], examples: list[dict] | None = None,
            metric_file: str | Path | None = None, bleu_tokenize: str | None = None) -> dict[str, float]:
    """Corpus scores for text metrics `names` (loss and perplexity need the model: see
    reference_losses). The one-call form for callers that do not want the per-example table.
    `bleu_tokenize`: sacrebleu's tokenizer, None to detect it from the references' script."""
    names = parse_names(names)
    custom = [CustomMetric(metric_file)] if metric_file else []
    try:
        tok = bleu_tokenize_for(names, references, bleu_tokenize)
        per = score_examples(names, predictions, references, examples, custom, bleu_tokenize=tok)
        return aggregate(names, per, predictions, references, custom, bleu_tokenize=tok)
    finally:
        for m in custom:
            m.close()


# ---- loss and perplexity on the references -----------------------------------------------------

def encode_for_loss(tokenizer, messages: list[dict] | None, reference: str | dict, max_length: int,
                    tools: list | None = None):
    """(input_ids, n_context): the conversation with its reference answer, where the first
    n_context tokens are the prompt (not scored) and the rest are the answer (scored).

    The answer span is exactly the one training puts its loss on (encode.last_answer_tokens): the
    answer and the template's end-of-turn token, not what the template inserts before it.
    `reference` may be the assistant message itself (one with tool calls); `tools`: the functions
    the conversation declares.
    """

    if messages is None:  # plain text: every token is scored
        ids = tokenizer(reference, add_special_tokens=True)["input_ids"]
        return ids[-max_length:], 0
    answer = reference if isinstance(reference, dict) else {"role": "assistant", "content": reference}
    ids, start, end = last_answer_tokens(tokenizer, [*messages, answer], tools=tools)
    p_ids, a_ids = ids[:start], ids[start:end][:max_length - 1]
    keep = max_length - len(a_ids)
    p_ids = p_ids[-keep:] if keep > 0 else []  # cut the prompt's start, never the answer
    return p_ids + a_ids, len(p_ids)


def reference_losses(model, tokenizer, items: list[tuple], batch_size: int = 8,
                     max_length: int = 1024, progress: Callable[[int], None] | None = None
                     ) -> list[tuple[float, int]]:
    """Per example (summed negative log-likelihood of the answer tokens, number of them).
    `items`: (messages or None, reference[, tools]) as encode_for_loss takes them.

    A plain-text document longer than `max_length` is scored in consecutive windows of
    `max_length` tokens, so every token counts, not only the last window's. (Text a run trained
    as one token stream is scored by streamloss.stream_losses, blocked exactly as training did.)"""
    max_length = model_length(model, max_length)
    pieces = []   # (ids, labels, owner): what to score, and the item it belongs to
    for k, (m, r, *tools) in enumerate(items):
        if m is None:
            ids = tokenizer(r, add_special_tokens=True)["input_ids"]
            windows = [(ids[a:a + max_length], 0) for a in range(0, len(ids), max_length)] or [([], 0)]
        else:
            windows = [encode_for_loss(tokenizer, m, r, max_length, *tools)]
        pieces += [(seq, [IGNORE] * n_ctx + list(seq[n_ctx:]), k) for seq, n_ctx in windows]
    return piece_losses(model, tokenizer, pieces, len(items), batch_size, progress)




def model_length(model, max_length: int) -> int:
    """`max_length`, or the model's own limit when that is shorter."""
    limit = getattr(model.config, "max_position_embeddings", None) or max_length
    return min(max_length, limit)


def piece_losses(model, tokenizer, pieces: list[tuple], n_items: int, batch_size: int = 8,
                 progress: Callable[[int], None] | None = None) -> list[tuple[float, int]]:
    """Teacher-forced loss of `pieces`, summed per item: [(nll in nats, scored tokens)] * n_items.

    A piece is (ids, labels, owner): token ids and labels of one length (label IGNORE: not
    scored), and the item it belongs to, an int, or one int per token (a block of a token stream
    holds the end of one document and the start of the next: each scored token counts for its
    own). As in training, position t predicts label t+1, so a piece's first label is never scored.
    `progress(k)`: k more items finished."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    owners = [np.full(len(ids), o, np.int64) if isinstance(o, int) else np.asarray(o, np.int64)
              for ids, _, o in pieces]
    left = np.zeros(n_items, np.int64)   # pieces still to score, per item (for progress)
    for o in owners:
        left[np.unique(o)] += 1
    if progress and (left == 0).any():
        progress(int((left == 0).sum()))   # an item with no piece (no tokens) is done at once
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    nll_sum, count = np.zeros(n_items), np.zeros(n_items, np.int64)
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i][0]))
    for b in range(0, len(order), max(1, batch_size)):
        idx = order[b:b + batch_size]
        width = max(1, max(len(pieces[i][0]) for i in idx))
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        labels = torch.full((len(idx), width), IGNORE, dtype=torch.long)
        for row, i in enumerate(idx):  # right padding: positions stay 0..n-1 as in training
            seq, lab, _ = pieces[i]
            ids[row, :len(seq)] = torch.as_tensor(np.asarray(seq, np.int64))
            mask[row, :len(seq)] = 1
            labels[row, :len(seq)] = torch.as_tensor(np.asarray(lab, np.int64))
        with torch.no_grad():
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
        logits = logits[:, :-1].float()            # (B, T-1, V): position t predicts token t+1
        target = labels[:, 1:].to(logits.device)   # (B, T-1)
        nll = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=IGNORE, reduction="none")
        nll, counted = nll.cpu().double().numpy(), (target != IGNORE).cpu().numpy()
        done = 0
        for row, i in enumerate(idx):
            n = len(pieces[i][0])
            who = owners[i][1:n]                   # the owner of each predicted token
            hit = counted[row, :max(0, n - 1)]
            np.add.at(nll_sum, who[hit], nll[row, :max(0, n - 1)][hit])
            np.add.at(count, who[hit], 1)
            touched = np.unique(owners[i])
            left[touched] -= 1
            done += int((left[touched] == 0).sum())
        if progress and done:
            progress(done)
    return [(float(s), int(c)) for s, c in zip(nll_sum, count)]


def loss_metrics(losses: list[tuple[float, int]]) -> dict[str, float]:
    """Token-weighted mean loss over all examples, and its perplexity."""
    total, count = sum(l for l, _ in losses), sum(n for _, n in losses)
    if not count:
        return {}
    loss = total / count
    return {"loss": loss, "perplexity": math.exp(min(loss, 700.0))}


def example_loss(loss: tuple[float, int]) -> float | None:
    return loss[0] / loss[1] if loss[1] else None


def primary_metric(names: list[str], custom: list[CustomMetric] = (), tool_calls: bool = False,
                   has_loss: bool = True) -> str | None:
    """The metric that sorts the per-example table ("worst examples by ..."), chosen the same way
    for `eval --run` and `eval --predictions`: a custom one first (the user wrote it for this task);
    tool_call_match when asked and `tool_calls` (some reference calls a tool: a tool-use set is
    judged by its calls); else the first text metric asked for; else a tool metric asked for when
    `tool_calls`; else loss when `has_loss` (a model gave one); else None (nothing per example)."""
    if custom:
        return custom[0].name
    if tool_calls and "tool_call_match" in names:
        return "tool_call_match"
    for n in names:
        if n in TEXT_METRICS or (tool_calls and n in TOOL_METRICS):
            return n
    return "loss" if has_loss and any(n in LOSS_METRICS for n in names) else None
