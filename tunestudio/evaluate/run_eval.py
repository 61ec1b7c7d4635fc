"""`tunestudio eval`: a model (or a run's result) on held-out rows, scored and saved.

For a run, the rows are by default the exact test split recorded when it trained (split.json),
so no training row is ever scored; another file is held out and scored whole (heldout.py). With compare_base the same rows go through the run's base
model too (same tokenizer and chat template), one model in memory at a time. A guard set, if
given, is the forgetting check (guard.py): plain text scored for perplexity, or chat questions asked
of the fine-tuned model and of its base (loaded for it even without compare_base).
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from tunestudio.core import registry
from tunestudio.core.errors import CodedText, UserError
from tunestudio.core.statefiles import read_json
from tunestudio.core.workspace import Workspace
from tunestudio.data.chat.render import refused_rows
from tunestudio.data.chat.turns import split_reasoning
from tunestudio.data.formats.records import unique_wheres
from tunestudio.data.split import splits_from_info
from tunestudio.evaluate import guard as G
from tunestudio.evaluate import heldout, report
from tunestudio.evaluate import metrics as M
from tunestudio.evaluate.answer_warnings import empty_answers_warning, stopping_warning, unchanged_warning
from tunestudio.evaluate.metric_choice import default_metrics, metric_notes
from tunestudio.evaluate.streamloss import TextBlocking, text_losses
from tunestudio.evaluate.tool_metrics import TOOL_METRICS, aggregate_tool_scores, no_calls_warning, score_tool_calls
from tunestudio.models import loading
from tunestudio.models.generate import Sampling, generate_timed

SPLITS = {"test": "test", "val": "val", "validation": "val", "train": "train", "all": "all"}
MAX_AUTO_NEW_TOKENS = 512


def run_split_info(run: loading.RunInfo) -> dict | None:
    """The split recorded for a run: split.json in its folder, else the registry's copy."""
    path = run.folder / "split.json"
    if path.is_file():
        return read_json(path, "the run's split file")  # damaged: one message naming it
    info = run.record.get("split") or {}
    return info if info.get("rows") else None  # the registry keeps a summary without row ids


def select_records(ws: Workspace, run: loading.RunInfo | None, dataset: str | None, split: str | None = None,
                   limit: int | None = None) -> tuple[list, str, str]:
    """The rows to evaluate: (records, dataset name, split name). The run's own data: its recorded
    `split` (test by default). Any other file is held out (heldout.py): every row of it, read as
    the run reads its data, unless a `split` of it is asked. With no run (a model), a file's test
    split unless another `split` is asked."""

    if split is not None and split not in SPLITS:
        raise UserError(f"--split must be one of {', '.join(SPLITS)} (got '{split}')", "unknown_choice",
                        option="--split", value=split, choices=list(SPLITS))
    info = run_split_info(run) if run else None
    if info and (dataset is None or dataset in (info.get("dataset"), Path(str(info.get("dataset"))).name)):
        split = split or "test"
        splits = splits_from_info(ws, info)  # the run's own held-out rows, checked unchanged
        name = info.get("dataset") or "?"
        records = splits.train if SPLITS[split] == "all" else getattr(splits, SPLITS[split])
    elif dataset:
        # a run's held-out file: all of it; a model alone (--model): the test rows `train` would carve from
        # it, the rows a run on that data holds out, so a base model is compared on those
        split = split or ("all" if run else "test")
        records = heldout.file_records(ws, dataset, run.config if run else None, info, SPLITS[split])
        name = dataset
    elif run:
        raise UserError(f"run '{run.name}' has no recorded split: give the data with --dataset D", "eval_no_split",
                        run=run.name)
    else:
        raise UserError("--model needs --dataset D: the rows to evaluate on", "eval_needs_dataset")
    if not records:
        raise UserError(f"the {split} split of {name} is empty: pick another --split or give --dataset",
                        "eval_split_empty", split=split, dataset=name)
    if limit:
        records = records[:limit]
    return records, name, split


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None, lambda k: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, file=sys.stderr, unit="ex", leave=False, dynamic_ncols=True)
    return bar, bar.update


def auto_max_new_tokens(tokenizer, references: list[str]) -> int:
    """Room for the longest reference twice over and some slack: enough that a model which does not
    stop shows as such (its answer runs on past the reference, and `stopped` says so) instead of
    being cut right after a correct answer; capped so a rambling model costs bounded time."""
    longest = max((len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in references), default=16)
    return max(32, min(MAX_AUTO_NEW_TOKENS, 2 * longest + 16))


def score_side(model, tok, records, names, custom, sampling: Sampling, batch_size: int,
               guard: list | None, show_progress: bool, label: str, mode: str = "training",
               reasoning: str = "keep", bleu_tokenize: str = "13a", blocking: TextBlocking | None = None) -> dict:
    """Everything one model gives on the rows: predictions (final answers, their reasoning split
    off), scores, `stopped`, losses, guard loss. `bleu_tokenize`: sacrebleu's tokenizer.
    `blocking`: how the run cut plain text (its loss is scored the same way; None: `train`'s defaults)."""
    chat = [r for r in records if r.is_chat]
    text_names = [n for n in names if n in M.TEXT_METRICS]
    calls = [r.reference_calls() for r in records]
    tool_names = [n for n in names if n in TOOL_METRICS] if any(calls) else []
    side: dict = {"predictions": [""] * len(records), "reasoning": [""] * len(records),
                  "scores": [{} for _ in records], "losses": None, "tokens": 0, "seconds": 0.0, "warnings": []}
    if chat and (text_names or tool_names or custom):
        bar, tick = _progress(len(records), f"{label}: generating", show_progress)
        # asked exactly as training rendered the row: reasoning block open when the answer had one
        opened = [reasoning == "keep" and bool(r.reference_reasoning()) for r in records]
        gen = generate_timed(model, tok, [r.prompt() for r in records], sampling, batch_size, progress=tick,
                             mode=mode, reasoning=opened, tools=[r.tools for r in records])
        if bar:
            bar.close()
        side["tokens"], side["seconds"] = gen.tokens, gen.seconds
        split = [split_reasoning(t) for t in gen.texts]
        side["reasoning"] = [r for r, _ in split]
        preds = side["predictions"] = [a for _, a in split]
        refs = [r.reference() for r in records]
        side["scores"] = M.score_examples(text_names, preds, refs, [r.to_dict() for r in records], custom,
                                          unique_wheres(records), bleu_tokenize)
        side["metrics"] = M.aggregate(text_names, side["scores"], preds, refs, custom, bleu_tokenize)
        score_tool_calls(tool_names, preds, calls, side["scores"])
        side["metrics"].update(aggregate_tool_scores(tool_names, side["scores"]))
        side["metrics"]["stopped"] = sum(gen.stopped) / len(gen.stopped)
        warning = stopping_warning(gen.stopped, sampling.max_new_tokens, base=label == "base")
        if warning:
            side["warnings"].append(f"{label}: {warning}" if label != "base" else warning)
            # the same in parts: the web UI words it in its language (locales: engine.eval_stopping)
            side.setdefault("warning_parts", []).append({
                "code": "eval_stopping_base" if label == "base" else "eval_stopping", "side": label,
                "share": f"{sum(gen.stopped) / len(gen.stopped):.0%}",
                "ran_on": f"{1 - sum(gen.stopped) / len(gen.stopped):.0%}",
                "max_new_tokens": sampling.max_new_tokens, "message": side["warnings"][-1]})
    else:
        side["metrics"] = {}
    if any(n in M.LOSS_METRICS for n in names):
        bar, tick = _progress(len(records), f"{label}: loss", show_progress)
        side["losses"] = _losses(model, tok, records, blocking, batch_size, tick)
        if bar:
            bar.close()
        side["metrics"].update({k: v for k, v in M.loss_metrics(side["losses"]).items() if k in names})
    if guard:
        bar, tick = _progress(len(guard), f"{label}: guard set", show_progress)
        side["guard"] = M.loss_metrics(_losses(model, tok, guard, blocking, batch_size, tick))
        if bar:
            bar.close()
    return side


def _losses(model, tok, records, blocking: TextBlocking | None, batch_size: int, tick) -> list[tuple[float, int]]:
    """(nll, tokens) per record: plain text cut as training cut it (streamloss), a conversation's
    answer teacher-forced after its prompt."""
    if records and not any(r.is_chat for r in records):
        return text_losses(model, tok, records, blocking or TextBlocking.of_config(None), batch_size, tick)
    return M.reference_losses(model, tok, [_loss_item(r) for r in records], batch_size, progress=tick)


def _loss_item(r) -> tuple:
    """(prompt, reference, tools) for the loss: a reference that calls tools as the message itself."""
    if not r.is_chat:
        return None, r.reference()
    if r.reference_calls():
        m = r.reference_message()
        return r.prompt(), {"role": "assistant", "content": m["content"], "tool_calls": m["tool_calls"]}, r.tools
    return r.prompt(), r.reference(), r.tools


def _rows(records, ft: dict, base: dict | None) -> list[dict]:
    rows = []
    for i, (r, where) in enumerate(zip(records, unique_wheres(records))):
        row = {"index": i, "where": where,
               "input": report.input_text(r.prompt() if r.is_chat else None, None if r.is_chat else r.text),
               "reference": r.reference(), "prediction": ft["predictions"][i],
               "prediction_reasoning": ft["reasoning"][i], "scores": ft["scores"][i],
               "loss": M.example_loss(ft["losses"][i]) if ft["losses"] else None}
        if ft["losses"]:
            row["tokens"] = ft["losses"][i][1]   # tokens its loss is over
        if base is not None:
            row["base_prediction"] = base["predictions"][i]
            row["base_scores"] = base["scores"][i]
            row["base_loss"] = M.example_loss(base["losses"][i]) if base["losses"] else None
        if r.meta:
            row["meta"] = r.meta
        rows.append(row)
    return rows


def deltas(after: dict, before: dict) -> dict:
    return {k: after[k] - before[k] for k in after if k in before
            and isinstance(after[k], (int, float)) and isinstance(before[k], (int, float))}


def eval_folder(ws: Workspace, run: loading.RunInfo | None, model: str | None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if run:
        base = run.folder / "eval"
    else:
        base = ws.evals_dir / re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")
    folder, k = base / stamp, 1
    while folder.exists():  # two evaluations in the same second keep both
        k += 1
        folder = base / f"{stamp}-{k}"
    return folder


def evaluate(ws: Workspace, run: str | None = None, model: str | None = None, dataset: str | None = None,
             split: str | None = None, metrics=None, metric_file: str | None = None, compare_base: bool = False,
             guard_dataset: str | None = None, limit: int | None = None, max_new_tokens: int | None = None,
             batch_size: int = 8, sampling: Sampling | None = None, progress: bool = True,
             save: bool = True, device: str | None = None, trust_remote_code: bool = False,
             generation_prompt: str = "training", bleu_tokenize: str | None = None,
             benchmark_guard: dict | None = None) -> dict:
    """Evaluate and (by default) save to the run folder and the registry's evaluations table.

    `generation_prompt`: "training" asks with what training put before each answer, "template" with
    the chat template's own generation prompt (turns.generation_prompt). `bleu_tokenize`: sacrebleu's
    tokenizer for BLEU (None or "auto": from the references' script, tokenize.detect_bleu_tokenize).
    `metrics` None: chosen from the references (metric_choice.default_metrics); metrics asked by name
    that read 0 on these answers get a line each in `metric_notes`.
    Returns {metrics, n, [base_metrics, deltas], [guard], warnings, metric_notes, primary_metric,
    tokens_per_second, output_dir, files, rows} where rows is the per-example table, worst first;
    metrics["stopped"] is the share of answers that ended on their own before max_new_tokens.
    `guard_dataset`: the forgetting check (guard.py; a chat guard set loads the run's base even without
    compare_base). `benchmark_guard`: the benchmark forgetting check, already run (harness.benchmark_guard),
    reported as the guard. Warnings say when the evaluation shows nothing learnt: empty answers
    (eval_empty_answers), answers unchanged from the base's (eval_unchanged, with compare_base).
    """
    if bool(run) == bool(model):
        raise UserError("give exactly one of --run RUN or --model M", "run_or_model")
    if compare_base and not run:
        raise UserError("--compare-base needs --run RUN (the base is the model that run started from)",
                        "compare_base_needs_run")
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1 (got {batch_size})", "option_at_least", option="batch_size",
                        value=batch_size, least=1)
    names = M.parse_names(metrics) if metrics else None   # checked before any row is read
    # a broken metric file fails before any model loads; its process box ends with the scoring
    custom = opened = [M.CustomMetric(metric_file, ws.root)] if metric_file else []
    try:
        run_info = loading.find_run(ws, run) if run else None
        records, dataset_name, split = select_records(ws, run_info, dataset, split, limit)
        refs = [r.reference() for r in records if r.is_chat]
        if names is None:   # none asked: chosen from the answers (metric_choice.py), as the Evaluate tab does
            names = default_metrics(refs, any(r.reference_calls() for r in records)) if refs else list(M.LOSS_METRICS)
        notes = metric_notes(names, refs) if metrics and refs else []   # a metric asked that reads 0 on these answers
        guard = G.guard_records(ws, guard_dataset) if guard_dataset else None
        asks = G.chat_rows(guard) if guard else []   # a chat guard set: its questions are asked of each model
        warnings = []
        if not any(r.is_chat for r in records) and ([n for n in names if n in M.TEXT_METRICS] or custom):
            warnings.append(CodedText("plain-text rows have no prompt/answer pairs: only loss and perplexity are "
                                      "scored", "eval_plain_text"))
            names, custom = [n for n in names if n in M.LOSS_METRICS] or list(M.LOSS_METRICS), []

        if metrics and not any(r.reference_calls() for r in records):   # tool metrics asked by name, nothing to score
            w = no_calls_warning(names, f"the {split} split of {dataset_name}", _holds(records),
                                 nothing_else=not custom and all(n in TOOL_METRICS for n in names))
            if w:
                warnings.append(w)
        reasoning = (run_info.config.get("reasoning") if run_info else None) or "keep"
        blocking = TextBlocking.of_config(run_info.config if run_info else None)   # plain text: as training cut it
        bleu_tok = M.bleu_tokenize_for(names, [r.reference() for r in records], bleu_tokenize, warnings)
        sides = [("fine-tuned" if run else "model", dict(run=run, model=model))]
        if compare_base or (asks and run):   # the chat guard needs the base's answers even without compare_base
            sides.append(("base", dict(run=run, base=True)))
        results, infos, parts, answers = {}, {}, [], {}
        for label, kw in sides:
            m, tok, info = loading.load_model(ws, device=device, trust_remote_code=trust_remote_code, **kw)
            if not results:  # both sides share the run's tokenizer: rows its template refuses are left out
                records = _accepted(records, tok, reasoning, warnings)
            if sampling is None:
                sampling = Sampling(max_new_tokens=max_new_tokens or auto_max_new_tokens(
                    tok, [r.reference() for r in records]))
            if label != "base" or compare_base:
                results[label] = score_side(m, tok, records, names, custom, sampling, batch_size,
                                            None if asks else guard, progress, label, generation_prompt, reasoning,
                                            bleu_tok, blocking)
                warnings += results[label]["warnings"]
                parts += results[label].get("warning_parts", [])
            if asks:
                bar, tick = _progress(len(asks), f"{label}: guard set", progress)
                answers[label] = G.ask(m, tok, asks, generation_prompt, batch_size, tick)
                if bar:
                    bar.close()
            infos[label] = info
            del m
            loading.release_memory()
    finally:
        for c in opened:
            c.close()

    main_label = sides[0][0]
    ft, base = results[main_label], results.get("base")
    primary = M.primary_metric(names, custom, tool_calls=any(r.reference_calls() for r in records))
    rows = report.worst_first(_rows(records, ft, base), primary)
    out = {"metrics": ft["metrics"], "n": len(records), "primary_metric": primary, "metric_notes": notes}
    if "bleu" in names:
        out["bleu_tokenize"] = bleu_tok
    if base is not None:
        out["base_metrics"] = base["metrics"]
        out["deltas"] = deltas(ft["metrics"], base["metrics"])
    if "stopped" in ft["metrics"]:   # answers were generated
        w = empty_answers_warning(main_label, ft["predictions"], [r.reference() for r in records],
                                  sampling.max_new_tokens)
        warnings += [w] if w else []
    if base is not None and run_info is not None:
        w = unchanged_warning(ft, base, primary, run_info)
        warnings += [w] if w else []
    if asks:
        out["guard"] = G.chat_summary(guard_dataset, asks, answers[main_label], answers.get("base"), warnings)
    elif guard:
        out["guard"] = G.perplexity_summary(guard_dataset, ft.get("guard"), (base or {}).get("guard"), warnings)
    elif benchmark_guard:
        out["guard"] = benchmark_guard
        warnings += benchmark_guard.pop("warnings", [])
    out["warnings"] = warnings
    # {code, fields..., message} for those of `warnings` the UI can word (CodedText: its own parts)
    out["warning_parts"] = parts + [{"code": w.code, **w.fields, "message": str(w)}
                                    for w in warnings if getattr(w, "code", None)]
    out["tokens_per_second"] = ft["tokens"] / ft["seconds"] if ft["seconds"] else None
    out.update(model=infos[main_label]["label"], run_id=run_info.id if run_info else None,
               dataset=dataset_name, split=split, sampling=sampling.to_dict())
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)

    if save:
        folder = eval_folder(ws, run_info, model)
        summary = {**out, "title": f"Evaluation of {out['model']}",
                   "subtitle": f"dataset {dataset_name}, split {split}",
                   "by_length": report.by_length(rows, primary),
                   "confusion": report.confusion(rows) if any(r.is_chat for r in records) else None,
                   "base_confusion": report.confusion(rows, "base_prediction") if base is not None else None}
        out["files"] = report.write_all(folder, summary, rows, primary)
        out["output_dir"] = str(folder)
        record_eval(ws, out, folder)
    out["rows"] = rows
    return out


def _holds(records: list) -> str:
    """What rows without a tool call are, for a warning: "12 conversations answered in words"."""
    chat = [r for r in records if r.is_chat]
    if not chat:
        return f"{len(records)} plain-text document(s)"
    tools = sum(1 for r in chat if r.tools)
    text = f"{len(chat)} conversation(s) answered in words" + (f", {tools} of them declaring tools" if tools else "")
    return text + (f", and {len(records) - len(chat)} plain-text document(s)" if len(chat) < len(records) else "")


def _accepted(records: list, tok, reasoning: str, warnings: list) -> list:
    refused = refused_rows(records, tok, reasoning)
    if not refused:
        return records
    if len(refused) == len(records):
        raise UserError(f"the chat template refused every row to evaluate; first: {refused[0]}", "eval_all_refused",
                        where=refused[0].where)
    out = {r.where for r in refused}
    warnings.append(CodedText(f"{len(refused)} row(s) left out, the chat template refuses them; first: {refused[0]}",
                              "eval_refused", count=len(refused), where=refused[0].where, detail=refused[0].message))
    return [r for r, where in zip(records, unique_wheres(records)) if where not in out]


def record_eval(ws: Workspace, out: dict, folder: Path) -> None:
    conn = registry.connect(ws.db_path)
    try:
        conn.execute(
            "INSERT INTO evaluations (created_at, run_id, model, dataset, split, n, metrics, base_metrics, output_dir)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (time.time(), out["run_id"], out["model"], out["dataset"], out["split"], out["n"],
             json.dumps(out["metrics"]), json.dumps(out["base_metrics"]) if "base_metrics" in out else None,
             str(folder)))
    finally:
        conn.close()


def list_evaluations(ws: Workspace, run_id: str | None = None) -> list[dict]:
    """Saved evaluations, newest first (all, or one run's): for `runs show` and the UI."""

    conn = registry.connect(ws.db_path)
    try:
        return registry.run_evaluations(conn, run_id)
    finally:
        conn.close()
