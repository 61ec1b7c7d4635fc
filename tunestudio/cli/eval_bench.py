"""CLI pieces for standard benchmarks (lm-evaluation-harness): `eval --benchmark`,
`eval --guard-benchmark`, `bench-models --benchmark`. cli/eval.py registers the commands; the
flags and the printing live here so that file stays about its own concepts."""

from __future__ import annotations

from tunestudio.core.output import print_json
from tunestudio.evaluate import benchmarks
from tunestudio.evaluate.harness import benchmark_guard, run_benchmarks

TASKS_HELP = ("comma-separated lm-evaluation-harness tasks: task names (hellaswag, arc_easy: data from the Hub) or "
              "task YAML files (under training/benchmarks/ or a path, e.g. demo-mc.yaml)")


def add_benchmark_flags(p, guard: bool = False) -> None:
    """--benchmark and --num-fewshot (the limit, batch size and seed are the command's own flags)."""
    g = p.add_argument_group("standard benchmarks (lm-evaluation-harness)")
    g.add_argument("--benchmark", metavar="TASKS", help=TASKS_HELP + ("; with --run, its base too" if guard else ""))
    g.add_argument("--num-fewshot", type=int, default=None, help="examples shown before each question "
                                                                 "(default: the task's own, else 0)")
    if guard:
        g.add_argument("--guard-benchmark", metavar="TASK", help="the forgetting check on a benchmark task: "
                                                                 "FORGETTING when the run scores below its base by "
                                                                 "more than 2 standard errors")


def guard_result(args, ws) -> dict | None:
    """`--guard-benchmark`'s check, run before the held-out evaluation that reports it."""
    if not getattr(args, "guard_benchmark", None):
        return None
    return benchmark_guard(ws, args.run, args.guard_benchmark, limit=args.limit, batch_size=args.batch_size)


def cmd_benchmark(args, ws) -> int:
    out = run_benchmarks(ws, args.benchmark, run=args.run, model=args.model, num_fewshot=args.num_fewshot,
                         limit=args.limit, batch_size=args.batch_size, seed=args.seed, save=not args.no_save,
                         trust_remote_code=args.trust_remote_code)
    if args.json:
        print_json(out)
        return 0
    s = out["settings"]
    print(f"{out['model']} on {', '.join(out['tasks'])} (lm-evaluation-harness; few-shot {s['num_fewshot']}, "
          f"limit {s['limit']}, batch {s['batch_size']}, seed {s['seed']}; {out['seconds']:.0f} s)")
    for line in benchmarks.lines(out["table"]):
        print(f"  {line}")
    if out.get("output_dir"):
        print(f"report: {out['files']['html']}")
    return 0


def bench_cells(row: dict, columns: list[str]) -> list[str]:
    """A leaderboard row's benchmark columns: value ± standard error."""
    m = row["metrics"]
    return [("-" if m.get(c) is None else f"{m[c]:.4f}" + (f"±{m[benchmarks.stderr_key(c)]:.4f}"
                                                          if m.get(benchmarks.stderr_key(c)) is not None else ""))
            for c in columns]
