"""The Evaluate tab's benchmark panel: the picked run and its base on lm-evaluation-harness tasks,
as a table task | metric | base | tuned | Δ ± error (the error of Δ is sqrt(se_base² + se_tuned²)).

`tunestudio.evaluate.harness.run_benchmarks` does the work (the function behind `tunestudio eval
--benchmark`); the demo workspace's local task (training/benchmarks/demo-mc.yaml) is the default.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from tunestudio.demo.benchtask import TASK_FILE
from tunestudio.evaluate import benchmarks as B
from tunestudio.evaluate.harness import run_benchmarks
from tunestudio.webui.common.context import Context, err, msg, say
from tunestudio.webui.i18n.texts import DEFAULT, t

COLUMNS = ["task", "metric", "base", "tuned", "delta"]


def benchmark_frame(lang: str, rows: list[dict]) -> pd.DataFrame:
    """benchmarks.table's rows as the panel shows them; ⚠ where the drop is beyond 2 errors."""
    cells = []
    for r in rows:
        task, metric, base, tuned, delta = B.row_cells(r)
        cells.append([task, metric, base, tuned, delta.replace(" FORGETTING", " ⚠")])
    return pd.DataFrame(cells, columns=[t(lang, f"evaluate.col_benchmark.{c}") for c in COLUMNS])


def build(ctx: Context, run, limit) -> None:
    """The panel, under the tab's run picker and row limit (`run`, `limit`: the tab's inputs)."""
    ws = ctx.ws
    default = TASK_FILE if (ws.benchmarks_dir / TASK_FILE).is_file() else ""
    with gr.Accordion(t(DEFAULT, "evaluate.benchmarks"), open=False) as box:
        ctx.tr(box, label="evaluate.benchmarks")
        with gr.Row():
            tasks = gr.Textbox(value=default, label=t(DEFAULT, "evaluate.benchmarks_tasks"),
                               info=t(DEFAULT, "evaluate.benchmarks_tasks_info"), elem_id="bench-tasks", scale=3)
            # no minimum=: work() says what is wrong (Gradio's red pill would hide the last table)
            fewshot = gr.Number(value=0, precision=0, label=t(DEFAULT, "evaluate.benchmarks_fewshot"),
                                elem_id="bench-fewshot", scale=1)
            go = gr.Button(t(DEFAULT, "evaluate.benchmarks_run"), elem_id="bench-tasks-run", scale=0, min_width=160)
            ctx.tr(tasks, label="evaluate.benchmarks_tasks", info="evaluate.benchmarks_tasks_info")
            ctx.tr(fewshot, label="evaluate.benchmarks_fewshot")
            ctx.tr(go, value="evaluate.benchmarks_run")
        message = gr.Markdown(elem_id="bench-tasks-message")
        table = gr.Dataframe(value=benchmark_frame(DEFAULT, []), interactive=False, elem_id="bench-tasks-table")

    def work(lang, run_id, names, k, n):
        if not run_id or not (names or "").strip():
            return {"say": msg("evaluate.benchmarks_pick")}
        if k is not None and k < 0:
            return {"say": msg("common.at_least", field=msg("evaluate.benchmarks_fewshot"), least=0, value=f"{k:g}")}
        if n is not None and n < 1:
            return {"say": msg("common.at_least", field=msg("evaluate.limit"), least=1, value=f"{n:g}")}
        try:
            out = run_benchmarks(ws, names, run=run_id, num_fewshot=int(k) if k is not None else None,
                                 limit=int(n) if n else None)
        except Exception as e:
            return {"say": err(e)}
        return {"model": out["run_id"], "tasks": ", ".join(out["tasks"]), "rows": out["table"]}

    def render(lang, spec):
        if "say" in spec:
            return say(lang, spec["say"]), benchmark_frame(lang, [])
        return (t(lang, "evaluate.benchmarks_done", model=spec["model"], tasks=spec["tasks"]),
                benchmark_frame(lang, spec["rows"]))

    ctx.view([message, table], empty=lambda lang: ["", benchmark_frame(lang, [])]).act(go.click, work, render, [run, tasks, fewshot, limit])
