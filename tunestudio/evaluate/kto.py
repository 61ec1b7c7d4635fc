"""`eval` on unpaired (KTO) rows: prompt + one answer + a boolean label (desirable or not).

Every answer is scored by its length-normalised log-likelihood under the model: the mean log-prob
per answer token, in nats (s = log p(answer | prompt) / tokens), tokenised as training does
(data/encoding/pref_encode.py). From those:

  desirable_logp_mean, undesirable_logp_mean  mean s over each label's rows;
  logp_margin                                 desirable_logp_mean - undesirable_logp_mean;
  separation                                  share of (desirable, undesirable) row pairs where the
                                              desirable answer has the higher s (a tie counts half):
                                              the probability that a random desirable answer is
                                              ranked above a random undesirable one (ROC AUC). 0.5
                                              is chance, 1.0 every desirable answer above every
                                              undesirable one. Needs rows of both labels.

With --compare-base the run's base (the model it started from: KTO's reference) scores the same rows,
and each row's implicit reward is r = s_tuned - s_base (KTO's log pi/pi_ref, per token, without beta):

  reward_desirable_mean, reward_undesirable_mean, reward_margin_mean (desirable minus undesirable);
  reward_accuracy   share of rows correctly separated by the reference: a desirable answer made more
                    likely than the base made it (r > 0), an undesirable one less likely (r < 0).

The primary metric is `separation` (it needs no reference, so a base and a run compare on it).
"""

from __future__ import annotations

import statistics

from tunestudio.core.errors import UserError
from tunestudio.evaluate.pref_scoring import answer_logps, score_sides


def unpaired_metrics(scores: list[float], labels: list[bool], base: list[float] | None = None) -> dict:
    """The metrics above from per-row scores s (nats per token), labels (True: desirable) and, with
    a base, the base's scores of the same rows. UserError when there are no rows."""
    if not scores:
        raise UserError("no labelled answers to evaluate", "kto_no_rows")
    good = [s for s, y in zip(scores, labels) if y]
    bad = [s for s, y in zip(scores, labels) if not y]
    m = {"desirable_logp_mean": _mean(good), "undesirable_logp_mean": _mean(bad)}
    if good and bad:
        m["logp_margin"] = m["desirable_logp_mean"] - m["undesirable_logp_mean"]
        wins = sum(1.0 if g > b else 0.5 if g == b else 0.0 for g in good for b in bad)
        m["separation"] = wins / (len(good) * len(bad))
    if base is not None:
        rewards = [s - b for s, b in zip(scores, base)]
        r_good = [r for r, y in zip(rewards, labels) if y]
        r_bad = [r for r, y in zip(rewards, labels) if not y]
        m["reward_desirable_mean"] = _mean(r_good)
        m["reward_undesirable_mean"] = _mean(r_bad)
        if r_good and r_bad:
            m["reward_margin_mean"] = m["reward_desirable_mean"] - m["reward_undesirable_mean"]
        m["reward_accuracy"] = sum((r > 0) if y else (r < 0) for r, y in zip(rewards, labels)) / len(rewards)
    return {k: v for k, v in m.items() if v is not None}


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def score_unpaired(model, examples: list[dict], batch_size: int = 8) -> list[float]:
    """s of each example ({"prompt_ids", "completion_ids", "label"}): mean log-prob per answer token."""
    return [total / max(n, 1) for total, n in answer_logps(model, examples, "completion_ids", batch_size)]


def evaluate_unpaired(ws, records: list, name: str, split: str, run_info, run: str | None, model: str | None,
                      compare_base: bool, batch_size: int, max_length: int) -> dict:
    """Score labelled answers with the run (or model) and, with `compare_base`, its base. Returns
    {metrics, n, [base_metrics, deltas], rows (worst first), model, dataset, split, ...} as
    evaluate_preferences does for pairs."""
    sides, scores, labels, enc = score_sides(ws, run, model, compare_base, records, max_length, name,
                                             lambda m, examples: score_unpaired(m, examples, batch_size))
    examples, dropped = enc.examples, set(enc.dropped)
    kept = [r for r in records if r.where() not in dropped]   # both sides read the rows the same way
    main = sides[0][0]
    flags = [e["label"] for e in examples]
    base = scores.get("base")
    metrics = unpaired_metrics(scores[main], flags, base)
    out = {"metrics": metrics, "n": len(examples), "primary_metric": "separation", "format": "unpaired",
           "model": labels[main], "run_id": run_info.id if run_info else None, "dataset": name, "split": split,
           "warnings": []}
    if "separation" not in metrics:
        out["primary_metric"] = "desirable_logp_mean" if any(flags) else "undesirable_logp_mean"
        out["warnings"].append({"code": "one_label", "message": (
            f"every row of {name} ({split}) is {'desirable' if any(flags) else 'undesirable'}: separation and "
            "the margins need rows of both labels")})
    if base is not None:
        out["base_metrics"] = unpaired_metrics(base, flags)
        out["deltas"] = {k: metrics[k] - out["base_metrics"][k] for k in out["base_metrics"] if k in metrics}
    rows = []
    for i, (r, s) in enumerate(zip(kept, scores[main])):
        row = {"where": r.where(), "completion": r.completion, "label": r.label, "logp": round(s, 4)}
        if base is not None:
            row["base_logp"] = round(base[i], 4)
            row["reward"] = round(s - base[i], 4)
        rows.append(row)
    # worst first: a desirable answer the model finds unlikely (or made less likely), an undesirable
    # one it finds likely (or made more likely)
    # (the reference line is the base's score, else midway between the two labels' mean scores)
    key = "reward" if base is not None else "logp"
    mid = 0.0 if base is not None or "logp_margin" not in metrics else \
        (metrics["desirable_logp_mean"] + metrics["undesirable_logp_mean"]) / 2
    rows.sort(key=lambda row: row[key] - mid if row["label"] else mid - row[key])
    out["rows"] = rows
    return out
