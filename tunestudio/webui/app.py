"""The web UI's frame: header with the language switch, one tab per module, and `launch`.

`build_app(ws)` only builds components and wires events; every tab module has
`build(ctx)` and calls the other areas' functions from its handlers.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # never look up outside hosts

import gradio as gr  # noqa: E402

from tunestudio.core.hosts import allowed_hosts  # noqa: E402
from tunestudio.core.statefiles import NOTICES  # noqa: E402
from tunestudio.core.workspace import Workspace  # noqa: E402
from tunestudio.jobs import queue as jobs
from tunestudio.webui.common.context import Context  # noqa: E402
from tunestudio.webui.common.safety import HostGuard, LoginThrottle
from tunestudio.webui.i18n import gradio_locale
from tunestudio.webui.i18n.texts import DEFAULT, languages, t  # noqa: E402
from tunestudio.webui.tabs import chat as tab_chat
from tunestudio.webui.tabs import model as tab_model
from tunestudio.webui.tabs import rate as tab_rate
from tunestudio.webui.tabs.datasets import tab as tab_datasets
from tunestudio.webui.tabs.evaluate import tab as tab_evaluate
from tunestudio.webui.tabs.runs import tab as tab_runs
from tunestudio.webui.tabs.training import tab as tab_training

TABS = [("model", tab_model), ("datasets", tab_datasets), ("training", tab_training), ("runs", tab_runs),
        ("evaluate", tab_evaluate), ("chat", tab_chat), ("rate", tab_rate)]

LANG_STORAGE_KEY = "tunestudio-ui-language"

CSS = """
#training-status { font-size: 1.05em; }
.ts-progress { height: 10px; background: #e5e7eb; border-radius: 5px; overflow: hidden; }
.ts-progress > div { height: 100%; background: #f97316; }
#header-row { align-items: end; }
/* Chat messages are plain text (common.safety.shown_chat): keep the model's line breaks and indents */
#chatbot .md, #chatbot-base .md { white-space: pre-wrap; }
/* Training tab: the folded option groups close together, so the Start button stays in sight */
#training-groups > .column { gap: 8px; }
#training-model-note { font-size: 0.92em; }
/* the job's command box is drawn once there is a job: empty, it was a tall blank box */
#training-command:has(> [aria-label="Empty value"]) { display: none; }
/* Gradio sizes a plot's drawing to its block and puts the legend below it, where the block's
   overflow hid it: let it show, with room under the block. */
div.block:has(.vega-embed) { overflow: visible !important; margin-bottom: 24px; }
/* Tables: a word is never cut in two ("metho-d", a header one letter a line); a column is at least
   as wide as its longest word, and a table wider than the page scrolls sideways. */
.table-wrap th .wrap, .table-wrap td .wrap, .table-wrap span.text, .table-wrap .header-content {
  word-break: normal !important; overflow-wrap: normal !important; hyphens: none !important; }
.table-wrap th, .table-wrap td { min-width: min-content; }
.table-wrap th .header-content { overflow: visible !important; }
"""


def build_app(ws: Workspace) -> gr.Blocks:
    # transformers resolves its names lazily on first use; two Gradio worker threads doing that at
    # once can fail with "cannot import name 'AutoConfig' from 'transformers'". Resolve here, once.
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    ctx = Context(ws)
    with gr.Blocks(title="tunestudio", analytics_enabled=False) as demo:
        if NOTICES:  # what was repaired at start (a rebuilt registry or job queue): say so
            gr.Markdown("\n\n".join(f"⚠ {n}" for n in NOTICES), elem_id="state-notices")
        with gr.Row(elem_id="header-row"):
            title = gr.Markdown(t(DEFAULT, "app.title", workspace=str(ws.root)))
            ctx.tr(title, value=lambda lang: t(lang, "app.title", workspace=str(ws.root)))
            ctx.lang = gr.Dropdown(choices=languages(), value=DEFAULT, elem_id="ui-language",
                                   label=t(DEFAULT, "app.language"), scale=0, min_width=180)
            ctx.tr(ctx.lang, label="app.language")
            # The choice is kept in this browser's localStorage. A language is no secret: a fixed
            # key lets it outlive a server restart (Gradio's default key is new at every start).
            stored_lang = gr.BrowserState(DEFAULT, storage_key=LANG_STORAGE_KEY, secret=LANG_STORAGE_KEY)
        with gr.Tabs() as tabs:
            ctx.shared["tabs"] = tabs  # a tab may open another (Runs: "start a run from this config")
            for name, module in TABS:
                with gr.Tab(t(DEFAULT, f"tabs.{name}"), id=name, elem_id=f"tab-{name}") as tab:
                    ctx.texts.bind(tab, label=f"tabs.{name}")   # a tab's name shows on every tab
                    ctx.current_tab = tab  # a tab refreshes its lists when selected
                    module.build(ctx)
            ctx.current_tab = None
        for hook in ctx.after_build:
            hook(ctx)
        # the choice is stored first: a reload right after the new labels show keeps it
        ctx.lang.change(remember_language, ctx.lang, stored_lang, api_visibility="private", queue=False)
        # One event per group of texts (the header and tab names, then each tab's): the browser's
        # work for an event grows with its outputs, so the header is redone at once, not after
        # every component of every tab (Texts.groups)
        (_, head, head_fn), *per_tab = ctx.texts.groups()
        relabel = ctx.lang.change(head_fn, ctx.lang, head, api_visibility="private", queue=False)
        for _, comps, fn in per_tab:
            ctx.lang.change(fn, ctx.lang, comps, api_visibility="private", queue=False)
        # Gradio's own texts (the upload box...) follow too, rewritten in the browser (gradio_locale.py)
        ctx.lang.change(None, ctx.lang, None, js=gradio_locale.switch_js(), api_visibility="private", queue=False)
        for fn, inputs, outputs in ctx.language_handlers:   # the tabs' own re-renders, after the labels
            relabel.then(fn, inputs, outputs, api_visibility="private")
        for view in ctx.views:  # what handlers showed (messages, tables, plots) said again in the new language,
            # after the labels: they are what a person reads first, and come back quickest alone
            relabel.then(view.replay, [ctx.lang, view.state], view.outputs, api_visibility="private")
        # first of the page-open handlers: setting the dropdown fires its .change, which
        # re-renders every bound text in the restored language
        restored = demo.load(restore_language, stored_lang, ctx.lang, api_visibility="private", queue=False)
        # the tabs' page-open handlers after it: they read the restored language, not the page's
        # first English (else an English text computed at open could land after the switch's own)
        for fn, inputs, outputs in ctx.loads:
            restored.then(fn, inputs, outputs, api_visibility="private")
        quiet_language_switch(demo, ctx.lang)
    demo.tunestudio_texts = ctx.texts   # every bound text (i18n.Texts), for checks of the language switch
    return demo


def quiet_language_switch(demo: gr.Blocks, lang) -> int:
    """Show no progress animation for the handlers a language switch runs (those on `lang`'s
    change and those chained after them). They re-render texts already on screen, nearly every
    component at once: the browser drawing (then removing) a spinner over each of them was most of
    a switch's time (see tests/unit/webui/test_webui_handlers.py). Returns how many handlers it quieted."""
    switch = {fn._id for fn in demo.fns.values() if (lang._id, "change") in [tuple(x) for x in fn.targets]}
    grew = True
    while grew:   # and what runs after them (.then), to any depth
        more = {fn._id for fn in demo.fns.values() if fn.trigger_after in switch} - switch
        switch |= more
        grew = bool(more)
    for fn in demo.fns.values():
        if fn._id in switch:
            fn.show_progress = "hidden"
    return len(switch)


def restore_language(stored) -> str:
    """The UI language for a page that opens: the one this browser chose last (its localStorage
    value), if it is still a language we have; else English."""
    codes = [code for _, code in languages()]
    return stored if isinstance(stored, str) and stored in codes else DEFAULT


def remember_language(lang) -> str:
    """What the browser stores when the language dropdown changes: the language code."""
    return restore_language(lang)


def _advance_queue_forever(ws: Workspace, every: float = 2.0) -> None:
    """Start queued jobs when the device frees, even with no page open."""

    while True:
        try:
            jobs.advance(ws)
        except Exception:  # a busy or half-written file: try again next round
            pass
        time.sleep(every)


def launch(ws: Workspace, host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None,
           max_file_size: str = "200mb", allow_hosts: list[str] | None = None, **kwargs):
    """Serve the UI. It reads only inside the workspace (`confined`, its jobs too) and answers
    only requests whose Host header names it (`safety.HostGuard`, against DNS rebinding); with `auth`,
    wrong passwords from one address are slowed down (`safety.LoginThrottle`)."""
    from starlette.middleware import Middleware


    ws = dataclasses.replace(ws, confined=True)
    demo = build_app(ws)
    threading.Thread(target=_advance_queue_forever, args=(ws,), daemon=True).start()
    demo.queue(default_concurrency_limit=4)
    return demo.launch(
        server_name=host, server_port=port, auth=auth, share=False, inbrowser=False,
        ssr_mode=False,             # SSR needs node and outside hosts; plain client rendering works offline
        show_error=True, max_file_size=max_file_size, css=CSS, theme=gr.themes.Soft(),
        footer_links=[], quiet=False, head=gradio_locale.head_html(),
        app_kwargs={"middleware": [Middleware(HostGuard, allowed=allowed_hosts(host, allow_hosts)),
                                   Middleware(LoginThrottle)]}, **kwargs,
    )
