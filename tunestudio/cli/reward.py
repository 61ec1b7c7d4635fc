"""CLI: `tunestudio reward test` — try reward functions on sampled completions before any training."""

from __future__ import annotations

from tunestudio.core.errors import UserError
from tunestudio.core.output import print_json
from tunestudio.evaluate.report import metric_lines
from tunestudio.models import loading
from tunestudio.models.generate import sampling_from
from tunestudio.rewards.scoring import reward_test


def add_reward_flags(p, required: bool = True) -> None:
    """--rewards and the options of the built-ins, shared by `reward test` and `eval`."""
    p.add_argument("--rewards", "--reward", dest="rewards", required=required, metavar="SPEC",
                   help="rewards with weights: a comma list of NAME[:WEIGHT], NAME a reward file in the "
                        "workspace (rewards/x.py defining reward(prompt, completion, **row) -> float) or a "
                        "built-in (exact_match, regex, json_valid, length_penalty), e.g. "
                        "'rewards/format.py:1.0,exact_match:0.5'")
    p.add_argument("--reward-timeout", type=float, default=30.0,
                   help="seconds a reward file may take for one batch before its process is stopped")
    p.add_argument("--reward-regex", default="", help="the pattern of the regex built-in (whole completion)")
    p.add_argument("--reward-max-chars", type=int, default=200,
                   help="length_penalty: completions longer than this many characters lose reward")


def register(subparsers, common) -> None:
    p = subparsers.add_parser("reward", help="reward functions for GRPO: test them on sampled completions")
    sub = p.add_subparsers(dest="reward_command", metavar="ACTION", required=True)
    t = sub.add_parser("test", parents=[common], help="sample completions and print each with its rewards",
                       description="Sample one completion for each of N prompts of the dataset (spread over it), "
                                   "asked with the model's chat template as training asks, and print each "
                                   "with the score of every reward: before a long GRPO run.")
    add_reward_flags(t)
    t.add_argument("--dataset", required=True, help="prompt rows ({\"prompt\", \"reference\", ...}) or a "
                                                    "chat/instruction dataset (the last answer is the reference)")
    g = t.add_mutually_exclusive_group(required=True)
    g.add_argument("--run", help="a run id or name: its fine-tuned result")
    g.add_argument("--model", help="a base model: folder under models/, a path, or a hub id")
    t.add_argument("-n", type=int, default=8, help="completions to sample (one per prompt)")
    t.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (0: greedy)")
    t.add_argument("--max-new-tokens", type=int, default=64, help="longest completion in tokens")
    t.add_argument("--seed", type=int, default=0, help="seed for sampling")
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.set_defaults(func=cmd_test)


def cmd_test(args, ws) -> int:
    if args.n < 1:
        raise UserError(f"-n must be at least 1 (got {args.n})", "reward_test_n_too_small", value=args.n)
    loading.quiet_transformers()
    sampling = sampling_from(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    out = reward_test(ws, args.rewards, args.dataset, run=args.run, model=args.model, n=args.n,
                      sampling=sampling, timeout=args.reward_timeout, regex=args.reward_regex,
                      max_chars=args.reward_max_chars)
    if args.json:
        print_json(out)
        return 0
    print(print_table(out))
    return 0


def print_table(out: dict) -> str:
    """The completions and their rewards as plain text, one block per completion."""
    names = [r["name"] for r in out["rewards"]]
    lines = [f"{out['n']} completions of {out['model']} on {out['dataset']}"]
    for i, row in enumerate(out["rows"], 1):
        scores = "  ".join(f"{n}={row['rewards'][n]:.3f}" for n in names)
        lines += [f"--- {i} ({row['where']})", f"prompt:     {_one_line(row['prompt'])}",
                  f"completion: {_one_line(row['completion'])}"]
        if row.get("reference") is not None:
            lines.append(f"reference:  {_one_line(str(row['reference']))}")
        lines.append(f"rewards:    {scores}  total={row['total']:.3f}")
    lines.append("mean:       " + "  ".join(f"{n}={out['means'][n]:.3f}" for n in names)
                 + f"  total={out['means']['total']:.3f}")
    return "\n".join(lines)


def print_eval(out: dict, as_json: bool) -> None:
    """`eval` on a reward dataset: each reward's mean over greedy answers (base beside it)."""

    rows = out.pop("rows")
    if as_json:
        print_json(out)
        return
    print(f"{out['model']} on {out['dataset']} ({out['n']} answers, {out['decoding']})")
    print("\n".join(metric_lines(out, name_width=22, value_width=8)))
    worst = sorted(rows, key=lambda r: r["total"])[:3]
    if worst:
        print("lowest-reward answers:")
        for r in worst:
            print(f"  {r['where']}: reward {r['total']:.3f}, got {_one_line(r['completion'], 80)!r}"
                  + (f", reference {r['reference']!r}" if r.get("reference") is not None else ""))


def _one_line(text: str, width: int = 160) -> str:
    text = " ".join(str(text).split("\n"))
    return text if len(text) <= width else text[:width - 1] + "…"
