"""CLI: `tunestudio demo [--json]`."""

from __future__ import annotations


def register(subparsers, common) -> None:
    p = subparsers.add_parser(
        "demo", parents=[common],
        help="write the tiny demo model (models/tiny-demo) and demo datasets (idempotent, offline)",
        description="Write models/tiny-demo (a ~4M-parameter Llama with its own tokenizer) and "
                    "training/datasets/demo-* (one per supported format). Existing files are kept.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args, ws) -> int:
    from tunestudio.cli import print_json
    from tunestudio.demo import DEMO_PRESET, make_demo

    result = make_demo(ws)
    if args.json:
        print_json(result)
        return 0
    state = "written" if result["model_created"] else "already there, kept"
    print(f"model    {result['model']}  ({state})")
    for name, d in result["datasets"].items():
        state = "written" if d["created"] else "kept"
        print(f"dataset  {name:<22} {d['format']:<9} {d['rows']:>5} rows  {d['task']}  ({state})")
    for name, d in result.get("rewards", {}).items():
        print(f"reward   rewards/{name:<14} {d['task']}  ({'written' if d['created'] else 'kept'})")
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in DEMO_PRESET.items())
    print(f"next: tunestudio train --model tiny-demo --dataset demo-reviews.jsonl {flags}")
    return 0
