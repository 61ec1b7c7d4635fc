"""The round-trip check after an export: does the shipped artifact answer like the trained run?

The export is reloaded the way its users will load it (transformers for a full/merged folder, peft
for an adapter, transformers' GGUF loader for a .gguf: it reads the file's own tokenizer, chat
template and eos, so a template or stop token lost on the way shows), then asked greedily, with the
training prompt (turns.training_prompt), up to 20 prompts of the run's test split. Its answers are
compared with the run's own: the latest saved evaluation's predictions when it was greedy and covers
those rows, else answers generated now with the run's model. The result goes to roundtrip.json and
the model card beside the export.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tunestudio.core.errors import CodedText, UserError
from tunestudio.data.chat.turns import split_reasoning
from tunestudio.data.formats.records import unique_wheres
from tunestudio.evaluate.run_eval import auto_max_new_tokens, select_records
from tunestudio.models import loading
from tunestudio.models.generate import Sampling, generate_timed

IDENTICAL_WARN = 1.0   # any differing answer is worth a loud warning: the export should be the run
STOPPED_WARN = 0.9


def _skipped(why: CodedText) -> dict:
    """A check that could not run: why, as text and in parts (for the UI's language)."""
    return {"skipped": str(why), "skipped_part": {"code": why.code, **why.fields, "message": str(why)}}


def load_artifact(out: dict):
    """(model, tokenizer) as the export's users would load them. Raises whatever the loader raises."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(out["output"])
    if out["kind"] == "gguf":
        name = Path(out["file"]).name
        tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=name)
    elif out["kind"] == "adapter":
        from peft import AutoPeftModelForCausalLM

        tok = AutoTokenizer.from_pretrained(str(folder))
        model = AutoPeftModelForCausalLM.from_pretrained(str(folder))
    else:
        tok = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForCausalLM.from_pretrained(str(folder))
    return model.eval(), tok


def _saved_predictions(ws, r, records) -> tuple[list[str] | None, int | None, str | None]:
    """The latest evaluation's greedy predictions for `records` (by row location), its
    max_new_tokens, and its folder; (None, None, None) when none fits."""
    folders = sorted((r.folder / "eval").glob("*/metrics.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for metrics in folders[:1]:
        try:
            summary = json.loads(metrics.read_text())
            sampling = summary.get("sampling") or {}
            if sampling.get("temperature", 0) or summary.get("split") != "test":
                return None, None, None
            rows = {}
            with open(metrics.parent / "examples.jsonl", encoding="utf-8") as f:
                for line in f:
                    row = json.loads(line)
                    rows[row["where"]] = row["prediction"]
        except (OSError, ValueError, KeyError):
            return None, None, None
        preds = [rows.get(where) for where in unique_wheres(records)]
        if all(p is not None for p in preds):
            return preds, sampling.get("max_new_tokens"), str(metrics.parent)
    return None, None, None


def _exact(preds: list[str], refs: list[str]) -> float:
    return sum(p.strip() == t.strip() for p, t in zip(preds, refs)) / len(refs) if refs else 0.0


def check_export(ws, run: str, out: dict, rows: int = 20, write: bool = True) -> dict:
    """Compare the export described by `out` (export_run / export_gguf's result) with the run.

    Returns {format, rows, identical, identical_share, stopped, reference_stopped, exact_match,
    reference_exact_match, exact_match_delta, reference (where the run's answers came from),
    max_new_tokens, answers (the export's first 3), differences (up to 5 {where, run, export}), seconds, warnings}; also written to
    roundtrip.json and the README.md model card in the export folder when `write`. Warnings are
    printed to stderr. Raises UserError when the run has no usable test split or the export does
    not load."""

    started = time.perf_counter()
    r = loading.find_run(ws, run)
    try:
        records, dataset, _ = select_records(ws, r, None, "test")
    except UserError as e:  # a run trained without a test split: the export stands, unchecked
        return _skipped(CodedText(f"run '{r.name}' has no test rows to check the export with ({e})",
                                  "roundtrip_no_test_rows", run=r.name, detail=str(e)))
    records = [rec for rec in records if rec.is_chat][:rows]
    if not records:
        return _skipped(CodedText(f"run '{r.name}' has no chat rows in its test split to check the export with",
                                  "roundtrip_no_chat_rows", run=r.name))
    prompts = [rec.prompt() for rec in records]
    refs = [rec.reference() for rec in records]
    saved, saved_max, source = _saved_predictions(ws, r, records)
    label = out["kind"] + (f" {out['quant']}" if out.get("quant") else "")
    try:
        model, tok = load_artifact(out)
    except Exception as e:  # noqa: BLE001 - the finding is that users cannot load it
        raise UserError(f"the {label} export in {out['output']} was written but does not load the way its "
                        f"users would load it: {type(e).__name__}: {e}", "export_unloadable", export=label,
                        folder=str(out["output"]),
                        detail=f"{type(e).__name__}: {e}") from None
    sampling = Sampling(max_new_tokens=saved_max or auto_max_new_tokens(tok, refs))
    got = generate_timed(model, tok, prompts, sampling, batch_size=1, tools=[rec.tools for rec in records])
    answers = [split_reasoning(t)[1] for t in got.texts]
    del model
    loading.release_memory()
    if saved is None:
        run_model, run_tok, _ = loading.load_model(ws, run=run)
        ref_gen = generate_timed(run_model, run_tok, prompts, sampling, batch_size=1,
                                 tools=[rec.tools for rec in records])
        saved, ref_stopped = [split_reasoning(t)[1] for t in ref_gen.texts], sum(ref_gen.stopped) / len(prompts)
        source = "generated now with the run's model"
        del run_model
        loading.release_memory()
    else:
        ref_stopped = None  # the saved evaluation's own share is in its metrics
        source = f"saved evaluation {source}"
    same = [a == b for a, b in zip(answers, saved)]
    result = {"format": label, "file": out.get("file") or out["output"], "dataset": dataset, "rows": len(records),
              "identical": sum(same), "identical_share": sum(same) / len(same),
              "stopped": sum(got.stopped) / len(got.stopped), "reference_stopped": ref_stopped,
              "exact_match": _exact(answers, refs), "reference_exact_match": _exact(saved, refs),
              "reference": source, "max_new_tokens": sampling.max_new_tokens, "answers": answers[:3],
              "differences": [{"where": where, "run": b, "export": a}
                              for where, a, b, s in zip(unique_wheres(records), answers, saved, same) if not s][:5],
              "seconds": round(time.perf_counter() - started, 2), "warnings": []}
    result["exact_match_delta"] = result["exact_match"] - result["reference_exact_match"]
    if result["identical_share"] < IDENTICAL_WARN:
        d = result["differences"][0]
        result["warnings"].append(CodedText(
            f"THE {label.upper()} EXPORT ANSWERS DIFFERENTLY from the run on {len(same) - sum(same)} of {len(same)} "
            f"test prompts (exact match {result['exact_match']:.2f} vs the run's {result['reference_exact_match']:.2f}); "
            f"first at {d['where']}: run {d['run']!r}, export {d['export']!r}", "export_differs",
            export=label, differ=len(same) - sum(same), rows=len(same), exact=f"{result['exact_match']:.2f}",
            run_exact=f"{result['reference_exact_match']:.2f}", where=d["where"], run=repr(d["run"]),
            answer=repr(d["export"])))
    if result["stopped"] < STOPPED_WARN:
        result["warnings"].append(CodedText(
            f"the {label} export stopped on its own in only {result['stopped']:.0%} of answers (the rest ran to "
            f"{sampling.max_new_tokens} tokens): check its stop tokens", "export_stopping",
            export=label, share=f"{result['stopped']:.0%}", max_new_tokens=sampling.max_new_tokens))
    # the same warnings in parts, kept through roundtrip.json and the registry: the UI words them
    result["warning_parts"] = [{"code": w.code, **w.fields, "message": str(w)} for w in result["warnings"]]
    for w in result["warnings"]:
        print(f"WARNING: {w}", file=sys.stderr)
    if write:
        folder = Path(out["output"])
        (folder / "roundtrip.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
        card = folder / "README.md"
        if card.is_file():
            card.write_text(card.read_text(encoding="utf-8") + card_section(result), encoding="utf-8")
    return result


def describe(result: dict) -> str:
    """One line for the terminal."""
    if "skipped" in result:
        return f"round-trip check skipped: {result['skipped']}"
    return (f"round-trip check ({result['format']}): {result['identical']}/{result['rows']} answers identical to "
            f"the run's ({result['reference']}), {result['stopped']:.0%} stopped on their own, exact match "
            f"{result['exact_match']:.2f} (run {result['reference_exact_match']:.2f}), {result['seconds']} s")


def card_section(result: dict) -> str:
    if "skipped" in result:
        return ""
    lines = ["", "## Round-trip check",
             f"Reloaded as its users would and asked {result['rows']} test prompts of `{result['dataset']}` greedily "
             f"(at most {result['max_new_tokens']} new tokens):", "",
             "| | |", "|---|---|",
             f"| answers identical to the run's | {result['identical']}/{result['rows']} |",
             f"| stopped on their own | {result['stopped']:.0%} |",
             f"| exact match (export / run) | {result['exact_match']:.2f} / {result['reference_exact_match']:.2f} |",
             f"| run's answers from | {result['reference']} |", ""]
    lines += [f"**Warning:** {w}" for w in result["warnings"]]
    return "\n".join(lines) + "\n"
