"""The GRPO demo: date prompts with references (demo-rewards.jsonl) and a reward file that gives
partial credit for each part of the answer (rewards/demo_dates.py).

The prompts ask exactly what demo-dates.json teaches (an alpaca row becomes the user message
"instruction\\n\\ninput"), so a run started --from-run an SFT run of demo-dates continues that task;
the dates are ones demo-dates.json does not hold, so every prompt is new to the SFT model. Both
files are written outside the demo tokenizer's training text, so adding them left the demo
tokenizer (and every figure measured with it) unchanged.
"""

from __future__ import annotations

import json
import os

from tunestudio.core.workspace import Workspace
from tunestudio.demo.tasks import DATE_INSTRUCTION, dates

DATASET = "demo-rewards.jsonl"
REWARD_FILE = "rewards/demo_dates.py"

REWARD_SOURCE = '''"""Reward for the date task: one third for each correct part of "DAY MONTH YEAR".

Written by `tunestudio demo`. GRPO calls reward(prompt, completion, **row) once per completion;
row["reference"] is the expected answer, e.g. "4 July 2031". Partial credit gives the model a
signal before it writes whole dates right; a completion that is not three words scores 0.
"""


def reward(prompt, completion, reference=None, **row):
    got, want = completion.split(), reference.split()
    if len(got) != 3:
        return 0.0
    return sum(g == w for g, w in zip(got, want)) / 3
'''


def rows(n: int, seed: int, exclude: set[str]) -> list[dict]:
    """`n` prompt rows for dates not in `exclude` (ISO strings), deterministic for `seed`."""
    out = []
    for r in dates(n + len(exclude), seed):
        if r["input"] not in exclude:
            out.append({"prompt": f"{DATE_INSTRUCTION}\n\n{r['input']}", "reference": r["output"]})
        if len(out) == n:
            break
    return out


def write(ws: Workspace, sft_dates: list[dict], n: int = 600, seed: int = 99) -> dict:
    """Write training/datasets/demo-rewards.jsonl and rewards/demo_dates.py in `ws` where missing.
    `sft_dates`: the demo-dates rows (their dates are left out). Returns {name: {path, created, ...}}."""
    exclude = {r["input"] for r in sft_dates}
    data = "".join(json.dumps(r) + "\n" for r in rows(n, seed, exclude))
    report = {}
    for path, content, what in ((ws.datasets_dir / DATASET, data, "prompts + references for GRPO"),
                                (ws.root / REWARD_FILE, REWARD_SOURCE, "reward: a third per correct date part")):
        created = not path.exists()
        if created:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            tmp.write_text(content, encoding="utf-8")
            os.replace(tmp, path)
        report[path.name] = {"path": str(path), "created": created, "task": what,
                             "rows": n if path.suffix == ".jsonl" else None,
                             "format": "prompts" if path.suffix == ".jsonl" else "reward"}
    return report


