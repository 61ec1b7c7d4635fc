"""Evaluate tab: score a run on its test split or a held-out file (heldout.py), base vs fine-tuned with deltas, the
per-example table worst first, downloads, the forgetting check on a guard set (demo-general.jsonl
when the workspace has it); standard benchmarks (benchmarks.py); and the leaderboard of several base models.

`tunestudio.evaluate.run_eval.evaluate` and `tunestudio.evaluate.bench.bench_models` do the
work (the same functions as `tunestudio eval` and `tunestudio bench-models`).
"""

from __future__ import annotations

import gradio as gr

from tunestudio.demo import demo_pick
from tunestudio.evaluate.bench import bench_models as rank_models
from tunestudio.evaluate.run_eval import evaluate as run_eval
from tunestudio.webui.common.context import (
    Context,
    download_copy,
    err,
    metric_label,
    msg,
    run_choices,
    say,
)
from tunestudio.webui.i18n.texts import DEFAULT, engine_warning, t
from tunestudio.webui.tabs.evaluate import benchmarks as benchmark_panel
from tunestudio.webui.tabs.evaluate import judge as judge_panel
from tunestudio.webui.tabs.evaluate.heldout import build_test_file
from tunestudio.webui.tabs.evaluate.tables import (
    EXAMPLE_WIDTHS,
    GUARD_DEFAULT,
    METRICS,
    examples_frame,
    guard_frame,
    guard_text,
    leaderboard_frame,
    metrics_frame,
    no_result,
    result_lines,
    split_choices,
    split_word,
)


def build(ctx: Context) -> None:
    ws = ctx.ws
    opts = run_choices(ws, finished_only=True)
    with gr.Row():
        run = gr.Dropdown(choices=opts, value=opts[0][1] if opts else None, label=t(DEFAULT, "evaluate.run"),
                          elem_id="eval-run", scale=3)
        split = gr.Dropdown(choices=split_choices(DEFAULT), value="test", label=t(DEFAULT, "evaluate.split"),
                            elem_id="eval-split", scale=1)
        limit = gr.Number(value=50, precision=0, label=t(DEFAULT, "evaluate.limit"), elem_id="eval-limit",
                          scale=1)   # run_work checks it (no Gradio minimum=: its red pill hides the result)
        ctx.tr(run, label="evaluate.run", choices=lambda lang: run_choices(ws, finished_only=True, lang=lang))
        ctx.tr(split, label="evaluate.split", choices=split_choices)
        ctx.tr(limit, label="evaluate.limit", info="evaluate.limit_info")
    test_file = build_test_file(ctx, limit)
    with gr.Row():
        # none ticked: the engine chooses from the answers (metric_choice.py), as `tunestudio eval` does
        metrics = gr.CheckboxGroup(choices=[(metric_label(DEFAULT, m), m) for m in METRICS], value=[],
                                   label=t(DEFAULT, "evaluate.metrics"), info=t(DEFAULT, "evaluate.metrics_info"),
                                   elem_id="eval-metrics", scale=3)
        custom = gr.File(label=t(DEFAULT, "evaluate.custom"), file_types=[".py"], elem_id="eval-custom", scale=2)
        ctx.tr(metrics, label="evaluate.metrics", info="evaluate.metrics_info", choices=lambda lang: [(metric_label(lang, m), m) for m in METRICS])
        ctx.tr(custom, label="evaluate.custom")
    with gr.Row():
        compare_base = gr.Checkbox(value=True, label=t(DEFAULT, "evaluate.compare_base"), elem_id="eval-compare-base")
        go = gr.Button(t(DEFAULT, "evaluate.run_button"), variant="primary", elem_id="eval-run-button")
        ctx.tr(compare_base, label="evaluate.compare_base")
        ctx.tr(go, value="evaluate.run_button")
    with gr.Row():
        datasets = ws.list_datasets()
        default_guard = GUARD_DEFAULT if GUARD_DEFAULT in datasets else None
        guard_on = gr.Checkbox(value=default_guard is not None, label=t(DEFAULT, "evaluate.guard_on"),
                               info=t(DEFAULT, "evaluate.guard_on_info"), elem_id="eval-guard-on", scale=1)
        guard = gr.Dropdown(choices=datasets, value=default_guard, label=t(DEFAULT, "evaluate.guard"),
                            info=t(DEFAULT, "evaluate.guard_info"), elem_id="eval-guard-dataset", scale=2)
        ctx.tr(guard_on, label="evaluate.guard_on", info="evaluate.guard_on_info")
        ctx.tr(guard, label="evaluate.guard", info="evaluate.guard_info")
        ctx.dataset_lists.append(guard)
    message = gr.Markdown(elem_id="eval-message")
    metric_table = gr.Dataframe(value=metrics_frame(DEFAULT, {}), interactive=False, elem_id="eval-metrics-table",
                                label=t(DEFAULT, "evaluate.results"))
    examples = gr.Dataframe(value=examples_frame([]), interactive=False, elem_id="eval-examples", wrap=True,
                            column_widths=EXAMPLE_WIDTHS, label=t(DEFAULT, "evaluate.examples"), max_height=420)
    files = gr.File(file_count="multiple", interactive=False, label=t(DEFAULT, "evaluate.downloads"),
                    elem_id="eval-downloads")
    guard_table = gr.Dataframe(value=guard_frame(DEFAULT, None), interactive=False, elem_id="eval-guard", wrap=True,
                               label=t(DEFAULT, "evaluate.guard_rows"), max_height=420)
    for comp, key in ((metric_table, "results"), (examples, "examples"), (files, "downloads"),
                      (guard_table, "guard_rows")):
        ctx.tr(comp, label=f"evaluate.{key}")

    judge_panel.build(ctx, run)   # the LLM judge on the run's latest saved evaluation
    benchmark_panel.build(ctx, run, limit)   # lm-evaluation-harness tasks on the run and its base

    with gr.Accordion(t(DEFAULT, "evaluate.bench"), open=False) as bench_box:
        ctx.tr(bench_box, label="evaluate.bench")
        models = ws.list_models()
        with gr.Row():
            bench_models = gr.Dropdown(choices=models, value=models[:1], multiselect=True, allow_custom_value=True,
                                       label=t(DEFAULT, "evaluate.bench_models"), elem_id="bench-models", scale=3)
            bench_data = gr.Dropdown(choices=datasets, value=demo_pick(ws)["dataset"] if demo_pick(ws)["dataset"] in datasets
                                     else None, label=t(DEFAULT, "training.dataset"), elem_id="bench-dataset", scale=2)
            bench_go = gr.Button(t(DEFAULT, "evaluate.bench_run"), elem_id="bench-run", scale=0, min_width=140)
            ctx.tr(bench_models, label="evaluate.bench_models")
            ctx.model_lists.append((bench_models, lambda lang: ws.list_models()))
            ctx.tr(bench_data, label="training.dataset")
            ctx.dataset_lists.append(bench_data)
            ctx.tr(bench_go, value="evaluate.bench_run")
        bench_msg = gr.Markdown()
        leaderboard = gr.Dataframe(value=leaderboard_frame(DEFAULT, []), interactive=False, elem_id="bench-leaderboard")

    def run_work(lang, run_id, split_name, n, names, custom_file, with_base, check_guard, guard_name, test_name):
        if not run_id:
            return {"say": msg("evaluate.pick_run")}, [None]
        if n is not None and n < 1:   # empty: every row
            return {"say": msg("common.at_least", field=msg("evaluate.limit"), least=1, value=f"{n:g}")}, [None]
        try:   # a held-out file is scored whole; the split picker is for the run's own data
            out = run_eval(ws, run=run_id, dataset=test_name or None, split=None if test_name else split_name,
                           metrics=list(names or []) or None,
                           metric_file=custom_file or None, compare_base=bool(with_base), limit=int(n) if n else None,
                           guard_dataset=guard_name if check_guard and guard_name else None, progress=False)
        except Exception as e:
            return {"say": err(e)}, [None]
        downloads = [download_copy(p) for p in (out.get("files") or {}).values()]
        keep = {k: out.get(k) for k in ("model", "run_id", "n", "split", "primary_metric", "warnings", "warning_parts", "metrics",
                                        "base_metrics", "deltas", "rows", "guard", "metric_notes", "dataset")}
        keep["test_file"] = test_name or None
        keep["metric_notes"] = [{"code": n.code, "message": str(n), **n.fields} for n in out.get("metric_notes") or []]
        return {"out": keep}, [downloads or None]

    def run_render(lang, spec):
        if "say" in spec:
            return say(lang, spec["say"]), *no_result(lang)[:3]
        out = spec["out"]
        # a whole held-out file by its name; the run's own data (picked as a file too) by its split
        whole_file = out.get("split") == "all" and out.get("test_file")
        key = "evaluate.done_file" if whole_file and out.get("primary_metric") else (
            "evaluate.done" if out.get("primary_metric") else "evaluate.done_unscored")
        head = t(lang, key,
                 # a run by its id (the engine's label says "run <id>" in English), a model by its path
                 model=out.get("run_id") or out.get("model"), n=out["n"], split=split_word(lang, out.get("split")),
                 primary=metric_label(lang, out["primary_metric"]) if out.get("primary_metric") else None,
                 dataset=out.get("dataset"))
        head += result_lines(lang, out)
        if out.get("guard"):
            head += "\n\n" + guard_text(lang, out["guard"])
        if out.get("warnings"):
            worded = {p["message"]: p for p in out.get("warning_parts") or []}
            head += "\n\n" + "\n".join(f"- ⚠ {engine_warning(lang, worded.get(w, w))}" for w in out["warnings"])
        return (head, metrics_frame(lang, out), examples_frame(out.get("rows") or [], lang=lang),
                guard_frame(lang, out.get("guard")))

    def bench_work(lang, names, dataset):
        if not names or not dataset:
            return {"say": msg("evaluate.bench_pick")}
        try:
            out = rank_models(ws, list(names), dataset, limit=50, progress=False)   # (the dropdown is bench_models)
        except Exception as e:
            return {"say": err(e)}
        return {"n": out.get("n"), "ranked": out.get("ranked_by", ""), "rows": out.get("leaderboard") or []}

    def bench_render(lang, spec):
        if "say" in spec:
            return say(lang, spec["say"]), leaderboard_frame(lang, [])
        return t(lang, "evaluate.bench_done", n=spec["n"], ranked=spec["ranked"]), leaderboard_frame(lang, spec["rows"])

    def refresh(lang, current, picked):
        opts = run_choices(ws, finished_only=True, lang=lang)
        ids = [v for _, v in opts]
        # The newest finished run until the user picks one; then their pick while it exists.
        return gr.update(choices=opts, value=current if picked and current in ids else (ids[0] if ids else None))

    # the results and the leaderboard are said again in a newly chosen language (not computed again)
    ctx.view([message, metric_table, examples, guard_table], empty=lambda lang: ["", *no_result(lang)[:3]]).act(
        go.click, run_work, run_render, [run, split, limit, metrics, custom, compare_base, guard_on, guard, test_file],
        extra=[files])
    ctx.view([bench_msg, leaderboard], empty=lambda lang: ["", leaderboard_frame(lang, [])]).act(bench_go.click, bench_work, bench_render, [bench_models, bench_data])
    if ctx.current_tab is not None:
        picked = gr.State(False)
        run.input(lambda: True, None, [picked], api_visibility="private", queue=False)
        ctx.shared["eval_pick"] = (run, picked)   # the Runs tab's "Evaluate it" picks a run here
        ctx.current_tab.select(refresh, [ctx.lang, run, picked], [run], api_visibility="private")
