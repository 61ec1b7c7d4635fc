"""Data scale: how the data path behaves from 10k to 1M rows (a benchmark, not a timed test).

    python bench/data_scale.py                       # 10k, 100k and 1M rows
    python bench/data_scale.py --rows 10000,100000   # a quicker look
    python bench/data_scale.py --json                # one JSON object on stdout

For each size it writes a plain alpaca JSONL (5-40-word instruction, 5-120-word answer, ~100
tokens a row with the demo tokenizer) into a fresh demo workspace, then runs each stage as its
own process, the way a user runs it, and reports its wall time and peak RSS (the process and its
children, from wait4):
  load        read and convert every row (tunestudio.data.formats.load.load_table)
  check       `tunestudio data check`
  clean       `tunestudio data clean` (exact and near-duplicates)
  split       load + the seeded train/val/test split
  encode      load + split + encode (chat template, masking) into the Arrow cache
  first step  `tunestudio train --method lora --max-steps 2` (the encode stage has filled the cache)
  streaming   the same with `--streaming`: nothing prepared, rows read and encoded as trained
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


STAGES = {
    "load": ["-c", "import sys; from tunestudio.data.formats.load import load_file; "
                   "r = load_file(sys.argv[1]); print(len(r.records))", "{path}"],
    "check": ["-m", "tunestudio", "data", "check", "{name}", "--json", "--workspace", "{ws}"],
    "clean": ["-m", "tunestudio", "data", "clean", "{name}", "--json", "--workspace", "{ws}"],
    "stats": ["-m", "tunestudio", "data", "stats", "{name}", "--json", "--workspace", "{ws}"],
    "split": ["-c", "import sys; from pathlib import Path; from tunestudio.core.workspace import Workspace; "
                    "from tunestudio.data.split import load_splits; "
                    "s = load_splits(Workspace(Path(sys.argv[1])), sys.argv[2]); print(len(s.train))", "{ws}", "{name}"],
    "encode": ["-c", "import sys; from pathlib import Path; from tunestudio.core.workspace import Workspace; "
                     "from tunestudio.config.run_config import RunConfig; from tunestudio.train.sft import load_data; "
                     "from tunestudio.train.model_source import load_tokenizer as _load_tokenizer, resolve_base as _resolve_base; ws = Workspace(Path(sys.argv[1])); "
                     "cfg = RunConfig(model='tiny-demo', dataset=sys.argv[2]); "
                     "d = load_data(cfg, ws, _load_tokenizer(_resolve_base(cfg, ws))); print(len(d['train']))",
               "{ws}", "{name}"],
    "first step (cache warm)": ["-m", "tunestudio", "train", "--model", "tiny-demo", "--dataset", "{name}",
                                "--method", "lora", "--max-steps", "2", "--json", "--workspace", "{ws}"],
    "first step (streaming)": ["-m", "tunestudio", "train", "--model", "tiny-demo", "--dataset", "{name}",
                               "--method", "lora", "--max-steps", "2", "--streaming", "--json", "--workspace", "{ws}"],
}


def run_stage(argv: list[str], env: dict) -> dict:
    """Run one stage as its own process: wall time, and the peak RSS of the largest process of
    its tree (wait4 reports the child's own peak or that of a descendant it waited for)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.time()
        proc = subprocess.Popen([sys.executable, *argv], stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.time() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024), "rc": proc.returncode,
            "error": (tail[-1][:200] if tail else "") if proc.returncode else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="10000,100000,1000000", help="comma-separated sizes")
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated stages to run")
    p.add_argument("--workdir", default=None, help="where the workspaces go (default: a temp folder)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="data-scale-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    results = []
    for rows in (int(x) for x in args.rows.split(",")):
        ws = root / f"ws-{rows}"
        if not (ws / "models" / "tiny-demo").is_dir():
            # in its own process: a child's peak RSS starts at its parent's (ru_maxrss survives
            # fork and exec), so this process must stay small
            subprocess.run([sys.executable, "-m", "tunestudio", "demo", "--workspace", str(ws)], env=env,
                           check=True, capture_output=True)
        name = f"alpaca-{rows}.jsonl"
        path = ws / "training" / "datasets" / name
        if not path.is_file():
            generate(path, rows)
        row = {"rows": rows, "file_mb": round(path.stat().st_size / 2**20, 1), "stages": {}}
        for stage in args.stages.split(","):
            argv = [a.format(path=path, ws=ws, name=name) for a in STAGES[stage]]
            row["stages"][stage] = run_stage(argv, env)
            if not args.json:
                print(f"{rows:>9,} rows  {stage:<24} {row['stages'][stage]}", file=sys.stderr, flush=True)
        results.append(row)
    if args.json:
        print(json.dumps({"results": results, "cpus": os.cpu_count()}))
    else:
        stages = args.stages.split(",")
        print("| rows | file | " + " | ".join(stages) + " |")
        print("|---|---|" + "---|" * len(stages))
        for row in results:
            cells = [f"{s['wall_s']} s, {s['peak_rss_mb']} MB" + ("" if not s["rc"] else " (failed)")
                     for s in (row["stages"][k] for k in stages)]
            print(f"| {row['rows']:,} | {row['file_mb']} MB | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
