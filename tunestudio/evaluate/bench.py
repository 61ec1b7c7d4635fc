"""`tunestudio bench-models`: which base model to start from, measured before any training.

Each candidate runs on the same test rows (the split a default `train` would hold out), one
model in memory at a time. A base model rarely answers a task right before training, so the
reference loss (how likely it finds the right answers) usually decides the ranking; a text
metric decides first when any model scores on it.
"""

from __future__ import annotations

import json
import time

from tunestudio.config.run_config import RunConfig
from tunestudio.core import registry
from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.data.encoding.encode import encode
from tunestudio.data.split import load_splits
from tunestudio.evaluate import benchmarks, harness
from tunestudio.evaluate import metrics as M
from tunestudio.evaluate.run_eval import auto_max_new_tokens, score_side
from tunestudio.models import loading
from tunestudio.models.generate import Sampling
from tunestudio.models.lengths import data_lengths
from tunestudio.models.memory import estimate_settings

DEFAULT_METRICS = ("exact_match", "f1", "loss", "perplexity")


def rank(rows: list[dict], names: list[str], bench_column: str | None = None) -> str:
    """Sort `rows` best first in place and number them; returns what decided the order. Without
    held-out metrics (`names` empty), `bench_column` (a benchmark's "task/metric") decides."""
    if not names and bench_column:
        rows.sort(key=lambda r: -(r["metrics"].get(bench_column) or 0.0))
        for i, r in enumerate(rows, 1):
            r["rank"] = i
        return f"{bench_column} (higher is better)"
    text = [n for n in names if n in M.TEXT_METRICS]
    primary = text[0] if text and any(r["metrics"].get(text[0]) for r in rows) else None
    has_loss = "loss" in names

    def key(r):
        m = r["metrics"]
        score = -(m.get(primary) or 0.0) if primary else 0.0
        loss = m.get("loss", float("inf")) if has_loss else 0.0
        return (score, loss)

    rows.sort(key=key)
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return " then ".join(x for x in (primary and f"{primary} (higher is better)",
                                     has_loss and "loss (lower is better)") if x) or "input order"


def _memory(model, tokenizer=None, records=None) -> dict:
    """Weights as loaded, and what fine-tuning would need with the run defaults (batch 8, max
    length 512, precision auto): models/memory.py's `estimate_settings`, the function the web UI's
    Model and Training tabs call, for the longest batch of the benchmark rows as this model's
    tokenizer encodes them (rows of max_length when they cannot be encoded)."""

    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    lengths = None
    if tokenizer is not None and records:
        try:
            lengths = data_lengths(encode(list(records), tokenizer, RunConfig().max_length, num_proc=1,
                                          skip_bad_rows=True).examples)
        except Exception:  # noqa: BLE001 - the estimate still stands on max_length
            lengths = None
    out = {"weights_memory": weights}
    for method in ("full", "lora"):
        out[f"train_memory_{method}"] = estimate_settings(model.config, lengths=lengths, method=method,
                                                          precision="auto")["total"]
    return out


def bench_models(ws: Workspace, models: list[str], dataset: str | None, metrics=None, limit: int | None = None,
                 batch_size: int = 8, max_new_tokens: int | None = None, progress: bool = True,
                 save: bool = True, device: str | None = None, benchmark=None,
                 num_fewshot: int | None = None) -> dict:
    """Leaderboard of `models` on the test rows of `dataset` and/or the lm-eval tasks of `benchmark`
    (harness.py; `limit` and `batch_size` apply to both, `num_fewshot` to the tasks).

    Returns {dataset, n, metrics, ranked_by, benchmark_columns, leaderboard: [{rank, model, source,
    params, weights_memory, train_memory_full, train_memory_lora (bytes), tokens_per_second, seconds,
    metrics (a benchmark's as "task/acc" and "task/acc_stderr")}], benchmark_id}.
    """

    models = list(dict.fromkeys(models))
    if len(models) < 1:
        raise UserError("--models needs at least one model (comma-separated)", "bench_no_models")
    if not dataset and not benchmark:
        raise UserError("bench-models needs --dataset D, --benchmark TASKS or both", "bench_needs_data")
    names = M.parse_names(metrics or list(DEFAULT_METRICS)) if dataset else []
    records = load_splits(ws, dataset).test if dataset else []
    if limit:
        records = records[:limit]
    if dataset and not records:
        raise UserError(f"{dataset} has no test rows to benchmark on", "bench_no_test_rows", dataset=str(dataset))
    if records and not any(r.is_chat for r in records):
        names = [n for n in names if n in M.LOSS_METRICS] or list(M.LOSS_METRICS)
    bleu_tok = M.bleu_tokenize_for(names, [r.reference() for r in records])   # the references' script
    tasks = None
    if benchmark:   # an unknown task or unreadable data fails before any model loads
        specs, task_names = harness.task_specs(ws, benchmark)
        manager = harness.task_manager(specs)
        harness.check_tasks(specs, task_names, manager)
        tasks = (specs, manager, harness.settings_of(num_fewshot, limit, batch_size, None))
    rows, columns = [], []
    for name in models:
        start = time.perf_counter()
        model, tok, info = loading.load_model(ws, model=name, device=device)
        side = {"tokens": 0, "seconds": 0.0, "metrics": {}}
        if records:
            sampling = Sampling(max_new_tokens=max_new_tokens or auto_max_new_tokens(tok, [r.reference() for r in records]))
            side = score_side(model, tok, records, names, [], sampling, batch_size, None, progress, name,
                              bleu_tokenize=bleu_tok)
        if tasks:
            scored = harness.score_model(model, tok, *tasks)
            side["metrics"].update(benchmarks.flat(scored))
            columns = columns or [f"{r['task']}/{r['metric']}" for r in benchmarks.table(scored)]
        rows.append({
            "model": name, "source": info["source"], "params": loading.count_parameters(model), **_memory(model, tok, records),
            "tokens_per_second": side["tokens"] / side["seconds"] if side["seconds"] else None,
            "seconds": time.perf_counter() - start, "metrics": side["metrics"],
        })
        del model
        loading.release_memory()
    ranked_by = rank(rows, names, columns[0] if columns else None)
    out = {"dataset": dataset, "n": len(records), "metrics": names, "ranked_by": ranked_by,
           "benchmark_columns": columns, "leaderboard": rows}
    if save:
        out["benchmark_id"] = _record(ws, dataset, out)
    return out


def _record(ws: Workspace, dataset: str, out: dict) -> int:
    conn = registry.connect(ws.db_path)
    try:
        cur = conn.execute("INSERT INTO benchmarks (created_at, dataset, results) VALUES (?, ?, ?)",
                           (time.time(), dataset or "", json.dumps({k: v for k, v in out.items()})))
        return cur.lastrowid
    finally:
        conn.close()


def list_benchmarks(ws: Workspace) -> list[dict]:
    """Saved leaderboards, newest first (for the UI)."""

    conn = registry.connect(ws.db_path)
    try:
        return [registry.row_to_dict(r, "benchmarks") for r in conn.execute("SELECT * FROM benchmarks ORDER BY created_at DESC")]
    finally:
        conn.close()
