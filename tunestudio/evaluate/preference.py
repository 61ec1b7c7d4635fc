"""`eval` on preference pairs: how often the model prefers the chosen answer.

preference_accuracy = share of pairs where the chosen answer's mean log-probability per token (the
length-normalised log-likelihood, so a longer answer is not penalised for its length) is higher
than the rejected one's. Beside it the margin (chosen minus rejected, nats per token: mean, median,
10th percentile). With --compare-base the run's base model is scored on the same pairs, and the
DPO implicit reward margin is reported: (log pi(c) - log base(c)) - (log pi(r) - log base(r)),
summed over answer tokens, as DPO's rewards/margins (without beta).
The answers are tokenised as training does (data/encoding/pref_encode.py): template, turn end, masking.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.core.output import print_json
from tunestudio.data.preference import load_pref_file, load_pref_splits, raise_on_errors
from tunestudio.data.quality.pref import preference_kind
from tunestudio.data.split import resolve_dataset
from tunestudio.evaluate import kto
from tunestudio.evaluate.pref_scoring import score_pairs, score_sides
from tunestudio.evaluate.report import metric_lines
from tunestudio.evaluate.run_eval import eval_folder, record_eval, run_split_info
from tunestudio.models import loading

PREFERENCE_OBJECTIVES = ("dpo", "orpo", "simpo")
MAX_LENGTH = 4096


def _records(ws, run, dataset, split, limit):
    info = run_split_info(run) if run else None
    if info and (dataset is None or dataset in (info.get("dataset"), Path(str(info.get("dataset"))).name)):
        splits = load_pref_splits(ws, info.get("dataset"), 0, 0, 0, split_info=info)
        name = info.get("dataset")
        records = {"test": splits.test, "val": splits.val, "train": splits.train,
                   "all": splits.train + splits.val + splits.test}.get(split)
        if records is None:
            raise UserError(f"--split must be one of test, val, train, all (got '{split}')", "unknown_choice",
                            option="--split", value=split, choices=["test", "val", "train", "all"])
    elif dataset:
        loads = [load_pref_file(p) for p in resolve_dataset(ws, dataset).values()]
        raise_on_errors(loads)
        records, name, split = [r for ld in loads for r in ld.records], dataset, "all"
    else:
        raise UserError("--model needs --dataset D: the pairs to evaluate on", "eval_needs_dataset")
    if not records:
        raise UserError(f"the {split} split of {name} is empty: pick another --split or give --dataset",
                        "eval_split_empty", split=split, dataset=str(name))
    return records[:limit] if limit else records, name, split


def evaluate_preferences(ws, run: str | None = None, model: str | None = None, dataset: str | None = None,
                         split: str = "test", compare_base: bool = False, limit: int | None = None,
                         batch_size: int = 8, save: bool = True) -> dict:
    """Score pairs with a run (or a model) and optionally its base. Returns {metrics, n, [base_metrics,
    deltas, reward_margin], rows, model, dataset, split, output_dir}; rows are worst-first. Unpaired
    (KTO) rows are scored by evaluate/kto.py instead (its module docstring defines those metrics)."""

    if bool(run) == bool(model):
        raise UserError("give exactly one of --run RUN or --model M", "run_or_model")
    if compare_base and not run:
        raise UserError("--compare-base needs --run RUN (the base is the model that run started from)",
                        "compare_base_needs_run")
    run_info = loading.find_run(ws, run) if run else None
    records, name, split = _records(ws, run_info, dataset, split, limit)
    if not records[0].is_pair:   # KTO rows: desirable vs undesirable answers (evaluate/kto.py)
        out = kto.evaluate_unpaired(ws, records, name, split, run_info, run, model, compare_base, batch_size, MAX_LENGTH)
        return _save(ws, out, out.pop("rows"), run_info, model, save)
    sides, scores, labels, enc = score_sides(ws, run, model, compare_base, records, MAX_LENGTH, name,
                                             lambda m, examples: score_pairs(m, examples, batch_size))
    examples = enc.examples
    main = sides[0][0]
    ft = scores[main]
    out = {"metrics": ft["metrics"], "n": len(examples), "primary_metric": "preference_accuracy",
           "model": labels[main], "run_id": run_info.id if run_info else None, "dataset": name, "split": split,
           "warnings": []}
    base = scores.get("base")
    if base:
        out["base_metrics"] = base["metrics"]
        out["deltas"] = {k: ft["metrics"][k] - base["metrics"][k] for k in ft["metrics"]}
        rewards = [(fc - bc) - (fr - br) for (fc, _), (bc, _), (fr, _), (br, _) in
                   zip(ft["chosen"], base["chosen"], ft["rejected"], base["rejected"])]
        out["metrics"]["reward_margin_mean"] = statistics.fmean(rewards)
        out["metrics"]["reward_accuracy"] = sum(r > 0 for r in rewards) / len(rewards)
    rows = [{"where": r.where(), "chosen": r.chosen, "rejected": r.rejected, "margin": round(mg, 4),
             **({"base_margin": round(base["margins"][i], 4)} if base else {})}
            for i, (r, mg) in enumerate(zip(records, ft["margins"]))]
    rows.sort(key=lambda row: row["margin"])
    return _save(ws, out, rows, run_info, model, save)


def _save(ws, out: dict, rows: list[dict], run_info, model, save: bool) -> dict:
    """`out` with its rows, written as summary.json + rows.jsonl in a new evaluation folder when `save`."""
    if save:
        folder = eval_folder(ws, run_info, model)
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps({**out, "created_at": time.time()}, indent=2) + "\n")
        (folder / "rows.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        out["output_dir"] = str(folder)
        out["files"] = {"summary": str(folder / "summary.json"), "rows": str(folder / "rows.jsonl")}
        record_eval(ws, out, folder)
    out["rows"] = rows
    return out


def wants_preference_eval(ws, run: str | None, dataset: str | None) -> bool:
    """True when the data to evaluate is preference pairs: a pair file given, or a preference run's split."""
    if dataset:
        return preference_kind(ws, dataset) is not None
    if run:
        try:
            return loading.find_run(ws, run).config.get("objective") in PREFERENCE_OBJECTIVES + ("kto",)
        except UserError:
            return False
    return False


def print_result(out: dict, as_json: bool) -> None:
    rows = out.pop("rows")
    if as_json:
        print_json(out)
        return
    unpaired = out.get("format") == "unpaired"
    print(f"{out['model']} on {out['dataset']} ({out['split']}, {out['n']} {'labelled answers' if unpaired else 'pairs'})")
    print("\n".join(metric_lines(out, name_width=24)))
    for w in out.get("warnings") or []:
        print(f"warning: {w['message']}")
    if rows and unpaired:
        print("answers on the wrong side (log-likelihood per token" + (", minus the base's" if "reward" in rows[0] else "")
              + "):")
        for r in rows[:3]:
            score = r.get("reward", r["logp"])
            print(f"  {r['where']}: {'desirable' if r['label'] else 'undesirable'} {score:+.3f}: {r['completion'][:60]!r}")
    elif rows:
        print("pairs the model likes least (chosen minus rejected, nats per token):")
        for r in rows[:3]:
            print(f"  {r['where']}: margin {r['margin']:+.3f}: chosen {r['chosen'][:60]!r}, rejected {r['rejected'][:60]!r}")
    if out.get("output_dir"):
        print(f"saved: {out['output_dir']}")
