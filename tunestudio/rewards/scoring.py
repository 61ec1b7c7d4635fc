"""Generating completions and scoring them with rewards: `reward test` (sampled, before training) and
`eval --rewards` (greedy, the mean of each reward, base vs tuned).

Prompts are asked exactly as generation and training ask them (evaluate/generate.py: the chat
template, the training prefix, the template's stop tokens).
"""

from __future__ import annotations

import math

from tunestudio.evaluate.generate import Sampling, generate_timed
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
    from tunestudio.evaluate import loading

    rows = spread(load_prompts(ws.dataset_path(dataset)), n)
    with RewardSet(ws, rewards_spec, timeout, regex, max_chars) as rewards:
        rewards.start()
        m, tok, info = loading.load_model(ws, run=run, model=model)
        sampling = sampling or Sampling(max_new_tokens=64, temperature=1.0, seed=0)
        result = score_model(m, tok, rows, rewards, sampling)
        return {**result, "model": info["label"], "dataset": dataset, "n": len(rows),
                "rewards": [{"name": name, "weight": w} for name, w in zip(rewards.names, rewards.weights)],
                "sampling": sampling.to_dict()}


def reward_eval(ws, rewards_spec: str, dataset: str, run: str | None = None, model: str | None = None,
                compare_base: bool = False, limit: int | None = None, max_new_tokens: int = 64,
                timeout: float = 30.0, regex: str = "", max_chars: int = 200) -> dict:
    """The mean of each reward over greedy completions of the dataset's prompts (all, or the first
    `limit`), with `compare_base` also for the run's base (its parent run's model for a run started
    --from-run). Returns {"metrics": {"reward/NAME": mean, "reward": weighted total}, "n",
    ["base_metrics", "deltas"], "rows"}."""
    from tunestudio.evaluate import loading

    rows = load_prompts(ws.dataset_path(dataset))[:limit or None]
    sampling = Sampling(max_new_tokens=max_new_tokens)  # greedy: the same answer every time
    sides = [("tuned", dict(run=run, model=model))] + ([("base", dict(run=run, base=True))] if compare_base else [])
    out: dict = {"n": len(rows), "dataset": dataset}
    with RewardSet(ws, rewards_spec, timeout, regex, max_chars) as rewards:
        for label, kw in sides:
            m, tok, info = loading.load_model(ws, **kw)
            res = score_model(m, tok, rows, rewards, sampling)
            metrics = {f"reward/{k}": v for k, v in res["means"].items() if k != "total"}
            metrics["reward"] = res["means"]["total"]
            metrics["stopped"] = res["stopped"]
            if label == "tuned":
                out.update(metrics=metrics, model=info["label"], rows=res["rows"])
            else:
                out["base_metrics"] = metrics
                out["base_model"] = info["label"]
                for row, b in zip(out["rows"], res["rows"]):
                    row["base_completion"], row["base_total"] = b["completion"], b["total"]
            del m
            loading.release_memory()
    if compare_base:
        out["deltas"] = {k: out["metrics"][k] - out["base_metrics"][k] for k in out["metrics"]}
    out["primary_metric"] = "reward"
    return out
