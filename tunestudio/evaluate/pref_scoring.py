"""How a model scores preference rows: the log-probability of each answer after its prompt, pairs
compared, and each side of an evaluation (the run, then its base) loaded in turn over the same
tokens. Shared by pairs (preference.py) and unpaired KTO rows (kto.py)."""

from __future__ import annotations

import statistics

from tunestudio.core.errors import UserError
from tunestudio.data.encoding.pref_encode import encode_prefs
from tunestudio.models import loading


def answer_logps(model, examples: list[dict], key: str, batch_size: int = 8) -> list[tuple[float, int]]:
    """(sum of log-probs, number of tokens) of each example's `key` answer ids after its prompt ids."""
    import torch

    out = []
    device = next(model.parameters()).device
    for i in range(0, len(examples), batch_size):
        batch = examples[i:i + batch_size]
        seqs = [e["prompt_ids"] + e[key] for e in batch]
        width = max(len(s) for s in seqs)
        ids = torch.zeros(len(seqs), width, dtype=torch.long)
        mask = torch.zeros(len(seqs), width, dtype=torch.long)
        for j, s in enumerate(seqs):
            ids[j, :len(s)] = torch.tensor(s)
            mask[j, :len(s)] = 1
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
        for j, e in enumerate(batch):
            start, n = len(e["prompt_ids"]), len(e[key])
            # position t predicts token t+1: the answer's tokens are predicted from start-1 .. start+n-2
            out.append((float(logp[j, start - 1:start - 1 + n].sum()), n))
    return out


def score_pairs(model, examples: list[dict], batch_size: int = 8) -> dict:
    """Per-pair scores and the summary metrics of one model. Shapes: examples as encode_prefs gives."""
    chosen = answer_logps(model, examples, "chosen_ids", batch_size)
    rejected = answer_logps(model, examples, "rejected_ids", batch_size)
    margins = [c / max(nc, 1) - r / max(nr, 1) for (c, nc), (r, nr) in zip(chosen, rejected)]
    ordered = sorted(margins)
    return {"chosen": chosen, "rejected": rejected, "margins": margins, "metrics": {
        "preference_accuracy": sum(m > 0 for m in margins) / max(len(margins), 1),
        "margin_mean": statistics.fmean(margins) if margins else 0.0,
        "margin_median": statistics.median(margins) if margins else 0.0,
        "margin_p10": ordered[len(ordered) // 10] if ordered else 0.0,
    }}


def score_sides(ws, run: str | None, model: str | None, compare_base: bool, records: list, max_length: int,
                name: str, score) -> tuple[list, dict, dict, object]:
    """Load each side (the run or model, then its base with `compare_base`) in turn and `score(model,
    examples)` it. The rows are encoded once, through the first side's tokenizer and template
    (data/encoding/pref_encode.py), so both sides see the same tokens. Returns (sides, scores by side label,
    model labels, the encoding); UserError for rows that do not encode or nothing that fits."""

    sides = [("fine-tuned" if run else "model", dict(run=run, model=model))]
    if compare_base:
        sides.append(("base", dict(run=run, base=True)))
    scores, labels, enc = {}, {}, None
    for label, kw in sides:
        m, tok, info = loading.load_model(ws, **kw)
        if enc is None:
            enc = encode_prefs(records, tok, max_length)
            if enc.errors:
                shown = "; ".join(str(p) for p in enc.errors[:5])
                raise UserError(shown, "data_problems", problems=[p.as_warning() for p in enc.errors[:5]])
            if not enc.examples:
                raise UserError(f"no row of {name} fits in {max_length} tokens", "pref_nothing_fits", dataset=str(name),
                                max_length=max_length)
        scores[label] = score(m, enc.examples)
        labels[label] = info["label"]
        del m
        loading.release_memory()
    return sides, scores, labels, enc
