"""Rate tab: blind A/B human evaluation over `tunestudio.evaluate.ratings`: make a session
(two sources answer the same prompts; which is which is hidden and shuffled per item), rate
item by item, and read the win-rate summary with its confidence intervals.
"""

from __future__ import annotations

import gradio as gr

from tunestudio.webui.common import Context, error_text, not_available, optional, run_choices
from tunestudio.webui.i18n import DEFAULT, t


def sources(ws) -> list[tuple[str, str]]:
    runs = run_choices(ws, finished_only=True)
    return ([(f"run · {label}", f"run:{rid}") for label, rid in runs]
            + [(f"base of · {label}", f"base:{rid}") for label, rid in runs]
            + [(f"model · {m}", f"model:{m}") for m in ws.list_models()])


def session_choices(ratings, ws) -> list[tuple[str, int]]:
    if not ws.db_path.is_file():
        return []
    return [(f"#{s['id']} {s['name'] or ''} · {s['rated']}/{s['items']}", s["id"]) for s in ratings.list_sessions(ws)]


def build(ctx: Context) -> None:
    ws = ctx.ws
    ratings = optional("tunestudio.evaluate.ratings", ctx=ctx)
    if ratings is None:
        note = gr.Markdown(not_available(DEFAULT, "tunestudio.evaluate.ratings"), elem_id="rate-missing")
        ctx.tr(note, value=lambda lang: not_available(lang, "tunestudio.evaluate.ratings"))
        return
    src = sources(ws)
    datasets = ws.list_datasets()
    with gr.Accordion(t(DEFAULT, "rate.new"), open=True) as new_box:
        ctx.tr(new_box, label="rate.new")
        with gr.Row():
            a = gr.Dropdown(choices=src, value=None, label=t(DEFAULT, "rate.source_a"), elem_id="rate-a")
            b = gr.Dropdown(choices=src, value=None, label=t(DEFAULT, "rate.source_b"), elem_id="rate-b")
            ctx.tr(a, label="rate.source_a")
            ctx.tr(b, label="rate.source_b")
        with gr.Row():
            data = gr.Dropdown(choices=datasets, value="demo-reviews.jsonl" if "demo-reviews.jsonl" in datasets else None,
                               label=t(DEFAULT, "rate.prompts_from"), elem_id="rate-dataset")
            n = gr.Number(value=10, precision=0, minimum=1, label=t(DEFAULT, "rate.n"), elem_id="rate-n")
            name = gr.Textbox(label=t(DEFAULT, "rate.name"), elem_id="rate-name")
            create = gr.Button(t(DEFAULT, "rate.create"), variant="primary", elem_id="rate-create")
            for comp, key in ((data, "prompts_from"), (n, "n"), (name, "name")):
                ctx.tr(comp, label=f"rate.{key}")
            ctx.tr(create, value="rate.create")
    with gr.Row():
        session = gr.Dropdown(choices=session_choices(ratings, ws), value=None, label=t(DEFAULT, "rate.session"),
                              elem_id="rate-session", scale=4)
        refresh = gr.Button(t(DEFAULT, "common.refresh"), scale=0, min_width=100)
        ctx.tr(session, label="rate.session")
        ctx.tr(refresh, value="common.refresh")
    message = gr.Markdown(elem_id="rate-message")
    prompt = gr.Textbox(label=t(DEFAULT, "rate.prompt"), interactive=False, lines=3, elem_id="rate-prompt")
    with gr.Row():
        answer_a = gr.Textbox(label="A", interactive=False, lines=6, elem_id="rate-answer-a")
        answer_b = gr.Textbox(label="B", interactive=False, lines=6, elem_id="rate-answer-b")
    comment = gr.Textbox(label=t(DEFAULT, "rate.comment"), elem_id="rate-comment")
    ctx.tr(prompt, label="rate.prompt")
    ctx.tr(comment, label="rate.comment")
    with gr.Row():
        pick_a = gr.Button(t(DEFAULT, "rate.a_better"), elem_id="rate-pick-a")
        tie = gr.Button(t(DEFAULT, "rate.tie"), elem_id="rate-pick-tie")
        pick_b = gr.Button(t(DEFAULT, "rate.b_better"), elem_id="rate-pick-b")
        for btn, key in ((pick_a, "a_better"), (tie, "tie"), (pick_b, "b_better")):
            ctx.tr(btn, value=f"rate.{key}")
    item = gr.State(None)
    result = gr.Markdown(elem_id="rate-summary")

    def show_next(lang, sid):
        lang = lang or DEFAULT
        if sid is None:
            return t(lang, "rate.pick_session"), "", "", "", None, ""
        try:
            it = ratings.next_item(ws, int(sid))
            summary = ratings.format_summary(ratings.summary(ws, int(sid)))
        except Exception as e:
            return error_text(lang, e), "", "", "", None, ""
        if it is None:
            return t(lang, "rate.all_done"), "", "", "", None, summary
        progress = t(lang, "rate.progress", done=it["done"], total=it["total"])
        return progress, ratings._display(it["prompt"]), it["a"], it["b"], it["item"], summary

    def on_create(lang, sa, sb, dataset, count, label):
        lang = lang or DEFAULT
        if not sa or not sb or not dataset:
            return t(lang, "rate.pick_sources"), gr.skip()
        try:
            prompts = ratings.prompts_from(ws, dataset=dataset, limit=int(count or 10))
            sid = ratings.create_session(ws, prompts, sa, sb, name=label or None)
        except Exception as e:
            return error_text(lang, e), gr.skip()
        return t(lang, "rate.created", id=sid, n=len(prompts)), gr.update(choices=session_choices(ratings, ws), value=sid)

    def rate(choice):
        def handler(lang, sid, idx, note):
            lang = lang or DEFAULT
            if sid is None or idx is None:
                return (t(lang, "rate.pick_session"),) + (gr.skip(),) * 4 + ("",)
            try:
                ratings.record_rating(ws, int(sid), int(idx), choice, comment=note or None)
            except Exception as e:
                return (error_text(lang, e),) + (gr.skip(),) * 4 + ("",)
            return show_next(lang, sid)[:5] + ("",)
        return handler

    view = [message, prompt, answer_a, answer_b, item, result]
    create.click(on_create, [ctx.lang, a, b, data, n, name], [message, session], api_visibility="private")
    session.change(show_next, [ctx.lang, session], view, api_visibility="private")
    refresh.click(lambda: (gr.update(choices=session_choices(ratings, ws)), gr.update(choices=sources(ws))),
                  None, [session, a], api_visibility="private")
    for btn, choice in ((pick_a, "A"), (tie, "tie"), (pick_b, "B")):
        btn.click(rate(choice), [ctx.lang, session, item, comment], [message, prompt, answer_a, answer_b, item, comment],
                  api_visibility="private").then(
            lambda lang, sid: show_next(lang, sid)[5] if sid is not None else "", [ctx.lang, session], [result],
            api_visibility="private")
