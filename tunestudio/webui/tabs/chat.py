"""Chat tab: talk to a base model or a run's result, with streaming replies and sampling
settings; side by side, the same prompt goes to the run and to its base model. With an endpoint
URL it talks to a served model instead (`tunestudio serve`, vLLM, any OpenAI-compatible
/v1/chat/completions, through `tunestudio.models.endpoint`): what an app will get.

Loading and generation are `tunestudio.models.loading.load_model` and
`tunestudio.models.generate.stream`; loaded models are kept for the next message.

Messages and replies are shown as plain text, never as Markdown or HTML (`safety.shown_chat`): an
image in either, `![..](http://...)` or `<img src=...>`, would make the browser fetch that URL.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import gradio as gr

from tunestudio.evaluate import heldout
from tunestudio.models import loading
from tunestudio.models.endpoint import stream_chat
from tunestudio.models.generate import stream as generate
from tunestudio.webui.common.context import Context, err, msg, run_choices, say
from tunestudio.webui.common.safety import shown_chat, typed_chat
from tunestudio.webui.i18n.texts import DEFAULT, languages, t

_models: "OrderedDict[tuple, tuple]" = OrderedDict()
_lock = threading.Lock()
KEEP = 2   # loaded models kept in memory: the run and its base, for side-by-side


def load(ws, key: tuple):
    """(model, tokenizer, info) for ("run", id) / ("base-of", id) / ("model", name), cached."""
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
        kind, ref = key
        if kind == "model":
            loaded = loading.load_model(ws, model=ref)
        else:
            loaded = loading.load_model(ws, run=ref, base=(kind == "base-of"))
        _models[key] = loaded
        while len(_models) > KEEP:
            _models.popitem(last=False)
        return loaded


def choices(ws, lang: str | None = None) -> list[tuple[str, str]]:
    """(label, value) for the source dropdown: finished runs ("run:<id>"), then base models
    ("model:<name>"), the labels' kind prefix in `lang`."""
    runs = [(t(lang, "common.source.run", label=label), f"run:{rid}")
            for label, rid in run_choices(ws, finished_only=True, lang=lang)]
    return runs + [(t(lang, "common.source.model", label=m), f"model:{m}") for m in ws.list_models()]


def _text(content) -> str:
    """A message's text as typed (the Chatbot holds it escaped: `shown_chat`). Gradio 6 may give
    content as a list of {"type": "text", "text"} parts."""
    if isinstance(content, str):
        return typed_chat(content)
    if isinstance(content, list):
        return typed_chat("".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content))
    if isinstance(content, dict):
        return typed_chat(content.get("text", ""))
    return str(content or "")


def _turn(text: str, reply: str = "") -> list[dict]:
    """A user message and the reply to it, as the Chatbot shows them."""
    return [{"role": "user", "content": shown_chat(text)}, {"role": "assistant", "content": shown_chat(reply)}]


def _is_note(content) -> bool:
    """Whether a chat bubble is our empty-reply note (in any UI language), not the model's words."""
    return _text(content) in {t(code, "chat.empty_reply") for _, code in languages()}


def _prompt(history: list, message: str) -> list[dict]:
    # the empty-reply note is ours: the model said nothing that turn, and is told so
    msgs = [{"role": m["role"], "content": "" if _is_note(m["content"]) else _text(m["content"])}
            for m in history or [] if m.get("role") in ("user", "assistant")]
    return msgs + [{"role": "user", "content": message}]


def reword_notes(lang: str, *histories) -> list:
    """Each history with its empty-reply notes said in `lang` (a language switch); unchanged
    histories are skipped, so a reply being written is not redrawn."""
    out = []
    for history in histories:
        if not any(m.get("role") == "assistant" and _is_note(m.get("content")) for m in history or []):
            out.append(gr.skip())
            continue
        out.append([{**m, "content": shown_chat(t(lang, "chat.empty_reply"))}
                    if m.get("role") == "assistant" and _is_note(m.get("content")) else m for m in history])
    return out


def build(ctx: Context) -> None:
    ws = ctx.ws
    opts = choices(ws)
    with gr.Row():
        source = gr.Dropdown(choices=opts, value=opts[0][1] if opts else None, label=t(DEFAULT, "chat.source"),
                             elem_id="chat-source", scale=4)
        refresh = gr.Button(t(DEFAULT, "common.refresh"), scale=0, min_width=100)
        side = gr.Checkbox(value=False, label=t(DEFAULT, "chat.side_by_side"), elem_id="chat-side-by-side",
                           info=t(DEFAULT, "chat.side_by_side_info"), scale=2)
        ctx.tr(source, label="chat.source", choices=lambda lang: choices(ws, lang))
        ctx.model_lists.append((source, lambda lang: choices(ws, lang)))
        ctx.tr(refresh, value="common.refresh")
        ctx.tr(side, label="chat.side_by_side", info="chat.side_by_side_info")
    with gr.Row():
        endpoint = gr.Textbox(label=t(DEFAULT, "chat.endpoint"), info=t(DEFAULT, "chat.endpoint_info"),
                              placeholder="http://127.0.0.1:8000/v1", elem_id="chat-endpoint", scale=4)
        endpoint_key = gr.Textbox(label=t(DEFAULT, "chat.endpoint_key"), type="password",
                                  elem_id="chat-endpoint-key", scale=1)
        ctx.tr(endpoint, label="chat.endpoint", info="chat.endpoint_info")
        ctx.tr(endpoint_key, label="chat.endpoint_key")
    ctx.shared["chat_endpoint"] = endpoint  # the Runs tab's server panel fills it in
    # In sight and filled from the run: a run trained with a system prompt answers wrongly without it.
    system = gr.Textbox(label=t(DEFAULT, "chat.system"), info=t(DEFAULT, "chat.system_info"), lines=2,
                        elem_id="chat-system", interactive=True)
    ctx.tr(system, label="chat.system", info="chat.system_info")
    with gr.Accordion(t(DEFAULT, "chat.sampling"), open=False) as sampling_box:
        ctx.tr(sampling_box, label="chat.sampling")
        with gr.Row():
            max_new = gr.Slider(1, 1024, value=128, step=1, label=t(DEFAULT, "chat.max_new_tokens"))
            temperature = gr.Slider(0, 2, value=0.0, step=0.05, label=t(DEFAULT, "chat.temperature"),
                                    info=t(DEFAULT, "chat.temperature_info"))
            top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label=t(DEFAULT, "chat.top_p"))
            top_k = gr.Slider(0, 200, value=0, step=1, label=t(DEFAULT, "chat.top_k"))
            rep = gr.Slider(0.5, 2, value=1.0, step=0.05, label=t(DEFAULT, "chat.repetition_penalty"))
        for comp, key in ((max_new, "max_new_tokens"), (top_p, "top_p"), (top_k, "top_k"),
                          (rep, "repetition_penalty")):
            ctx.tr(comp, label=f"chat.{key}")
        ctx.tr(temperature, label="chat.temperature", info="chat.temperature_info")
    note = gr.Markdown(elem_id="chat-note")
    with gr.Row():
        # plain text: neither Markdown nor HTML is rendered, so no image in a message or reply loads a URL
        plain = dict(height=380, render_markdown=False, sanitize_html=True, allow_tags=False)
        chatbot = gr.Chatbot(label=t(DEFAULT, "chat.reply"), elem_id="chatbot", **plain)
        base_bot = gr.Chatbot(label=t(DEFAULT, "chat.base_reply"), elem_id="chatbot-base", visible=False, **plain)
        ctx.tr(chatbot, label="chat.reply")
        ctx.tr(base_bot, label="chat.base_reply")
    with gr.Row():
        # a label even unshown: without one Gradio names the box "Textbox" for screen readers (and
        # page text), English on any page
        message = gr.Textbox(placeholder=t(DEFAULT, "chat.placeholder"), label=t(DEFAULT, "chat.placeholder"),
                             show_label=False, elem_id="chat-input",
                             scale=5, lines=1, max_lines=6, submit_btn=False)
        send = gr.Button(t(DEFAULT, "chat.send"), variant="primary", scale=0, min_width=100, elem_id="chat-send")
        clear = gr.Button(t(DEFAULT, "chat.clear"), scale=0, min_width=100, elem_id="chat-clear")
        ctx.tr(message, placeholder="chat.placeholder", label="chat.placeholder")
        ctx.tr(send, value="chat.send")
        ctx.tr(clear, value="chat.clear")

    def respond(lang, src, side_by_side, text, history, base_history, sys_prompt, n, temp, p, k, r, url, key):
        lang = lang or DEFAULT
        if (url or "").strip() and (text or "").strip():
            yield from respond_endpoint(lang, url.strip(), key, text.strip(), history, base_history, sys_prompt,
                                        n, temp, p)
            return
        text = (text or "").strip()
        if not text:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
            return
        if not src:
            yield msg("chat.pick_source"), gr.skip(), gr.skip(), gr.skip()
            return
        kind, ref = src.split(":", 1)
        sampling = dict(max_new_tokens=int(n), temperature=float(temp), top_p=float(p), top_k=int(k),
                        repetition_penalty=float(r))
        prompt = _prompt(history, text)
        base_prompt = _prompt(base_history, text)
        history = list(history or []) + _turn(text)
        compare = bool(side_by_side) and kind == "run"
        base_history = list(base_history or [])
        if compare:
            base_history += _turn(text)
        yield msg("chat.loading"), history, base_history, ""
        try:
            model, tok, info = load(ws, (kind, ref))
            # a run trained to reason first is asked with its reasoning block open, as in training
            streams = [generate(model, tok, prompt, system=sys_prompt or None,
                                reasoning=bool(info.get("reasoning")), **sampling)]
            if compare:
                b_model, b_tok, _ = load(ws, ("base-of", ref))
                streams.append(generate(b_model, b_tok, base_prompt, system=sys_prompt or None, **sampling))
            label = info.get("label", ref)
            targets = [history, base_history]
            # Alternate between the two streams so both replies grow together.
            live = list(range(len(streams)))
            while live:
                for i in list(live):
                    try:
                        targets[i][-1] = {"role": "assistant", "content": shown_chat(next(streams[i]))}
                    except StopIteration:
                        live.remove(i)
                yield msg("chat.talking_to", label=label), history, base_history, gr.skip()
            # An empty bubble looks like a hang: say that the model answered with nothing.
            empty = [tg for tg in targets[:len(streams)] if not _text(tg[-1]["content"]).strip()]
            if empty:
                for tg in empty:
                    tg[-1] = {"role": "assistant", "content": shown_chat(t(lang, "chat.empty_reply"))}
                yield msg("chat.talking_to", label=label), history, base_history, gr.skip()
        except Exception as e:
            yield err(e), history, base_history, gr.skip()

    def respond_endpoint(lang, url, key, text, history, base_history, sys_prompt, n, temp, p):
        prompt = _prompt(history, text)
        history = list(history or []) + _turn(text)
        yield msg("chat.talking_to", label=url), history, base_history, ""
        try:
            for so_far in stream_chat(url, prompt, api_key=(key or None), system=sys_prompt or None,
                                      max_new_tokens=int(n), temperature=float(temp), top_p=float(p)):
                history[-1] = {"role": "assistant", "content": shown_chat(so_far or t(lang, "chat.empty_reply"))}
                yield msg("chat.talking_to", label=url), history, base_history, gr.skip()
        except Exception as e:
            yield err(e), history, base_history, gr.skip()

    def toggle(side_by_side, src):
        show = bool(side_by_side) and bool(src) and src.startswith("run:")
        return gr.update(visible=show)

    def refresh_sources(lang, current, picked):
        return gr.update(**pick_source(choices(ws, lang), current, bool(picked)))

    inputs = [ctx.lang, source, side, message, chatbot, base_bot, system, max_new, temperature, top_p, top_k, rep,
              endpoint, endpoint_key]
    # the note above the replies is said again when the language changes: `respond` yields its spec
    note_view = ctx.view([note])
    outputs = [note, chatbot, base_bot, message, note_view.state, send]

    def respond_said(lang, *args):
        # Only the message that was sent is cleared (at once); while the reply streams the box keeps
        # what the user types next, and Send is off until the reply is done: a second Enter meanwhile
        # is dropped by Gradio (trigger_mode "once"), and its text stays in the box to send after.
        busy = gr.update(interactive=False)
        for spec, *rest in respond(lang, *args):
            if isinstance(spec, list):
                yield say(lang or DEFAULT, spec), *rest, note_view.shown_message(spec), busy
            else:   # gr.skip(): the note stays as it is
                yield spec, *rest, gr.skip(), busy
        yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.update(interactive=True)

    message.submit(respond_said, inputs, outputs, api_visibility="private", trigger_mode="once")
    send.click(respond_said, inputs, outputs, api_visibility="private", trigger_mode="once")
    clear.click(lambda: ([], []), None, [chatbot, base_bot], api_visibility="private")
    ctx.on_language(lambda lang, a, b: reword_notes(lang or DEFAULT, a, b), [ctx.lang, chatbot, base_bot],
                    [chatbot, base_bot])
    side.change(toggle, [side, source], [base_bot], api_visibility="private")
    source.change(toggle, [side, source], [base_bot], api_visibility="private")
    source.change(lambda src: system_for_source(ws, src), [source], [system], api_visibility="private")
    # Until the user picks a source, the list follows the newest finished run (a run that has just
    # finished training is what people want to talk to); once they pick, their choice stays.
    picked = gr.State(False)
    source.input(lambda: True, None, [picked], api_visibility="private", queue=False)
    ctx.shared["chat_pick"] = (source, picked)   # the Runs tab's "Chat with it" picks a run here
    refresh.click(refresh_sources, [ctx.lang, source, picked], [source], api_visibility="private")
    if ctx.current_tab is not None:
        ctx.current_tab.select(refresh_sources, [ctx.lang, source, picked], [source], api_visibility="private")
    ctx.on_load(refresh_sources, [ctx.lang, source, picked], [source])


def system_for_source(ws, src) -> str:
    """The system prompt box's text for a "Talk to" value: a run's training system prompt, empty
    for a base model (it was trained with none of ours)."""
    if src and src.startswith("run:"):
        return training_system_prompt(ws, src.split(":", 1)[1])
    return ""


def training_system_prompt(ws, run_id: str) -> str:
    """The system message the run's training rows share ("" if none or no data to read), read from
    the exact rows recorded in training/runs/<id>/split.json: the one a held-out file is asked with
    too (evaluate/heldout.py). A run whose data changed or is gone gives ""."""
    import json

    try:
        info = json.loads((ws.runs_dir / run_id / "split.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return heldout.training_system_prompt(ws, info if isinstance(info, dict) else None) or ""


def pick_source(options: list[tuple[str, str]], current, picked: bool) -> dict:
    """choices and value for the "Talk to" list: the user's pick while it exists, else the newest
    finished run (options list runs newest first), else the first model."""
    values = [v for _, v in options]
    if picked and current in values:
        value = current
    else:
        runs = [v for v in values if v.startswith("run:")]
        value = runs[0] if runs else (current if current in values else (values[0] if values else None))
    return {"choices": options, "value": value}
