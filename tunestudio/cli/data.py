"""`tunestudio data check|clean|stats|preview DATASET`: the CLI face of the dataset layer.

Each command calls one function (check_dataset, clean_dataset, stats_dataset, preview_dataset)
that the web UI calls too; this module only parses options and prints. The modules imported
here use the standard library only; transformers, numpy (encode.py) and the like are imported
inside the functions that need them, so `tunestudio --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tunestudio.cli import data_pref
from tunestudio.config.choices import REASONING_MODES, TEXT_MODES
from tunestudio.core.output import print_json
from tunestudio.data.encoding.encode import render_preview
from tunestudio.data.formats.load import FORMATS
from tunestudio.data.quality import pref
from tunestudio.data.quality.clean import NEAR_THRESHOLD, clean_dataset
from tunestudio.data.quality.stats import preview_dataset, stats_dataset
from tunestudio.data.split import MAX_LISTED, format_problems


def register(subparsers, common) -> None:
    data = subparsers.add_parser("data", help="check, clean and describe datasets")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    def add(name, help_text, func):
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.add_argument("dataset", metavar="DATASET",
                       help="a file in training/datasets, a split-set name (NAME.train.*), or a path")
        p.add_argument("--format", default=None, help=f"skip detection: {', '.join(FORMATS)}")
        p.add_argument("--map", dest="mapping", default=None, metavar="FIELD=COLUMN,...",
                       help="which columns hold which fields, e.g. instruction=question,output=answer")
        p.add_argument("--separator", default=None,
                       help="plain-text files: the string between documents (default: blank lines)")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.set_defaults(func=func)
        return p

    p = add("check", "validate every row; exit 1 when any row cannot be used", _check)
    p.add_argument("--model", default=None, help="count tokens with this model's tokenizer")
    p.add_argument("--max-length", type=int, default=None,
                   help="warn about rows longer than this (tokens with --model, else characters)")

    p = add("clean", "write a cleaned copy (trimmed, NFC, no empty/duplicate/bad/over-long rows) "
                     "and a report of every removal; the input is never changed", _clean)
    p.add_argument("--model", default=None, help="the model whose tokens --max-tokens counts")
    p.add_argument("--max-tokens", type=int, default=None, help="drop rows longer than this many tokens")
    p.add_argument("--near-threshold", type=float, default=NEAR_THRESHOLD,
                   help="3-gram Jaccard similarity at which rows with the same answer are near-duplicates")

    p = add("stats", "rows, turns, roles, lengths against the cutoff, duplicates, label balance", _stats)
    p.add_argument("--model", default=None, help="count tokens with this model's tokenizer")
    p.add_argument("--max-length", type=int, default=None,
                   help="the cutoff shown in the histogram (tokens with --model, else characters)")
    p.add_argument("--bins", type=int, default=10, help="at most this many histogram bins, of a round width fitted to the data")
    p.add_argument("--text-mode", choices=TEXT_MODES, default="stream",
                   help="plain text: stream (default, as training) also counts the documents, tokens and "
                        "--max-length blocks of the token stream (with --model); truncate: rows as they are")
    p.add_argument("--stride", type=int, default=0, help="stream mode: tokens each block repeats from the one before")

    p = add("preview", "show one row exactly as the model is trained on it (its chat template applied, "
                       "trained tokens marked), and how many rows lose answer tokens at the max length",
            _preview)
    p.add_argument("--model", required=True, help="the model whose tokenizer and chat template to use")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--row", type=int, default=1, help="which row, counting usable rows from 1 (default 1)")
    which.add_argument("--line", type=int, default=None,
                       help="the row at this line of the file, as `data check` and errors count (the next usable "
                            "row when that line holds none)")
    p.add_argument("--max-length", type=int, default=None,
                   help="cut rows at this many tokens, as training does (default: training's default)")
    p.add_argument("--train-on-prompt", action="store_true",
                   help="also train on the prompt tokens, as `train --train-on-prompt` does")
    p.add_argument("--reasoning", choices=REASONING_MODES, default="keep",
                   help="keep (default) or drop assistants' reasoning, as `train --reasoning` does")
    p.add_argument("--text-mode", choices=TEXT_MODES, default="stream",
                   help="plain text: stream (default, as training: blocks of a token stream, nothing cut) "
                        "or truncate (one row per document, cut at the max length)")
    p.add_argument("--stride", type=int, default=0, help="stream mode: tokens each block repeats from the one before")


def _check(args, ws) -> int:
    if pref.preference_kind(ws, args.dataset):  # pairs / KTO rows: their own checks
        return data_pref.check(args, ws)
    from tunestudio.data.quality.check import check_dataset

    report = check_dataset(ws, args.dataset, args.format, args.mapping, args.model, args.max_length,
                           args.separator)
    if args.json:
        print_json(report.to_json())
    else:
        for key, loaded in report.files.items():
            label = "" if key == "all" else f" ({key})"
            print(f"{Path(loaded.path).name}{label}: format {loaded.describe()}, {report.usable(loaded)} usable rows")
        print(f"rows: {report.rows}   errors: {len(report.errors)}   warnings: {len(report.warnings)}")
        if report.errors:
            print("errors (rows that cannot be used):\n" + _indent(format_problems(report.errors)))
        if report.warnings:
            print("warnings:\n" + _indent(format_problems(report.warnings)))
        if report.ok:
            n = len(report.warnings)
            print(("OK: every row can be used" if not report.dropped else
                   f"OK: every row can be read, but {report.dropped} will be dropped by training at max length "
                   f"{report.max_length} (no answer token fits: raise --max-length or shorten them)")
                  + (f" ({n} warnings)" if n else ""))
    if report.errors:
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        print(f"error: {first}{more}", file=sys.stderr)
        return 1
    return 0


def _clean(args, ws) -> int:
    results = clean_dataset(ws, args.dataset, args.format, args.mapping, args.model, args.max_tokens,
                            args.near_threshold, args.separator)
    if args.json:
        removed: dict[str, int] = {}
        for r in results:
            for reason, n in r.removed.items():
                removed[reason] = removed.get(reason, 0) + n
        print_json({"kept": sum(r.kept for r in results), "removed": removed,
                    "files": [r.to_json() for r in results]})
        return 0
    for r in results:
        removed = ", ".join(f"{n} {reason}" for reason, n in r.removed.items()) or "nothing"
        print(f"{r.input.name} ({r.format}): {r.rows} rows, kept {r.kept}, removed {removed}")
        print(f"  wrote {r.output}")
        print(f"  report {r.report}")
        for rm in r.removals[:MAX_LISTED]:
            print(f"    {rm.file}:{rm.line}: {rm.reason}: {rm.detail}")
        if len(r.removals) > MAX_LISTED:
            print(f"    ... and {len(r.removals) - MAX_LISTED} more (see the report)")
    return 0


def _stats(args, ws) -> int:
    if pref.preference_kind(ws, args.dataset):
        s = pref.stats(ws, args.dataset, args.model, args.max_length)
        if args.json:
            print_json(s)
        else:
            print(data_pref.render_stats(s))
        return 0

    s = stats_dataset(ws, args.dataset, args.format, args.mapping, args.model, args.max_length,
                      args.separator, bins=max(1, args.bins), text_mode=args.text_mode, stride=args.stride)
    if args.json:
        print_json(s)
        return 0
    print(render_stats(s))
    return 0


def render_stats(s: dict) -> str:
    """The human text of `data stats` (the web UI may show it as is)."""
    unit = s["unit"]
    lines = [f"{s.get('dataset', '')}: format {s['format']}, {s['rows']} rows"]
    if s.get("documents") is not None:
        st = s.get("stream")
        if st:
            overlap = f", each repeating {st['stride']} tokens of the one before" if st["stride"] else ""
            lines.append(f"text stream: {st['documents']} documents, {st['tokens']} tokens (with one eos per "
                         f"document), {st['blocks']} blocks of up to {st['max_length']} tokens{overlap}; "
                         f"longest document {st['longest_document_tokens']} tokens, none cut")
        else:
            lines.append(f"text stream: {s['documents']} documents (give --model to count their tokens and blocks)")
    if s["turns"]:
        t = s["turns"]
        lines.append(f"turns per row: min {t['min']}, mean {t['mean']}, max {t['max']}")
        lines.append("roles: " + ", ".join(f"{role} {n}" for role, n in s["roles"].items()))
    c, n = s["chars"], s["length"]
    lines.append(f"characters per row: min {c['min']}, median {c['median']:g}, p95 {c['p95']}, max {c['max']}")
    if unit == "tokens":
        lines.append(f"tokens per row: min {n['min']}, median {n['median']:g}, p95 {n['p95']}, "
                     f"max {n['max']}, total {n['total']}")
    cutoff = f"cutoff {s['cutoff']} {unit}" if s["cutoff"] else "no cutoff given"
    lines.append(f"{unit} per row ({cutoff}):")
    top = max((b["count"] for b in s["histogram"]), default=0) or 1
    width = len(str(max((b["hi"] for b in s["histogram"]), default=0)))
    for b in s["histogram"]:
        bar = "#" * round(40 * b["count"] / top)
        span = f"> {b['lo']:>{width}}" + " " * (width + 3) if b["over_cutoff"] else f"{b['lo']:>{width}} - {b['hi']:>{width}}"
        cut = "spread over several blocks" if s.get("stream") else "truncated"
        note = f"  over the cutoff: {cut}" if b["over_cutoff"] and b["count"] else ""
        lines.append(f"  {span}  {bar:<40} {b['count']}{note}")
    lines.append(f"duplicates: {s['duplicates']}")
    if s["labels"]:
        total = sum(s["labels"].values())
        lines.append("labels: " + ", ".join(f"{label!r} {k} ({k / total:.0%})" for label, k in s["labels"].items()))
    for w in s["warnings"]:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def _preview(args, ws) -> int:
    if pref.preference_kind(ws, args.dataset):
        p = pref.preview(ws, args.dataset, args.model, args.row, args.max_length, line=args.line)
        if args.json:
            print_json(p)
        else:
            color = sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
            print(data_pref.render_preview(p, color=color))
        return 0

    p = preview_dataset(ws, args.dataset, args.model, args.row, args.max_length, args.train_on_prompt,
                        args.format, args.mapping, args.separator, args.reasoning, args.text_mode, args.stride,
                        line=args.line)
    p["reasoning_mode"] = args.reasoning
    if args.json:
        print_json(p)
        return 0
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    print(render_preview_text(p, color=color))
    return 0


def render_preview_text(p: dict, color: bool = False) -> str:
    """The human text of `data preview` (the web UI may show it as is)."""

    trained = ("all of the text" if not p["chat"] else
               "prompt and answers" if p["train_on_prompt"] else "answers only")
    mark = "green" if color else "[[...]]"
    lines = [f"{p['source']}:{p['line']} (row {p['row']} of {p['rows']}) as model {p['model']} sees it, "
             f"max length {p['max_length']} tokens, trained on {trained}",
             f"{p['n_tokens']} tokens, {p['n_trained']} trained (marked {mark}):",
             "-" * 60,
             render_preview([(t["text"], t["trained"]) for t in p["tokens"]], color=color),
             "-" * 60]
    if p.get("asked_line"):
        lines.insert(0, f"line {p['asked_line']} holds no usable row (a header, a blank line, or a problem "
                        f"`data check` lists): the next usable one is shown")
    if p.get("stream"):
        st = p["stream"]
        lines.append(f"plain text is trained as one token stream: {st['documents']} documents, {st['tokens']} "
                     f"tokens, {st['blocks']} blocks of up to {st['max_length']} tokens; nothing is cut "
                     "(this row's first tokens are shown)")
    if p["row_dropped"]:
        lines.append(f"this row is cut at {p['max_length']} tokens before any answer token: "
                     "it has nothing to train on and will be dropped")
    elif p["row_truncated"]:
        lost = "its answer" if p["chat"] and not p["train_on_prompt"] else "what it trains on"
        lines.append(f"this row is cut at {p['max_length']} tokens: part of {lost} is lost")
    if p["truncation"]:
        lines.append(f"warning: truncated: {p['truncation']}")
    elif not p.get("stream"):
        lines.append(f"truncated: 0 of {p['rows']} rows lose trained tokens at max length {p['max_length']}")
    if p.get("reasoning"):
        how = ("dropped (--reasoning drop)" if p.get("reasoning_mode") == "drop" else
               "trained" if p.get("reasoning_rendered") else "not rendered by this model's chat template, so not trained")
        lines.append(f"reasoning of the answer ({how}): {p['reasoning']!r}")
    if p.get("tools") or p.get("tool_calls"):
        lines.append(f"tools declared: {', '.join(p['tools']) or 'none'}; {p['tool_calls']} tool call(s) "
                     f"(trained, with the assistant turns), {p['tool_results']} tool result(s) (not trained)")
    lines += [f"warning: {w}" for w in p["warnings"] if w != p["truncation"]]
    if p.get("prompts"):
        lines += ["prompt the model is asked with (--generation-prompt training, used by default):",
                  _indent(repr(p["prompts"]["training"][-200:])),
                  "the chat template's own generation prompt (--generation-prompt template):",
                  _indent(repr(p["prompts"]["template"][-200:]))]
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
