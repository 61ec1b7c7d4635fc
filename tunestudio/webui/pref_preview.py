"""The Datasets tab on preference files (pairs, KTO rows): check and preview go through
data/pref_commands.py instead of the SFT loader, which would call every pair a row without an
assistant turn. The preview shows the shared prompt, then the chosen and the rejected answer, each
answer token marked as trained (the way DPO scores it)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from tunestudio.data import pref_commands


def is_preference(ws, name: str) -> bool:
    return bool(name) and pref_commands.preference_kind(ws, name) is not None


def check(ws, name: str, model: str | None) -> tuple[str, pd.DataFrame | None]:
    """(summary line, table of problems or None)."""
    from tunestudio.data.pref_encode import encode_prefs
    from tunestudio.data.preference import load_pref_file
    from tunestudio.data.split import resolve_dataset

    loads = [load_pref_file(p) for p in resolve_dataset(ws, name).values()]
    errors = [p for ld in loads for p in ld.errors]
    if model:
        tok = pref_commands._tokenizer(ws, model)
        errors += [p for ld in loads for p in encode_prefs(ld.records, tok, pref_commands.DEFAULT_MAX_LENGTH).errors]
    rows = sum(len(ld.records) for ld in loads)
    head = (f"{name}: {pref_commands._describe(loads[0].kind) if loads[0].kind else 'not a preference file'}, "
            f"{rows} usable rows, {len(errors)} errors")
    return head, pd.DataFrame([p.to_dict() for p in errors]) if errors else None


def preview(ws, name: str, model: str, row: int, length: int) -> tuple[str, list]:
    """(heading, HighlightedText pieces): prompt (unmarked), then each answer marked by its name."""
    p = pref_commands.preview(SimpleNamespace(dataset=name, model=model, row=row, max_length=length), ws)
    pieces = [(t["text"], None) for t in p["prompt"]]
    for answer, toks in p["answers"].items():
        label = answer if answer != "completion" else ("desirable" if p["label"] else "undesirable")
        pieces.append((f"\n--- {label} ---\n", None))
        pieces += [(t["text"], label) for t in toks]
    sizes = ", ".join(f"{k} {len(v)} tokens" for k, v in p["answers"].items())
    head = (f"{p['source']}:{p['line']} (row {p['row']} of {p['rows']}): prompt {len(p['prompt'])} tokens "
            f"(not trained), {sizes} (marked: the tokens the preference loss scores)")
    if p["truncated"]:
        head += f"; cut at {p['max_length']} tokens"
    return head, pieces
