"""The registry: one SQLite file per workspace (tunestudio.db) that remembers every run,
dataset, evaluation, benchmark and human rating.

Plain `sqlite3`, WAL mode so the UI can read while a training process writes. JSON columns hold
structured values (config, metrics, split). Commands that only look (`runs list | show`, the UI's
polls) open it with `connect(path, readonly=True)`: they never write, so they work on a full or
read-only disk. The run folders stay the truth: `tunestudio.runs.reindex` rebuilds this file
from them when it is missing, empty or damaged. Each area adds its own query functions beside its
code; the schema lives here so it is in one place.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from tunestudio.core.errors import UserError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,          -- queued | running | completed | stopped | failed
    created_at    REAL NOT NULL,
    started_at    REAL,
    finished_at   REAL,
    pid           INTEGER,                -- the training process, while running
    base_model    TEXT,
    base_revision TEXT,                   -- hub revision or a hash of the local weights
    method        TEXT,
    dataset       TEXT,
    dataset_hash  TEXT,
    split         TEXT,                   -- JSON: fractions, seed, row ids / split files
    config        TEXT,                   -- JSON: the full run config
    parent_id     TEXT,
    metrics       TEXT,                   -- JSON
    output_dir    TEXT,
    error         TEXT
);
CREATE INDEX IF NOT EXISTS runs_name ON runs(name);
CREATE TABLE IF NOT EXISTS datasets (
    hash       TEXT PRIMARY KEY,          -- sha256 of the file content(s)
    name       TEXT NOT NULL,
    path       TEXT NOT NULL,
    rows       INTEGER,
    format     TEXT,
    first_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at   REAL NOT NULL,
    run_id       TEXT,
    model        TEXT,
    dataset      TEXT,
    split        TEXT,
    n            INTEGER,
    metrics      TEXT,                    -- JSON
    base_metrics TEXT,                    -- JSON, with --compare-base
    output_dir   TEXT
);
CREATE TABLE IF NOT EXISTS judgements (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at     REAL NOT NULL,
    run_id         TEXT,
    evaluation_dir TEXT,                  -- the evaluation judged (its judge.json, judge.jsonl)
    endpoint       TEXT,                  -- the judge's URL (never its API key)
    judge_model    TEXT,
    mode           TEXT,                  -- single | pairwise | both
    n              INTEGER,
    results        TEXT,                  -- JSON: mean scores, win/tie/loss/inconsistent/unparseable counts
    agreement      TEXT                   -- JSON: with the people's ratings of the same prompts (n, share, kappa)
);
CREATE TABLE IF NOT EXISTS benchmarks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    dataset    TEXT,
    results    TEXT                       -- JSON: the leaderboard rows
);
CREATE TABLE IF NOT EXISTS rating_sessions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    name       TEXT,
    a_label    TEXT NOT NULL,             -- what A really is (hidden from the rater)
    b_label    TEXT NOT NULL,
    items      TEXT NOT NULL              -- JSON: [{prompt, a, b, swapped}]
);
CREATE TABLE IF NOT EXISTS ratings (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES rating_sessions(id),
    item       INTEGER NOT NULL,
    choice     TEXT NOT NULL,             -- A | B | tie (as the rater saw them)
    comment    TEXT,
    rater      TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS exports (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    run_id     TEXT NOT NULL,
    format     TEXT NOT NULL,             -- hf | adapter | gguf (the --format asked for)
    kind       TEXT,                      -- full | merged | adapter | gguf (what was written)
    quant      TEXT,                      -- gguf only: f16, q8_0, q4_k_m...
    path       TEXT NOT NULL,             -- the .gguf file, or the exported folder
    seconds    REAL,                      -- the export itself
    roundtrip  TEXT                       -- JSON: the round-trip check's figures; NULL with --no-verify
);
CREATE INDEX IF NOT EXISTS exports_run ON exports(run_id);
"""

# Which columns hold JSON, per table (evaluations.split is a plain split name such as "test").
JSON_COLUMNS = {
    "runs": {"split", "config", "metrics"},
    "evaluations": {"metrics", "base_metrics"},
    "judgements": {"results", "agreement"},
    "benchmarks": {"results"},
    "rating_sessions": {"items"},
    "exports": {"roundtrip"},
}


class ReadOnlyConnection(sqlite3.Connection):
    """A connection opened with mode=ro: queries on it never write (see `_reap_dead`)."""


def connect(db_path: Path, readonly: bool = False) -> sqlite3.Connection:
    """The registry; created with its schema if missing, unless `readonly` (then it must exist,
    and nothing is ever written through the connection)."""
    if readonly:
        return _connect_readonly(Path(db_path))
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, timeout=30, isolation_level=None)  # autocommit; `transaction()` for more
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.executescript(SCHEMA)
    return conn


def _connect_readonly(db_path: Path) -> sqlite3.Connection:
    from urllib.parse import quote

    base = "file:" + quote(str(db_path.resolve()))
    # WAL readers need the -shm file; where it cannot be created (a read-only folder, a full
    # disk: "unable to open", "disk I/O error") read the file as it is (immutable), which misses
    # only what a writer has not checkpointed yet.
    for uri in (base + "?mode=ro", base + "?mode=ro&immutable=1"):
        conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None, factory=ReadOnlyConnection)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as e:  # (a damaged file raises DatabaseError: not retried)
            conn.close()
            last = e
    raise last


@contextmanager
def transaction(conn: sqlite3.Connection):
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def row_to_dict(row: sqlite3.Row | None, table: str = "runs") -> dict | None:
    if row is None:
        return None
    d = dict(row)
    for k in JSON_COLUMNS.get(table, set()) & d.keys():
        if d[k] is not None:
            try:
                d[k] = json.loads(d[k])
            except (TypeError, ValueError):  # a damaged cell: shown as missing, not a traceback
                d[k] = None
    return d


def _encode(values: dict, table: str = "runs") -> dict:
    return {k: (json.dumps(v, default=str) if k in JSON_COLUMNS[table] and v is not None else v)
            for k, v in values.items()}


# ---- runs ------------------------------------------------------------------------------------

def insert_run(conn: sqlite3.Connection, **values) -> None:
    values.setdefault("created_at", time.time())
    values = _encode(values)
    cols = ", ".join(values)
    conn.execute(f"INSERT INTO runs ({cols}) VALUES ({', '.join('?' * len(values))})", list(values.values()))


def update_run(conn: sqlite3.Connection, run_id: str, **values) -> None:
    values = _encode(values)
    sets = ", ".join(f"{k} = ?" for k in values)
    conn.execute(f"UPDATE runs SET {sets} WHERE id = ?", [*values.values(), run_id])


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# What the registry records for a run whose process died without a failed event (killed, crashed,
# the machine rebooted); `crash_record` gives it its code (`engine.run_crashed`).
CRASHED = "the training process ended without finishing"


def crash_record(error: str | None) -> dict | None:
    """A failure the registry recorded itself (`_reap_dead`, runs/reindex.py: the process died
    without a failed event) as the coded record a failed event gives ({code: "run_crashed",
    message, fields}), so the web UI words it; None for any other error text."""
    if error and str(error).startswith(CRASHED):
        return {"code": "run_crashed", "message": str(error), "fields": {}}
    return None


def _reap_dead(conn: sqlite3.Connection, run: dict) -> dict:
    """A run marked running whose process is gone crashed (killed, machine rebooted): say so
    (and record it, unless `conn` is read-only: then only the answer says so)."""
    if run["status"] == "running" and not pid_alive(run.get("pid")):
        error = run.get("error") or f"{CRASHED} (killed or crashed)"
        finished = run.get("finished_at") or time.time()
        if not isinstance(conn, ReadOnlyConnection):
            update_run(conn, run["id"], status="failed", error=error, finished_at=finished)
        run = {**run, "status": "failed", "error": error, "finished_at": finished}
    return run


def get_run(conn: sqlite3.Connection, ref: str) -> dict:
    """A run by id, or by name (the newest run of that name)."""
    row = conn.execute("SELECT * FROM runs WHERE id = ?", (ref,)).fetchone()
    if row is None:
        row = conn.execute("SELECT * FROM runs WHERE name = ? ORDER BY created_at DESC LIMIT 1", (ref,)).fetchone()
    if row is None:
        raise UserError(f"no run '{ref}' in this workspace: `tunestudio runs list` shows them", "run_not_found", ref=ref)
    return _reap_dead(conn, row_to_dict(row))


def lookup_run(db_path: Path, ref: str) -> dict:
    """`find_run` on a connection of its own: one run by id, name or a unique beginning of its id
    (UserError if unknown or ambiguous)."""
    conn = connect(db_path)
    try:
        return find_run(conn, ref)
    finally:
        conn.close()


def list_runs(conn: sqlite3.Connection) -> list[dict]:
    rows = conn.execute("SELECT * FROM runs ORDER BY created_at DESC").fetchall()
    return [_reap_dead(conn, row_to_dict(r)) for r in rows]


# ---- run queries for `runs list | show | compare` (and the web UI's Runs tab) ------------------

def find_run(conn: sqlite3.Connection, ref: str) -> dict:
    """A run by id, name, or a unique beginning of its id (what people copy from a table)."""
    try:
        return get_run(conn, ref)
    except UserError:
        rows = conn.execute("SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 3",
                            (ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",)).fetchall()
        if len(rows) == 1 and ref:
            return get_run(conn, rows[0]["id"])
        if len(rows) > 1:
            raise UserError(f"'{ref}' matches several runs ({', '.join(r['id'] for r in rows)}, ...): "
                            "give more of the id", "run_ref_ambiguous", ref=ref,
                            runs=", ".join(r["id"] for r in rows)) from None
        raise


def child_runs(conn: sqlite3.Connection, run_id: str) -> list[dict]:
    """Runs started from `run_id` (--from-run, or the next stage), oldest first."""
    rows = conn.execute("SELECT * FROM runs WHERE parent_id = ? ORDER BY created_at", (run_id,)).fetchall()
    return [row_to_dict(r) for r in rows]


def run_evaluations(conn: sqlite3.Connection, run_id: str | None = None) -> list[dict]:
    """Saved evaluations, newest first: all of them, or those of one run."""
    q = "SELECT * FROM evaluations" + (" WHERE run_id = ?" if run_id else "") + " ORDER BY created_at DESC, id DESC"
    return [row_to_dict(r, "evaluations") for r in conn.execute(q, (run_id,) if run_id else ())]


# ---- exports (`tunestudio export`, the Runs tab) --------------------------------------------------

ROUNDTRIP_KEYS = ("rows", "identical", "identical_share", "stopped", "exact_match", "reference_exact_match",
                  "exact_match_delta", "reference", "seconds", "warnings", "skipped")


def record_export(conn: sqlite3.Connection, run_id: str, fmt: str, out: dict, roundtrip: dict | None) -> int:
    """Remember an export: `out` is export_run / export_gguf's result, `roundtrip` check_export's
    (only its figures are kept: the answers stay in the export's roundtrip.json). Returns the row id."""
    figures = {k: roundtrip[k] for k in ROUNDTRIP_KEYS if k in roundtrip} if roundtrip else None
    cur = conn.execute(
        "INSERT INTO exports (created_at, run_id, format, kind, quant, path, seconds, roundtrip) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (time.time(), run_id, fmt, out.get("kind"), out.get("quant"), out.get("file") or out["output"],
         out.get("seconds"), json.dumps(figures) if figures is not None else None))
    return cur.lastrowid


def run_exports(conn: sqlite3.Connection, run_id: str) -> list[dict]:
    """A run's exports, newest first: {id, created_at, run_id, format, kind, quant, path, seconds,
    roundtrip (dict or None)}."""
    q = "SELECT * FROM exports WHERE run_id = ? ORDER BY created_at DESC, id DESC"
    return [row_to_dict(r, "exports") for r in conn.execute(q, (run_id,))]
