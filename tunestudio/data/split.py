"""Train / validation / test splits: explicit split files, or one file split with a seed.

`--dataset NAME` means, in this order:
  - a file `training/datasets/NAME` (or a path): one file, split here;
  - a split set `NAME.train.<ext>` (+ optional `NAME.val.<ext>`, `NAME.test.<ext>`): the files
    are the splits; a missing val or test file is carved out of the train file with the fractions;
  - a file `NAME.<ext>` (the extension may be left out when only one file matches).

Which row goes where depends only on the seed and the row's id (its file and line), through a
hash: the same file and seed give the same split on any machine and Python version. Rows with the
same normalised content (`content_key`: lower-case, whitespace collapsed) are one group and go to
one split together, so a duplicated row is never both trained on and tested on. The split is
recorded in `info` (JSON) with each file's sha256, so evaluation reloads exactly the same test
rows with `splits_from_info`, and refuses if a file changed since.

Explicit split files can still share rows (train/test leakage): `leakage_warnings` names them, and
`load_splits` / `data check` report them as warnings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.data.formats.digest import content_digests
from tunestudio.data.formats.load import EXTENSIONS, LoadResult, Problem, normalize_format, parse_mapping
from tunestudio.data.formats.loadcache import load_cached
from tunestudio.data.formats.loadcache import sha256_file as memoized
from tunestudio.data.formats.problems import problem_list
from tunestudio.data.formats.records import Record

MAX_LISTED = 20
LEAKS_LISTED = 5        # leaked rows named in a leakage warning (then a count)
SPLIT_NAMES = ("train", "val", "test")


@dataclass
class Splits:
    train: list[Record]
    val: list[Record]
    test: list[Record]
    info: dict
    format: str | None = None
    warnings: list[Problem] = field(default_factory=list)


def sha256_file(path: Path) -> str:
    return memoized(path)   # hashed once per process, though loading and the split both ask


def _available(ws) -> str:
    names = ws.list_datasets()
    if not names:
        return f"no datasets in {ws.datasets_dir} yet (`tunestudio demo` writes some)"
    shown = ", ".join(names[:30]) + (f", ... ({len(names) - 30} more)" if len(names) > 30 else "")
    return f"available: {shown}"


def _with_extensions(folder: Path, stem: str) -> list[Path]:
    """The files `folder/stem.<ext>` that exist, for each supported extension."""
    return [p for ext in EXTENSIONS if (p := folder / f"{stem}{ext}").is_file()]


def _split_set(folder: Path, stem: str) -> dict[str, Path]:
    found = {}
    for split in SPLIT_NAMES:
        matches = _with_extensions(folder, f"{stem}.{split}")
        if len(matches) > 1:
            raise UserError(f"split set '{stem}' has several {split} files ({', '.join(m.name for m in matches)}): keep one",
                            "split_set_several", stem=stem, split=split, files=[m.name for m in matches])
        if matches:
            found[split] = matches[0]
    return found


def resolve_dataset(ws, dataset: str) -> dict[str, Path]:
    """{"all": file} for one file, or {"train": f, "val": f?, "test": f?} for a split set; a file
    that leads out of the workspace is refused (`Workspace.check_readable`)."""
    found = _resolve_dataset(ws, dataset)
    return {k: ws.check_readable(p, dataset, "dataset") for k, p in found.items()}


def _resolve_dataset(ws, dataset: str) -> dict[str, Path]:
    if not dataset or not str(dataset).strip():
        raise UserError(f"no dataset given: {_available(ws)}", "no_dataset_given", option="dataset")
    direct = ws.datasets_dir / dataset
    if direct.is_file():
        return {"all": direct}
    p = Path(dataset).expanduser()
    for folder, stem in ((ws.datasets_dir, dataset), (p.parent if p.is_absolute() else ws.root / p.parent, p.name)):
        if folder.is_dir():
            found = _split_set(folder, stem)
            if found:
                if "train" not in found:
                    raise UserError(f"split set '{stem}' has {', '.join(found)} files but no {stem}.train.* file",
                                    "split_set_no_train", stem=stem, found=list(found))
                return found
    try:
        return {"all": ws.dataset_path(dataset)}
    except UserError:
        pass
    if ws.datasets_dir.is_dir():
        matches = _with_extensions(ws.datasets_dir, dataset)
        if len(matches) == 1:
            return {"all": matches[0]}
        if len(matches) > 1:
            raise UserError(f"dataset '{dataset}' is ambiguous: {', '.join(m.name for m in matches)}; give the full file name",
                            "dataset_ambiguous", name=dataset, matches=[m.name for m in matches])
    raise UserError(f"dataset '{dataset}' not found in {ws.datasets_dir}; {_available(ws)}", "dataset_not_found",
                    name=dataset, folder=str(ws.datasets_dir))


def format_problems(problems: list[Problem], limit: int = MAX_LISTED) -> str:
    """The first `limit` problems, one per line, and how many more there are."""
    lines = [str(p) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more")
    return "\n".join(lines)


def relative_name(ws, path: Path) -> str:
    path = Path(path).resolve()
    try:
        return str(path.relative_to(ws.root.resolve()))
    except ValueError:
        return str(path)


def row_ids(key: str, records) -> list[str]:
    """Stable ids 'KEY:LINE' (with '#k' when several records start on one line)."""
    lines = records.lines.tolist() if hasattr(records, "lines") else [r.line for r in records]
    ids, seen = [], {}
    for line in lines:
        k = seen.get(line, 0)
        seen[line] = k + 1
        ids.append(f"{key}:{line}" + (f"#{k}" if k else ""))
    return ids


def _count(n: int, fraction: float) -> int:
    return 0 if fraction <= 0 else max(1, round(n * fraction))


def _check_fraction(name: str, f: float) -> float:
    f = float(f)
    if not 0 <= f < 1:
        raise UserError(f"--{name} must be at least 0 and below 1, got {f}", "option_fraction",
                        option=name.replace("-", "_"), value=f)
    return f


def carve(name: str, ids: list[str], keys: list[str], val: float, test: float,
           seed: int) -> dict[str, list[str]]:
    """Seeded train/val/test assignment of `ids` (val or test fraction 0: none).

    Rows with the same content key are one group, placed as a whole: groups are taken in the
    seeded hash order of their first row's id and go to test, then val, while they fit in the
    split's share; the rest train. (Without duplicates this is exactly a seeded shuffle of rows.)
    A held-out split that no group fits gets the smallest group, if train keeps a row.
    """
    n = len(ids)
    n_val, n_test = _count(n, val), _count(n, test)
    if n - n_val - n_test < 1:
        raise UserError(
            f"{name} has only {n} usable row(s): too few to keep {n_val} for validation and {n_test} "
            f"for test and still train; add rows, or lower --val-split/--test-split (0 turns that split off)",
            "too_few_rows", dataset=name, rows=n, val=n_val, test=n_test)
    groups: dict[str, list[str]] = {}
    for rid, key in zip(ids, keys):
        groups.setdefault(key, []).append(rid)
    order = sorted(groups.values(), key=lambda g: hashlib.sha256(f"{seed}:{g[0]}".encode()).hexdigest())
    placed: dict[str, list[list[str]]] = {"test": [], "val": [], "train": []}
    size = {"test": 0, "val": 0}
    target = {"test": n_test, "val": n_val}
    for group in order:
        for split in ("test", "val"):
            if size[split] + len(group) <= target[split]:
                placed[split].append(group)
                size[split] += len(group)
                break
        else:
            placed["train"].append(group)
    for split in ("test", "val"):
        if target[split] and not placed[split] and placed["train"]:
            smallest = min(placed["train"], key=len)   # min keeps the first of equals: deterministic
            if n - size["test"] - size["val"] - len(smallest) >= 1:
                placed["train"].remove(smallest)
                placed[split].append(smallest)
                size[split] += len(smallest)
    member = {rid: split for split, gs in placed.items() for g in gs for rid in g}
    return {split: [i for i in ids if member[i] == split] for split in SPLIT_NAMES}


def leakage_warnings(parts: dict, limit: int = LEAKS_LISTED) -> list[Problem]:
    """One warning per held-out part ("val", "test") that shares rows with "train": the rows
    whose normalised prompt and answer are also a training row (first `limit`, and the count)."""
    train: dict[bytes, tuple[str, str]] = {}   # content digest -> (file, "file:line") of its first row
    rows = parts.get("train") or []
    for r, d in zip(_iter(rows), content_digests(rows)):
        train.setdefault(d, (r.source, r.where()))
    out = []
    if not train:
        return out
    for split in ("val", "test"):
        held = parts.get(split) or []
        leaked = [(r, train[d]) for r, d in zip(_iter(held), content_digests(held)) if d in train]
        if not leaked:
            continue
        files = sorted({r.source for r, _ in leaked})
        train_files = sorted({t[0] for _, t in leaked})
        shown = ", ".join(f"{r.where()} = {t[1]}" for r, t in leaked[:limit])
        more = f", ... and {len(leaked) - limit} more" if len(leaked) > limit else ""
        what = "validation" if split == "val" else "test"
        out.append(Problem(
            ", ".join(files), 0,
            f"train/{split} leakage: {len(leaked)} of {len(held)} {split} row(s) also appear in the "
            f"training data ({', '.join(train_files)}; same prompt and answer, ignoring case and spaces), "
            f"so {what} scores will look better than they are: {shown}{more}; "
            f"remove them from the {split} file or from the training file",
            "leakage_val" if split == "val" else "leakage_test",
            {"leaked": len(leaked), "rows": len(held), "train_files": ", ".join(train_files),
             "shown": {"code": "list_and_more", "message": shown + more, "list": shown, "n": len(leaked) - limit}
             if more else shown}))
    return out


class _Where:
    __slots__ = ("source", "line")

    def __init__(self, source, line):
        self.source, self.line = source, line

    def where(self) -> str:
        return f"{self.source}:{self.line}"


def _iter(records):
    """(source, line) of each row, without building Records for a RecordsView."""
    if hasattr(records, "lines"):
        return (_Where(records.source, line) for line in records.lines.tolist())
    return iter(records)


def load_dataset(ws, dataset: str, fmt: str | None = None, mapping=None,
                 separator: str | None = None) -> tuple[dict[str, Path], dict[str, LoadResult]]:
    """Every file of `dataset` (one file, or the files of a split set) and what loading it gave.
    Bad rows are in each result's `errors`; only an unknown dataset or a bad option raises."""
    fmt = normalize_format(fmt)
    mapping = parse_mapping(mapping)
    files = resolve_dataset(ws, dataset)

    return files, {key: load_cached(path, ws.loaded_cache_dir, fmt=fmt, mapping=mapping, separator=separator)
                   for key, path in files.items()}


def _raise_on_errors(results: dict[str, LoadResult]) -> None:
    errors = [p for r in results.values() for p in r.errors]
    if errors:
        raise UserError(f"the dataset has {len(errors)} error(s) (`tunestudio data check` lists them, "
                        f"`tunestudio data clean` drops those rows):\n" + format_problems(errors), "dataset_has_errors",
                        count=len(errors), problems=problem_list(errors, MAX_LISTED))


def load_splits(ws, dataset: str, val_split: float = 0.1, test_split: float = 0.1, seed: int = 42,
                fmt: str | None = None, mapping=None, separator: str | None = None) -> Splits:
    """The train/val/test records of `dataset`, and the `info` that reproduces them."""
    val_split = _check_fraction("val-split", val_split)
    test_split = _check_fraction("test-split", test_split)
    if val_split + test_split >= 1:
        raise UserError(f"--val-split {val_split} + --test-split {test_split} leave nothing to train on",
                        "splits_leave_nothing", option="val_split", val=val_split, test=test_split)
    files, results = load_dataset(ws, dataset, fmt, mapping, separator)
    _raise_on_errors(results)

    # Rows of the file that is carved: the one file, or the train file of a split set.
    base_key = "all" if "all" in files else "train"
    base = results[base_key].records
    base_ids = row_ids(base_key, base)
    if not base:
        raise UserError(f"{files[base_key].name} has no usable rows", "no_usable_rows", file=files[base_key].name)
    rows = carve(files[base_key].name, base_ids, content_digests(base),
                  0 if "val" in files else val_split, 0 if "test" in files else test_split, seed)
    for key in ("val", "test"):
        if key in files:
            rows[key] = row_ids(key, results[key].records)

    info = {
        "dataset": dataset,
        "files": {key: {"path": relative_name(ws, path), "name": path.name, "sha256": sha256_file(path),
                        "rows": len(results[key].records)} for key, path in files.items()},
        "format": results[base_key].format,
        "mapping": mapping,
        "separator": separator,
        "val_split": val_split,
        "test_split": test_split,
        "seed": seed,
        "rows": rows,
    }
    info["hash"] = dataset_hash(info)
    return _build(results, info)


def dataset_hash(info: dict) -> str:
    """One content hash for the dataset: the files' hashes, in split order."""
    parts = [f"{k}:{info['files'][k]['sha256']}" for k in sorted(info["files"])]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _part(results: dict[str, LoadResult], ids: list[str], positions: dict[str, dict]):
    """The records of `ids` ('KEY:LINE[#k]'): a view of one file's table (every part of a split is
    from one file), or a list when they span several files."""
    by_key: dict[str, list[str]] = {}
    for rid in ids:
        by_key.setdefault(rid.split(":", 1)[0], []).append(rid)
    for key in by_key:
        if key not in positions:
            positions[key] = {rid: i for i, rid in enumerate(row_ids(key, results[key].records))} \
                if key in results else {}
    missing = [rid for rid in ids if rid not in positions[rid.split(":", 1)[0]]]
    if missing:
        raise UserError(f"the recorded split names rows that are no longer in the data: {', '.join(missing[:5])}",
                        "split_rows_missing", rows=missing[:5])
    if len(by_key) == 1:
        key = next(iter(by_key))
        return results[key].records.take([positions[key][rid] for rid in ids])
    return [results[(k := rid.split(":", 1)[0])].records[positions[k][rid]] for rid in ids]


def _build(results: dict[str, LoadResult], info: dict) -> Splits:
    positions: dict[str, dict] = {}
    parts = {k: _part(results, info["rows"].get(k, []), positions) for k in SPLIT_NAMES}
    del positions
    warnings = [p for r in results.values() for p in r.warnings]
    if len(results) > 1:
        # rows carved from one file cannot leak: equal rows are one group, placed in one split
        warnings += leakage_warnings(parts)
    fractions = {"val": info.get("val_split") or 0, "test": info.get("test_split") or 0}
    first = results.get("all") or results["train"]
    for k, f in fractions.items():
        if f and k not in results and not parts[k] and parts["train"]:
            warnings.append(Problem(Path(first.path).name, 0,
                                    f"the {k} split is empty: duplicated rows stay together in one split, "
                                    f"and no group of equal rows fits in a {f:g} share without "
                                    f"leaving nothing to train on", f"empty_{k}_split", {"share": f"{f:g}"}))
    return Splits(parts["train"], parts["val"], parts["test"], info, first.format, warnings)


def splits_from_info(ws, info: dict) -> Splits:
    """Exactly the rows recorded in `info` (from `load_splits`), after checking no file changed."""
    files = {}
    for key, f in info["files"].items():
        path = Path(f["path"])
        path = path if path.is_absolute() else ws.root / path
        if not path.is_file():
            raise UserError(f"the dataset file {f['path']} used for this split is gone", "split_file_gone",
                            path=str(f["path"]))
        if sha256_file(path) != f["sha256"]:
            raise UserError(f"{f['path']} changed since the split was made (its sha256 differs): "
                            "the same rows cannot be guaranteed; use a new split (a new run) or restore the file",
                            "split_file_sha_differs", path=str(f["path"]))
        files[key] = path

    results = {key: load_cached(path, ws.loaded_cache_dir, fmt=info.get("format"), mapping=info.get("mapping"),
                                separator=info.get("separator")) for key, path in files.items()}
    _raise_on_errors(results)
    return _build(results, info)
