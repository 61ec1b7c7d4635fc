"""`tunestudio eval --predictions FILE.jsonl`: score the outputs of any system, no model needed.

One JSON object per line:

    {"prediction": "...", "reference": "..."}          required, strings
    "prompt"      optional: what was asked, a string or a list of {"role", "content"} messages
    "tool_calls"  optional: the tool calls that came with the prediction (a list, OpenAI's
                  {"function": {"name", "arguments"}} or {"name", "arguments"}), as an API that
                  parses calls returns them; kept in the example a custom metric (--metric-file)
                  receives and in examples.jsonl
    any other key is kept as the row's meta (examples.csv shows it as meta_<key>)

Blank lines are skipped. The rows are scored with the same text metrics (exact_match, f1, bleu with
the references' script's tokenizer, rouge1/2/L, custom metric files; tool_call_match and
tool_name_match on the rows whose reference calls a tool, the reference's calls read from its text
as `eval --run` writes them (`<tool_call>` blocks, or a JSON call), the prediction's from its
"tool_calls" when given, else from its text) and written as the same report
(metrics.json, examples.jsonl/.csv, report.html) as `eval --run`, under
training/evals/predictions-<file stem>/<time>/, and recorded in the registry. Loss and perplexity
need a model, so they are refused here. A bad row is a UserError naming file:line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tunestudio.errors import CodedText, UserError
from tunestudio.evaluate import metrics as M, report
from tunestudio.evaluate.tool_metrics import TOOL_METRICS, aggregate_tool_scores, tool_call_match, tool_name_match
from tunestudio.evaluate.toolparse import as_call, parse_tool_calls
from tunestudio.workspace import Workspace

MAX_LISTED = 20
OPTIONAL = ("prompt", "tool_calls")


def resolve(ws: Workspace, given: str) -> Path:
    """The predictions file the user named: a path (absolute, or from the current folder or the
    workspace), or a file under training/datasets."""
    p = Path(given).expanduser()
    for candidate in (p, ws.root / p, ws.datasets_dir / given):
        if candidate.is_file():
            return ws.check_readable(candidate, given, "predictions file")
    raise UserError(f"predictions file '{given}' not found (give its path, e.g. outputs/predictions.jsonl)")


def _prompt_messages(value, where: str, problems: list) -> list[dict] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list) and all(isinstance(m, dict) and isinstance(m.get("role"), str)
                                       and isinstance(m.get("content"), str) for m in value):
        return [{"role": m["role"], "content": m["content"]} for m in value]
    problems.append(f"{where}: \"prompt\" must be a string or a list of {{\"role\", \"content\"}} messages "
                    f"(got {type(value).__name__})")
    return None


def read_predictions(path: Path) -> list[dict]:
    """The rows of a predictions file: [{"where", "prediction", "reference", "messages", "tool_calls",
    "meta"}]. Every bad line is listed (first MAX_LISTED) in one UserError."""
    name = path.name
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[:e.start].count(b"\n") + 1
        raise UserError(f"{name}:{line}: not UTF-8 text (byte {e.start}); save the file as UTF-8") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    rows, problems = [], []
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{name}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"{where}: not valid JSON ({e.msg} at column {e.colno})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{where}: a row must be a JSON object with \"prediction\" and \"reference\" "
                            f"(got {type(obj).__name__})")
            continue
        bad = [k for k in ("prediction", "reference") if not isinstance(obj.get(k), str)]
        if bad:
            problems.append(f"{where}: " + "; ".join(
                f"no \"{k}\"" if k not in obj else f"\"{k}\" must be a string (got {type(obj[k]).__name__})"
                for k in bad))
            continue
        messages = _prompt_messages(obj.get("prompt"), where, problems)
        calls = obj.get("tool_calls")
        if calls is not None and not isinstance(calls, list):
            problems.append(f"{where}: \"tool_calls\" must be a list (got {type(calls).__name__})")
            continue
        meta = {k: v for k, v in obj.items() if k not in ("prediction", "reference", *OPTIONAL)}
        rows.append({"where": where, "prediction": obj["prediction"], "reference": obj["reference"],
                     "messages": messages, "tool_calls": calls, "meta": meta})
    if problems:
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise UserError(f"{name} has {len(problems)} bad row(s); each needs \"prediction\" and \"reference\" "
                        "strings:\n" + "\n".join(f"  {p}" for p in problems[:MAX_LISTED]) + more)
    if not rows:
        raise UserError(f"{name}: no rows; write one JSON object per line: "
                        "{\"prediction\": \"...\", \"reference\": \"...\"}")
    return rows


def _tool_scores(names: list[str], rows: list[dict], scores: list[dict], warnings: list[str],
                 explicit: bool) -> dict:
    """Tool metrics of `names` added to the per-row `scores`; their means over the rows whose
    reference calls a tool. A metric asked for by name on a file with no such row is a warning,
    not a silent blank."""
    wanted = [n for n in names if n in TOOL_METRICS]
    if not wanted:
        return {}
    ref_calls = [parse_tool_calls(r["reference"]) or None for r in rows]
    if not any(ref_calls):
        if explicit:
            warnings.append(CodedText(f"{', '.join(wanted)}: no reference holds a tool call (write the reference's "
                                      "calls in it as <tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call> or "
                                      "as a JSON call), so no row was scored for them", "no_reference_calls",
                                      metrics=", ".join(wanted)))
        return {}
    for r, ref, s in zip(rows, ref_calls, scores):
        if not ref:
            continue
        # calls that came with the prediction are the prediction's calls; else they are in its text
        calls = [c for c in map(as_call, r["tool_calls"]) if c] if r["tool_calls"] else parse_tool_calls(r["prediction"])
        if "tool_call_match" in wanted:
            s["tool_call_match"] = tool_call_match(calls, ref)
        if "tool_name_match" in wanted:
            s["tool_name_match"] = tool_name_match(calls, ref)
    return aggregate_tool_scores(wanted, scores)


def score_predictions(ws: Workspace, given: str, metrics=None, metric_file: str | None = None,
                      bleu_tokenize: str | None = None, limit: int | None = None, save: bool = True) -> dict:
    """Score the file `given` (module docstring). Returns what `run_eval.evaluate` returns:
    {metrics, n, primary_metric, bleu_tokenize, warnings, model, run_id (None), dataset, split
    ("predictions"), [output_dir, files], rows (the per-example table, worst first)}."""
    from tunestudio.evaluate.run_eval import _eval_folder, _record

    names = M.parse_names(metrics) if metrics else [*M.TEXT_METRICS, *TOOL_METRICS]
    needs_model = [n for n in names if n in M.LOSS_METRICS]
    if needs_model:
        raise UserError(f"{', '.join(needs_model)} need(s) the model's probabilities: a predictions file has "
                        f"none; drop them from --metrics (text metrics: {', '.join(M.TEXT_METRICS)})")
    custom = [M.CustomMetric(metric_file)] if metric_file else []
    path = resolve(ws, given)
    rows = read_predictions(path)
    if limit:
        rows = rows[:limit]
    preds, refs = [r["prediction"] for r in rows], [r["reference"] for r in rows]
    warnings: list[str] = []
    bleu_tok = M.bleu_tokenize_for(names, refs, bleu_tokenize, warnings)
    examples = [{"messages": (r["messages"] or []) + [{"role": "assistant", "content": r["reference"]}],
                 "prediction": r["prediction"], "reference": r["reference"],
                 **({"tool_calls": r["tool_calls"]} if r["tool_calls"] is not None else {}), "meta": r["meta"]}
                for r in rows]
    scores = M.score_examples(names, preds, refs, examples, custom, [r["where"] for r in rows], bleu_tok)
    corpus = M.aggregate(names, scores, preds, refs, custom, bleu_tok)
    corpus.update(_tool_scores(names, rows, scores, warnings, explicit=bool(metrics)))
    primary = M.primary_metric(names, custom)
    table = []
    for i, (r, s) in enumerate(zip(rows, scores)):
        row = {"index": i, "where": r["where"], "input": report.input_text(r["messages"]),
               "reference": r["reference"], "prediction": r["prediction"], "prediction_reasoning": "",
               "scores": s, "loss": None}
        if r["tool_calls"] is not None:
            row["tool_calls"] = r["tool_calls"]
        if r["meta"]:
            row["meta"] = r["meta"]
        table.append(row)
    table = report.worst_first(table, primary)
    out = {"metrics": corpus, "n": len(rows), "primary_metric": primary}
    if "bleu" in names:
        out["bleu_tokenize"] = bleu_tok
    out.update(warnings=warnings, tokens_per_second=None, model="predictions file", run_id=None,
               dataset=path.name, split="predictions")
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if save:
        folder = _eval_folder(ws, None, f"predictions-{path.stem}")
        summary = {**out, "title": f"Evaluation of {path.name}", "subtitle": f"predictions file {path}",
                   "by_length": report.by_length(table, primary), "confusion": report.confusion(table),
                   "base_confusion": None}
        out["files"] = report.write_all(folder, summary, table, primary)
        out["output_dir"] = str(folder)
        _record(ws, out, folder)
    out["rows"] = table
    return out
