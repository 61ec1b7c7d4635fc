"""Step 1 of reading a data file (load.py): bytes -> raw rows, each with the lines it spans.

`.jsonl` (line by line, or a chunk of lines at a time for large files), `.json` (an array, or an
object holding one under a key such as "data"), `.csv`/`.tsv` (header = line 1), `.parquet` (row
numbers) and `.txt` (documents split on blank lines, one per line when there is none, or on a
separator). Bad bytes, lines and rows never raise: each becomes a Problem naming the file and line.

A hostile or broken file never raises either: a row nested deeper than `MAX_DEPTH`, a string holding
a lone UTF-16 surrogate (the escape "\\ud800" is valid JSON but no text), a row with more than
`MAX_COLUMNS` keys or a header with more columns, and a JSON Lines/CSV line longer than
`MAX_LINE_BYTES` are each a Problem at their line; the other rows still load (`row_limits`).
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from tunestudio.core.errors import UserError
from tunestudio.data.formats.problems import Problem, Row
from tunestudio.data.formats.textdocs import text_rows, text_split_warnings
from tunestudio.data.tools import toolcalls

# ---- limits on one row (docs/data.md, "Limits on a row") ----------------------------------------

# Nesting: real rows nest a handful of levels (messages > a message > tool_calls > a call > its
# arguments, ~6); 100 leaves room for deep tool arguments and stays far below Python's recursion
# limit (1000), which json.loads, json.dumps and the Arrow conversion all run into; a deeper value
# is a broken or hostile file. DEPTH_CEILING caps a raised limit where the parser still copes.
MAX_DEPTH = 100
DEPTH_CEILING = 300
# Columns: a wide table is not training data (a spreadsheet export, a feature matrix), and each row
# becomes a dict of all of them; 10,000 is far above any dataset's columns and refuses a 10^6-column
# CSV at its header, before any row is parsed.
MAX_COLUMNS = 10_000
# Line length, for the line-based formats (JSON Lines, CSV/TSV): a book-length document (~16M
# tokens) fits in 64 MiB; a longer line is a file without its newlines, and held as Python objects
# it would take several times its size. A .json file may be one long line (json.dump without indent).
MAX_LINE_BYTES = 64 << 20

LIMIT_ENV = {"depth": "TUNESTUDIO_MAX_DEPTH", "columns": "TUNESTUDIO_MAX_COLUMNS",
             "line": "TUNESTUDIO_MAX_LINE_BYTES"}


class Limits(NamedTuple):
    depth: int
    columns: int
    line: int


def row_limits() -> Limits:
    """The limits in force: the module constants, or the environment variables that raise them
    ($TUNESTUDIO_MAX_DEPTH, $TUNESTUDIO_MAX_COLUMNS, $TUNESTUDIO_MAX_LINE_BYTES)."""
    values = {}
    for key, default in (("depth", MAX_DEPTH), ("columns", MAX_COLUMNS), ("line", MAX_LINE_BYTES)):
        raw = os.environ.get(LIMIT_ENV[key], "").strip()
        if not raw:
            values[key] = default
            continue
        try:
            values[key] = int(raw)
        except ValueError:
            values[key] = 0
        if values[key] < 1:
            raise UserError(f"${LIMIT_ENV[key]}={raw!r}: give a whole number of at least 1", "row_limit_bad",
                            name=LIMIT_ENV[key], value=raw)
    values["depth"] = min(values["depth"], DEPTH_CEILING)
    return Limits(**values)


def _too_deep(name, n: int, lim: Limits) -> Problem:
    return Problem(name, n, f"nested more than {lim.depth} levels deep: not a data row (a broken or "
                   f"hostile file; $TUNESTUDIO_MAX_DEPTH raises the limit, up to {DEPTH_CEILING})",
                   "json_too_deep", {"limit": lim.depth, "ceiling": DEPTH_CEILING})


def _line_too_long(name, n: int, size: int, lim: Limits) -> Problem:
    return Problem(name, n, f"this line is {size:,} bytes long, over the limit of {lim.line:,} (a file without "
                   "its line breaks?); $TUNESTUDIO_MAX_LINE_BYTES raises the limit", "line_too_long",
                   {"size": size, "limit": lim.line})


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def _walk(value) -> tuple[int, str | None]:
    """(how deep `value` nests, counting each array and object; the first lone surrogate in one
    of its strings or keys, or None), without recursion."""
    deepest, bad = 0, None
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            deepest = max(deepest, d)
            for k, item in v.items():
                stack.append((k, d + 1))
                stack.append((item, d + 1))
        elif isinstance(v, list):
            deepest = max(deepest, d)
            stack.extend((item, d + 1) for item in v)
        elif bad is None and isinstance(v, str) and not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as e:
                bad = e.object[e.start]
    return deepest, bad


def _value_problem(name, n: int, text: str, value, lim: Limits, start: int = 0, end: int | None = None
                   ) -> Problem | None:
    """What makes the row parsed from text[start:end] unusable under the limits, or None. The
    text is searched first (in C) so a usual row is never walked."""
    end = len(text) if end is None else end
    if isinstance(value, dict) and len(value) > lim.columns:
        return Problem(name, n, f"this row has {len(value):,} keys, over the limit of {lim.columns:,} columns "
                       "($TUNESTUDIO_MAX_COLUMNS raises it)", "row_too_many_keys",
                       {"keys": len(value), "limit": lim.columns})
    deep = text.count("[", start, end) + text.count("{", start, end) > lim.depth
    surrogate = _SURROGATE_ESCAPE.search(text, start, end) is not None
    if not (deep or surrogate):
        return None
    depth, bad = _walk(value)
    if depth > lim.depth:
        return _too_deep(name, n, lim)
    if bad is not None:
        escape = f"\\u{ord(bad):04x}"
        return Problem(name, n, f"a string holds the lone surrogate {escape}: half of a UTF-16 pair is not text "
                       "(remove it, or write the whole pair)", "json_lone_surrogate", {"escape": escape})
    return None


def row_problem(name, n: int, text: str, value) -> Problem | None:
    """For a reader elsewhere (GRPO's prompt files): what makes `value`, parsed from `text` at line
    `n`, unusable under the row limits; None when it is usable."""
    return _value_problem(name, n, text, value, row_limits())


def too_deep(name, n: int) -> Problem:
    """The problem for JSON at line `n` that the parser itself found too deep (a RecursionError)."""
    return _too_deep(name, n, row_limits())


def _cut_deep(text: str, limit: int) -> tuple[str, list[int]]:
    """`text` (JSON too deep for the parser) with every array or object that opens deeper than
    `limit` replaced by `0` and spaces (its line breaks kept, so offsets and lines stay), and the
    offsets where one was cut. Strings are skipped whole; the scan keeps no stack."""
    pieces, cuts, depth, last, opened = [], [], 0, 0, -1
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth == limit + 1:
                opened = m.start()
        elif c in "]}":
            if depth == limit + 1 and opened >= 0:
                pieces += [text[last:opened], "0", re.sub(r"[^\n]", " ", text[opened + 1:m.end()])]
                cuts.append(opened)
                last, opened = m.end(), -1
            depth -= 1
    if opened >= 0:   # never closed: cut to the end (the parser then reports the missing bracket)
        pieces += [text[last:opened], "0", re.sub(r"[^\n]", " ", text[opened + 1:])]
        cuts.append(opened)
        last = len(text)
    pieces.append(text[last:])
    return "".join(pieces), cuts


def _cut_long_lines(name, text: str, lim: Limits, errors) -> str:
    """`text` with each line longer than the limit emptied (its line break kept, so the lines after
    it keep their numbers) and reported."""
    if len(text) <= lim.line:   # no line can be longer (a character is at least one byte)
        return text
    pieces, start, n = [], 0, 1
    while True:
        end = text.find("\n", start)
        stop = len(text) if end < 0 else end
        if stop - start > lim.line // 4 and (size := len(text[start:stop].encode("utf-8", "surrogatepass"))) > lim.line:
            errors.append(_line_too_long(name, n, size, lim))
            pieces.append("")
        else:
            pieces.append(text[start:stop])
        if end < 0:
            return "\n".join(pieces)
        start, n = end + 1, n + 1


# ---- step 1: bytes -> raw rows -------------------------------------------------------------

def read_rows(name, ext, data: bytes, separator, errors, warnings) -> list[Row] | None:
    """Raw rows with their lines, or None when the file as a whole is unusable (error added)."""
    if ext == ".parquet":
        return _parquet_rows(name, data, errors, row_limits())
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
    lim = row_limits()
    if ext in (".jsonl", ".csv", ".tsv"):
        text = _cut_long_lines(name, text, lim, errors)
    if ext == ".jsonl":
        rows = _jsonl_rows(name, text, bad_lines, errors, lim)
    elif ext == ".json":
        rows = _json_rows(name, text, bad_lines, errors, warnings, lim)
    elif ext in (".csv", ".tsv"):
        rows = _csv_rows(name, text, "\t" if ext == ".tsv" else ",", errors, lim)
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
    rows, done, n, lim = [], 0, 0, row_limits()
    with open(path, "rb") as f:
        while raw := f.readline(lim.line + 1):   # never more than the limit of one line held
            n += 1
            done += len(raw)
            if len(raw) > lim.line and not raw.endswith(b"\n"):   # too long: skip the rest of it unread
                size = len(raw)
                while more := f.readline(1 << 20):
                    done += len(more)
                    size += len(more.rstrip(b"\n"))
                    if more.endswith(b"\n"):
                        break
                if errors is not None:
                    errors.append(_line_too_long(name, n, size, lim))
                continue
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
            row = _jsonl_line(name, n, line, errors, lim)
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


def _jsonl_line(name, n: int, line: str, errors: list | None, lim: Limits) -> Row | None:
    """Line `n` of a JSON Lines file as a row; None for a blank line, invalid JSON or a row over
    the limits (a Problem goes to `errors` when given)."""
    if not line.strip():
        return None
    try:
        value = json.loads(line)
        problem = _value_problem(name, n, line, value, lim)
    except json.JSONDecodeError as e:
        problem = _invalid_json(name, n, e)
    except RecursionError:   # deeper than the parser goes, so far deeper than the limit
        problem = _too_deep(name, n, lim)
    if problem is None:
        return Row(n, n, value)
    if errors is not None:
        errors.append(problem)
    return None


def _invalid_json(name, n: int, e: json.JSONDecodeError) -> Problem:
    return Problem(name, n, f"invalid JSON: {e.msg} (column {e.colno})", "invalid_json",
                   {"detail": e.msg, "column": e.colno})


def _jsonl_rows(name, text, bad_lines, errors, lim: Limits) -> list[Row]:
    rows = []
    for n, line in enumerate(text.split("\n"), start=1):
        if n in bad_lines:
            errors.append(_bad_bytes(name, n, bad_lines[n]))
            continue
        row = _jsonl_line(name, n, line, errors, lim)
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


def _json_rows(name, text, bad_lines, errors, warnings, lim: Limits) -> list[Row] | None:
    cuts: list[int] = []   # where a value nested too deep for the parser was cut out
    try:
        try:
            doc = json.loads(text)
        except RecursionError:
            text, cuts = _cut_deep(text, lim.depth)
            doc = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data" and text.lstrip().startswith("{"):
            # One object per line in a .json file: it is JSON Lines under another name.
            warnings.append(Problem(name, 0, "holds one JSON object per line: read as JSON Lines (.jsonl)",
                                    "json_lines_in_json"))
            return _jsonl_rows(name, text, bad_lines, errors, lim)
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
            problem = _too_deep(name, line_of(start), lim) if cuts else \
                _value_problem(name, line_of(start), text, doc, lim, start)
            if problem:
                errors.append(problem)
                return []
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
    rows = []
    for v, s, e in _array_items(text, start, dec):
        if cuts and cuts[bisect.bisect_left(cuts, s):bisect.bisect_left(cuts, e)]:
            errors.append(_too_deep(name, line_of(s), lim))
        elif problem := _value_problem(name, line_of(s), text, v, lim, s, e):
            errors.append(problem)
        else:
            rows.append(Row(line_of(s), line_of(max(s, e - 1)), v))
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


def _csv_rows(name, text, delimiter, errors, lim: Limits) -> list[Row] | None:
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
            if len(cells) > lim.columns:   # refused at the header: no row of it is parsed
                errors.append(Problem(name, start, f"the header has {len(cells):,} columns, over the limit of "
                                      f"{lim.columns:,} ($TUNESTUDIO_MAX_COLUMNS raises it)", "csv_too_many_columns",
                                      {"columns": len(cells), "limit": lim.columns}))
                return None
            header = [c.strip() for c in cells]
            dupes = sorted(c for c, k in Counter(header).items() if k > 1)
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


def _parquet_rows(name, data: bytes, errors, lim: Limits) -> list[Row] | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        columns = pq.read_metadata(pa.BufferReader(data)).num_columns
        if columns > lim.columns:   # said from the footer, before any column is read
            errors.append(Problem(name, 0, f"the table has {columns:,} columns, over the limit of {lim.columns:,} "
                                  "($TUNESTUDIO_MAX_COLUMNS raises it)", "csv_too_many_columns",
                                  {"columns": columns, "limit": lim.columns}))
            return None
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
