"""The memory estimate (models/memory.py) against the peak RSS of real `tunestudio train` runs.

    python bench/memory_estimate.py --workspace WS --model smollm2-135m-instruct \\
        --datasets demo-tickets.jsonl,long-rows.jsonl --methods lora,full --precisions bf16,fp32

Each setting is one `tunestudio train` process (batch 8, --grad-accum 1, --max-steps 3 unless
given, --eval-steps 100, --replay 0), so each has its own peak; the peak is the run's
`peak_memory_mb` (ru_maxrss of the training process, the figure `/usr/bin/time -f %M` gives).
The estimate is `memory.estimate_settings` for the same settings and the dataset's lengths
(`lengths.dataset_lengths`), the figure the Training tab shows. Prints a Markdown table;
bench/memory_estimate.md has the one measured on SmolLM2-135M-Instruct. A short run may not meet
its longest batch (the estimate's): give --max-steps a whole epoch to see it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--datasets", required=True, help="comma-separated")
    ap.add_argument("--methods", default="lora,full")
    ap.add_argument("--precisions", default="bf16,fp32")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--max-steps", type=int, default=3)
    args = ap.parse_args()

    from tunestudio.core.workspace import Workspace
    from tunestudio.models import memory
    from tunestudio.models.lengths import dataset_lengths

    ws = Workspace(Path(args.workspace))
    print("| setting | estimate | measured peak | error |\n|---|---|---|---|")
    for dataset in args.datasets.split(","):
        lengths = dataset_lengths(ws, dataset, args.model, args.max_length)
        for method in args.methods.split(","):
            for precision in args.precisions.split(","):
                run_id = f"mem-{method}-{precision}-{Path(dataset).stem}-{int(time.time())}"
                cmd = [sys.executable, "-m", "tunestudio", "train", "--workspace", str(ws.root), "--model", args.model,
                       "--dataset", dataset, "--method", method, "--precision", precision,
                       "--batch-size", str(args.batch_size), "--grad-accum", "1", "--max-length", str(args.max_length),
                       "--max-steps", str(args.max_steps), "--eval-steps", "100", "--replay", "0", "--run-id", run_id]
                done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
                metrics = ws.runs_dir / run_id / "metrics.json"
                if done.returncode or not metrics.is_file():
                    print(f"| {method} {precision} {dataset} | run failed: {done.stderr.strip()[-300:]} | | |")
                    continue
                peak = json.loads(metrics.read_text())["peak_memory_mb"] * 2**20
                est = memory.estimate_settings(ws.model_path_or_id(args.model), lengths=lengths, method=method,
                                               batch_size=args.batch_size, max_length=args.max_length,
                                               precision=precision)["total"]
                print(f"| {method} {precision} {dataset} | {memory.human_bytes(est)} | {memory.human_bytes(peak)} "
                      f"| {(est / peak - 1) * 100:+.0f}% |", flush=True)


if __name__ == "__main__":
    main()
