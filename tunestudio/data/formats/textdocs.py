"""Plain-text files as documents: where a `.txt` file is cut (blank lines, one document per line,
or `--separator`) and what a user should be told about the cut (a separator that never occurs, a
stray blank line, a Project Gutenberg header and licence)."""

from __future__ import annotations

import re

from tunestudio.data.formats.problems import Problem, Row

# A file split on blank lines into this few documents, with at least this many lines, may be a
# corpus of one document per line with a stray blank line: said, since it trains very differently.
FEW_DOCUMENTS, MANY_LINES = 3, 20


def unescape_separator(separator: str | None) -> str | None:
    """`--separator` as typed: `\\n`, `\\t` and `\\r` written out (a shell passes them as two
    characters) become the characters; anything else is taken as is."""
    if not separator:
        return separator
    return separator.replace("\\r", "\r").replace("\\n", "\n").replace("\\t", "\t")


# Project Gutenberg's books open with a header and close with the licence (~350 lines), between
# these marker lines; as text they would be trained on like the book.
_GUTENBERG = re.compile(r"^\*\*\* ?(START|END) OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK", re.IGNORECASE | re.MULTILINE)


def _gutenberg_warning(name: str, text: str) -> list[Problem]:
    """A warning naming the lines of a Gutenberg header and licence, when the file has its markers."""
    marks = {m.group(1).upper(): text.count("\n", 0, m.start()) + 1 for m in _GUTENBERG.finditer(text)}
    if "START" not in marks and "END" not in marks:
        return []
    total = text.count("\n") + (0 if text.endswith("\n") else 1)
    parts = []
    if "START" in marks:
        parts.append(f"1-{marks['START']}")
    if "END" in marks:
        parts.append(f"{marks['END']}-{total}")
    where = "lines " + " and ".join(parts)
    return [Problem(name, marks.get("START", marks.get("END")), f"this is a Project Gutenberg book: its header and "
                    f"licence ({where}, around the '*** START/END OF THE PROJECT GUTENBERG EBOOK' lines) are "
                    "trained on like the book; cut them out of the file first", "gutenberg_boilerplate",
                    {"where": where})]


def text_split_warnings(name: str, text: str, separator: str | None, rows: list[Row]) -> list[Problem]:
    """What a user should know about how a plain-text file was cut into documents."""
    found = _gutenberg_warning(name, text)
    return found + _split_warnings(name, text, separator, rows)


def _split_warnings(name: str, text: str, separator: str | None, rows: list[Row]) -> list[Problem]:
    if separator:
        if separator not in text:
            return [Problem(name, 0, f"the separator {separator!r} does not occur in the file: it is one document",
                            "separator_missing", {"separator": repr(separator)})]
        return []
    lines = sum(1 for line in text.split("\n") if line.strip())
    if len(rows) <= FEW_DOCUMENTS and lines >= MANY_LINES and any(r.end > r.line for r in rows):
        return [Problem(name, 0, f"split on blank lines into {len(rows)} document(s) of {lines} lines; if each "
                                 "line is a document (one article per line), remove the blank lines or give "
                                 "--separator '\\n'", "blank_line_split", {"documents": len(rows), "lines": lines})]
    return []


def text_rows(text: str, separator: str | None) -> list[Row]:
    """Plain-text documents: split on `separator` when given; else on blank lines; and a file with
    no blank line between its lines (a corpus of one article per line) holds one per line."""
    rows = []
    if separator:
        pos = 0
        for part in text.split(separator):
            stripped = part.strip()
            if stripped:
                first = pos + (len(part) - len(part.lstrip()))
                line = text.count("\n", 0, first) + 1
                rows.append(Row(line, line + stripped.count("\n"), {"text": stripped}))
            pos += len(part) + len(separator)
        return rows
    lines = text.split("\n")
    filled = [bool(line.strip()) for line in lines]
    first, last = (filled.index(True), len(filled) - 1 - filled[::-1].index(True)) if any(filled) else (0, -1)
    if all(filled[first:last + 1]):   # no blank line inside: every line is a document
        return [Row(n, n, {"text": line.strip()}) for n, line in enumerate(lines, start=1) if line.strip()]
    block, start = [], 0
    for n, line in enumerate(lines + [""], start=1):
        if line.strip():
            if not block:
                start = n
            block.append(line.rstrip("\r"))
        elif block:
            rows.append(Row(start, n - 1, {"text": "\n".join(block).strip()}))
            block = []
    return rows
