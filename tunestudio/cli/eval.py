"""CLI: `eval`, `chat`, `bench-models`, `rate`, `export` (docs/dev/architecture.md fixes the contract)."""

from __future__ import annotations

import argparse
import sys

from tunestudio.cli import eval_bench
from tunestudio.cli.judge import (
    add_judge_args,
    judge_endpoint,
    judge_eval,
    prepare_judge,
    print_judge,
    refuse_judge,
)
from tunestudio.cli.reward import add_reward_flags, print_eval
from tunestudio.core.errors import UserError
from tunestudio.core.output import print_json
from tunestudio.core.runlock import hold_run
from tunestudio.data.chat.turns import GENERATION_PROMPTS, split_reasoning
from tunestudio.evaluate import preference as pref
from tunestudio.evaluate import ratings, report
from tunestudio.evaluate.bench import bench_models
from tunestudio.evaluate.predictions import score_predictions
from tunestudio.evaluate.report import metric_lines
from tunestudio.evaluate.run_eval import evaluate
from tunestudio.evaluate.tokenize import BLEU_TOKENIZERS
from tunestudio.models import loading
from tunestudio.models.generate import generate_timed, sampling_from, stream
from tunestudio.models.loading import find_run, load_model
from tunestudio.rewards.scoring import reward_eval


def _model_flags(p: argparse.ArgumentParser, predictions: bool = False) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--run", help="a run id or name: its fine-tuned result")
    g.add_argument("--model", help="a base model: folder under models/, a path, or a hub id")
    if predictions:
        g.add_argument("--predictions", metavar="FILE.jsonl",
                       help="score a file of {\"prediction\", \"reference\"} rows (or \"references\": a list of "
                            "right answers; optional \"prompt\", \"tool_calls\"), JSON Lines or one JSON array, "
                            "from any system, with the same metrics and report; no model needed")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="run Python code shipped with a hub model (only for models you trust)")


def _sampling_flags(p: argparse.ArgumentParser, max_new_tokens=None) -> None:
    g = p.add_argument_group("decoding")
    g.add_argument("--max-new-tokens", type=int, default=max_new_tokens,
                   help="longest answer in tokens" + ("" if max_new_tokens else " (default: from the references)"))
    g.add_argument("--temperature", type=float, default=None, help="0 = greedy (default); above 0 samples")
    g.add_argument("--top-p", type=float, default=None, help="nucleus sampling: keep this much probability mass")
    g.add_argument("--top-k", type=int, default=None, help="sample among the k likeliest tokens (0 = off)")
    g.add_argument("--repetition-penalty", type=float, default=None, help="above 1 discourages repeats")
    g.add_argument("--stop", action="append", default=None, metavar="TEXT",
                   help="end the answer at this text (repeatable)")
    g.add_argument("--seed", type=int, default=None, help="seed for sampled decoding")
    g.add_argument("--generation-prompt", choices=GENERATION_PROMPTS, default="training",
                   help="training (default): ask with exactly what training put before an answer; "
                        "template: the chat template's own generation prompt")


def _sampling(args, **defaults):
    return sampling_from(**{**defaults, **{k: getattr(args, k) for k in (
        "max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "stop", "seed")
        if getattr(args, k) is not None}})


def register(subparsers, common) -> None:
    p = subparsers.add_parser("eval", parents=[common], help="score a run or model on held-out data",
                              description="Generate on a test split and score it; saves metrics, a per-example "
                                          "table and an HTML report in the run folder and the registry.")
    _model_flags(p, predictions=True)
    p.add_argument("--dataset", help="a held-out file to evaluate on, scored whole, read as the run reads its data "
                                     "(default: the run's recorded test split)")
    p.add_argument("--split", default=None, help="test, val, train or all: the run's recorded split (default: test); "
                                                 "with a run's held-out --dataset, only that part of it (default: all "
                                                 "rows); with --model, the dataset's split (default: test)")
    p.add_argument("--metrics", help="comma-separated: exact_match,f1,bleu,rouge1,rouge2,rougeL,tool_call_match,"
                                     "tool_name_match,loss,perplexity (default: chosen from the answers: short ones "
                                     "exact_match,f1, longer text rougeL,rouge1,bleu; tool metrics where a reference "
                                     "calls a tool; loss and perplexity always)")
    p.add_argument("--metric-file", help="a Python file with score(prediction, reference, example) -> float")
    p.add_argument("--bleu-tokenize", choices=BLEU_TOKENIZERS, default="auto",
                   help="sacrebleu's tokenizer for BLEU; auto (default): from the references' script "
                        "(zh, ja-mecab, ko-mecab, intl, else 13a)")
    p.add_argument("--compare-base", action="store_true", help="also run the run's base model on the same rows")
    p.add_argument("--guard-dataset", help="a set the task never touched, to catch forgetting: plain text is scored "
                                           "for perplexity; chat rows (a question, the word a right answer contains, "
                                           "'a|b' for either) are asked of the model and of the run's base "
                                           "(e.g. demo-general.jsonl)")
    p.add_argument("--limit", type=int, help="evaluate only the first N rows")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--no-save", action="store_true", help="print results without saving them")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    # reward datasets (GRPO): the mean of each reward over greedy answers; a GRPO run's own rewards
    # and test split by default
    add_reward_flags(p, required=False)
    p.add_argument("--samples", type=int, default=1,
                   help="rewards with --temperature above 0: answers sampled per prompt (the mean is over all)")
    _sampling_flags(p)
    add_judge_args(p)
    eval_bench.add_benchmark_flags(p, guard=True)
    p.set_defaults(func=cmd_eval)

    p = subparsers.add_parser("chat", parents=[common], help="talk to a run or a model",
                              description="One answer for --prompt, otherwise an interactive chat with history "
                                          "(/reset clears it, /exit or Ctrl-D leaves).")
    _model_flags(p)
    p.add_argument("--prompt", help="ask one question and print the answer")
    p.add_argument("--system", help="system prompt")
    p.add_argument("--merge", action="store_true", help="merge an adapter into the weights first (faster)")
    p.add_argument("--json", action="store_true", help="with --prompt: print one JSON object")
    _sampling_flags(p, max_new_tokens=256)
    p.set_defaults(func=cmd_chat)

    p = subparsers.add_parser("bench-models", parents=[common], help="rank candidate base models on a dataset",
                              description="Each model's loss/perplexity and metrics on the dataset's test rows "
                                          "before training, with size, memory and speed, as a leaderboard.")
    p.add_argument("--models", required=True, help="comma-separated models (models/ names, paths or hub ids)")
    p.add_argument("--dataset", help="held-out rows to score (needed unless --benchmark)")
    p.add_argument("--metrics", help="comma-separated metric names (default: exact_match,f1,loss,perplexity)")
    p.add_argument("--limit", type=int, help="use only the first N test rows")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--json", action="store_true")
    eval_bench.add_benchmark_flags(p)
    p.set_defaults(func=cmd_bench)

    _register_rate(subparsers, common)


# ---- eval ---------------------------------------------------------------------------------------

def cmd_eval(args, ws):
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1 (got {args.limit})", "option_at_least", option="--limit",
                        value=args.limit, least=1)
    with judge_endpoint(args, ws):   # --judge RUN: its server for the evaluation's length
        prepare_judge(args, ws)   # flags and endpoint checked before minutes of generation
        if args.predictions:
            return _eval_predictions(args, ws)
        loading.quiet_transformers()
        if args.benchmark:
            return eval_bench.cmd_benchmark(args, ws)
        # --run: the run's shared lock to the end (its eval/ folder and registry row written): not while
        # it trains or resumes, and no delete meanwhile (core/runlock.py)
        with hold_run(ws, args.run, "eval"):
            return _eval(args, ws)


def _eval(args, ws):
    if args.rewards or (args.run and not args.metrics and not args.metric_file and _is_grpo_run(ws, args.run)):
        refuse_judge(args)
        out = reward_eval(ws, args.rewards, args.dataset, run=args.run, model=args.model,
                          compare_base=args.compare_base, limit=args.limit, max_new_tokens=args.max_new_tokens or 64,
                          split=args.split or "test", timeout=args.reward_timeout, regex=args.reward_regex,
                          max_chars=args.reward_max_chars, batch_size=args.batch_size,
                          temperature=args.temperature or 0.0, samples=args.samples, seed=args.seed or 0,
                          save=not args.no_save)
        print_eval(out, args.json)
        return 0

    if pref.wants_preference_eval(ws, args.run, args.dataset):  # pairs: preference_accuracy, margins
        refuse_judge(args)
        out = pref.evaluate_preferences(ws, run=args.run, model=args.model, dataset=args.dataset,
                                        split=args.split or "test", compare_base=args.compare_base, limit=args.limit,
                                        batch_size=args.batch_size, save=not args.no_save)
        pref.print_result(out, args.json)
        return 0
    sampling = None
    if any(getattr(args, k) is not None for k in ("temperature", "top_p", "top_k", "repetition_penalty", "stop", "seed")):
        sampling = _sampling(args)
    out = evaluate(ws, run=args.run, model=args.model, dataset=args.dataset, split=args.split,
                   metrics=args.metrics, metric_file=args.metric_file, compare_base=args.compare_base,
                   guard_dataset=args.guard_dataset, limit=args.limit, max_new_tokens=args.max_new_tokens,
                   batch_size=args.batch_size, sampling=sampling, save=not args.no_save,
                   trust_remote_code=args.trust_remote_code, generation_prompt=args.generation_prompt,
                   bleu_tokenize=args.bleu_tokenize, benchmark_guard=eval_bench.guard_result(args, ws))
    if args.judge_client is not None:
        out["judge"] = judge_eval(args, ws, out)
    _print_eval(out, args.json)
    return 0


def _is_grpo_run(ws, run: str) -> bool:
    return find_run(ws, run).config.get("objective") == "grpo"


def _eval_predictions(args, ws) -> int:
    model_only = [flag for flag, given in (
        ("--dataset", args.dataset), ("--compare-base", args.compare_base), ("--guard-dataset", args.guard_dataset),
        ("--split", args.split is not None), ("--trust-remote-code", args.trust_remote_code),
        *((f"--{k.replace('_', '-')}", getattr(args, k) is not None) for k in (
            "max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "stop", "seed"))) if given]
    if model_only:
        raise UserError(f"{', '.join(model_only)} apply to a model's answers; --predictions scores a file "
                        "that already holds them: drop them", "predictions_model_flags", flags=model_only)
    out = score_predictions(ws, args.predictions, metrics=args.metrics, metric_file=args.metric_file,
                            bleu_tokenize=args.bleu_tokenize, limit=args.limit, save=not args.no_save)
    _print_eval(out, args.json)
    return 0


def _print_eval(out: dict, as_json: bool) -> None:
    rows = out.pop("rows")
    if as_json:
        print_json(out)
        return
    print(f"{out['model']} on {out['dataset']} ({out['split']}, {out['n']} examples)")
    for k, line in zip(out["metrics"], metric_lines(out)):
        if k == "bleu" and out.get("bleu_tokenize"):
            line += f"   (sacrebleu tokenizer {out['bleu_tokenize']})"
        print(line)
    for note in out.get("metric_notes") or []:   # a metric asked by name that reads 0 on these answers
        print(f"  note: {note}")
    if out.get("guard"):
        print(f"  {report.guard_line(out['guard'])}")
    primary = out.get("primary_metric")
    worst = report.worst_examples(rows, primary)
    if worst:   # none when no row has a value for it (a predictions file has no loss), or every one is right
        print(f"worst examples by {primary}:")
        for r in worst:
            print(f"  {report.worst_line(r, primary)}")
    elif rows and all(report.perfect(r, primary) for r in rows):
        print(f"all {len(rows)} examples are exactly right ({primary})")
    if out.get("output_dir"):
        print(f"report: {out['files']['html']}")
    if out.get("judge"):
        print_judge(out["judge"])


# ---- chat ---------------------------------------------------------------------------------------

def cmd_chat(args, ws):
    loading.quiet_transformers()
    sampling = _sampling(args)
    model, tok, info = load_model(ws, run=args.run, model=args.model, merge=args.merge,
                                  trust_remote_code=args.trust_remote_code)
    reasons = bool(info.get("reasoning"))  # a model trained to think first is asked with its think block open
    if args.prompt is not None:
        gen = generate_timed(model, tok, [args.prompt], sampling, system=args.system, mode=args.generation_prompt,
                             reasoning=reasons)
        reasoning, answer = split_reasoning(gen.texts[0])
        if args.json:
            print_json({"model": info["label"], "prompt": args.prompt, "response": answer, "reasoning": reasoning,
                        "stopped": gen.stopped[0], "tokens": gen.tokens, "seconds": gen.seconds,
                        "sampling": sampling.to_dict()})
        else:
            if reasoning:
                print(f"(reasoning) {reasoning}\n")
            print(answer)
        return 0
    if args.json:
        raise UserError("--json needs --prompt (an interactive chat prints as it goes)", "chat_json_needs_prompt")
    print(f"chatting with {info['label']} (/reset clears the history, /exit or Ctrl-D leaves)", file=sys.stderr)
    history: list[dict] = []
    while True:
        try:
            line = input("> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        if line.strip() in ("/exit", "/quit"):
            return 0
        if line.strip() == "/reset":
            history = []
            print("(history cleared)", file=sys.stderr)
            continue
        if not line.strip():
            continue
        history.append({"role": "user", "content": line})
        shown = ""
        for text in stream(model, tok, history, sampling, system=args.system, mode=args.generation_prompt,
                           reasoning=reasons):
            sys.stdout.write(text[len(shown):])  # print only what is new
            sys.stdout.flush()
            shown = text
        print()
        reasoning, answer = split_reasoning(shown)
        history.append({"role": "assistant", "content": answer.strip(),
                        **({"reasoning": reasoning} if reasoning else {})})


# ---- bench-models -------------------------------------------------------------------------------

def cmd_bench(args, ws):
    loading.quiet_transformers()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    out = bench_models(ws, models, args.dataset, metrics=args.metrics, limit=args.limit,
                       batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, benchmark=args.benchmark,
                       num_fewshot=args.num_fewshot)
    if args.json:
        print_json(out)
        return 0
    cols = ["rank", "model", "params", "train_memory_full", "tokens_per_second", *out["metrics"]]
    print(f"{out['dataset'] or 'benchmarks'}: {out['n']} test rows, ranked by {out['ranked_by']}")
    print("  ".join(f"{c:>14}" for c in cols + out["benchmark_columns"]))
    for row in out["leaderboard"]:
        cells = []
        for c in cols:
            v = row.get(c) if c in row else row["metrics"].get(c)
            if c == "train_memory_full" and v is not None:
                v = f"{v / 2**20:.0f} MiB"
            cells.append(f"{v:>14.4g}" if isinstance(v, float) else f"{str(v):>14}")
        print("  ".join(cells + [f"{c:>14}" for c in eval_bench.bench_cells(row, out["benchmark_columns"])]))
    return 0


# ---- rate ---------------------------------------------------------------------------------------

def _register_rate(subparsers, common) -> None:
    p = subparsers.add_parser("rate", help="blind A/B human ratings of two models' answers",
                              description="Create a session of anonymised A/B pairs, rate them, see win rates.")
    sub = p.add_subparsers(dest="rate_command", metavar="ACTION", required=True)

    q = sub.add_parser("new", parents=[common], help="generate both sides' answers for a prompt set")
    q.add_argument("--a", required=True, help="first source: run:RUN, base:RUN (a run's base model) or model:M")
    q.add_argument("--b", required=True, help="second source, same forms")
    q.add_argument("--prompts", help="a dataset whose rows' prompts are used (any supported format)")
    q.add_argument("--prompt", action="append", default=[], help="a prompt (repeatable)")
    q.add_argument("--limit", type=int, help="use only the first N prompts")
    q.add_argument("--name", help="a name for the session")
    q.add_argument("--seed", type=int, default=None, help="seed for the A/B order")
    q.add_argument("--max-new-tokens", type=int, default=128)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_rate_new)

    q = sub.add_parser("session", parents=[common], help="rate a session's items (interactive, or --choices)")
    q.add_argument("session", type=int, metavar="ID")
    q.add_argument("--rater", default=None, help="who is rating (default: $USER)")
    q.add_argument("--choices", help="scripted ratings, one per item in order: e.g. A,B,tie,A")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_rate_session)

    q = sub.add_parser("summary", parents=[common], help="win rates with 95%% confidence intervals")
    q.add_argument("session", type=int, metavar="ID")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_rate_summary)

    q = sub.add_parser("list", parents=[common], help="rating sessions")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_rate_list)


def _rater(args) -> str:
    import getpass

    if args.rater:
        return args.rater
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "anonymous"


def cmd_rate_new(args, ws):
    loading.quiet_transformers()
    prompts = ratings.prompts_from(ws, args.prompts, args.prompt, args.limit)
    sid = ratings.create_session(ws, prompts, args.a, args.b, name=args.name, seed=args.seed,
                                 max_new_tokens=args.max_new_tokens)
    if args.json:
        print_json({"session_id": sid, "items": len(prompts)})
    else:
        print(f"session {sid}: {len(prompts)} items; rate them with `tunestudio rate session {sid}`")
    return 0


def cmd_rate_session(args, ws):
    rater = _rater(args)
    if args.choices is not None:
        choices = [c.strip() for c in args.choices.split(",") if c.strip()]
        recorded = 0
        for choice in choices:
            item = ratings.next_item(ws, args.session, rater)
            if item is None:
                raise UserError(f"session {args.session} has only {recorded} unrated item(s) for {rater}, "
                                f"but {len(choices)} choices were given", "rate_too_many_choices",
                                session=args.session, unrated=recorded, rater=rater, given=len(choices))
            ratings.record_rating(ws, args.session, item["item"], choice, rater=rater)
            recorded += 1
        out = ratings.summary(ws, args.session)
        print_json(out) if args.json else print(ratings.format_summary(out))
        return 0
    while True:
        item = ratings.next_item(ws, args.session, rater)
        if item is None:
            print("all items rated", file=sys.stderr)
            break
        print(f"\n[{item['done'] + 1}/{item['total']}] PROMPT:\n{item['prompt']}\n\n--- A ---\n{item['a']}"
              f"\n\n--- B ---\n{item['b']}\n")
        try:
            choice = input("better? [a/b/t(ie)/s(kip rest)] ").strip().lower()
        except EOFError:
            break
        if choice in ("s", "q", "skip", "quit"):
            break
        choice = {"a": "A", "b": "B", "t": "tie"}.get(choice, choice)
        try:
            comment = input("comment (optional): ").strip() or None
        except EOFError:
            comment = None
        try:
            ratings.record_rating(ws, args.session, item["item"], choice, comment=comment, rater=rater)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
    out = ratings.summary(ws, args.session)
    print_json(out) if args.json else print(ratings.format_summary(out))
    return 0


def cmd_rate_summary(args, ws):
    out = ratings.summary(ws, args.session)
    print_json(out) if args.json else print(ratings.format_summary(out))
    return 0


def cmd_rate_list(args, ws):
    sessions = ratings.list_sessions(ws)
    if args.json:
        print_json({"sessions": sessions})
        return 0
    for s in sessions:
        print(f"{s['id']:>4}  {s['name'] or '':<20} {s['a_label']} vs {s['b_label']}: "
              f"{s['rated']}/{s['items']} rated")
    return 0
