"""Generating completions and scoring them with rewards: `reward test` (sampled, before training) and
`eval --rewards` (greedy, the mean of each reward, base vs tuned).

Prompts are asked exactly as generation and training ask them (models/generate.py: the chat
template, the training prefix, the template's stop tokens).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.data.split import sha256_file
from tunestudio.models import loading
from tunestudio.models.generate import Sampling, generate_timed
from tunestudio.rewards import RewardSet
from tunestudio.rewards.data import PromptRow, load_prompts


def spread(rows: list, n: int) -> list:
    """`n` rows spread evenly over `rows` (all of them when n <= 0 or n >= len(rows))."""
    if n <= 0 or n >= len(rows):
        return list(rows)
    return [rows[math.floor(i * len(rows) / n)] for i in range(n)]


def score_model(model, tok, rows: list[PromptRow], rewards: RewardSet, sampling: Sampling,
                batch_size: int = 8) -> dict:
    """Completions of `rows` and each reward of each. Returns {"rows": [{"prompt", "completion",
    "reference", "rewards": {name: float}, "total"}], "means": {name: float, "total": float},
    "stopped": share of completions that ended on their own}."""
    prompts = [r.prompt for r in rows]
    gen = generate_timed(model, tok, prompts, sampling, batch_size=batch_size)
    row_kw = [r.row for r in rows]
    scores = rewards.score_all(prompts, gen.texts, row_kw)
    totals = rewards.total(scores)
    out = [{"prompt": p if isinstance(p, str) else p[-1]["content"], "completion": c,
            "reference": kw.get("reference"), "where": kw.get("_where"),
            "rewards": {n: scores[n][i] for n in rewards.names}, "total": totals[i]}
           for i, (p, c, kw) in enumerate(zip(prompts, gen.texts, row_kw))]
    means = {n: sum(v) / len(v) for n, v in scores.items()}
    means["total"] = sum(totals) / len(totals)
    return {"rows": out, "means": means, "stopped": sum(gen.stopped) / len(gen.stopped)}


def reward_test(ws, rewards_spec: str, dataset: str, run: str | None = None, model: str | None = None,
                n: int = 8, sampling: Sampling | None = None, timeout: float = 30.0, regex: str = "",
                max_chars: int = 200) -> dict:
    """Sample one completion for each of `n` prompts (spread over the dataset) and score it with every
    reward: what a GRPO run would see at its first step. The reward files are checked (and imported
    in their worker) before the model loads, so a broken file fails fast."""

    rows = spread(load_prompts(ws.dataset_path(dataset)), n)
    with RewardSet(ws, rewards_spec, timeout, regex, max_chars) as rewards:
        rewards.start()
        m, tok, info = loading.load_model(ws, run=run, model=model)
        sampling = sampling or Sampling(max_new_tokens=64, temperature=1.0, seed=0)
        result = score_model(m, tok, rows, rewards, sampling)
        return {**result, "model": info["label"], "dataset": dataset, "n": len(rows),
                "rewards": [{"name": name, "weight": w} for name, w in zip(rewards.names, rewards.weights)],
                "sampling": sampling.to_dict()}


def eval_rows(ws, run, dataset: str | None, split: str = "test") -> tuple[list[PromptRow], str]:
    """The prompts to evaluate on: `dataset`'s, or (without one) the `split` a GRPO run recorded in
    its split.json, so held-out prompts stay held out. Returns (rows, what they are, for the report)."""
    if dataset:
        return load_prompts(ws.dataset_path(dataset)), dataset
    if run is None:
        raise UserError("--rewards needs --dataset (prompt rows), or --run of a GRPO run (its test split)",
                        "reward_eval_needs_prompts")
    info_path = run.folder / "split.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    if info.get("format") != "prompts":
        raise UserError(f"run {run.name} did not train on prompts (not a GRPO run): give --dataset",
                        "reward_eval_not_grpo", run=run.name)
    f = info["files"]["all"]
    path = ws.root / f["path"] if not Path(f["path"]).is_absolute() else Path(f["path"])

    if not path.is_file() or sha256_file(path) != f["sha256"]:
        raise UserError(f"{f['path']} changed or is gone since run {run.name} split it: give --dataset",
                        "reward_eval_prompts_changed", path=f["path"], run=run.name)
    rows = load_prompts(path)
    keys = ("train", "val", "test") if split == "all" else (split,)
    if any(k not in info["rows"] for k in keys):
        raise UserError(f"--split {split}: choose test, val, train or all", "reward_eval_split_bad", split=split)
    picked = sorted(i for k in keys for i in info["rows"][k])
    if not picked:
        raise UserError(f"run {run.name} has no {split} prompts (--test-split 0?): give --dataset",
                        "reward_eval_split_empty", run=run.name, split=split)
    return [rows[i] for i in picked], f"{f['name']} ({split} split of run {run.name})"


def reward_eval(ws, rewards_spec: str | None, dataset: str | None, run: str | None = None, model: str | None = None,
                compare_base: bool = False, limit: int | None = None, max_new_tokens: int = 64, split: str = "test",
                timeout: float = 30.0, regex: str = "", max_chars: int = 200, batch_size: int = 8,
                temperature: float = 0.0, samples: int = 1, seed: int = 0, save: bool = True) -> dict:
    """The mean of each reward over greedy completions of the prompts (`dataset`'s, or a GRPO run's
    recorded `split`; the first `limit`), with `compare_base` also for the run's base (the model it
    started from: its parent run's for a run started --from-run). `rewards_spec` None: the run's own
    rewards. Returns {"metrics": {"reward/NAME": mean, "reward": weighted total, "stopped"}, "n",
    ["base_metrics", "deltas"], "rows"}. `temperature` above 0 samples instead (seeded, `samples` answers
    per prompt): the reward GRPO itself optimises, measured on held-out prompts. `save` False
    (`eval --no-save`): nothing is written, not even the run's eval_rewards.json."""

    if bool(run) == bool(model):
        raise UserError("give exactly one of --run RUN or --model M", "reward_eval_run_or_model")
    if compare_base and not run:
        raise UserError("--compare-base needs --run RUN (the base is the model that run started from)",
                        "reward_eval_compare_needs_run")
    info = loading.find_run(ws, run) if run else None
    spec = rewards_spec or (info.config.get("rewards") if info else None)
    if not spec:
        raise UserError("--rewards: say which rewards to score with (this run has none recorded)",
                        "reward_eval_no_rewards", option="rewards")
    rows, where = eval_rows(ws, info, dataset, split)
    rows = rows[:limit or None]
    if temperature > 0:
        if samples < 1:
            raise UserError(f"--samples must be at least 1 (got {samples})", "reward_eval_samples_too_few",
                            value=samples)
        rows = [r for r in rows for _ in range(samples)]
        sampling = Sampling(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    else:
        sampling = Sampling(max_new_tokens=max_new_tokens)  # greedy: the same answer every time
    sides = [("tuned", dict(run=run, model=model))] + ([("base", dict(run=run, base=True))] if compare_base else [])
    out: dict = {"n": len(rows), "dataset": where, "rewards": spec,
                 "decoding": f"sampled at temperature {temperature:g}, {samples} per prompt" if temperature > 0 else "greedy"}
    with RewardSet(ws, spec, timeout, regex, max_chars) as rewards:
        rewards.start()
        for label, kw in sides:
            m, tok, minfo = loading.load_model(ws, **kw)
            res = score_model(m, tok, rows, rewards, sampling, batch_size)
            metrics = {f"reward/{k}": v for k, v in res["means"].items() if k != "total"}
            metrics["reward"] = res["means"]["total"]
            metrics["stopped"] = res["stopped"]
            if label == "tuned":
                out.update(metrics=metrics, model=minfo["label"], rows=res["rows"])
            else:
                out["base_metrics"] = metrics
                out["base_model"] = minfo["label"]
                for row, b in zip(out["rows"], res["rows"]):
                    row["base_completion"], row["base_total"] = b["completion"], b["total"]
            del m
            loading.release_memory()
    if compare_base:
        out["deltas"] = {k: out["metrics"][k] - out["base_metrics"][k] for k in out["metrics"]}
    out["primary_metric"] = "reward"
    if info is not None and save:  # beside the run's other evaluations
        (info.folder / "eval_rewards.json").write_text(json.dumps({k: v for k, v in out.items()}, indent=1,
                                                                   default=str) + "\n")
        out["output"] = str(info.folder / "eval_rewards.json")
    return out
