"""Which strings on a page are in the wrong UI language, judged by the locale files alone.

A locale text is cut at its placeholders and markup into fragments; a fragment of language A
(at least two words, 12 characters) that appears in no text of language B is A's own words: seen
on a page shown in B, it is a string left behind by the language switch (or never translated)."""

from __future__ import annotations

import re

from tunestudio.webui.i18n.texts import catalog

# (lang, other) -> (lang's catalog, other's catalog, the fragments): the catalogs are kept, so `is` is safe
_worked_out: dict[tuple[str, str], tuple[dict, dict, frozenset[str]]] = {}
_CUT = re.compile(r"\{[^}]*\}|[`*_#>|()\[\]\n:;,.!?\"“”'’—–·…✅❌⚠️⏹✔✖■→]+")


def _fragments(text: str) -> set[str]:
    out = set()
    for piece in _CUT.split(str(text)):
        piece = " ".join(piece.split())
        if len(piece) >= 12 and len(piece.split()) >= 2:
            out.add(piece)
    return out


def own_fragments(lang: str, other: str) -> frozenset[str]:
    """Fragments of `lang`'s texts (keys that `other` translates differently) found nowhere in
    `other`'s texts, lower-cased. Worked out once per pair of catalogs (a test that checks every
    engine text asks again hundreds of times); a changed catalog (i18n's cache cleared) is new."""
    mine, theirs = catalog(lang), catalog(other)
    known = _worked_out.get((lang, other))
    if known and known[0] is mine and known[1] is theirs:
        return known[2]
    their_text = "\n".join(str(v) for v in theirs.values()).lower()
    out = set()
    for key, value in mine.items():
        if key.startswith("_") or key not in theirs or str(theirs[key]) == str(value):
            continue
        out |= {f.lower() for f in _fragments(value) if f.lower() not in their_text}
    _worked_out[(lang, other)] = (mine, theirs, frozenset(out))
    return _worked_out[(lang, other)][2]


def wrong_language(page_text: str, shown: str, other: str) -> list[str]:
    """The fragments of language `other` found in `page_text`, a page that should be all `shown`."""
    text = " ".join(page_text.split()).lower()
    return sorted(f for f in own_fragments(other, shown) if f in text)
