"""The Evaluate tab's LLM judge panel: grade the picked run's latest saved evaluation with a judge
model behind an OpenAI-compatible endpoint (a URL, or a run served from the Runs tab).

`tunestudio.evaluate.judge_run.judge_evaluation` does the work, as for `tunestudio eval --judge`;
the judge's verdicts are saved beside that evaluation (judge.json, judge.jsonl) and in the registry.
The API key is read from the UI process's environment (TUNESTUDIO_JUDGE_API_KEY or OPENAI_API_KEY),
never typed into the page.
"""

from __future__ import annotations

import gradio as gr

from tunestudio.evaluate.judge import MODES
from tunestudio.evaluate.judge_run import connect, judge_evaluation, latest_evaluation, load_rows
from tunestudio.ship.background import served_url
from tunestudio.webui.common.context import Context, err, msg, say
from tunestudio.webui.i18n.texts import DEFAULT, t
from tunestudio.webui.tabs.evaluate.tables import agreement_text, judge_examples_frame, judge_results_frame


def _modes(lang: str) -> list[tuple[str, str]]:
    return [(t(lang, f"judge.mode_name.{m}"), m) for m in MODES]


def build(ctx: Context, run) -> None:
    """The panel, below the evaluation's results; `run` is the tab's run picker."""
    ws = ctx.ws
    with gr.Accordion(t(DEFAULT, "judge.title"), open=False) as box:
        ctx.tr(box, label="judge.title")
        with gr.Row():
            endpoint = gr.Textbox(label=t(DEFAULT, "judge.endpoint"), info=t(DEFAULT, "judge.endpoint_info"),
                                  placeholder="http://127.0.0.1:8000/v1", elem_id="judge-endpoint", scale=3)
            model = gr.Textbox(label=t(DEFAULT, "judge.model"), info=t(DEFAULT, "judge.model_info"),
                               elem_id="judge-model", scale=2)
            ctx.tr(endpoint, label="judge.endpoint", info="judge.endpoint_info")
            ctx.tr(model, label="judge.model", info="judge.model_info")
        with gr.Row():
            mode = gr.Radio(choices=_modes(DEFAULT), value="both", label=t(DEFAULT, "judge.mode"),
                            info=t(DEFAULT, "judge.mode_info"), elem_id="judge-mode", scale=3)
            rubric = gr.File(label=t(DEFAULT, "judge.rubric"), file_types=[".txt", ".md"], elem_id="judge-rubric",
                             scale=2)
            go = gr.Button(t(DEFAULT, "judge.run"), variant="primary", elem_id="judge-run", scale=1)
            ctx.tr(mode, label="judge.mode", info="judge.mode_info", choices=_modes)
            ctx.tr(rubric, label="judge.rubric")
            ctx.tr(go, value="judge.run")
        message = gr.Markdown(elem_id="judge-message")
        results = gr.Dataframe(value=judge_results_frame(DEFAULT, None), interactive=False, elem_id="judge-results",
                               label=t(DEFAULT, "judge.results"))
        examples = gr.Dataframe(value=judge_examples_frame(DEFAULT, None), interactive=False, wrap=True,
                                elem_id="judge-examples", label=t(DEFAULT, "judge.examples"), max_height=420)
        ctx.tr(results, label="judge.results")
        ctx.tr(examples, label="judge.examples")

    def work(lang, run_id, url, model_name, how, rubric_file):
        if not run_id:
            return {"say": msg("evaluate.pick_run")}
        if not (url or "").strip():
            return {"say": msg("judge.need_endpoint")}
        try:
            ev = latest_evaluation(ws, run_id)
            judge = connect(served_url(ws, url.strip()), (model_name or "").strip() or None)
            out = judge_evaluation(ws, load_rows(ev["output_dir"]), judge, how or "both", rubric_file or None,
                                   run_id=run_id, folder=ev["output_dir"])
        except Exception as e:
            return {"say": err(e)}
        return {"out": out}

    def render(lang, spec):
        if "say" in spec:
            return say(lang, spec["say"]), judge_results_frame(lang, None), judge_examples_frame(lang, None)
        out = spec["out"]
        head = t(lang, "judge.done", model=out.get("judge_model") or "?", n=out["n"],
                 mode=t(lang, f"judge.mode_name.{out['mode']}"))
        head += "\n\n" + agreement_text(lang, out.get("agreement"))
        return head, judge_results_frame(lang, out), judge_examples_frame(lang, out["examples"])

    ctx.view([message, results, examples],
             empty=lambda lang: ["", judge_results_frame(lang, None), judge_examples_frame(lang, None)]).act(go.click, work, render, [run, endpoint, model, mode, rubric])
