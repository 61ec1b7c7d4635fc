"""The demo preference task: review prompts with a chosen (right) and a rejected (wrong) label.

The pairs are TRL's shape: `prompt` (a message list), `chosen`, `rejected`. Started from an SFT run
of another demo task (say demo-sharegpt), the demo model has no idea of sentiment, so it prefers
the chosen label about as often as chance; DPO on these pairs teaches it (README: Preference tuning).
"""

from __future__ import annotations

import random

from tunestudio.demo import tasks

LABELS = ("positive", "negative", "neutral")


def prefs(n: int, seed: int) -> list[dict]:
    """`n` pairs, classes balanced, each wrong label drawn from the other two."""
    rng = random.Random(seed)
    rows = []
    for r in tasks.reviews(n, seed):
        good = r["label"]
        rows.append({"prompt": r["messages"][:-1], "chosen": good,
                     "rejected": rng.choice([lb for lb in LABELS if lb != good])})
    return rows
