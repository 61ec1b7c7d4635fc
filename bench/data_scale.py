"""Data scale: how the data path behaves from 10k to 1M rows (a benchmark, not a timed test).

    python bench/data_scale.py                       # 10k, 100k and 1M rows
    python bench/data_scale.py --rows 10000,100000   # a quicker look
    python bench/data_scale.py --json                # one JSON object on stdout

For each size it writes a plain alpaca JSONL (5-40-word instruction, 5-120-word answer, ~100
tokens a row with the demo tokenizer) into a fresh demo workspace, then runs each stage as its
own process, the way a user runs it, and reports its wall time and peak RSS (the process and its
children, from wait4):
  load        read and convert every row (tunestudio.data.load.load_table)
  check       `tunestudio data check`
  clean       `tunestudio data clean` (exact and near-duplicates)
  split       load + the seeded train/val/test split
  encode      load + split + encode (chat template, masking) into the Arrow cache
  first step  `tunestudio train --method lora --max-steps 2` from a cold cache, then again warm
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = ("the a model data train answer question river mountain city number small large quick "
         "slow bright dark north south east west water fire stone paper garden window morning "
         "evening summer winter music story letter market bridge forest ocean island valley "
         "engine signal pattern method result value order reason system table chair friend").split()


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """`rows` alpaca rows of random words, written as JSON Lines (streamed: any size fits)."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            instruction = " ".join(rng.choices(WORDS, k=rng.randint(5, 40)))
            output = " ".join(rng.choices(WORDS, k=rng.randint(5, 120)))
            f.write(json.dumps({"instruction": f"{i}: {instruction}", "input": "", "output": output}) + "\n")
