"""Step 1 of reading a data file (load.py): bytes -> raw rows, each with the lines it spans.

`.jsonl` (line by line, or a chunk of lines at a time for large files), `.json` (an array, or an
object holding one under a key such as "data"), `.csv`/`.tsv` (header = line 1), `.parquet` (row
numbers) and `.txt` (documents split on blank lines, one per line when there is none, or on a
separator). Bad bytes, lines and rows never raise: each becomes a Problem naming the file and line.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import re
import sys
from collections import Counter
from pathlib import Path

from tunestudio.data.formats.problems import Problem, Row
from tunestudio.data.formats.textdocs import text_rows, text_split_warnings
from tunestudio.data.tools import toolcalls

# ---- step 1: bytes -> raw rows -------------------------------------------------------------

def read_rows(name, ext, data: bytes, separator, errors, warnings) -> list[Row] | None:
    """Raw rows with their lines, or None when the file as a whole is unusable (error added)."""
    if ext == ".parquet":
        return _parquet_rows(name, data, errors)
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark (Excel writes one)
        data = data[3:]
    if not data.strip():
        errors.append(Problem(name, 0, "empty file: no rows", "empty_file"))
        return None
    text, bad_lines = _decode(data)
    if bad_lines and len(bad_lines) * 2 >= text.count("\n") + 1:   # most lines: a whole file in another encoding
        problem = legacy_encoding_problem(name, data)
        if problem:
            errors.append(problem)
            return None
    if ext == ".jsonl":
        rows = _jsonl_rows(name, text, bad_lines, errors)
    elif ext == ".json":
        rows = _json_rows(name, text, bad_lines, errors, warnings)
    elif ext in (".csv", ".tsv"):
        rows = _csv_rows(name, text, "\t" if ext == ".tsv" else ",", errors)
    else:
        rows = text_rows(text, separator)
        warnings += text_split_warnings(name, text, separator, rows)
    if rows is None:
        return None
    # A row that touches a line with bytes that are not UTF-8 cannot be trusted: report it there.
    if bad_lines:
        kept = []
        for row in rows:
            bad = next((n for n in range(row.line, row.end + 1) if n in bad_lines), None)
            if bad is None:
                kept.append(row)
            elif ext != ".jsonl":   # JSONL reports its bad lines itself, one per line
                errors.append(_bad_bytes(name, bad, bad_lines[bad]))
        rows = kept
    return rows


JSONL_CHUNK = 8192   # lines parsed at once


def jsonl_chunks(name, path: Path, errors: list | None, bar=None):
    """Lists of rows of a JSON Lines file, read a chunk of lines at a time; the problems of bad
    lines go to `errors` (when given), worded as `_jsonl_rows` words them."""
    rows, done = [], 0
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            done += len(raw)
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if raw.endswith(b"\n"):   # as text.split("\n") gives it: error columns count from the line
                raw = raw[:-1]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                if errors is not None:
                    errors.append(_bad_bytes(name, n, (raw[e.start], e.start + 1)))
                continue
            row = _jsonl_line(name, n, line, errors)
            if row is None:
                continue
            rows.append(row)
            if len(rows) >= JSONL_CHUNK:
                if bar is not None:
                    bar.update(done)
                    done = 0
                yield rows
                rows = []
    if bar is not None:
        bar.update(done)
    if rows:
        yield rows


def _bad_bytes(name, n: int, where: tuple[int, int]) -> Problem:
    """Line `n` holds a byte that is not UTF-8; `where`: (the byte, its column from 1)."""
    byte, column = f"0x{where[0]:02x}", where[1]
    return Problem(name, n, f"not valid UTF-8: byte {byte} at column {column} (save the file as UTF-8)",
                   "not_utf8", {"byte": byte, "column": column})


def _decode(data: bytes) -> tuple[str, dict[int, tuple[int, int]]]:
    """Decode UTF-8; lines holding invalid bytes are decoded with U+FFFD and listed with
    (the first bad byte, its column) for `_bad_bytes`."""
    try:
        return data.decode("utf-8"), {}
    except UnicodeDecodeError:
        pass
    bad = {}
    parts = []
    for n, raw in enumerate(data.split(b"\n"), start=1):
        try:
            parts.append(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            bad[n] = (raw[e.start], e.start + 1)
            parts.append(raw.decode("utf-8", errors="replace"))
    return "\n".join(parts), bad


# iconv's names for the codecs charset_normalizer reports where Python's spelling differs.
ICONV_NAMES = {"latin_1": "ISO-8859-1", "shift_jis": "SHIFT_JIS", "euc_jp": "EUC-JP", "euc_kr": "EUC-KR",
               "utf_16": "UTF-16", "big5": "BIG5"}


def legacy_encoding_problem(name: str, data: bytes) -> Problem | None:
    """The one error for a file in another encoding than UTF-8 (its first bytes, `data`), naming
    the encoding and the command that converts the file; None when none is recognised."""
    legacy = _legacy_encoding(data)
    if not legacy:
        return None
    enc, language = legacy
    command = f"iconv -f {enc} -t UTF-8 {name} > utf8-{name}"
    return Problem(name, 0, f"the file is not UTF-8: it reads as {enc}{f' ({language})' if language else ''}, "
                   "as Excel and older tools save it; save it as UTF-8 (Excel: 'CSV UTF-8') or convert "
                   f"it: {command}", "legacy_encoding",
                   {"encoding": enc + (f" ({language})" if language else ""), "command": command})


def _legacy_encoding(data: bytes) -> tuple[str, str] | None:
    """(the encoding `data` most likely is in, as iconv names it; the language it reads as, or
    "") by charset_normalizer, from the first 256 KB; None when it finds none. Excel saves CSV in
    the system's legacy encoding: Shift-JIS (CP932) in Japan, GBK in China, CP949 in Korea."""
    from charset_normalizer import from_bytes

    head = data[:256 << 10]
    if b"\n" in head and not head.endswith(b"\n"):
        head = head[:head.rindex(b"\n") + 1]   # whole lines: no multi-byte character cut in two
    best = from_bytes(head).best()
    if best is None or best.encoding in ("utf_8", "ascii"):
        return None
    language = best.language if best.language and best.language != "Unknown" else ""
    return ICONV_NAMES.get(best.encoding, best.encoding.upper().replace("_", "-")), language


def _jsonl_line(name, n: int, line: str, errors: list | None) -> Row | None:
    """Line `n` of a JSON Lines file as a row; None for a blank line or invalid JSON (a Problem
    goes to `errors` when given)."""
    if not line.strip():
        return None
    try:
        return Row(n, n, json.loads(line))
    except json.JSONDecodeError as e:
        if errors is not None:
            errors.append(_invalid_json(name, n, e))
        return None


def _invalid_json(name, n: int, e: json.JSONDecodeError) -> Problem:
    return Problem(name, n, f"invalid JSON: {e.msg} (column {e.colno})", "invalid_json",
                   {"detail": e.msg, "column": e.colno})


def _jsonl_rows(name, text, bad_lines, errors) -> list[Row]:
    rows = []
    for n, line in enumerate(text.split("\n"), start=1):
        if n in bad_lines:
            errors.append(_bad_bytes(name, n, bad_lines[n]))
            continue
        row = _jsonl_line(name, n, line, errors)
        if row is not None:
            rows.append(row)
    if not rows and not errors:
        errors.append(Problem(name, 0, "empty file: no rows", "empty_file"))
    return rows


_WS = " \t\r\n"


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in _WS:
        i += 1
    return i


def _array_items(s: str, i: int, dec: json.JSONDecoder) -> list[tuple[object, int, int]]:
    """(value, start, end) of each element of the (already validated) JSON array at s[i]."""
    items = []
    i = _skip_ws(s, i + 1)
    if s[i] == "]":
        return items
    while True:
        value, end = dec.raw_decode(s, i)
        items.append((value, i, end))
        i = _skip_ws(s, end)
        if s[i] == "]":
            return items
        i = _skip_ws(s, i + 1)   # past the comma


def _object_members(s: str, i: int, dec: json.JSONDecoder) -> dict[str, int]:
    """Key -> start offset of its value, for the (already validated) JSON object at s[i]."""
    out = {}
    i = _skip_ws(s, i + 1)
    if s[i] == "}":
        return out
    while True:
        key, end = dec.raw_decode(s, i)
        i = _skip_ws(s, _skip_ws(s, end) + 1)   # past the colon
        _, end = dec.raw_decode(s, i)
        out[key] = i
        i = _skip_ws(s, end)
        if s[i] == "}":
            return out
        i = _skip_ws(s, i + 1)


# A JSON object with one of these keys holding a list is a wrapper around the rows.
_WRAPPER_KEYS = ("data", "rows", "records", "examples", "items", "train", "instances")


def _json_rows(name, text, bad_lines, errors, warnings) -> list[Row] | None:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data" and text.lstrip().startswith("{"):
            # One object per line in a .json file: it is JSON Lines under another name.
            warnings.append(Problem(name, 0, "holds one JSON object per line: read as JSON Lines (.jsonl)",
                                    "json_lines_in_json"))
            return _jsonl_rows(name, text, bad_lines, errors)
        problem = _invalid_json(name, e.lineno, e)
        before = text[:e.pos].rstrip()
        if e.msg == "Expecting value" and before.endswith(","):
            # Python points at the "]" after a trailing comma; the mistake is the comma.
            problem = Problem(name, before.count("\n") + 1, "invalid JSON: trailing comma before the end of "
                              "the list or object", "json_trailing_comma")
        errors.append(_bad_bytes(name, problem.line, bad_lines[problem.line]) if problem.line in bad_lines
                      else problem)
        return None
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_of(pos: int) -> int:
        return bisect.bisect_left(newlines, pos) + 1

    dec = json.JSONDecoder()
    start = _skip_ws(text, 0)
    file_tools = None
    if isinstance(doc, dict):
        # a file-level tool list beside the rows ({"tools": [...], "data": [...]}) is not the rows
        lists = {k: v for k, v in doc.items() if isinstance(v, list)
                 and not (k in toolcalls.TOOLS_COLUMNS and set(doc) - {k} - set(toolcalls.TOOLS_COLUMNS))}
        if not lists or set(lists) & {"messages", "conversations"}:
            # A single record (e.g. one conversation) rather than a wrapper around many.
            return [Row(line_of(start), line_of(len(text.rstrip()) - 1), doc)]
        if len(lists) > 1:
            preferred = [k for k in _WRAPPER_KEYS if k in lists]
            if not preferred:
                errors.append(Problem(name, line_of(start), "the JSON object holds several lists ("
                                      + ", ".join(lists) + "): put the rows in one array",
                                      "json_several_lists", {"lists": ", ".join(lists)}))
                return None
            key = preferred[0]
        else:
            key = next(iter(lists))
        start = _object_members(text, start, dec)[key]
        file_tools = next((doc[k] for k in toolcalls.TOOLS_COLUMNS if k in doc), None)
        doc = doc[key]
    if not isinstance(doc, list):
        errors.append(Problem(name, line_of(start), f"expected a JSON array of rows, found {type_name(doc)}",
                              "json_not_array", {"found": type_name(doc)}))
        return None
    if not doc:
        errors.append(Problem(name, 0, "empty file: the JSON array holds no rows", "empty_json_array"))
        return None
    rows = [Row(line_of(s), line_of(max(s, e - 1)), v) for v, s, e in _array_items(text, start, dec)]
    if file_tools is not None:   # every row without its own tools gets the file's
        for r in rows:
            if isinstance(r.value, dict) and not any(k in r.value for k in toolcalls.TOOLS_COLUMNS):
                r.value = {**r.value, "tools": file_tools}
    per_line = Counter(r.line for r in rows)
    shared = sum(n for n in per_line.values() if n > 1)
    if shared:   # json.dump without indent: every row "starts" on line 1, so no message can point at one
        first = min(line for line, n in per_line.items() if n > 1)
        warnings.append(Problem(name, first, f"{shared} rows share their line with another row (a JSON array "
                                "written on one line): problems name the line, not the row; write one row per "
                                "line (JSON Lines) or indent the file (json.dump(..., indent=1)) to find them",
                                "json_rows_share_lines", {"rows": shared}))
    return rows


def _csv_rows(name, text, delimiter, errors) -> list[Row] | None:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long documents in one cell are normal
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header = None
    rows = []
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            errors.append(Problem(name, start, f"cannot parse this CSV row: {e} (an unclosed quote?)",
                                  "csv_unparsable", {"detail": str(e)}))
            break
        if not cells or all(not c.strip() for c in cells):
            continue
        if header is None:
            header = [c.strip() for c in cells]
            dupes = sorted({c for c in header if header.count(c) > 1})
            if dupes:
                errors.append(Problem(name, start, f"the header repeats column(s) {', '.join(dupes)}",
                                      "csv_repeated_columns", {"columns": ", ".join(dupes)}))
                return None
            continue
        if len(cells) != len(header):
            errors.append(Problem(name, start, f"this row has {len(cells)} fields but the header has {len(header)}",
                                  "csv_field_count", {"cells": len(cells), "header": len(header)}))
            continue
        rows.append(Row(start, reader.line_num, dict(zip(header, cells))))
    if header is not None and not rows and not errors:
        errors.append(Problem(name, 0, "no rows below the header", "csv_no_rows"))
    return rows


def _parquet_rows(name, data: bytes, errors) -> list[Row] | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except Exception as e:  # pyarrow raises several types for a damaged file
        errors.append(Problem(name, 0, f"cannot read as Parquet: {e}", "parquet_unreadable", {"detail": str(e)}))
        return None
    if table.num_rows == 0:
        errors.append(Problem(name, 0, "empty file: the Parquet table has no rows", "empty_parquet"))
        return None
    return [Row(i, i, v) for i, v in enumerate(table.to_pylist(), start=1)]


def type_name(v) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(v), type(v).__name__)
