"""Preference files (pairs, or labelled KTO rows) checked, described and previewed: what `data check`,
`data stats` and `data preview` (cli/data.py) and the Datasets tab show for them, instead of the SFT
loader, which would call every pair a row without an assistant turn."""

from __future__ import annotations

import statistics

from tunestudio.core.errors import UserError
from tunestudio.data.encoding.pref_encode import encode_prefs
from tunestudio.data.formats.problems import ProblemError
from tunestudio.data.preference import load_pref_file, sniff
from tunestudio.data.quality.pick import at_line
from tunestudio.data.quality.stats import load_tokenizer
from tunestudio.data.split import resolve_dataset

DEFAULT_MAX_LENGTH = 512   # RunConfig.max_length's default: what training would cut at


def preference_kind(ws, dataset: str) -> str | None:
    """"pairs"/"unpaired" when `dataset` (a file or split set) is preference data, else None."""
    try:
        files = resolve_dataset(ws, dataset)
    except UserError:
        return None  # the SFT path reports an unknown dataset in its own words
    return sniff(next(iter(files.values())))


def load_all(ws, dataset: str) -> dict:
    """{split key: PrefLoad} for every file of `dataset`."""
    return {k: load_pref_file(p) for k, p in resolve_dataset(ws, dataset).items()}


def describe(kind: str) -> str:
    return "preference pairs (prompt, chosen, rejected)" if kind == "pairs" else \
        "unpaired answers with a desirable/undesirable label (KTO)"


def check(ws, dataset: str, model: str | None = None, max_length: int | None = None) -> dict:
    """Every row parsed; with `model` also rendered and cut as training does, so a pair that is
    identical once cut, or a template that refuses a row, is an error here too.
    {loads, errors (Problems), warnings, rows}."""
    loads = load_all(ws, dataset)
    errors = [p for ld in loads.values() for p in ld.errors]
    warnings: list[str] = []
    if model:
        tok = load_tokenizer(ws, model)
        max_length = max_length or DEFAULT_MAX_LENGTH
        for ld in loads.values():
            enc = encode_prefs(ld.records, tok, max_length)
            errors += enc.errors
            if enc.truncated or enc.dropped:
                warnings.append(f"{len(enc.truncated)} of {enc.rows} rows lose answer tokens at max length "
                                f"{max_length}" + (f", {len(enc.dropped)} have nothing left (dropped)" if enc.dropped
                                                   else "") + f"; first: {', '.join((enc.truncated + enc.dropped)[:3])}")
    rows = sum(len(ld.records) for ld in loads.values()) + len({(p.file, p.line) for p in errors if p.line})
    return {"loads": loads, "errors": errors, "warnings": warnings, "rows": rows}


def _summary(values: list[int]) -> dict:
    if not values:
        return {"min": 0, "median": 0, "max": 0, "mean": 0}
    return {"min": min(values), "median": statistics.median(values), "max": max(values),
            "mean": round(sum(values) / len(values), 1)}


def stats(ws, dataset: str, model: str | None = None, max_length: int | None = None) -> dict:
    """Rows, prompt and answer lengths (characters; tokens with `model`), how often the chosen
    answer is the longer one (a length bias DPO would learn), duplicates, label balance."""
    loads = load_all(ws, dataset)
    records = [r for ld in loads.values() for r in ld.records]
    kind = next(iter(loads.values())).kind
    out = {"dataset": dataset, "format": describe(kind) if kind else "unknown", "rows": len(records),
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
    if model:
        enc = encode_prefs(records, load_tokenizer(ws, model), max_length or DEFAULT_MAX_LENGTH)
        out["tokens"] = enc.stats
    return out


def preview(ws, dataset: str, model: str, row: int, max_length: int | None = None, line: int | None = None) -> dict:
    """Row `row` (1-based, usable rows; or the row at `line` of the file, data/quality/pick.py)
    rendered as training sees it: the prompt tokens (not trained) then each answer's tokens
    (trained), side by side for a pair."""
    loads = load_all(ws, dataset)
    records = [r for ld in loads.values() for r in ld.records]
    asked_line = None
    if line is not None:
        picked = at_line(records, line, dataset)
        row, asked_line = records.index(picked.record) + 1, picked.asked_line
    if not 1 <= row <= len(records):
        raise UserError(f"--row {row}: {dataset} has {len(records)} usable rows", "pref_row_out_of_range",
                        row=row, dataset=dataset, rows=len(records))
    rec = records[row - 1]
    tok = load_tokenizer(ws, model)
    max_length = max_length or DEFAULT_MAX_LENGTH
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
    return {"source": rec.source, "line": rec.line, "asked_line": asked_line, "row": row, "rows": len(records),
            "model": model, "max_length": max_length, "prompt": pieces(ex["prompt_ids"], False), "answers": answers,
            "label": rec.label, "truncated": bool(enc.truncated)}
