"""`data check` / `data stats` / `data preview` on preference files (pairs, or labelled KTO rows):
data/commands.py hands a dataset over here when its first file is one (`preference_kind`)."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from tunestudio.data.preference import load_pref_file, sniff
from tunestudio.data.formats.readers import ProblemError
from tunestudio.core.errors import UserError

DEFAULT_MAX_LENGTH = 512   # RunConfig.max_length's default: what training would cut at
SHOWN = 20


def preference_kind(ws, dataset: str) -> str | None:
    """"pairs"/"unpaired" when `dataset` (a file or split set) is preference data, else None."""
    from tunestudio.data.split import resolve_dataset

    try:
        files = resolve_dataset(ws, dataset)
    except UserError:
        return None  # the SFT path reports an unknown dataset in its own words
    return sniff(next(iter(files.values())))


def _loads(ws, dataset):
    from tunestudio.data.split import resolve_dataset

    return {k: load_pref_file(p) for k, p in resolve_dataset(ws, dataset).items()}


def _tokenizer(ws, model: str):
    from transformers import AutoTokenizer

    from tunestudio.data.chat.template import ensure_chat_template

    path = ws.model_path_or_id(model)
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except Exception as e:  # noqa: BLE001 - any loading failure is the user's model path
        detail = str(e).splitlines()[0][:200]
        raise UserError(f"cannot load the tokenizer of {model}: {detail}", "tokenizer_unloadable", source=model,
                        detail=detail) from None
    ensure_chat_template(tok)
    return tok


def _describe(kind: str) -> str:
    return "preference pairs (prompt, chosen, rejected)" if kind == "pairs" else \
        "unpaired answers with a desirable/undesirable label (KTO)"


def check(args, ws) -> int:
    """Every row parsed; with --model also rendered and cut as training does, so a pair that is
    identical once cut, or a template that refuses a row, is an error here too."""
    loads = _loads(ws, args.dataset)
    errors = [p for ld in loads.values() for p in ld.errors]
    warnings: list[str] = []
    if args.model:
        from tunestudio.data.encoding.pref_encode import encode_prefs

        tok = _tokenizer(ws, args.model)
        max_length = args.max_length or DEFAULT_MAX_LENGTH
        for ld in loads.values():
            enc = encode_prefs(ld.records, tok, max_length)
            errors += enc.errors
            if enc.truncated or enc.dropped:
                warnings.append(f"{len(enc.truncated)} of {enc.rows} rows lose answer tokens at max length "
                                f"{max_length}" + (f", {len(enc.dropped)} have nothing left (dropped)" if enc.dropped
                                                   else "") + f"; first: {', '.join((enc.truncated + enc.dropped)[:3])}")
    rows = sum(len(ld.records) for ld in loads.values()) + len({(p.file, p.line) for p in errors if p.line})
    if args.json:
        from tunestudio.cli.main import print_json

        print_json({"ok": not errors, "rows": rows, "format": next(iter(loads.values())).kind,
                    "errors": [p.to_dict() for p in errors], "warnings": warnings,
                    "files": {k: {"path": ld.path, "usable": len(ld.records)} for k, ld in loads.items()}})
    else:
        for key, ld in loads.items():
            label = "" if key == "all" else f" ({key})"
            print(f"{Path(ld.path).name}{label}: format {_describe(ld.kind) if ld.kind else 'unknown'}, "
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


def _summary(values: list[int]) -> dict:
    if not values:
        return {"min": 0, "median": 0, "max": 0, "mean": 0}
    return {"min": min(values), "median": statistics.median(values), "max": max(values),
            "mean": round(sum(values) / len(values), 1)}


def stats(args, ws) -> dict:
    """Rows, prompt and answer lengths (characters; tokens with --model), how often the chosen
    answer is the longer one (a length bias DPO would learn), duplicates, label balance."""
    loads = _loads(ws, args.dataset)
    records = [r for ld in loads.values() for r in ld.records]
    kind = next(iter(loads.values())).kind
    out = {"dataset": args.dataset, "format": _describe(kind) if kind else "unknown", "rows": len(records),
           "errors": sum(len(ld.errors) for ld in loads.values())}
    prompt_chars = [sum(len(m["content"]) for m in r.prompt) for r in records]
    out["prompt_chars"] = _summary(prompt_chars)
    if kind == "pairs":
        out["chosen_chars"] = _summary([len(r.chosen) for r in records])
        out["rejected_chars"] = _summary([len(r.rejected) for r in records])
        longer = sum(len(r.chosen) > len(r.rejected) for r in records)
        out["chosen_longer_share"] = round(longer / max(len(records), 1), 3)
    else:
        out["completion_chars"] = _summary([len(r.completion) for r in records])
        out["labels"] = {"desirable": sum(bool(r.label) for r in records),
                         "undesirable": sum(not r.label for r in records)}
    out["duplicates"] = len(records) - len({r.digest() for r in records})
    if getattr(args, "model", None):
        from tunestudio.data.encoding.pref_encode import encode_prefs

        enc = encode_prefs(records, _tokenizer(ws, args.model), args.max_length or DEFAULT_MAX_LENGTH)
        out["tokens"] = enc.stats
    return out


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


def preview(args, ws) -> dict:
    """Row `args.row` (1-based, usable rows) rendered as training sees it: the prompt tokens (not
    trained) then each answer's tokens (trained), side by side for a pair."""
    from tunestudio.data.encoding.pref_encode import encode_prefs

    loads = _loads(ws, args.dataset)
    records = [r for ld in loads.values() for r in ld.records]
    if not 1 <= args.row <= len(records):
        raise UserError(f"--row {args.row}: {args.dataset} has {len(records)} usable rows", "pref_row_out_of_range",
                        row=args.row, dataset=args.dataset, rows=len(records))
    rec = records[args.row - 1]
    tok = _tokenizer(ws, args.model)
    max_length = args.max_length or DEFAULT_MAX_LENGTH
    enc = encode_prefs([rec], tok, max_length)
    if enc.errors:
        raise ProblemError(enc.errors[0])
    if not enc.examples:
        raise UserError(f"{rec.where()}: the prompt alone fills --max-length {max_length}: nothing to train on",
                        "pref_prompt_fills", where=rec.where(), option="max_length", max_length=max_length)
    ex = enc.examples[0]

    def pieces(ids, trained):
        return [{"text": tok.decode([i]), "trained": trained} for i in ids]

    answers = {k: pieces(ex[f"{k}_ids"], True) for k in ("chosen", "rejected", "completion") if f"{k}_ids" in ex}
    return {"source": rec.source, "line": rec.line, "row": args.row, "rows": len(records), "model": args.model,
            "max_length": max_length, "prompt": pieces(ex["prompt_ids"], False), "answers": answers,
            "label": rec.label, "truncated": bool(enc.truncated)}


def render_preview(p: dict, color: bool = False) -> str:
    from tunestudio.data.encoding.encode import render_preview as marked

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
