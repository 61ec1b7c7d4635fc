"""`tunestudio eval --judge ENDPOINT|RUN ...`: the LLM judge's flags and its face in `eval`.

Not a command of its own: cli/eval.py adds these flags (`add_judge_args`), checks them and the
endpoint before the evaluation starts (`prepare_judge`: a dead endpoint fails in a second, not
after minutes of generation) and grades the evaluation's rows after it (`judge_eval`). The work is
tunestudio.evaluate.judge_run.judge_evaluation, which the Evaluate tab's judge panel calls too.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager

from tunestudio.core.errors import UserError
from tunestudio.evaluate.agreement import agreement_line
from tunestudio.evaluate.judge import MODES, read_rubric, summary_lines
from tunestudio.evaluate.judge_run import API_KEY_ENVS, connect, judge_evaluation
from tunestudio.ship.background import served_url, serving

JUDGE_FLAGS = ("rubric", "judge_mode", "judge_model", "judge_parallel", "judge_timeout")


def add_judge_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("LLM judge (docs/evaluation.md)")
    g.add_argument("--judge", metavar="ENDPOINT|RUN",
                   help="grade the answers with an LLM judge: an OpenAI-compatible URL (http://127.0.0.1:8000/v1) or "
                        "a run served by `tunestudio serve`; its API key from "
                        f"${API_KEY_ENVS[0]} or ${API_KEY_ENVS[1]}")
    g.add_argument("--rubric", metavar="FILE", help="the judge's criteria (plain text) instead of the default rubric")
    g.add_argument("--judge-mode", choices=MODES, default=None,
                   help="single: rate each answer 1-10; pairwise: base vs fine-tuned, asked in both orders; both "
                        "(default with --run; --model: single)")
    g.add_argument("--judge-model", metavar="NAME", help="the model to ask (default: the endpoint's first)")
    g.add_argument("--judge-parallel", type=int, default=None, metavar="N", help="requests at once (default 4)")
    g.add_argument("--judge-timeout", type=float, default=None, metavar="S",
                   help="seconds a request may wait for the judge (default 60; one retry)")


def prepare_judge(args, ws) -> None:
    """Check the judge's flags and reach its endpoint before anything is evaluated; sets args.judge_client
    (None without --judge). Pairwise judging needs the base's answers: --run then implies --compare-base."""
    args.judge_client = None
    if not args.judge:
        given = [f"--{k.replace('_', '-')}" for k in JUDGE_FLAGS if getattr(args, k) is not None]
        if given:
            raise UserError(f"{', '.join(given)} apply to the LLM judge: add --judge ENDPOINT|RUN",
                            "judge_flags_need_judge", flags=given)
        return
    if args.predictions:
        raise UserError("--judge grades answers a model gives here: use it with --run or --model, not --predictions",
                        "judge_needs_answers")
    args.judge_mode = args.judge_mode or ("both" if args.run else "single")
    if args.judge_mode != "single" and not args.run:
        raise UserError("pairwise judging compares the base model's answers with the fine-tuned ones: evaluate "
                        "--run RUN, or use --judge-mode single", "judge_needs_base")
    if args.run and not args.compare_base:
        # pairwise needs the base's answers; single grades both too, so the grades (and their agreement
        # with the Rate tab's base-vs-tuned ratings) compare the two models
        print(f"notice: --judge-mode {args.judge_mode} grades the base's answers too: evaluating with --compare-base",
              file=sys.stderr)
        args.compare_base = True
    read_rubric(args.rubric)
    args.judge_client = connect(served_url(ws, args.judge), args.judge_model,
                                4 if args.judge_parallel is None else args.judge_parallel,
                                60.0 if args.judge_timeout is None else args.judge_timeout)


@contextmanager
def judge_endpoint(args, ws):
    """`--judge RUN`: the run's `tunestudio serve` server for the length of the evaluation, started
    (and stopped after) when it is not served already; a URL is used as given."""
    spec = (getattr(args, "judge", None) or "").strip()
    if not spec or spec.startswith(("http://", "https://")):
        yield
        return
    with serving(ws, spec) as url:
        print(f"judge: run {spec} served at {url} for this evaluation", file=sys.stderr)
        args.judge = url
        yield


def refuse_judge(args) -> None:
    """Rewards and preference pairs are scored without free answers to grade."""
    if getattr(args, "judge_client", None) is not None:
        raise UserError("--judge grades generated answers; this run is scored by rewards or preference pairs",
                        "judge_needs_answers")


def judge_eval(args, ws, out: dict) -> dict:
    """Grade the evaluation just made (saved beside it unless --no-save); returns the summary for printing."""
    got = judge_evaluation(ws, out["rows"], args.judge_client, args.judge_mode, args.rubric, run_id=out.get("run_id"),
                           folder=out.get("output_dir"), save=not args.no_save)
    return {k: v for k, v in got.items() if k != "examples"}


def print_judge(summary: dict) -> None:
    for line in summary_lines(summary):
        print(line)
    if summary.get("run_id"):
        print(f"  {agreement_line(summary.get('agreement'))}")
    if summary.get("files"):
        print(f"  judge's verdicts: {summary['files']['judge_examples']}")
