"""Error analysis: the per-example table (worst first), groupings, and the files a user opens.

Files: examples.jsonl (every field), examples.csv (flat, for a spreadsheet), report.html (one
self-contained page: metric bars and score histogram drawn as inline SVG, so no plotting library
and no network are needed to view it).
"""

from __future__ import annotations

import csv
import html
import json
from collections import Counter, defaultdict
from pathlib import Path

from tunestudio.data.tools.toolcalls import message_text as text
from tunestudio.evaluate.metrics import LOWER_IS_BETTER, normalize

LENGTH_BUCKETS = [(1, 8), (9, 16), (17, 32), (33, 64), (65, 128), (129, None)]  # input words
MAX_LABELS = 20        # more distinct answers than this and they are texts, not labels
MAX_LABEL_WORDS = 3
HTML_ROWS = 500        # the page stays light; the CSV / JSONL hold every row


def message_text(m: dict) -> str:
    return text(m)


def input_text(messages: list[dict] | None, text: str | None = None) -> str:
    """What the example asks, for a table cell: the user turns (and any earlier answers)."""
    if not messages:
        return text or ""
    turns = [m for m in messages if m["role"] != "system"]
    if len(turns) == 1:
        return turns[0]["content"]
    return "\n".join(f"{m['role']}: {message_text(m)}" for m in turns)


def primary_value(row: dict, primary: str | None) -> float | None:
    """The row's value of the primary metric: a score, or its loss for "loss"; None when it has none
    (a row answered in words has no tool_call_match)."""
    if primary is None:
        return None
    if primary in row["scores"]:
        return row["scores"][primary]
    return row.get("loss") if primary == "loss" else None


def sort_key(primary: str | None):
    """Worst first: lowest score (highest loss), ties broken by the higher loss; rows without a
    value for `primary` last."""
    def key(row):
        v = primary_value(row, primary)
        loss = row.get("loss") or 0.0
        if v is None:
            return (1, 0.0, -loss)
        return (0, -v if primary in LOWER_IS_BETTER else v, -loss)
    return key


def worst_first(rows: list[dict], primary: str | None) -> list[dict]:
    """The rows sorted worst first by `primary` (input order when None: nothing was scored per row)."""
    return sorted(rows, key=sort_key(primary)) if primary else list(rows)


BEST = {"bleu": 100.0}   # the top score of a metric (sacrebleu's scale); every other score tops at 1


def perfect(row: dict, primary: str | None) -> bool:
    """True when the row scores the top of `primary` (an exactly right answer); never for loss,
    which has no top."""
    value = primary_value(row, primary)
    if value is None or primary in LOWER_IS_BETTER:
        return False
    return value >= BEST.get(primary, 1.0) - 1e-9


def worst_examples(rows: list[dict], primary: str | None, k: int = 3) -> list[dict]:
    """The first `k` rows of a worst-first table that are not perfect: rows with a value for
    `primary` below its top. [] when every scored row is right (the caller says so)."""
    return [r for r in rows if primary_value(r, primary) is not None and not perfect(r, primary)][:k]


TEXT_START = 80   # characters of a scored text shown in a console line


def _start(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= TEXT_START else text[:TEXT_START] + "...")


def worst_line(row: dict, primary: str) -> str:
    """One console line for a row of "worst examples by PRIMARY". A row scored only for loss (plain
    text, or --metrics loss) has no answer to compare: its loss, the tokens scored and the start
    of its text, not a whole document beside an empty prediction."""
    if primary == "loss" or (not row.get("prediction") and row.get("loss") is not None and not row["scores"]):
        tokens = f" over {row['tokens']} tokens" if row.get("tokens") is not None else ""
        loss = f"loss {row['loss']:.4f}{tokens}" if row.get("loss") is not None else "no loss"
        what = "text" if row.get("input") == row["reference"] else "answer"   # plain text: its input is its text
        return f"{row['where']}: {loss}, {what} {_start(row['reference'])}"
    value = primary_value(row, primary)
    shown = f" ({primary} {value:.4g})" if value is not None and primary not in ("exact_match",) else ""
    return f"{row['where']}: expected {row['reference']!r}, got {row['prediction']!r}{shown}"


def _bucket(words: int) -> str:
    for lo, hi in LENGTH_BUCKETS:
        if hi is None or words <= hi:
            return f"{lo}+" if hi is None else f"{lo}-{hi}"
    return "?"


def by_length(rows: list[dict], metric: str | None) -> list[dict]:
    """Mean score per input-length bucket (words): do long inputs fail more? ([] for no metric)"""
    if metric is None:
        return []
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[_bucket(len(r["input"].split()))].append(r)
    order = [_bucket(lo) for lo, _ in LENGTH_BUCKETS]
    out = []
    for name in order:
        g = groups.get(name)
        if g:
            vals = [primary_value(r, metric) for r in g]
            vals = [v for v in vals if v is not None]
            out.append({"bucket": name, "n": len(g), metric: sum(vals) / len(vals) if vals else None})
    return out


def labels_of(references: list[str]) -> list[str] | None:
    """The label set when the references are labels (few distinct short answers), else None."""
    normed = [normalize(r) for r in references]
    distinct = set(normed)
    if not normed or len(distinct) > MAX_LABELS or len(distinct) >= max(2, len(normed)) \
            or any(len(n.split()) > MAX_LABEL_WORDS or not n for n in distinct):
        return None
    return sorted(distinct)


def confusion(rows: list[dict], prediction_key: str = "prediction") -> dict | None:
    """Confusion table (reference label -> predicted label counts) with per-label recall and
    precision; predictions outside the label set count as "(other)"."""
    labels = labels_of([r["reference"] for r in rows])
    if labels is None:
        return None
    table = {l: Counter() for l in labels}
    for r in rows:
        p = normalize(r.get(prediction_key) or "")
        table[normalize(r["reference"])][p if p in table else "(other)"] += 1
    columns = labels + (["(other)"] if any(t["(other)"] for t in table.values()) else [])
    per_label = []
    for l in labels:
        n, hit = sum(table[l].values()), table[l][l]
        predicted = sum(table[x][l] for x in labels)
        per_label.append({"label": l, "n": n, "recall": hit / n if n else None,
                          "precision": hit / predicted if predicted else None})
    return {"labels": labels, "columns": columns,
            "matrix": {l: {c: table[l][c] for c in columns} for l in labels}, "per_label": per_label}


# ---- files ------------------------------------------------------------------------------------

def write_jsonl(rows: list[dict], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def flat(row: dict) -> dict:
    """One CSV row: texts first, then the scores side by side, then losses and any meta columns."""
    out = {k: row.get(k) for k in ("index", "where", "input", "reference", "prediction", "base_prediction")
           if k in row}
    out.update(row.get("scores", {}))
    out.update({f"base_{k}": v for k, v in (row.get("base_scores") or {}).items()})
    out.update({k: row[k] for k in ("loss", "base_loss") if k in row})
    out.update({f"meta_{k}": v for k, v in (row.get("meta") or {}).items()})
    return out


def write_csv(rows: list[dict], path: Path) -> None:
    flats = [flat(r) for r in rows]
    columns = list(dict.fromkeys(k for r in flats for k in r))
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(flats)


# ---- HTML -------------------------------------------------------------------------------------

def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _bars_svg(metrics: dict, base: dict | None) -> str:
    """Horizontal bars for the 0-1 scores (BLEU shown /100), fine-tuned over base."""
    names = [k for k in metrics if k not in LOWER_IS_BETTER]
    if not names:
        return ""
    row_h, width, left = 26 if base else 18, 420, 110
    h = row_h * len(names) + 10
    parts = [f'<svg width="{width + left + 60}" height="{h}" role="img" aria-label="metric bars">']
    for i, k in enumerate(names):
        y = 5 + i * row_h
        parts.append(f'<text x="0" y="{y + 12}" font-size="12">{html.escape(k)}</text>')
        for j, (src, color) in enumerate([(metrics, "#3b7dd8")] + ([(base, "#bbb")] if base else [])):
            v = src.get(k)
            if v is None:
                continue
            frac = max(0.0, min(1.0, v / 100 if k == "bleu" else v))
            yy = y + j * 11
            parts.append(f'<rect x="{left}" y="{yy}" width="{frac * width:.1f}" height="10" fill="{color}"/>')
            parts.append(f'<text x="{left + frac * width + 4:.1f}" y="{yy + 9}" font-size="10">{_fmt(v)}</text>')
    parts.append("</svg>")
    legend = ('<p class="legend"><span style="color:#3b7dd8">&#9632;</span> evaluated model'
              + (' <span style="color:#999">&#9632;</span> base model' if base else "") + "</p>")
    return "".join(parts) + legend


def _histogram_svg(values: list[float], metric: str, bins: int = 10) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    if metric not in LOWER_IS_BETTER:
        lo, hi = 0.0, (100.0 if metric == "bleu" else max(1.0, hi))
    span = (hi - lo) or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / span * bins))] += 1
    w, h, bw = 420, 140, 42
    top = max(counts)
    parts = [f'<svg width="{w}" height="{h + 30}" role="img" aria-label="score histogram">']
    for i, c in enumerate(counts):
        bh = c / top * h
        parts.append(f'<rect x="{i * bw}" y="{h - bh:.1f}" width="{bw - 2}" height="{bh:.1f}" fill="#3b7dd8"/>')
        if c:
            parts.append(f'<text x="{i * bw + 2}" y="{h - bh - 2:.1f}" font-size="10">{c}</text>')
        parts.append(f'<text x="{i * bw}" y="{h + 14}" font-size="9">{_fmt(lo + span * i / bins)}</text>')
    parts.append(f'<text x="0" y="{h + 28}" font-size="10">{html.escape(metric)} per example</text></svg>')
    return "".join(parts)


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ddd;padding:3px 6px;
font-size:13px;vertical-align:top;text-align:left;white-space:pre-wrap}th{background:#f4f4f4}
.warn{background:#fff3cd;padding:.5em;border:1px solid #e0c060}.legend{font-size:12px}"""


def write_html(path: Path, summary: dict, rows: list[dict], primary: str) -> None:
    """The report page. `summary`: title, metrics, base_metrics, deltas, n, warnings, guard,
    by_length, confusion, base_confusion (as run_eval builds it)."""
    m, base = summary["metrics"], summary.get("base_metrics")
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(summary['title'])}</title>"
           f"<style>{CSS}</style></head><body><h1>{html.escape(summary['title'])}</h1>",
           f"<p>{summary['n']} examples; {html.escape(summary.get('subtitle', ''))}</p>"]
    for w in summary.get("warnings", []):
        out.append(f"<p class='warn'>{html.escape(w)}</p>")
    names = list(dict.fromkeys([*m, *(base or {})]))
    if base:
        deltas = summary.get("deltas", {})
        out.append("<h2>Metrics</h2>" + _table(["metric", "fine-tuned", "base", "delta"],
                                               [[k, m.get(k), base.get(k), deltas.get(k)] for k in names]))
    else:
        out.append("<h2>Metrics</h2>" + _table(["metric", "value"], [[k, m.get(k)] for k in names]))
    out.append(_bars_svg(m, base))
    if summary.get("guard"):
        out.append(_guard_html(summary["guard"]))
    if primary:
        out.append(f"<h2>Score histogram</h2>{_histogram_svg([primary_value(r, primary) for r in rows], primary)}")
    if summary.get("by_length"):
        bl = summary["by_length"]
        out.append("<h2>By input length (words)</h2>" + _table(
            ["bucket", "n", primary], [[b["bucket"], b["n"], b.get(primary)] for b in bl]))
    for key, title in (("confusion", "Confusion table (rows: reference, columns: prediction)"),
                       ("base_confusion", "Base model confusion table")):
        c = summary.get(key)
        if c:
            out.append(f"<h2>{title}</h2>" + _table(
                ["reference \\ predicted", *c["columns"]], [[l, *[c["matrix"][l][x] for x in c["columns"]]] for l in c["labels"]]))
            out.append(_table(["label", "n", "recall", "precision"],
                              [[p["label"], p["n"], p["recall"], p["precision"]] for p in c["per_label"]]))
    score_names = list(dict.fromkeys(k for r in rows for k in r["scores"]))
    headers = ["#", "where", "input", "reference", "prediction", *score_names, "loss"]
    has_base = any("base_prediction" in r for r in rows)
    if has_base:
        headers[5:5] = ["base prediction"]
        headers += [f"base {k}" for k in score_names]
    table_rows = []
    for r in rows[:HTML_ROWS]:
        cells = [r["index"], r["where"], r["input"], r["reference"], r["prediction"]]
        if has_base:
            cells.append(r.get("base_prediction"))
        cells += [r["scores"].get(k) for k in score_names] + [r.get("loss")]
        if has_base:
            cells += [(r.get("base_scores") or {}).get(k) for k in score_names]
        table_rows.append(cells)
    more = f" (first {HTML_ROWS} of {len(rows)}; examples.csv has all)" if len(rows) > HTML_ROWS else ""
    order = f"worst first by {html.escape(primary)}" if primary else "in file order (no score per example)"
    out.append(f"<h2>Examples, {order}{more}</h2>" + _table(headers, table_rows))
    out.append("</body></html>")
    Path(path).write_text("".join(out), encoding="utf-8")


def guard_line(g: dict) -> str:
    """The forgetting check's result in one line (the console and the report say it alike)."""
    if g.get("kind") == "chat":
        head = f"guard set {g['dataset']} (chat, {g['n']} prompts): "
        if g.get("base_right") is None:
            return head + f"{g['tuned_right']} answered right (no base to compare)"
        kept = f" ({g['kept_right'] / g['base_right']:.0%})" if g["base_right"] else ""
        verdict = {True: ": FORGETTING", False: ": kept", None: ""}[g.get("forgetting")]
        return (head + f"base right {g['base_right']}, still right {g['kept_right']}{kept}, close to the base's answer "
                f"{g['kept_close']} (ROUGE-L >= {g['close_threshold']}, mean {g['mean_similarity']:.2f}){verdict}")
    if g.get("kind") == "benchmark":
        parts = [f"{r['task']} {r['metric']} {r['base']:.4f} -> {r['tuned']:.4f} ({r['delta']:+.4f} ± "
                 f"{r['error']:.4f})" if r.get("error") is not None else f"{r['task']} {r['metric']} {r['delta']:+.4f}"
                 for r in g.get("rows") or []]
        verdict = {True: ": FORGETTING", False: ": kept", None: ""}[g.get("forgetting")]
        return f"guard benchmark {g['dataset']}: " + "; ".join(parts) + verdict
    line = f"guard set {g['dataset']}: perplexity {g['evaluated']['perplexity']:.4g}" if g.get("evaluated") else \
        f"guard set {g['dataset']}: no perplexity"
    if g.get("base"):
        line += f" (base {g['base']['perplexity']:.4g}, x{g['perplexity_ratio']:.3f})"
    return line + (": FORGETTING" if g.get("forgetting") else "")


def _guard_html(g: dict) -> str:
    out = f"<h2>Forgetting check (guard set)</h2><p>{html.escape(guard_line(g))}</p>"
    if g.get("kind") == "benchmark":   # the line holds every figure
        return out
    if g.get("kind") == "chat":
        rows = g.get("rows") or []
        if rows and "base" in rows[0]:
            return out + _table(["prompt", "reference", "base answer", "right", "fine-tuned answer", "right",
                                 "ROUGE-L vs base"],
                                [[r["prompt"], r["reference"], r["base"], _yes(r["right_base"]), r["tuned"],
                                  _yes(r["right_tuned"]), r["similarity"]] for r in rows])
        return out + _table(["prompt", "reference", "answer", "right"],
                            [[r["prompt"], r["reference"], r["tuned"], _yes(r["right_tuned"])] for r in rows])
    return out + _table(["", "loss", "perplexity"],
                        [[k, g[k].get("loss"), g[k].get("perplexity")] for k in ("base", "evaluated") if g.get(k)])


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def write_all(folder: Path, summary: dict, rows: list[dict], primary: str) -> dict:
    """metrics.json, examples.jsonl, examples.csv, report.html in `folder`; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"metrics": folder / "metrics.json", "examples_jsonl": folder / "examples.jsonl",
             "examples_csv": folder / "examples.csv", "html": folder / "report.html"}
    files["metrics"].write_text(json.dumps(summary, indent=1, ensure_ascii=False, default=str) + "\n")
    write_jsonl(rows, files["examples_jsonl"])
    write_csv(rows, files["examples_csv"])
    write_html(files["html"], summary, rows, primary)
    return {k: str(v) for k, v in files.items()}


def metric_lines(out: dict, name_width: int = 14, value_width: int = 10) -> list[str]:
    """One console line per metric of an eval result (`out["metrics"]`), with the base model's value
    and the delta beside it where `out["base_metrics"]` has that metric. Shared by every `eval` kind
    (supervised, preference pairs, rewards) so they read alike."""
    base = out.get("base_metrics") or {}
    lines = []
    for k, v in out["metrics"].items():
        line = f"  {k:<{name_width}} {v:{value_width}.4f}"
        if k in base:
            line += f"   base {base[k]:{value_width}.4f}   delta {out['deltas'][k]:+.4f}"
        lines.append(line)
    return lines
