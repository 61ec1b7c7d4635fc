"""`tunestudio sweep --config sweep.yaml` | `sweep show SWEEP` | `sweep list` (tunestudio/sweeps/search.py)."""

from __future__ import annotations

import argparse

import yaml

from tunestudio.config.run_config import RunConfig
from tunestudio.core.errors import UserError
from tunestudio.core.output import print_json
from tunestudio.sweeps import search as sweep


def register(subparsers, common) -> None:
    p = subparsers.add_parser(
        "sweep", parents=[common], help="search hyper-parameters with Optuna; each trial is a run, through the queue",
        description="Run (or resume: same name) the sweep described in --config FILE (see tunestudio/sweeps/spec.py "
                    "for the keys), or show one: `tunestudio sweep show SWEEP`.")
    p.add_argument("--config", metavar="FILE", help="the sweep's YAML file (base, space, objective, sampler, "
                   "pruner, trials, timeout_min)")
    p.add_argument("--json", action="store_true", help="print the sweep's summary as one JSON object")
    p.add_argument("--max-failures", type=_count, metavar="N", help="stop the sweep after N failed trials in a "
                   "row (default: the file's max_failures, else 3; 0: never)")
    sub = p.add_subparsers(dest="sweep_action", metavar="ACTION")
    # SUPPRESS: a --workspace given before `show` must not be reset by the subcommand's default
    show = sub.add_parser("show", help="the trials best first, the best config and parameter importances")
    show.add_argument("sweep", metavar="SWEEP", help="the sweep's name")
    show.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    show.add_argument("--workspace", default=argparse.SUPPRESS)
    lst = sub.add_parser("list", help="the sweeps of this workspace")
    lst.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    lst.add_argument("--workspace", default=argparse.SUPPRESS)
    p.set_defaults(func=cmd_sweep)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of 0 or more, not '{text}'")
    return int(text)


def cmd_sweep(args, ws) -> int:
    if args.sweep_action == "list":
        names = sweep.list_sweeps(ws)
        if args.json:
            print_json({"sweeps": names})
        else:
            print("\n".join(names) if names else "no sweeps yet: tunestudio sweep --config sweep.yaml")
        return 0
    if args.sweep_action == "show":
        result = sweep.summary(ws, args.sweep)
    elif args.config:
        spec = sweep.load_spec(args.config)
        if args.max_failures is not None:
            spec.max_failures = args.max_failures
        result = sweep.run_sweep(ws, spec)
    else:
        raise UserError("give --config sweep.yaml to run a sweep, or `sweep show SWEEP` to see one",
                        "sweep_nothing_to_do")
    if args.json:
        print_json(result)
    else:
        print(format_summary(result))
    return 0


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def format_summary(s: dict) -> str:
    """The table a person reads: trials best first, then the best config and the importances."""
    params = sorted({k for t in s["trials"] for k in t["params"]})
    head = ["trial", "state", s["objective"], *params, "run", "time_s"]
    rows = [[str(t["number"]), t["state"] + (f"@{t['pruned_at_step']}" if t.get("pruned_at_step") is not None else ""),
             _fmt(t["value"]), *[_fmt(t["params"].get(p)) for p in params], t["run_id"] or "-",
             _fmt(t["duration_s"])] for t in s["trials"]]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"sweep {s['sweep']}: {s['direction']} {s['objective']}; "
             + ", ".join(f"{n} {k}" for k, n in s["counts"].items()), ""]
    if s.get("stopped"):   # stopped early: why, above the table
        lines.insert(1, f"stopped: {s['stopped']['message']}")
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    best = s["best"]
    if best:
        lines += ["", f"best: trial {best['number']} ({s['objective']} {best['value']:.4g}, run {best['run_id']})",
                  "best config (its options that differ from the defaults; tunestudio train --config FILE):"]

        default = RunConfig().to_dict()  # only what differs from the defaults: a short file to copy
        changed = {k: v for k, v in best["config"].items() if default.get(k) != v}
        lines += ["  " + ln for ln in yaml.safe_dump(changed, sort_keys=False).splitlines()]
    else:
        lines += ["", "no completed trial yet"]
    if s["importances"]:
        lines += ["", "parameter importance (fANOVA):"]
        lines += [f"  {k:<16} {v:.3f}" for k, v in s["importances"].items()]
    elif s.get("importance_note"):
        lines += ["", s["importance_note"]]
    return "\n".join(lines)
