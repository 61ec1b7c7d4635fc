"""Preference data: pairs (a prompt, a chosen and a rejected answer) and unpaired rows (a prompt, one
answer and a boolean label), read and checked with the line of every problem.

Shapes accepted (each row of a .jsonl/.json/.csv/.tsv/.parquet file):
  - TRL's: `prompt` + `chosen` + `rejected`, each a string or a list of messages; without `prompt`,
    `chosen` and `rejected` are whole conversations and their common first turns are the prompt;
  - a history: `conversations` or `messages` (OpenAI role/content or ShareGPT from/value) + `chosen`
    + `rejected` (a string, one message, or a list of messages) - LLaMA-Factory's ranking shape;
  - alpaca: `instruction` (+ `input`, `system`) + `chosen` + `rejected`;
  - unpaired (KTO): any of those prompts + `completion` (or `output`/`response`/`answer`) + a
    boolean `label` (or `kto_tag`).
A row's prompt becomes chat messages, so the model's chat template, its turn end and the masking
are those of SFT (data/encoding/encode.py renders them); `encode_pairs` in data/encoding/pref_encode.py tokenises.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from tunestudio.core.errors import CodedError, UserError
from tunestudio.data.formats.convert import ROLE_NAMES
from tunestudio.data.formats.load import EXTENSIONS
from tunestudio.data.formats.problems import Problem, problem_list
from tunestudio.data.formats.readers import read_rows
from tunestudio.data.split import carve, dataset_hash, relative_name, resolve_dataset, row_ids, sha256_file

PAIR_KEYS = ("chosen", "rejected")
LABEL_KEYS = ("label", "kto_tag")
COMPLETION_KEYS = ("completion", "output", "response", "answer")
HISTORY_KEYS = ("conversations", "messages", "conversation")
MAX_LISTED = 20


@dataclass
class PrefRecord:
    source: str
    line: int
    prompt: list[dict]                  # the conversation before the answer: [{"role", "content"}, ...]
    chosen: str | None = None           # pairs: the better answer
    rejected: str | None = None         # pairs: the worse answer
    completion: str | None = None       # unpaired: the one answer
    label: bool | None = None           # unpaired: True when the answer is desirable

    def where(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def is_pair(self) -> bool:
        return self.chosen is not None

    def digest(self) -> bytes:
        """16 bytes standing for the row's content: equal rows stay together in one split."""
        key = json.dumps([self.prompt, self.chosen, self.rejected, self.completion, self.label], ensure_ascii=False)
        return hashlib.blake2b(key.encode(), digest_size=16).digest()


def row_kind(row) -> str | None:
    """"pairs" for a row with chosen + rejected, "unpaired" for one with a label, else None."""
    if not isinstance(row, dict):
        return None
    if all(k in row for k in PAIR_KEYS):
        return "pairs"
    if any(k in row for k in LABEL_KEYS) and any(k in row for k in COMPLETION_KEYS):
        return "unpaired"
    return None


def sniff(path) -> str | None:
    """The kind of preference file `path` is ("pairs" / "unpaired"), from its first rows, or None
    when it is not one (an SFT file, or unreadable: the SFT loader then reports why)."""
    path = Path(path)
    if path.suffix.lower() not in EXTENSIONS or path.suffix.lower() == ".txt" or not path.is_file():
        return None
    try:
        if path.suffix.lower() == ".jsonl":
            with open(path, encoding="utf-8", errors="replace") as f:
                for _, line in zip(range(50), f):
                    if line.strip():
                        try:
                            return row_kind(json.loads(line))
                        except (ValueError, RecursionError):   # the loader reports why, at its line
                            continue
            return None
        ext = path.suffix.lower()
        # only the column names matter: never read a large table whole just to tell its kind
        if ext in (".csv", ".tsv"):
            with open(path, encoding="utf-8-sig", errors="replace") as f:
                header = f.readline().rstrip("\r\n").split("\t" if ext == ".tsv" else ",")
            return row_kind({h.strip().strip('"'): None for h in header})
        if ext == ".parquet":
            import pyarrow.parquet as pq

            return row_kind({name: None for name in pq.read_schema(path).names})
        if path.stat().st_size > 64 << 20:  # a .json this large is read by the SFT loader in chunks
            return None
        rows = read_rows(path.name, ext, path.read_bytes(), None, [], [])
    except (OSError, ValueError):
        return None
    return next((row_kind(r.value) for r in rows or [] if isinstance(r.value, dict)), None)


class _Bad(CodedError):
    """What is wrong with one preference row (a Problem at its line, code and fields kept)."""


def _text(value, what: str) -> str:
    """A message body as text: a string, a {"content"|"value"} dict, or a list of text parts."""
    if isinstance(value, dict):
        value = value.get("content", value.get("value"))
    if isinstance(value, list) and all(isinstance(p, dict) and "text" in p for p in value):
        value = "".join(str(p["text"]) for p in value)
    if value is None:
        raise _Bad(f"'{what}' is null", "pref_null", col=what)
    if not isinstance(value, str):
        raise _Bad(f"'{what}' must be text, found {type(value).__name__}", "pref_not_text", col=what,
                   found=type(value).__name__)
    return value


def _messages(value, what: str) -> list[dict]:
    """OpenAI (role/content) or ShareGPT (from/value) messages in our form."""
    if not isinstance(value, list) or not value:
        raise _Bad(f"'{what}' must be a non-empty list of messages", "pref_not_messages", col=what)
    out = []
    for n, m in enumerate(value, 1):
        if not isinstance(m, dict):
            raise _Bad(f"message {n} of '{what}' must be an object, found {type(m).__name__}",
                       "pref_message_not_object", n=n, col=what, found=type(m).__name__)
        raw = m.get("role", m.get("from"))
        role = ROLE_NAMES.get(str(raw).lower()) if raw is not None else None
        if role is None:
            raise _Bad(f"message {n} of '{what}' has an unknown role {raw!r} (use system, user or assistant)",
                       "pref_unknown_role", n=n, col=what, role=repr(raw))
        out.append({"role": role, "content": _text(m, f"{what}[{n}]")})
    return out


def _answer(value, what: str) -> tuple[list[dict], str]:
    """(messages before the answer inside `value`, the answer text): a string, one message, or a
    list of messages whose last one is the assistant's answer."""
    if not isinstance(value, list):  # a string, one message, or a wrong type _text names
        return [], _text(value, what)
    msgs = _messages(value, what)
    if msgs[-1]["role"] != "assistant":
        raise _Bad(f"the last message of '{what}' must be the assistant's answer, found {msgs[-1]['role']}",
                   "pref_last_not_assistant", col=what, role=msgs[-1]["role"])
    return msgs[:-1], msgs[-1]["content"]


def _prompt(row: dict) -> list[dict] | None:
    """The row's own prompt (None when it has none: TRL's implicit-prompt shape)."""
    system = row.get("system") or row.get("system_prompt")
    msgs = [{"role": "system", "content": _text(system, "system")}] if system else []
    if row.get("prompt") is not None:
        p = row["prompt"]
        msgs += [{"role": "user", "content": _text(p, "prompt")}] if isinstance(p, str) else _messages(p, "prompt")
        return msgs
    col = next((k for k in HISTORY_KEYS if row.get(k) is not None), None)
    if col:
        return msgs + _messages(row[col], col)
    if row.get("instruction") is not None:
        text = _text(row["instruction"], "instruction")
        extra = row.get("input")
        if extra:
            text = f"{text}\n\n{_text(extra, 'input')}"
        return msgs + [{"role": "user", "content": text}]
    return None


def _label(row: dict) -> bool:
    key = next(k for k in LABEL_KEYS if k in row)
    v = row[key]
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    raise _Bad(f"'{key}' must be true or false, found {v!r}", "pref_bad_label", col=key, value=repr(v))


def parse_row(source: str, line: int, row, kind: str) -> PrefRecord:
    """One row as a PrefRecord. Raises _Bad with what is wrong."""
    if not isinstance(row, dict):
        raise _Bad(f"a row must be an object, found {type(row).__name__}", "pref_row_not_object",
                   found=type(row).__name__)
    prompt = _prompt(row)
    if kind == "unpaired":
        if row_kind(row) != "unpaired":
            raise _Bad(f"an unpaired (KTO) row needs an answer ({'/'.join(COMPLETION_KEYS)}) and a boolean "
                       f"{' or '.join(LABEL_KEYS)}", "pref_not_unpaired", answers="/".join(COMPLETION_KEYS),
                       labels=" / ".join(LABEL_KEYS))
        col = next(k for k in COMPLETION_KEYS if k in row)
        before, completion = _answer(row[col], col)
        prompt = (prompt or []) + before
        if not prompt:
            raise _Bad("no prompt: give 'prompt', 'messages'/'conversations' or 'instruction'", "pref_no_prompt")
        if not completion.strip():
            raise _Bad(f"'{col}' is empty", "pref_empty", col=col)
        return PrefRecord(source, line, prompt, completion=completion, label=_label(row))
    missing = [k for k in PAIR_KEYS if k not in row]
    if missing:
        raise _Bad(f"a preference pair needs 'chosen' and 'rejected'; missing {', '.join(missing)}",
                   "pref_missing_pair", missing=", ".join(missing))
    c_before, chosen = _answer(row["chosen"], "chosen")
    r_before, rejected = _answer(row["rejected"], "rejected")
    if c_before != r_before:
        raise _Bad("'chosen' and 'rejected' hold different conversations before their answers", "pref_different_history")
    prompt = (prompt or []) + c_before
    if not prompt or not any(m["role"] == "user" for m in prompt):
        raise _Bad("no prompt: give 'prompt', 'messages'/'conversations' or 'instruction' (or conversations "
                   "in 'chosen'/'rejected')", "pref_no_prompt")
    if prompt[-1]["role"] == "assistant":
        raise _Bad("the prompt ends with an assistant turn: the answers in 'chosen'/'rejected' must follow a user turn",
                   "pref_prompt_ends_assistant")
    for name, text in (("chosen", chosen), ("rejected", rejected)):
        if not text.strip():
            raise _Bad(f"'{name}' is empty", "pref_empty", col=name)
    if chosen.strip() == rejected.strip():
        raise _Bad("'chosen' and 'rejected' are the same answer: a pair must say which of two answers is better",
                   "pref_same_answer")
    return PrefRecord(source, line, prompt, chosen=chosen, rejected=rejected)


@dataclass
class PrefLoad:
    kind: str | None                    # "pairs" / "unpaired" / None (not a preference file)
    records: list[PrefRecord]
    errors: list[Problem]
    path: str = ""


def load_pref_file(path, kind: str | None = None) -> PrefLoad:
    """Read every row of `path`; bad rows become `errors` (file:line: what is wrong), never raise."""
    path = Path(path)
    name, ext = path.name, path.suffix.lower()
    errors: list[Problem] = []
    try:
        rows = read_rows(name, ext, path.read_bytes(), None, errors, []) if ext in EXTENSIONS else None
    except OSError as e:
        return PrefLoad(kind, [], [Problem(name, 0, f"cannot read the file: {e.strerror or e}", "unreadable",
                                           {"detail": str(e.strerror or e)})], str(path))
    if rows is None:
        return PrefLoad(kind, [], errors or [Problem(name, 0, f"unsupported file type '{ext}'", "pref_unsupported_type",
                                                     {"ext": ext})], str(path))
    kind = kind or next((row_kind(r.value) for r in rows if row_kind(r.value)), None)
    if kind is None:
        errors.append(Problem(name, 0, "not a preference file: no row has 'chosen' + 'rejected', or an answer "
                              "with a boolean 'label'/'kto_tag'", "not_preference_file"))
        return PrefLoad(None, [], errors, str(path))
    records = []
    for r in rows:
        try:
            records.append(parse_row(name, r.line, r.value, kind))
        except _Bad as e:
            errors.append(Problem.of(name, r.line, e))
    errors.sort(key=lambda p: p.line)
    return PrefLoad(kind, records, errors, str(path))


def raise_on_errors(loads: list[PrefLoad]) -> None:
    errors = [p for ld in loads for p in ld.errors]
    if errors:
        shown = "\n  ".join(str(p) for p in errors[:MAX_LISTED])
        more = f"\n  ... and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
        raise UserError(f"{len(errors)} problem(s) in the preference data:\n  {shown}{more}", "pref_problems",
                        count=len(errors), problems=problem_list(errors, MAX_LISTED))


@dataclass
class PrefSplits:
    info: dict
    train: list[PrefRecord]
    val: list[PrefRecord]
    test: list[PrefRecord]
    kind: str


def load_pref_splits(ws, dataset: str, val_split: float, test_split: float, seed: int,
                     split_info: dict | None = None) -> PrefSplits:
    """The train/val/test rows of preference `dataset` (one file carved by `seed`, or a split set
    NAME.train/.val/.test), and the info that reproduces them (split.json). With `split_info`
    (a resumed run), exactly the rows it lists, after checking no file changed."""

    if split_info is not None:
        files = {}
        for key, f in split_info["files"].items():
            p = Path(f["path"]) if Path(f["path"]).is_absolute() else ws.root / f["path"]
            if not p.is_file() or sha256_file(p) != f["sha256"]:
                raise UserError(f"the dataset file {f['path']} changed or is gone since this run's split was made",
                                "split_file_changed", path=str(f["path"]))
            files[key] = p
    else:
        files = resolve_dataset(ws, dataset)
    loads = {k: load_pref_file(p) for k, p in files.items()}
    raise_on_errors(list(loads.values()))
    kinds = {ld.kind for ld in loads.values()}
    if len(kinds) != 1:
        raise UserError(f"{dataset}: the files mix preference pairs and unpaired (labelled) rows", "pref_mixed_kinds",
                        dataset=str(dataset))
    base_key = "all" if "all" in files else "train"
    base = loads[base_key].records
    if not base:
        raise UserError(f"{files[base_key].name} has no usable rows", "no_usable_rows", file=files[base_key].name)
    if split_info is not None:
        rows = split_info["rows"]
    else:
        rows = carve(files[base_key].name, row_ids(base_key, base), [r.digest() for r in base],
                      0 if "val" in files else val_split, 0 if "test" in files else test_split, seed)
        for key in ("val", "test"):
            if key in files:
                rows[key] = row_ids(key, loads[key].records)
    by_id = {k: dict(zip(row_ids(k, ld.records), ld.records)) for k, ld in loads.items()}

    def take(split):
        return [by_id[i.split(":", 1)[0]][i] for i in rows.get(split, [])]

    info = split_info or {
        "dataset": dataset,
        "files": {k: {"path": relative_name(ws, p), "name": p.name, "sha256": sha256_file(p), "rows": len(loads[k].records)}
                  for k, p in files.items()},
        "format": next(iter(kinds)), "mapping": None, "separator": None,
        "val_split": val_split, "test_split": test_split, "seed": seed, "rows": rows,
    }
    if split_info is None:
        info["hash"] = dataset_hash(info)
    return PrefSplits(info, take("train"), take("val"), take("test"), next(iter(kinds)))
