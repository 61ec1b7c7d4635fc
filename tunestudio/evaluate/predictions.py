"""`tunestudio eval --predictions FILE.jsonl`: score the outputs of any system, no model needed.

One JSON object per line:

    {"prediction": "...", "reference": "..."}          required, strings
    "references"  instead of "reference": a list of right answers (see below)
    "prompt"      optional: what was asked, a string or a list of {"role", "content"} messages
    "tool_calls"  optional: the tool calls that came with the prediction (a list, OpenAI's
                  {"function": {"name", "arguments"}} or {"name", "arguments"}), as an API that
                  parses calls returns them; kept in the example a custom metric (--metric-file)
                  receives and in examples.jsonl
    any other key is kept as the row's meta (examples.csv shows it as meta_<key>)

The file may also be one JSON array of such objects (a .json file as many tools write it); a
bad row is named by the line it starts on. Blank lines are skipped.

Several references: exact match, F1 and ROUGE take the best score over them (SQuAD's rule for a
question with several gold answers), BLEU is sacrebleu's multi-reference BLEU (each n-gram's
count clipped by the most any one reference holds; the reference closest in length sets the
brevity penalty), tool metrics the best over the references that call a tool; a custom metric
gets the first as `reference` and all of them in example["references"] (rows with several); the
report shows the first as the reference and lists all in "references".

The rows are scored with the same text metrics (exact_match, f1, bleu with the references'
script's tokenizer, rouge1/2/L, custom metric files; tool_call_match and
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

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.evaluate import metrics as M
from tunestudio.evaluate import report
from tunestudio.evaluate.metric_choice import default_metrics, metric_notes
from tunestudio.evaluate.run_eval import eval_folder, record_eval
from tunestudio.evaluate.tool_metrics import (
    TOOL_METRICS,
    aggregate_tool_scores,
    no_calls_warning,
    tool_call_match,
    tool_name_match,
)
from tunestudio.evaluate.toolparse import as_call, parse_tool_calls

MAX_LISTED = 20
OPTIONAL = ("prompt", "tool_calls")


def resolve(ws: Workspace, given: str) -> Path:
    """The predictions file the user named: a path (absolute, or from the current folder or the
    workspace), or a file under training/datasets."""
    p = Path(given).expanduser()
    for candidate in (p, ws.root / p, ws.datasets_dir / given):
        if candidate.is_file():
            return ws.check_readable(candidate, given, "predictions file")
    raise UserError(f"predictions file '{given}' not found (give its path, e.g. outputs/predictions.jsonl)",
                    "predictions_not_found", name=given)


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


def _objects(name: str, text: str, problems: list) -> list[tuple[int, object]]:
    """(line, parsed value) of each row: one JSON value per line (JSON Lines), or the items of one
    JSON array when the file starts with "[" (each item's line is where it starts)."""
    if not text.lstrip().startswith("["):
        out = []
        for n, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                out.append((n, json.loads(line)))
            except json.JSONDecodeError as e:
                problems.append(f"{name}:{n}: not valid JSON ({e.msg} at column {e.colno})")
        return out
    decoder, out = json.JSONDecoder(), []
    pos = text.index("[") + 1

    def skip(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    pos = skip(pos)
    if pos < len(text) and text[pos] == "]":
        return out
    while True:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:   # the rest cannot be read: one message where it breaks
            problems.append(f"{name}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno})")
            return out
        out.append((text.count("\n", 0, pos) + 1, value))
        pos = skip(end)
        if pos < len(text) and text[pos] == ",":
            pos = skip(pos + 1)
            continue
        if pos < len(text) and text[pos] == "]" and not text[skip(pos + 1):].strip():
            return out
        line = text.count("\n", 0, pos) + 1
        problems.append(f"{name}:{line}: not valid JSON (expected ',' or ']' after an item of the array)")
        return out


def _references(obj: dict, wrong: list) -> list[str] | None:
    """The row's references: "reference" (a string) or "references" (a non-empty list of strings);
    what is wrong goes into `wrong`."""
    if "references" in obj:
        refs = obj["references"]
        if "reference" in obj:
            wrong.append("give \"reference\" or \"references\", not both")
        elif not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
            wrong.append("\"references\" must be a non-empty list of strings")
        else:
            return refs
        return None
    if not isinstance(obj.get("reference"), str):
        wrong.append("no \"reference\"" if "reference" not in obj else
                     f"\"reference\" must be a string (got {type(obj['reference']).__name__})")
        return None
    return [obj["reference"]]


def read_predictions(path: Path) -> list[dict]:
    """The rows of a predictions file: [{"where", "prediction", "reference" (the first reference),
    "references" (all of them), "messages", "tool_calls", "meta"}]. The file is JSON Lines or one
    JSON array of rows. Every bad row is listed (first MAX_LISTED) in one UserError."""
    name = path.name
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[:e.start].count(b"\n") + 1
        raise UserError(f"{name}:{line}: not UTF-8 text (byte {e.start}); save the file as UTF-8", "file_not_utf8",
                        file=name, line=line, byte=e.start) from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}", "config_unreadable", path=str(path),
                        detail=str(e.strerror or e)) from None
    rows, problems = [], []
    for n, obj in _objects(name, text, problems):
        where = f"{name}:{n}"
        if not isinstance(obj, dict):
            problems.append(f"{where}: a row must be a JSON object with \"prediction\" and \"reference\" "
                            f"(got {type(obj).__name__})")
            continue
        wrong: list[str] = []   # everything wrong with the row, in one line
        if not isinstance(obj.get("prediction"), str):
            wrong.append("no \"prediction\"" if "prediction" not in obj else
                         f"\"prediction\" must be a string (got {type(obj['prediction']).__name__})")
        refs = _references(obj, wrong)
        if wrong:
            problems.append(f"{where}: " + "; ".join(wrong))
            continue
        messages = _prompt_messages(obj.get("prompt"), where, problems)
        calls = obj.get("tool_calls")
        if calls is not None and not isinstance(calls, list):
            problems.append(f"{where}: \"tool_calls\" must be a list (got {type(calls).__name__})")
            continue
        meta = {k: v for k, v in obj.items() if k not in ("prediction", "reference", "references", *OPTIONAL)}
        rows.append({"where": where, "prediction": obj["prediction"], "reference": refs[0], "references": refs,
                     "messages": messages, "tool_calls": calls, "meta": meta})
    if problems:
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        listed = "\n".join(f"  {p}" for p in problems[:MAX_LISTED]) + more
        raise UserError(f"{name} has {len(problems)} bad row(s); each needs a \"prediction\" string and a "
                        f"\"reference\" string (or \"references\", a list of them):\n{listed}",
                        "predictions_bad_rows", file=name, count=len(problems), problems=listed)
    if not rows:
        raise UserError(f"{name}: no rows; write one JSON object per line (or a JSON array of them): "
                        "{\"prediction\": \"...\", \"reference\": \"...\"}", "predictions_no_rows", file=name,
                        example='{"prediction": "...", "reference": "..."}')
    return rows


def _tool_scores(names: list[str], rows: list[dict], scores: list[dict], warnings: list[str],
                 explicit: bool, custom: bool = False) -> dict:
    """Tool metrics of `names` added to the per-row `scores`; their means over the rows whose
    reference calls a tool. A metric asked for by name on a file with no such row is a warning,
    not a silent blank."""
    wanted = [n for n in names if n in TOOL_METRICS]
    if not wanted:
        return {}
    # each reference's calls (a row with several references scores the best over those that call)
    ref_calls = [[c for c in map(parse_tool_calls, r["references"]) if c] for r in rows]
    if not any(ref_calls):
        if explicit:
            warnings.append(no_calls_warning(names, rows[0]["where"].rsplit(":", 1)[0], f"{len(rows)} row(s)",
                                             nothing_else=not custom and all(n in TOOL_METRICS for n in names)))
        return {}
    for r, refs, s in zip(rows, ref_calls, scores):
        if not refs:
            continue
        # calls that came with the prediction are the prediction's calls; else they are in its text
        calls = [c for c in map(as_call, r["tool_calls"]) if c] if r["tool_calls"] else parse_tool_calls(r["prediction"])
        if "tool_call_match" in wanted:
            s["tool_call_match"] = max(tool_call_match(calls, ref) for ref in refs)
        if "tool_name_match" in wanted:
            s["tool_name_match"] = max(tool_name_match(calls, ref) for ref in refs)
    return aggregate_tool_scores(wanted, scores)


def score_predictions(ws: Workspace, given: str, metrics=None, metric_file: str | None = None,
                      bleu_tokenize: str | None = None, limit: int | None = None, save: bool = True) -> dict:
    """Score the file `given` (module docstring). Returns what `run_eval.evaluate` returns:
    {metrics, n, primary_metric, bleu_tokenize, warnings, model, run_id (None), dataset, split
    ("predictions"), [output_dir, files], rows (the per-example table, worst first)}."""

    names = M.parse_names(metrics) if metrics else []   # none asked: chosen from the references below
    needs_model = [n for n in names if n in M.LOSS_METRICS]
    if needs_model:
        raise UserError(f"{', '.join(needs_model)} need(s) the model's probabilities: a predictions file has "
                        f"none; drop them from --metrics (text metrics: {', '.join(M.TEXT_METRICS)})",
                        "predictions_need_model", names=needs_model, choices=list(M.TEXT_METRICS))
    custom = [M.CustomMetric(metric_file, ws.root)] if metric_file else []
    path = resolve(ws, given)
    rows = read_predictions(path)
    if limit:
        rows = rows[:limit]
    preds = [r["prediction"] for r in rows]
    refs = [r["references"] if len(r["references"]) > 1 else r["reference"] for r in rows]
    calls = any(parse_tool_calls(x) for r in rows for x in r["references"])
    names = names or default_metrics(refs, tool_calls=calls, loss=False)   # as `eval --run` and the Evaluate tab
    notes = metric_notes(names, refs) if metrics else []
    warnings: list[str] = []
    bleu_tok = M.bleu_tokenize_for(names, [x for r in rows for x in r["references"]], bleu_tokenize, warnings)
    examples = [{"messages": (r["messages"] or []) + [{"role": "assistant", "content": r["reference"]}],
                 "prediction": r["prediction"], "reference": r["reference"],
                 **({"references": r["references"]} if len(r["references"]) > 1 else {}),
                 **({"tool_calls": r["tool_calls"]} if r["tool_calls"] is not None else {}), "meta": r["meta"]}
                for r in rows]
    try:
        scores = M.score_examples(names, preds, refs, examples, custom, [r["where"] for r in rows], bleu_tok)
    finally:
        for c in custom:   # the metric's process box ends with the scoring
            c.close()
    corpus = M.aggregate(names, scores, preds, refs, custom, bleu_tok)
    corpus.update(_tool_scores(names, rows, scores, warnings, explicit=bool(metrics), custom=bool(custom)))
    primary = M.primary_metric(names, custom, tool_calls=calls, has_loss=False)
    table = []
    for i, (r, s) in enumerate(zip(rows, scores)):
        row = {"index": i, "where": r["where"], "input": report.input_text(r["messages"]),
               "reference": r["reference"], "prediction": r["prediction"], "prediction_reasoning": "",
               "scores": s, "loss": None}
        if len(r["references"]) > 1:
            row["references"] = r["references"]
        if r["tool_calls"] is not None:
            row["tool_calls"] = r["tool_calls"]
        if r["meta"]:
            row["meta"] = r["meta"]
        table.append(row)
    table = report.worst_first(table, primary)
    out = {"metrics": corpus, "n": len(rows), "primary_metric": primary, "metric_notes": notes}
    if "bleu" in names:
        out["bleu_tokenize"] = bleu_tok
    out.update(warnings=warnings, tokens_per_second=None, model="predictions file", run_id=None,
               dataset=path.name, split="predictions")
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if save:
        folder = eval_folder(ws, None, f"predictions-{path.stem}")
        summary = {**out, "title": f"Evaluation of {path.name}", "subtitle": f"predictions file {path}",
                   "by_length": report.by_length(table, primary), "confusion": report.confusion(table),
                   "base_confusion": None}
        out["files"] = report.write_all(folder, summary, table, primary)
        out["output_dir"] = str(folder)
        record_eval(ws, out, folder)
    out["rows"] = table
    return out
