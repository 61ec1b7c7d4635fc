"""Rewards for GRPO: built-in checks and the user's reward files, combined with weights.

A reward spec is one string shared by the CLI (`--rewards`), YAML and the web UI:
    "rewards/format.py:1.0,exact_match:0.5"
a comma list of NAME[:WEIGHT] (weight 1.0 when left out), where NAME is a built-in (exact_match,
regex, json_valid, length_penalty) or a .py file in the workspace defining
    def reward(prompt, completion, **row) -> float
`row` holds the dataset row's other columns (`reference` among them). User files run in a separate
process, the process box (process_box.py: time and memory limits, not a sandbox); built-ins run here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tunestudio.core.errors import UserError, error_record
from tunestudio.rewards.builtins import NAMES, builtin
from tunestudio.rewards.process_box import RewardWorker, reward_file


@dataclass
class RewardSpec:
    name: str        # a built-in's name or the file as the user wrote it (rewards/x.py)
    weight: float
    is_file: bool


def parse_spec(spec: str) -> list[RewardSpec]:
    """The reward list of `spec` ("rewards/a.py:1.0,exact_match:0.5"). UserError on an unknown
    built-in, a bad weight or an empty list."""

    out = []
    for part in (p.strip() for p in (spec or "").split(",")):
        if not part:
            continue
        name, _, weight = part.rpartition(":") if ":" in part else (part, "", "1")
        name = name.strip()
        try:
            w = float(weight)
        except ValueError:
            raise UserError(f"--rewards: '{part}': the weight after ':' must be a number", "reward_weight_bad",
                            option="rewards", value=part) from None
        if name.endswith(".py"):
            out.append(RewardSpec(name, w, True))
        elif name in NAMES:
            out.append(RewardSpec(name, w, False))
        else:
            raise UserError(f"--rewards: '{name}' is neither a built-in reward ({', '.join(NAMES)}) nor a "
                            "reward file (rewards/NAME.py)", "reward_unknown", option="rewards", value=name,
                            builtins=", ".join(NAMES))
    if not out:
        raise UserError("--rewards: no reward given: e.g. --rewards rewards/my_reward.py or exact_match",
                        "rewards_empty", option="rewards")
    if len({r.name for r in out}) < len(out):
        raise UserError("--rewards: a reward is listed twice", "reward_listed_twice", option="rewards")
    return out


def short_name(name: str) -> str:
    """The name a reward is logged under: the file's stem (rewards/fmt.py -> fmt) or the built-in."""
    return Path(name).stem if name.endswith(".py") else name


class RewardSet:
    """The rewards of a spec, ready to score. `score_all` -> {short name: [float per completion]}.
    Use as a context manager (or call close) so the worker process ends with the run."""

    def __init__(self, ws, spec: str, timeout: float = 30.0, regex: str = "", max_chars: int = 200):
        self.specs = parse_spec(spec)
        self.names = [short_name(s.name) for s in self.specs]
        if len(set(self.names)) < len(self.names):
            raise UserError("--rewards: two rewards share a name (the file stem): rename one", "rewards_share_name",
                            option="rewards")
        self.weights = [s.weight for s in self.specs]
        files = {s.name: reward_file(ws, s.name) for s in self.specs if s.is_file}
        self._builtins = {}
        for s in self.specs:
            if not s.is_file:
                try:
                    self._builtins[s.name] = builtin(s.name, regex, max_chars)
                except ValueError as e:
                    raise UserError(str(e), "reward_error", error=error_record(e)) from None
        self.worker = RewardWorker(files, ws.root, timeout) if files else None

    def start(self) -> None:
        """Import the reward files in their worker now: UserError (file:line) when one is broken."""
        if self.worker is not None:
            self.worker.start()

    def score(self, spec: RewardSpec, prompts: list, completions: list[str], rows: list[dict]) -> list[float]:
        """One reward's score of each completion (prompts, completions and rows are parallel lists)."""
        if spec.is_file:
            return self.worker.score(spec.name, prompts, completions, rows)
        fn = self._builtins[spec.name]
        out = []
        for p, c, r in zip(prompts, completions, rows):
            try:
                out.append(float(fn(p, c, **{k: v for k, v in r.items() if k != "_where"})))
            except ValueError as e:
                raise UserError(f"{spec.name}: {e}" + (f" (dataset row {r['_where']})" if r.get("_where") else ""),
                                "builtin_reward_failed_on_row" if r.get("_where") else "builtin_reward_failed",
                                reward=spec.name, error=error_record(e), row=r.get("_where")) from None
        return out

    def score_all(self, prompts: list, completions: list[str], rows: list[dict]) -> dict[str, list[float]]:
        return {n: self.score(s, prompts, completions, rows) for n, s in zip(self.names, self.specs)}

    def total(self, scores: dict[str, list[float]]) -> list[float]:
        """The weighted sum per completion, as GRPO combines them."""
        n = len(next(iter(scores.values()), []))
        return [sum(w * scores[name][i] for name, w in zip(self.names, self.weights)) for i in range(n)]

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
