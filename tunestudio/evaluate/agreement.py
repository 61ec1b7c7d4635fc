"""How far a judge agrees with people: the share of items where both chose the same, and Cohen's kappa.

Plain Python over pairs of labels (here base / tuned / tie, docs/evaluation.md). Raw agreement
flatters a judge when one category dominates: two raters who both say "tuned" 90% of the time
agree on 82% of items by chance alone. Cohen's kappa removes that chance share:

    kappa = (p_o - p_e) / (1 - p_e)

with p_o the observed share of agreeing items and p_e the agreement expected if both chose
independently at their own rates (the sum over categories of the product of their marginal
shares). 1 is perfect agreement, 0 no better than chance, below 0 worse than chance.
"""

from __future__ import annotations

from collections import Counter

CATEGORIES = ("base", "tuned", "tie")


def cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa of (judge, human) label pairs; None when there are none, or when chance
    agreement is 1 (both always chose the same one category: kappa is undefined there)."""
    n = len(pairs)
    if not n:
        return None
    observed = sum(a == b for a, b in pairs) / n
    left, right = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(left[c] * right[c] for c in set(left) | set(right)) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def agreement(pairs: list[tuple[str, str]]) -> dict:
    """{n, agree, share, kappa, table}: table[judge][human] counts over CATEGORIES."""
    n = len(pairs)
    agree = sum(a == b for a, b in pairs)
    table = {j: {h: sum(1 for a, b in pairs if a == j and b == h) for h in CATEGORIES} for j in CATEGORIES}
    return {"n": n, "agree": agree, "share": agree / n if n else None, "kappa": cohen_kappa(pairs), "table": table}


def agreement_line(a: dict | None) -> str:
    """'judge agrees with your ratings on 14 of 20 (70%), κ = 0.41' (or why there is no figure)."""
    if not a or not a.get("n"):
        return "no human ratings of these prompts to compare the judge with (rate base vs tuned in the Rate tab)"
    kappa = "undefined (one category only)" if a["kappa"] is None else f"{a['kappa']:.2f}"
    return f"judge agrees with your ratings on {a['agree']} of {a['n']} ({a['share']:.0%}), κ = {kappa}"
