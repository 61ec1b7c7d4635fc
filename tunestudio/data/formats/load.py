"""Read one data file, whatever its shape, into Records, with every problem tied to a file and line.

Two steps, so each stays small:
  1. read the file into raw rows (a dict per row, with the line where it starts and ends):
     `.jsonl`, `.json` (an array, or an object holding one), `.csv`/`.tsv`, `.parquet`, `.txt`;
  2. detect the format from the columns and convert each row into a Record (convert.py):
       text      {"text"} (or a corpus's "content" / "raw_content") -> Record.text
       alpaca    instruction/input/output (+ system) and the common aliases
                 (prompt/completion, question/answer, query/response, context, target, label...)
                 -> messages [system?, user, assistant]
       messages  OpenAI {"messages": [{"role", "content"}]}  -> messages
       sharegpt  {"conversations": [{"from", "value"}]}      -> messages (human/gpt/bot... mapped)
     Tool use in either chat shape (OpenAI `tools`/`tool_calls`/`tool`, ShareGPT `function_call`/
     `observation` with a `tools` column) is read into OpenAI's form by toolcalls.py; glaive's
     one-string `chat` column by glaive.py, ToolACE's `[f(a=1)]` turns by pycalls.py.

Bad rows never raise: each becomes a Problem naming the file, the line and what is wrong, so
`data check` can list all of them. Line numbers are 1-based lines of the file (a JSON array
element: the line where it starts; a CSV row: its line, the header being line 1; Parquet: the
row number). Line 0 means the file as a whole (empty, unreadable, unsupported).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.core.progress import progress
from tunestudio.data.formats.content import MEDIA_COLUMNS, media_in_row, media_warning
from tunestudio.data.formats.convert import CHAT_COLUMNS, RowError, alpaca_record, chat_record, text_record
from tunestudio.data.formats.problems import Problem, Row
from tunestudio.data.formats.readers import jsonl_chunks, legacy_encoding_problem, read_rows, type_name
from tunestudio.data.formats.textdocs import unescape_separator
from tunestudio.data.tools import toolcalls

FORMATS = ("text", "alpaca", "messages", "sharegpt")
# What users type for --format, mapped to the format it means.
FORMAT_ALIASES = {
    "text": "text", "plain": "text", "txt": "text",
    "alpaca": "alpaca", "instruction": "alpaca", "prompt-completion": "alpaca",
    "prompt_completion": "alpaca", "qa": "alpaca",
    "messages": "messages", "openai": "messages", "chat": "messages",
    "sharegpt": "sharegpt", "conversations": "sharegpt",
}
EXTENSIONS = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt")
# Compressed data files and the command that decompresses one, keeping the original.
COMPRESSED = {".gz": "gunzip -k", ".zst": "zstd -d", ".bz2": "bunzip2 -k", ".xz": "unxz -k"}

# Column aliases, in order of preference. "input" is alpaca's optional context, so it is not an
# instruction alias; "text" is one only beside an answer column ({"text", "label"} is a classifier).
INSTRUCTION_ALIASES = ("instruction", "prompt", "question", "query", "problem", "request",
                       "human", "user", "text", "sentence")
INPUT_ALIASES = ("input", "context")
OUTPUT_ALIASES = ("output", "response", "completion", "answer", "target", "assistant",
                  "gpt", "reply", "label")
SYSTEM_ALIASES = ("system", "system_prompt")
# A corpus's document column: "content" in The Stack and other code corpora, "raw_content" in
# RedPajama-V2 (FineWeb, C4, Dolma and SlimPajama say "text").
TEXT_ALIASES = ("text", "content", "raw_content")
# A response that is a list of tool calls, read only beside a tools column (Salesforce xLAM /
# APIGen files: {"query", "tools", "answers"}; SQuAD's "answers" has no tools beside it).
CALLS_ALIASES = ("answers", "tool_calls", "calls", "function_calls")
# The keys --map accepts (the format's own field names).
MAPPING_KEYS = ("instruction", "input", "output", "system", "text", "messages", "conversations",
                "role", "content", "calls")


@dataclass
class LoadResult:
    format: str | None            # one of FORMATS, None when the file could not be read at all
    records: RecordsView          # a sequence of Records, kept as Arrow columns (data/formats/table.py)
    errors: list[Problem]
    warnings: list[Problem]
    fields: dict = field(default_factory=dict)   # format field -> the column it was read from
    path: str = ""

    def describe(self) -> str:
        """'alpaca (instruction=question, output=answer)': the format and the columns used."""
        if not self.format:
            return "unknown"
        cols = ", ".join(f"{k}={v}" for k, v in self.fields.items() if k != v)
        return f"{self.format} ({cols})" if cols else self.format


def parse_mapping(spec: str | dict | None) -> dict:
    """`"instruction=question,output=answer"` -> {"instruction": "question", "output": "answer"}."""
    if not spec:
        return {}
    pairs = spec.items() if isinstance(spec, dict) else (p.split("=", 1) for p in spec.split(",") if p.strip())
    mapping = {}
    for pair in pairs:
        if len(pair) != 2 or not pair[0].strip() or not pair[1].strip():
            raise UserError(f"--map '{spec}': write FIELD=COLUMN pairs separated by commas, "
                            "e.g. instruction=question,output=answer", "mapping_bad", spec=str(spec))
        key, col = pair[0].strip(), pair[1].strip()
        if key not in MAPPING_KEYS:
            raise UserError(f"--map: unknown field '{key}' (known: {', '.join(MAPPING_KEYS)})", "mapping_unknown_field",
                            field=key, known=list(MAPPING_KEYS))
        mapping[key] = col
    return mapping


def normalize_format(fmt: str | None) -> str | None:
    if not fmt:
        return None
    key = fmt.strip().lower()
    if key not in FORMAT_ALIASES:
        raise UserError(f"--format '{fmt}' is not known: use one of {', '.join(FORMATS)}", "unknown_choice",
                        option="format", value=fmt, choices=list(FORMATS))
    return FORMAT_ALIASES[key]


def load_file(path, fmt: str | None = None, mapping=None, separator: str | None = None,
              strict: bool = False) -> LoadResult:
    """Read `path` into Records. Never raises for bad rows (they become `errors`); with
    `strict=True` raises UserError when the file as a whole cannot be used."""
    path = Path(path)
    name = path.name
    fmt = normalize_format(fmt)
    mapping = parse_mapping(mapping)
    errors: list[Problem] = []
    warnings: list[Problem] = []
    result = LoadResult(None, [], errors, warnings, path=str(path))

    ext = path.suffix.lower()
    if ext in COMPRESSED and Path(path.stem).suffix.lower() in EXTENSIONS:
        # c4 ships .json.gz, RedPajama .jsonl.zst: say what to run rather than "unsupported"
        inner = path.stem
        errors.append(Problem(name, 0, f"compressed file: decompress it first ({COMPRESSED[ext]} {name}, which "
                              f"writes {inner}), then use {inner}", "compressed_file",
                              {"ext": ext, "command": f"{COMPRESSED[ext]} {name}", "inner": inner}))
    elif ext not in EXTENSIONS:
        errors.append(Problem(name, 0, f"unsupported file type '{ext or path.name}': use one of {', '.join(EXTENSIONS)}",
                              "unsupported_type", {"ext": ext or path.name, "allowed": ", ".join(EXTENSIONS)}))
    else:
        try:
            size = path.stat().st_size
            if ext == ".jsonl" and size > JSONL_IN_MEMORY:
                _load_jsonl(result, name, path, size, fmt, mapping)
            else:
                data = path.read_bytes()
                rows = read_rows(name, ext, data, unescape_separator(separator), errors, warnings)
                del data
                if rows is not None:
                    _convert_rows(result, name, ext, rows, fmt, mapping)
        except OSError as e:
            errors.append(Problem(name, 0, f"cannot read the file: {e.strerror or e}", "unreadable",
                                  {"detail": str(e.strerror or e)}))
    if isinstance(result.records, list):   # nothing usable was read
        from tunestudio.data.formats.table import RecordsView, TableBuilder

        result.records = RecordsView(name, TableBuilder().table())
    errors.sort(key=lambda p: p.line)     # stable: problems of one line keep their order
    warnings.sort(key=lambda p: p.line)
    if strict and any(p.line == 0 for p in errors):
        whole = [p for p in errors if p.line == 0]
        raise UserError("; ".join(str(p) for p in whole), "data_problems", problems=[p.as_warning() for p in whole])
    return result


# ---- a large JSON Lines file -----------------------------------------------------------------

# JSON Lines files above this size are read twice, a chunk of lines at a time (detect the format,
# then convert), instead of holding every parsed row at once (~1 KB of Python objects a row).
JSONL_IN_MEMORY = 32 << 20
def _load_jsonl(result: LoadResult, name, path: Path, size: int, fmt, mapping) -> None:
    """A large JSON Lines file in two streaming passes: scan (format, columns, bad lines), then
    convert into an Arrow table. Memory: the table, plus one chunk of parsed rows."""
    from tunestudio.data.formats.table import RecordsView, TableBuilder

    scan = _Scan(mapping)
    with progress(size, f"reading {name}", unit="B") as bar:
        for chunk in jsonl_chunks(name, path, result.errors, bar):
            scan.add(chunk)
    if not scan.rows and not result.errors:
        result.errors.append(Problem(name, 0, "empty file: no rows", "empty_file"))
    not_utf8 = sum(1 for p in result.errors if p.code == "not_utf8")
    if not_utf8 and not_utf8 >= scan.rows:   # most lines: a whole file in another encoding, said once
        with open(path, "rb") as f:
            problem = legacy_encoding_problem(name, f.read(256 << 10))
        if problem:
            result.errors[:] = [problem]
            return
    plan = _plan(result, name, ".jsonl", scan, fmt, mapping)
    if plan is None:
        return
    builder = TableBuilder()
    with progress(size, f"converting {name}", unit="B") as bar:
        for chunk in jsonl_chunks(name, path, None, bar):
            _convert_chunk(result, name, plan, chunk, builder)
    _media_warning(result, name, plan)
    result.records = RecordsView(name, builder.table())


# ---- step 2: raw rows -> Records ------------------------------------------------------------

def _first(keys, aliases, mapping_value=None):
    if mapping_value:
        return mapping_value if mapping_value in keys else None
    return next((a for a in aliases if a in keys), None)


def _fields_for(fmt: str, keys: set, mapping: dict) -> dict:
    """The columns the format reads, from the mapping or the aliases; missing ones are absent."""
    if fmt == "text":
        if "text" in mapping:
            col = mapping["text"]
        elif any(a in keys for a in OUTPUT_ALIASES):   # {"content", "label"}: not a corpus
            col = "text"
        else:
            col = next((a for a in TEXT_ALIASES if a in keys), "text")
        return {"text": col} if col in keys else {}
    if fmt in ("messages", "sharegpt"):
        own = "messages" if fmt == "messages" else "conversations"
        col = mapping.get(own) or mapping.get("messages") or mapping.get("conversations")
        candidates = [col] if col else ([own, "messages", "conversations", "conversation", "chat"])
        col = next((c for c in candidates if c in keys), None)
        out = {own: col} if col else {}
        system = _first(keys, SYSTEM_ALIASES, mapping.get("system"))
        if system:
            out["system"] = system
        return out
    output = _first(keys, OUTPUT_ALIASES, mapping.get("output"))
    calls = None
    if output is None and (mapping.get("calls") or any(k in keys for k in toolcalls.TOOLS_COLUMNS)):
        output = calls = _first(keys, CALLS_ALIASES, mapping.get("calls"))
    instruction = _first(keys - {output}, INSTRUCTION_ALIASES, mapping.get("instruction"))
    inp = _first(keys - {output, instruction}, INPUT_ALIASES, mapping.get("input"))
    if instruction is None and inp is not None and "input" not in mapping:
        instruction, inp = inp, None   # {"input", "output"}: the input is the instruction
    system = _first(keys - {output, instruction, inp}, SYSTEM_ALIASES, mapping.get("system"))
    out = {}
    for k, v in (("instruction", instruction), ("input", inp), ("output", output), ("system", system),
                 ("calls", calls)):
        if v:
            out[k] = v
    return out


_REQUIRED = {"text": ("text",), "alpaca": ("instruction", "output"),
             "messages": ("messages",), "sharegpt": ("conversations",)}


class _Scan:
    """What format detection needs to know about all the rows, gathered chunk by chunk (so a
    large file never has to be held as Python objects at once)."""

    def __init__(self, mapping: dict):
        self.mapping = mapping
        self.keys: set = set()
        self.counts = {fmt: 0 for fmt in _REQUIRED}
        self.first_turns: dict = {}   # column -> whether its first list of turns uses ShareGPT's "from"
        self.any_dict = False
        self.rows = 0
        self._fits: dict[frozenset, list] = {}

    def add(self, rows: list[Row]) -> None:
        self.rows += len(rows)
        for r in rows:
            if not isinstance(r.value, dict):
                continue
            self.any_dict = True
            row_keys = frozenset(r.value)
            fits = self._fits.get(row_keys)
            if fits is None:   # rows of one shape fit the same formats: work it out once per shape
                self.keys.update(row_keys)
                fits = self._fits[row_keys] = [
                    fmt for fmt, required in _REQUIRED.items()
                    if all(k in _fields_for(fmt, row_keys, self.mapping) for k in required)]
            for fmt in fits:
                self.counts[fmt] += 1
            for k, v in r.value.items():
                if k not in self.first_turns and isinstance(v, list) and v and isinstance(v[0], dict):
                    self.first_turns[k] = "from" in v[0]


def _detect(scan: _Scan) -> str | None:
    """The format most rows fit (ties go to the order below)."""
    best, best_count = None, 0
    for fmt in ("messages", "sharegpt", "alpaca", "text"):
        if scan.counts[fmt] > best_count:
            best, best_count = fmt, scan.counts[fmt]
    if best in ("messages", "sharegpt"):
        # Report ShareGPT when the turns use its from/value keys, whatever the column is called.
        col = _fields_for(best, scan.keys, scan.mapping)
        col = next(iter(col.values()), None)
        if col in scan.first_turns:
            best = "sharegpt" if scan.first_turns[col] else "messages"
    return best


@dataclass
class _Plan:
    fmt: str
    fields: dict
    used: set
    media: dict = field(default_factory=dict)   # media kind -> lines of the rows that reference it
    tools: object = None   # a file-level tool list (a JSON Lines line holding only {"tools": [...]})


def _plan(result: LoadResult, name, ext, scan: _Scan, fmt, mapping) -> _Plan | None:
    """The format and the columns to read, or None (an error added) when the file cannot be used."""
    errors = result.errors
    if ext == ".txt":
        if fmt not in (None, "text"):
            errors.append(Problem(name, 0, f"a .txt file holds plain text: --format {fmt} does not apply",
                                  "txt_format", {"format": fmt}))
            return None
        fmt = "text"
    if not scan.rows:
        return None
    keys = scan.keys
    if fmt is None:
        fmt = _detect(scan)
        if fmt is None:
            found = ", ".join(sorted(map(str, keys))) or "none"
            line = 1 if ext in (".csv", ".tsv") else 0   # the header
            if any(a in keys for a in INSTRUCTION_ALIASES if a != "text"):
                expected = ", ".join(OUTPUT_ALIASES)
                errors.append(Problem(name, line, f"missing column for the response: expected one of {expected} "
                                      f"(columns: {found}); or name it with --map output=COLUMN",
                                      "no_response_column", {"expected": expected, "columns": found}))
            else:
                errors.append(Problem(name, line, f"cannot tell the format from the columns ({found}): expected "
                                      "instruction/output (or prompt/completion, question/answer), messages, "
                                      "conversations, chat or text (content, raw_content); or give --format and --map",
                                      "unknown_format", {"columns": found}))
            return None
    fields = _fields_for(fmt, keys, mapping)
    missing = [k for k in _REQUIRED[fmt] if k not in fields]
    if missing and (ext in (".csv", ".tsv", ".parquet") or not scan.any_dict):
        # Tabular files share one header: say it once instead of once per row.
        wanted = ", ".join(mapping.get(k, k) for k in missing)
        errors.append(Problem(name, 1 if ext != ".parquet" else 0,
                              f"missing column(s) {wanted} for format {fmt} (columns: {', '.join(sorted(keys))})",
                              "missing_columns", {"wanted": wanted, "format": fmt, "columns": ", ".join(sorted(keys))}))
        return None
    for k in missing:   # JSON rows: name the column in each row's error below
        fields[k] = mapping.get(k, k)
    result.format, result.fields = fmt, fields
    used = set(fields.values()) | (set(CHAT_COLUMNS) | set(toolcalls.TOOLS_COLUMNS)
                                   if fmt in ("messages", "sharegpt") else set())
    if "calls" in fields:
        used |= set(toolcalls.TOOLS_COLUMNS)
    return _Plan(fmt, fields, used)


def _convert_chunk(result: LoadResult, name, plan: _Plan, rows: list[Row], builder) -> None:
    """Each row -> a Record (added to `builder`) or a Problem (added to `result.errors`)."""
    errors, fmt, fields = result.errors, plan.fmt, plan.fields
    for r in rows:
        if not isinstance(r.value, dict):
            errors.append(Problem(name, r.line, f"wrong type: a row must be a JSON object, found {type_name(r.value)}",
                                  "row_not_object", {"found": type_name(r.value)}))
            continue
        if fmt in ("messages", "sharegpt") and r.value and set(r.value) <= set(toolcalls.TOOLS_COLUMNS):
            plan.tools = next(iter(r.value.values()))   # a file-level tool list for the rows after it
            continue
        try:
            if fmt == "text":
                rec = text_record(r.value, fields)
            elif fmt == "alpaca":
                rec = alpaca_record(r.value, fields)
            else:
                rec, warning, media = chat_record(r.value, fields, fmt, plan.tools)
                if warning:
                    result.warnings.append(Problem.of(name, r.line, warning))
                for kind in set(media):
                    plan.media.setdefault(kind, []).append(r.line)
        except RowError as e:
            errors.append(Problem.of(name, r.line, e))
            continue
        rec.source, rec.line = name, r.line
        rec.meta = {k: v for k, v in r.value.items() if k not in plan.used and k not in MEDIA_COLUMNS}
        for kind in set(media_in_row(r.value)):
            plan.media.setdefault(kind, []).append(r.line)
        builder.add(rec)


def _media_warning(result: LoadResult, name, plan: _Plan) -> None:
    """Media named by the file's rows, said once for the file, not once per row."""
    if plan.media:
        first = min(line for lines in plan.media.values() for line in lines)
        lines = sorted({line for lines in plan.media.values() for line in lines})
        result.warnings.append(Problem(name, first, media_warning(plan.media, name), "media_ignored",
                                       {"kinds": sorted(plan.media), "rows": len(lines), "source": name,
                                        "lines": ", ".join(map(str, lines[:5]))}))


def _convert_rows(result: LoadResult, name, ext, rows: list[Row], fmt, mapping):
    from tunestudio.data.formats.table import RecordsView, TableBuilder

    scan = _Scan(mapping)
    scan.add(rows)
    plan = _plan(result, name, ext, scan, fmt, mapping)
    if plan is None:
        return
    builder = TableBuilder()
    _convert_chunk(result, name, plan, rows, builder)
    _media_warning(result, name, plan)
    result.records = RecordsView(name, builder.table())
