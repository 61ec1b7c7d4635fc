"""`tunestudio runs list | show RUN | compare RUN RUN | rename RUN NAME | delete RUN`: the
registry, for people and for scripts.

The dicts come from `tunestudio.runs.query`; this module only prints them (a table or sections
for people, the dict itself with --json). Rename and delete are `tunestudio.runs.manage`, the
code the Runs tab's buttons call.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tunestudio.core.output import print_json
from tunestudio.runs.manage import delete_run, rename_run
from tunestudio.runs.query import compare_runs, run_details, runs_table
from tunestudio.runs.reindex import reindex, repair_if_needed


def register(subparsers, common) -> None:
    runs = subparsers.add_parser("runs", help="list, show and compare training runs")
    sub = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)

    p = sub.add_parser("list", parents=[common], help="every run, newest first")
    p.add_argument("--json", action="store_true", help='print {"runs": [...]}')
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", parents=[common], help="everything about one run")
    p.add_argument("run", metavar="RUN", help="run id (or its beginning) or name")
    p.add_argument("--json", action="store_true", help="print the run as one JSON object")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("reindex", parents=[common], help="rebuild the registry from the run folders",
                       description="Add every run folder under training/runs that the registry lacks (rows "
                                   "it has are kept). A missing, empty or damaged tunestudio.db is rebuilt "
                                   "(a damaged one is moved aside, never deleted); every command does this "
                                   "automatically, with a notice.")
    p.add_argument("--json", action="store_true", help='print {"added", "kept", "skipped", "notice"}')
    p.set_defaults(func=cmd_reindex, repairs_registry=True)

    p = sub.add_parser("compare", parents=[common], help="config differences and metrics side by side")
    p.add_argument("run_a", metavar="RUN")
    p.add_argument("run_b", metavar="RUN")
    p.add_argument("--json", action="store_true", help="print the comparison as one JSON object")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("rename", parents=[common], help="give a run another display name")
    p.add_argument("run", metavar="RUN", help="run id (or its beginning) or name")
    p.add_argument("name", metavar="NAME", help="the new name (1-120 characters, unique)")
    p.add_argument("--json", action="store_true", help="print the updated run row as one JSON object")
    p.set_defaults(func=cmd_rename)

    p = sub.add_parser("delete", parents=[common], help="remove a run from the registry (its files stay)",
                       description="Remove a run (and its evaluation and export rows) from the registry, "
                                   "so it leaves every list. Its folder training/runs/<id> is kept unless "
                                   "--delete-files is given. Asks for confirmation unless --yes.")
    p.add_argument("run", metavar="RUN", help="run id (or its beginning) or name")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--delete-files", action="store_true", help="delete the run's folder too (its model, logs)")
    p.add_argument("--json", action="store_true", help='print {"id", "name", "folder", "files_deleted"}')
    p.set_defaults(func=cmd_delete)


# ---- formatting -------------------------------------------------------------------------------

def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def fmt_time(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def short_model(model: str | None) -> str:
    """A local model folder by its name (models/tiny-demo -> tiny-demo); hub ids as they are."""
    if not model:
        return "-"
    return Path(model).name if model.startswith(("/", ".", "~")) else model


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def metrics_text(metrics: dict) -> str:
    return " ".join(f"{k}={fmt(v)}" for k, v in metrics.items() if k not in ("eval_loss",)) or "-"


# ---- commands ---------------------------------------------------------------------------------

def cmd_list(args, ws):
    data = runs_table(ws)
    if args.json:
        print_json(data)
        return 0
    if not data["runs"]:
        print(f"no runs in {ws.root} yet: start one with `tunestudio train`")
        return 0
    headers = ["ID", "NAME", "STATUS", "BASE", "METHOD", "DATASET", "BEST VAL LOSS", "METRICS", "PARENT", "CREATED"]
    rows = [[r["id"], r["name"], r["status"], short_model(r["base_model"]), fmt(r["method"]), fmt(r["dataset"]),
             fmt(r["best_eval_loss"]), metrics_text(r["metrics"]), fmt(r["parent_id"]), fmt_time(r["created_at"])]
            for r in data["runs"]]
    print(table(headers, rows))
    return 0


def _section(title: str, pairs) -> list[str]:
    pairs = [(k, v) for k, v in pairs]
    if not pairs:
        return []
    width = max(len(k) for k, _ in pairs)
    return ["", f"{title}:"] + [f"  {k.ljust(width)}  {fmt(v)}" for k, v in pairs]


def cmd_show(args, ws):
    d = run_details(ws, args.run)
    if args.json:
        print_json(d)
        return 0
    lines = [f"run {d['id']}  ({d['name']})", f"status: {d['status']}"]
    if d.get("error"):
        lines.append(f"error: {d['error']}")
    lines += _section("run", [
        ("base model", d.get("base_model")), ("base revision", d.get("base_revision")),
        ("method", d.get("method")), ("dataset", d.get("dataset")), ("dataset hash", d.get("dataset_hash")),
        ("created", fmt_time(d.get("created_at"))), ("started", fmt_time(d.get("started_at"))),
        ("finished", fmt_time(d.get("finished_at"))), ("duration (s)", d.get("duration_s")),
        *([("segments", f"{d['segments']} (resumed; the last took {d.get('last_segment_s')} s)")]
          if (d.get("segments") or 1) > 1 else []),
        ("run folder", d.get("run_dir")), ("output", d.get("output_dir")), ("final model", d.get("final_dir")),
    ])
    if d.get("progress") and d["status"] in ("running", "stopped", "failed"):
        lines += _section("progress", d["progress"].items())
    lines += _section("metrics", (d.get("metrics") or {}).items())
    for e in d.get("evaluations") or []:
        title = f"evaluation {fmt_time(e['created_at'])} on {e.get('split') or '-'} (n={fmt(e.get('n'))})"
        lines += _section(title, (e.get("metrics") or {}).items())
    split = d.get("split")
    if split:
        lines += _section("split", [
            ("rows", " ".join(f"{k}={v}" for k, v in split["rows"].items())),
            ("fractions", f"val {fmt(split['val_split'])}, test {fmt(split['test_split'])}"),
            ("seed", split["seed"]), ("format", split.get("format")),
            *((f"file {k}", f"{f['name']} ({f['rows']} rows, sha256 {str(f['sha256'])[:12]})")
              for k, f in split["files"].items()),
            *((f"tokens {k}", f"{t.get('tokens')} ({t.get('trained_tokens')} trained, longest "
               f"{t.get('longest_row_tokens')}, {t.get('truncated')} truncated, {t.get('dropped')} dropped)")
              for k, t in (split.get("tokens") or {}).items()),
            *([("replay rows", split["replay_rows"])] if split.get("replay_rows") else []),
            ("split file", split.get("split_file")),
        ])
    family = d["lineage"]
    chain = " <- ".join(f"{p['id']} ({p['name'] or p['status']})" for p in family["parents"])
    kids = ", ".join(f"{c['id']} ({c['name']})" for c in family["children"])
    lines += _section("lineage", [("parents", chain or None), ("children", kids or None),
                                  ("sweep", (d.get("config") or {}).get("sweep") or None)])
    lines += _section("trackers", [(k, v.get("view") or v) for k, v in (d.get("trackers") or {}).items()])
    if d.get("started"):
        memory = (d["started"].get("memory") or {}).get("message")
        lines += _section("start", [(k, v) for k, v in d["started"].items() if k != "memory" and v is not None]
                          + ([("memory estimate", memory)] if memory else []))
    for w in d.get("warnings") or []:
        lines.append(f"warning: {w}")
    if d.get("bad_event_lines"):
        lines.append(f"note: {d['bad_event_lines']} damaged line(s) of {d['events_file']} skipped")
    lines += _section("config", (d.get("config") or {}).items())
    print("\n".join(lines))
    return 0


def cmd_reindex(args, ws):
    notice = repair_if_needed(ws)
    result = reindex(ws) if ws.root.is_dir() else {"added": [], "kept": 0, "skipped": []}
    if args.json:
        print_json({**result, "notice": notice})
        return 0
    if notice:
        print(notice)
    print(f"registry {ws.db_path}: {len(result['added'])} run(s) added"
          + (f" ({', '.join(result['added'])})" if result["added"] else "") + f", {result['kept']} already known")
    for s in result["skipped"]:
        print(f"skipped {s['folder']}: {s['reason']}")
    return 0


def cmd_compare(args, ws):
    c = compare_runs(ws, args.run_a, args.run_b)
    if args.json:
        print_json(c)
        return 0
    a, b = c["a"], c["b"]
    print(f"A: {a['id']} ({a['name']}, {a['status']})\nB: {b['id']} ({b['name']}, {b['status']})")
    print("same data: " + ("yes (same content hash)" if c["same_data"] else "no"))
    print(f"\nconfig: {len(c['config_differences'])} difference(s), {c['same_config_keys']} setting(s) the same")
    if c["config_differences"]:
        print(table(["SETTING", "A", "B"], [[d["key"], fmt(d["a"]), fmt(d["b"])] for d in c["config_differences"]]))
    for title, rows in (("metrics", c["metrics"]), ("evaluation (newest of each)", c["evaluation"])):
        if rows:
            print(f"\n{title}:")
            print(table(["METRIC", "A", "B", "B-A"], [[r["key"], fmt(r["a"]), fmt(r["b"]), fmt(r["delta"])]
                                                      for r in rows]))
    return 0


def cmd_rename(args, ws):
    row = rename_run(ws, args.run, args.name)
    if args.json:
        print_json(row)
    else:
        print(f"run {row['id']} is now called '{row['name']}'")
    return 0


def cmd_delete(args, ws):
    import sys


    if not args.yes:
        # Look the run up first, so the question names the run the answer deletes (and an unknown
        # run is an error before anything is asked). The answer is read from stdin, a pipe too:
        # `echo y | tunestudio runs delete RUN`; no answer (end of input) deletes nothing.
        run = run_details(ws, args.run)
        what = ("its registry row and its folder" if args.delete_files
                else "its registry row; its files stay in")
        print(f"delete run {run['id']} ('{run['name']}', {run['status']}): {what} "
              f"{ws.runs_dir / run['id']}? [y/N] ", end="", flush=True)
        answer = sys.stdin.readline()
        if answer.strip().lower() not in ("y", "yes"):
            print("\nnot deleted (answer y to delete, or add --yes)", file=sys.stderr)
            return 1
    out = delete_run(ws, args.run, delete_files=args.delete_files)
    if args.json:
        print_json(out)
    elif out["files_deleted"]:
        print(f"deleted run {out['id']} ('{out['name']}') and its folder {out['folder']}")
    else:
        print(f"deleted run {out['id']} ('{out['name']}') from the registry; its files stay in {out['folder']}")
    return 0
