"""The Datasets tab on preference files (pairs, KTO rows): check and preview go through
data/pref_commands.py instead of the SFT loader, which would call every pair a row without an
assistant turn. The preview shows the shared prompt, then the chosen and the rejected answer, each
answer token marked as trained (the way DPO scores it)."""

from __future__ import annotations

from types import SimpleNamespace


from tunestudio.cli import data_pref as pref_commands


def is_preference(ws, name: str) -> bool:
    return bool(name) and pref_commands.preference_kind(ws, name) is not None


def check(ws, name: str, model: str | None) -> dict:
    """The check report in the shape `data check --json` prints: {format, rows, errors, warnings}."""
    from tunestudio.data.encoding.pref_encode import encode_prefs
    from tunestudio.data.preference import load_pref_file
    from tunestudio.data.split import resolve_dataset

    loads = [load_pref_file(p) for p in resolve_dataset(ws, name).values()]
    errors = [p for ld in loads for p in ld.errors]
    if model:
        tok = pref_commands._tokenizer(ws, model)
        errors += [p for ld in loads for p in encode_prefs(ld.records, tok, pref_commands.DEFAULT_MAX_LENGTH).errors]
    return {"format": loads[0].kind or "?", "rows": sum(len(ld.records) for ld in loads),
            "errors": [p.to_dict() for p in errors], "warnings": []}


def preview(ws, name: str, model: str, row: int, length: int, lang: str = "en") -> tuple[str, list]:
    """(heading, HighlightedText pieces) in `lang`: prompt (unmarked), then each answer marked by
    its name (chosen, rejected; desirable or undesirable for a KTO row)."""
    from tunestudio.webui.i18n.texts import t

    p = pref_commands.preview(SimpleNamespace(dataset=name, model=model, row=row, max_length=length), ws)
    pieces = [(t["text"], None) for t in p["prompt"]]
    for answer, toks in p["answers"].items():
        label = t(lang, "datasets.mark." + _mark(answer, p))
        pieces.append((f"\n--- {label} ---\n", None))
        pieces += [(t["text"], label) for t in toks]
    sizes = ", ".join(t(lang, "datasets.pref_answer_size", answer=t(lang, "datasets.mark." + _mark(k, p)),
                        tokens=len(v)) for k, v in p["answers"].items())
    head = t(lang, "datasets.pref_preview_head", where=f"{p['source']}:{p['line']}", row=p["row"], rows=p["rows"],
             prompt=len(p["prompt"]), sizes=sizes)
    if p["truncated"]:
        head += " " + t(lang, "datasets.pref_cut", length=p["max_length"])
    return head, pieces


def _mark(answer: str, p: dict) -> str:
    """The mark of an answer: chosen/rejected, or desirable/undesirable for a KTO row's completion."""
    return answer if answer != "completion" else ("desirable" if p["label"] else "undesirable")
