"""The Datasets tab on preference files (pairs, KTO rows): check and preview go through
data/quality/pref.py instead of the SFT loader, which would call every pair a row without an
assistant turn. The preview shows the shared prompt, then the chosen and the rejected answer, each
answer token marked as trained (the way DPO scores it)."""

from __future__ import annotations

from tunestudio.data.quality import pref
from tunestudio.webui.i18n.texts import t


def is_preference(ws, name: str) -> bool:
    return bool(name) and pref.preference_kind(ws, name) is not None


def check(ws, name: str, model: str | None) -> dict:
    """The check report in the shape `data check --json` prints: {format, rows, errors, warnings}."""
    report = pref.check(ws, name, model)
    return {"format": next(iter(report["loads"].values())).kind or "?",
            "rows": sum(len(ld.records) for ld in report["loads"].values()),
            "errors": [p.to_dict() for p in report["errors"]], "warnings": []}


def preview(ws, name: str, model: str, line: int, length: int, lang: str = "en") -> tuple[str, list]:
    """(heading, HighlightedText pieces) in `lang` for the row at `line` of the file: prompt
    (unmarked), then each answer marked by its name (chosen, rejected; desirable or undesirable for
    a KTO row)."""

    p = pref.preview(ws, name, model, 1, length, line=line)
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
    if p["asked_line"]:
        head = t(lang, "datasets.line_moved", asked=p["asked_line"], line=p["line"]) + "\n\n" + head
    return head, pieces


def _mark(answer: str, p: dict) -> str:
    """The mark of an answer: chosen/rejected, or desirable/undesirable for a KTO row's completion."""
    return answer if answer != "completion" else ("desirable" if p["label"] else "undesirable")
