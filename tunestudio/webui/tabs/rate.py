"""Rate tab: blind A/B human evaluation over `tunestudio.evaluate.ratings`: make a session
(two sources answer the same prompts; which is which is hidden and shuffled per item), rate
item by item, and read the win-rate summary with its confidence intervals.
"""

from __future__ import annotations

import gradio as gr

from tunestudio.demo import demo_pick
from tunestudio.evaluate import ratings
from tunestudio.webui.common.context import Context, error_text, number_problem, run_choices
from tunestudio.webui.i18n.texts import DEFAULT, t


def sources(ws, lang: str | None = None) -> list[tuple[str, str]]:
    """(label, value) for the A/B source dropdowns: finished runs, their base models, and models
    under models/; the labels' kind prefix in `lang`."""
    runs = run_choices(ws, finished_only=True, lang=lang)
    return ([(t(lang, "common.source.run", label=label), f"run:{rid}") for label, rid in runs]
            + [(t(lang, "common.source.base_of", label=label), f"base:{rid}") for label, rid in runs]
            + [(t(lang, "common.source.model", label=m), f"model:{m}") for m in ws.list_models()])


def session_choices(ratings, ws) -> list[tuple[str, int]]:
    if not ws.db_path.is_file():
        return []
    return [(" · ".join(x for x in (f"#{s['id']}", s["name"] or "", f"{s['rated']}/{s['items']}") if x), s["id"])
            for s in ratings.list_sessions(ws)]


def prompt_text(prompt) -> str:
    """A stored prompt as the rater reads it (sessions store display text; older ones may hold messages)."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m["content"] if m.get("role") == "user" else f"[{m.get('role')}] {m.get('content')}"
                     for m in prompt or [])


def summary_markdown(lang: str, s: dict) -> str:
    """The win-rate summary as a table (ratings.format_summary is the CLI's plain text)."""
    def pct(v):
        return "–" if v is None else f"{v:.0%}"

    def ci(c):
        return "–" if not c else f"{c[0]:.0%}–{c[1]:.0%}"

    head = t(lang, "rate.summary_head", id=s["session_id"], ratings=s["ratings"], items=s["items"])
    cols = [t(lang, f"rate.col.{c}") for c in ("source", "wins", "share", "ci")]
    rows = [(s["a_label"], s["wins_a"], pct(s["win_rate_a"]), ci(s["win_rate_a_ci95"])),
            (s["b_label"], s["wins_b"], pct(s["win_rate_b"]), ci(s["win_rate_b_ci95"])),
            (t(lang, "rate.tie"), s["ties"], pct(s["tie_rate"]), "–")]
    table = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    table += ["| " + " | ".join(f"`{c}`" if i == 0 and k < 2 else str(c) for i, c in enumerate(r)) + " |"
              for k, r in enumerate(rows)]
    text = head + "\n\n" + "\n".join(table)
    if s.get("preference_a") is not None:
        text += "\n\n" + t(lang, "rate.preference", label=f"`{s['a_label']}`",
                             share=f"{s['preference_a']:.0%} ({ci(s.get('preference_a_ci95'))})")
    return text


def build(ctx: Context) -> None:
    ws = ctx.ws
    src = sources(ws)
    datasets = ws.list_datasets()
    with gr.Accordion(t(DEFAULT, "rate.new"), open=True) as new_box:
        ctx.tr(new_box, label="rate.new")
        with gr.Row():
            a = gr.Dropdown(choices=src, value=None, label=t(DEFAULT, "rate.source_a"), elem_id="rate-a")
            b = gr.Dropdown(choices=src, value=None, label=t(DEFAULT, "rate.source_b"), elem_id="rate-b")
            ctx.tr(a, label="rate.source_a", choices=lambda lang: sources(ws, lang))
            ctx.tr(b, label="rate.source_b", choices=lambda lang: sources(ws, lang))
            ctx.model_lists += [(a, lambda lang: sources(ws, lang)), (b, lambda lang: sources(ws, lang))]
        with gr.Row():
            data = gr.Dropdown(choices=datasets, value=demo_pick(ws)["dataset"] if demo_pick(ws)["dataset"] in datasets else None,
                               label=t(DEFAULT, "rate.prompts_from"), elem_id="rate-dataset")
            n = gr.Number(value=10, precision=0, label=t(DEFAULT, "rate.n"), elem_id="rate-n")   # on_create checks it
            name = gr.Textbox(label=t(DEFAULT, "rate.name"), elem_id="rate-name")
            create = gr.Button(t(DEFAULT, "rate.create"), variant="primary", elem_id="rate-create")
            ctx.dataset_lists.append(data)
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
        pick_a = gr.Button(t(DEFAULT, "rate.a_better"), elem_id="rate-pick-a", interactive=False)
        tie = gr.Button(t(DEFAULT, "rate.tie"), elem_id="rate-pick-tie", interactive=False)
        pick_b = gr.Button(t(DEFAULT, "rate.b_better"), elem_id="rate-pick-b", interactive=False)
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
            summary = summary_markdown(lang, ratings.summary(ws, int(sid)))
        except Exception as e:
            return error_text(lang, e), "", "", "", None, ""
        if it is None:
            return t(lang, "rate.all_done"), "", "", "", None, summary
        progress = t(lang, "rate.progress", item=it["item"] + 1, done=it["done"], total=it["total"])
        return progress, prompt_text(it["prompt"]), it["a"], it["b"], it["item"], summary

    def on_create(lang, sa, sb, dataset, count, label):
        lang = lang or DEFAULT
        if not sa or not sb or not dataset:
            return t(lang, "rate.pick_sources"), gr.skip()
        problem = number_problem(lang, "rate.n", count, 10, 1)
        if problem:
            return problem, gr.skip()
        try:
            prompts = ratings.prompts_from(ws, dataset=dataset, limit=int(count))
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

    def after_rating(lang, sid):
        # The summary, and the session list's "rated/items" counts, follow each rating.
        if sid is None:
            return "", gr.skip()
        return show_next(lang, sid)[5], gr.update(choices=session_choices(ratings, ws))

    view = [message, prompt, answer_a, answer_b, item, result]
    create.click(on_create, [ctx.lang, a, b, data, n, name], [message, session], api_visibility="private")
    session.change(show_next, [ctx.lang, session], view, api_visibility="private")

    def again(lang, sid):   # the item and summary said in a newly chosen language (reads only)
        return show_next(lang, sid) if sid is not None else [gr.skip()] * len(view)

    ctx.on_language(again, [ctx.lang, session], view)
    def refresh_lists(lang=None):
        src_now = sources(ws, lang)
        return gr.update(choices=session_choices(ratings, ws)), gr.update(choices=src_now), gr.update(choices=src_now)

    refresh.click(refresh_lists, [ctx.lang], [session, a, b], api_visibility="private")
    if ctx.current_tab is not None:  # runs finished since the page opened become sources
        ctx.current_tab.select(refresh_lists, [ctx.lang], [session, a, b], api_visibility="private")
    # the rating buttons are live only while an item of a session is shown
    item.change(lambda idx: [gr.update(interactive=idx is not None)] * 3, item, [pick_a, tie, pick_b],
                api_visibility="private")
    for btn, choice in ((pick_a, "A"), (tie, "tie"), (pick_b, "B")):
        btn.click(rate(choice), [ctx.lang, session, item, comment], [message, prompt, answer_a, answer_b, item, comment],
                  api_visibility="private").then(
            after_rating, [ctx.lang, session], [result, session], api_visibility="private")

