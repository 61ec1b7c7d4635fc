"""`data check` / `data stats` / `data preview` on preference files (pairs, or labelled KTO rows), as
printed by the CLI: cli/data.py hands a dataset over here when its first file is one
(`pref.preference_kind`); the checks themselves are data/quality/pref.py's."""

from __future__ import annotations

import sys
from pathlib import Path

from tunestudio.core.output import print_json
from tunestudio.data.encoding.encode import render_preview as marked
from tunestudio.data.quality import pref

SHOWN = 20


def check(args, ws) -> int:
    """Every row parsed; with --model also rendered and cut as training does."""
    report = pref.check(ws, args.dataset, args.model, args.max_length)
    loads, errors, warnings, rows = report["loads"], report["errors"], report["warnings"], report["rows"]
    if args.json:
        print_json({"ok": not errors, "rows": rows, "format": next(iter(loads.values())).kind,
                    "errors": [p.to_dict() for p in errors], "warnings": warnings,
                    "files": {k: {"path": ld.path, "usable": len(ld.records)} for k, ld in loads.items()}})
    else:
        for key, ld in loads.items():
            label = "" if key == "all" else f" ({key})"
            print(f"{Path(ld.path).name}{label}: format {pref.describe(ld.kind) if ld.kind else 'unknown'}, "
                  f"{len(ld.records)} usable rows")
        print(f"rows: {rows}   errors: {len(errors)}   warnings: {len(warnings)}")
        if errors:
            print("errors (rows that cannot be used):")
            for p in errors[:SHOWN]:
                print(f"  {p}")
            if len(errors) > SHOWN:
                print(f"  ... and {len(errors) - SHOWN} more")
        for w in warnings:
            print(f"warning: {w}")
        if not errors:
            print("OK: every row can be used")
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        print(f"error: {errors[0]}{more}", file=sys.stderr)
        return 1
    return 0


def render_stats(s: dict) -> str:
    lines = [f"{s['dataset']}: format {s['format']}, {s['rows']} usable rows"
             + (f" ({s['errors']} rows with errors: run `data check`)" if s["errors"] else "")]
    for key in ("prompt_chars", "chosen_chars", "rejected_chars", "completion_chars"):
        if key in s:
            v = s[key]
            lines.append(f"{key.replace('_chars', '')} characters: min {v['min']}, median {v['median']:g}, "
                         f"mean {v['mean']}, max {v['max']}")
    if "chosen_longer_share" in s:
        lines.append(f"chosen is the longer answer in {s['chosen_longer_share']:.0%} of pairs "
                     "(far from 50%: the model may learn length rather than quality)")
    if "labels" in s:
        lines.append(f"labels: desirable {s['labels']['desirable']}, undesirable {s['labels']['undesirable']}")
    if "tokens" in s:
        t = s["tokens"]
        lines.append(f"tokens: prompt mean {t['prompt_tokens_mean']}, answer mean {t['answer_tokens_mean']}; "
                     f"{t['truncated']} rows cut, {t['dropped']} dropped")
    lines.append(f"duplicates: {s['duplicates']}")
    return "\n".join(lines)


def render_preview(p: dict, color: bool = False) -> str:
    mark = "green" if color else "[[...]]"
    lines = [f"{p['source']}:{p['line']} (row {p['row']} of {p['rows']}) as model {p['model']} sees it, "
             f"max length {p['max_length']} tokens; answer tokens are trained (marked {mark})",
             "prompt (shared, not trained):", "-" * 60,
             marked([(t["text"], t["trained"]) for t in p["prompt"]], color=color), "-" * 60]
    for name, toks in p["answers"].items():
        label = f" (label: {'desirable' if p['label'] else 'undesirable'})" if name == "completion" else ""
        lines += [f"{name}{label}: {len(toks)} tokens", marked([(t["text"], t["trained"]) for t in toks], color=color)]
    if p["truncated"]:
        lines.append(f"this row is cut at {p['max_length']} tokens: part of an answer is lost")
    return "\n".join(lines)
