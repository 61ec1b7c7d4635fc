"""A loaded data file kept as an Arrow file, so the next run (or check) on the same file maps it
back in a second instead of parsing a million rows again.

The entry `training/.cache/loaded/<key>.arrow` is the records table of data/formats/table.py with the
load result (format, columns used, errors, warnings) in its schema metadata. The key covers the
file's content (sha256), the options that change what is read (format, mapping, separator, the
limits on a row) and the source of the code that reads it (load.py, table.py, records.py, split.py's
content key), so
a changed file or a changed reader never gets an old table. Only files over CACHE_MIN_BYTES are
cached: small ones load faster than they hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tunestudio.data.formats.load import LoadResult, Problem, load_file, normalize_format, parse_mapping
from tunestudio.data.formats.readers import row_limits

CACHE_MIN_BYTES = 8 << 20
_hashes: dict[tuple, str] = {}
_code: str | None = None


def sha256_file(path) -> str:
    """The file's sha256 (hex), remembered for this process by path, size and mtime."""
    path = Path(path)
    st = path.stat()
    # only large files are remembered: a small file rewritten within the clock's granularity
    # could keep its size and mtime, and hashing it again costs nothing
    sig = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if sig not in _hashes or st.st_size < CACHE_MIN_BYTES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _hashes[sig] = h.hexdigest()
    return _hashes[sig]


def _code_version() -> str:
    global _code
    if _code is None:
        h = hashlib.sha256()
        data = Path(__file__).resolve().parents[1]   # tunestudio/data
        # every module that decides what a row becomes, or how its problems are worded (codes, fields)
        for name in ("formats/load.py", "formats/readers.py", "formats/convert.py", "formats/content.py",
                     "formats/table.py", "formats/records.py", "split.py", "tools/toolcalls.py",
                     "formats/textdocs.py", "formats/problems.py", "formats/digest.py", "tools/glaive.py",
                     "tools/pycalls.py"):
            h.update((data / name).read_bytes())
        _code = h.hexdigest()
    return _code


def load_cached(path, cache_dir, fmt=None, mapping=None, separator=None):
    """`load.load_file(path, ...)`, through the cache in `cache_dir` for large files."""
    import pyarrow as pa

    from tunestudio.data.formats.table import RecordsView

    path = Path(path)
    if cache_dir is None or not path.is_file() or path.stat().st_size < CACHE_MIN_BYTES:
        return load_file(path, fmt=fmt, mapping=mapping, separator=separator)
    fmt, mapping = normalize_format(fmt), parse_mapping(mapping)
    # the limits on a row (depth, columns, line length) decide which rows load: part of the key
    key = hashlib.sha256(json.dumps([sha256_file(path), fmt, mapping, separator or None, _code_version(),
                                     list(row_limits())], sort_keys=True).encode()).hexdigest()[:32]
    entry = Path(cache_dir) / f"{key}.arrow"

    def mapped():
        table = pa.ipc.open_file(pa.memory_map(str(entry), "r")).read_all()
        meta = json.loads(table.schema.metadata[b"tunestudio"])
        return LoadResult(meta["format"], RecordsView(path.name, table),
                          [Problem(**p) for p in meta["errors"]], [Problem(**p) for p in meta["warnings"]],
                          meta["fields"], path=str(path))

    if entry.is_file():
        try:
            return mapped()
        except (OSError, ValueError, KeyError, TypeError, pa.ArrowInvalid):
            pass   # damaged: read the file again
    result = load_file(path, fmt=fmt, mapping=mapping, separator=separator)
    meta = {"format": result.format, "fields": result.fields,
            "errors": [p.to_dict() for p in result.errors], "warnings": [p.to_dict() for p in result.warnings]}
    table = result.records.table
    table = table.replace_schema_metadata({"tunestudio": json.dumps(meta, ensure_ascii=False)})
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_name(f".{entry.name}.tmp-{os.getpid()}")
    try:
        with pa.ipc.new_file(str(tmp), table.schema) as writer:
            writer.write_table(table)
        os.replace(tmp, entry)   # atomic: a reader never sees half an entry
    except OSError:
        tmp.unlink(missing_ok=True)
        return result            # a full disk costs the cache, not the load
    del table
    result.records = None        # the in-memory copy goes; the mapped file takes its place
    return mapped()
