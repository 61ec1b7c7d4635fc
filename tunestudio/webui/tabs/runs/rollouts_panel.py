"""The Runs tab's GRPO rollouts: for run A, the completions GRPO sampled at a chosen step, with each
reward, the weighted total and the advantage (the total minus its prompt group's mean, scaled), read
from the run's rollouts.jsonl (train/grpo.py writes one line per completion per generation step).

Runs of other objectives have no rollouts: the panel says so and shows no table.
"""

from __future__ import annotations

import json

import gradio as gr
import pandas as pd

from tunestudio.webui.common.context import Context, err, say, shown
from tunestudio.webui.i18n.texts import DEFAULT, t

ROLLOUTS = "rollouts.jsonl"   # the name train/grpo.py writes (grpo.ROLLOUTS; importing it loads nothing heavy)


def read_rollouts(path) -> dict[int, list[dict]]:
    """{step: [rollout, ...]} of a rollouts.jsonl, steps ascending; {} when the file is missing.
    A line cut off by a run still writing it (the last one) is skipped."""
    by_step: dict[int, list[dict]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    for line in lines:
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(r, dict) and isinstance(r.get("step"), int):
            by_step.setdefault(r["step"], []).append(r)
    return dict(sorted(by_step.items()))


def step_table(rollouts: list[dict], lang: str) -> pd.DataFrame:
    """One row per completion of a step: group, prompt, completion, each reward (by its name), total
    reward, advantage; headers in `lang`."""
    names = list(dict.fromkeys(k for r in rollouts for k in (r.get("rewards") or {})))
    cols = [t(lang, f"rollouts_view.col.{c}") for c in ("group", "prompt", "completion")] + names + \
        [t(lang, "rollouts_view.col.reward"), t(lang, "rollouts_view.col.advantage")]
    rows = [[r.get("group"), _prompt_text(r.get("prompt")), r.get("completion", ""),
             *(_num(r.get("rewards", {}).get(n)) for n in names), _num(r.get("reward")), _num(r.get("advantage"))]
            for r in rollouts]
    return pd.DataFrame(rows, columns=cols)


def _prompt_text(p) -> str:
    if isinstance(p, list) and p and isinstance(p[-1], dict):   # a conversation: its last message
        return str(p[-1].get("content", ""))
    return "" if p is None else str(p)


def _num(v):
    return round(v, 4) if isinstance(v, (int, float)) else v


def view_run(ws, lang: str, run_id: str | None, step=None):
    """(message, step picker update, table update) for run `run_id` at `step` (None: the last step)."""
    if not run_id:
        return "", gr.update(visible=False), shown(None)
    data = read_rollouts(ws.runs_dir / run_id / ROLLOUTS)
    if not data:
        objective = _objective(ws, run_id)
        key = "rollouts_view.empty" if objective == "grpo" else "rollouts_view.none"
        return t(lang, key), gr.update(visible=False), shown(None)
    steps = list(data)
    pick = int(step) if step is not None and int(step) in data else steps[-1]
    rows = data[pick]
    mean = sum(r.get("reward") or 0.0 for r in rows) / len(rows)
    head = t(lang, "rollouts_view.shown", step=pick, first=steps[0], last=steps[-1], n=len(rows),
             groups=len({r.get("group") for r in rows}), mean=f"{mean:.3f}")
    picker = gr.update(choices=steps, value=pick, visible=True, label=t(lang, "rollouts_view.step"))
    return head, picker, shown(step_table(rows, lang))


def _objective(ws, run_id: str) -> str | None:
    """The run's objective from its config.yaml (None when unreadable)."""
    import yaml

    try:
        cfg = yaml.safe_load((ws.runs_dir / run_id / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    return cfg.get("objective", "sft") if isinstance(cfg, dict) else None


def build(ctx: Context, run_pick) -> None:
    """The rollouts of the run chosen in `run_pick` (the Runs tab's run A), with a step picker."""
    ws = ctx.ws
    with gr.Accordion(t(DEFAULT, "rollouts_view.title"), open=False, elem_id="rollouts-panel") as box:
        ctx.tr(box, label="rollouts_view.title")
        message = gr.Markdown(elem_id="rollouts-message")
        step = gr.Dropdown(choices=[], value=None, visible=False, elem_id="rollouts-step",
                           label=t(DEFAULT, "rollouts_view.step"))
        table = gr.Dataframe(interactive=False, wrap=True, visible=False, elem_id="rollouts-table", max_chars=160)

    def show(lang, run_id, at):
        try:
            return view_run(ws, lang, run_id, at)
        except Exception as e:
            return say(lang, err(e)), gr.update(visible=False), shown(None)

    def show_last(lang, run_id):
        return show(lang, run_id, None)

    view = ctx.view([message, step, table])
    view.on(run_pick.change, show_last, [run_pick])
    view.on(step.select, show, [run_pick, step])
