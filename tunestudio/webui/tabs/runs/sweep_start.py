"""Start a sweep from the web UI: a sweep YAML (uploaded, or one of the repository's examples, then
editable) started as a background `tunestudio sweep --config FILE` (tunestudio.sweeps.background: the
CLI's own code path, never Optuna's loop nor training in the UI's process), and its progress:
trials ended of the planned number, by state, the best so far, and the sweep log's last lines.

The progress is read from the workspace (the runner record and the Optuna study), so a reloaded page
finds a running sweep again.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from tunestudio.sweeps import background as sweep_runner
from tunestudio.sweeps import search as sweep
from tunestudio.webui.common.context import Context, err, error_text, msg, say
from tunestudio.webui.i18n.texts import DEFAULT, engine_error, has, t


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def progress_text(ws, lang: str, name: str) -> str:
    """One sweep's progress as markdown (what the panel shows while it runs and once it ended)."""
    p = sweep_runner.progress(ws, name)
    state = t(lang, "sweeps.state_running" if p["running"] else "sweeps.state_ended")
    counts = ", ".join(f"{n} {t(lang, f'sweeps.state.{k}') if has(lang, f'sweeps.state.{k}') else k}"
                       for k, n in p["counts"].items()) or "—"
    text = t(lang, "sweeps.progress", name=name, state=state, ended=p["ended"], target=p["target"] or "?",
             counts=counts)
    if p["best"]:
        text += "\n\n" + t(lang, "sweeps.progress_best", number=p["best"]["number"], value=_fmt(p["best"]["value"]),
                           run=p["best"]["run_id"] or "")
    if isinstance(p.get("error"), dict) and "message" in p["error"]:   # why it stopped, in `lang`
        text += "\n\n✖ " + t(lang, "sweeps.failed", error=engine_error(lang, p["error"]))
    if p["log"]:
        text += "\n\n```\n" + p["log"] + "\n```"
    return text


def running_sweep(ws) -> str | None:
    """The name of a sweep started from the UI whose process is still alive, else None."""
    root = ws.sweeps_dir
    for d in sorted(root.glob("*/runner.json")) if root.is_dir() else []:
        rec = sweep_runner.runner(ws, d.parent.name)
        if rec and rec["alive"]:
            return d.parent.name
    return None


def build(ctx: Context) -> dict:
    examples = {p.name: p for p in sweep_runner.examples()}
    with gr.Group(elem_id="sweeps-start-box"):
        head = gr.Markdown(f"**{t(DEFAULT, 'sweeps.start_title')}**")
        ctx.tr(head, value=lambda lang: f"**{t(lang, 'sweeps.start_title')}**")
        with gr.Row():
            example = gr.Dropdown(choices=list(examples), value=None, label=t(DEFAULT, "sweeps.example"),
                                  elem_id="sweeps-example")
            upload = gr.File(file_types=[".yaml", ".yml"], type="filepath", label=t(DEFAULT, "sweeps.upload"),
                             elem_id="sweeps-upload", height=120)
        ctx.tr(example, label="sweeps.example")
        ctx.tr(upload, label="sweeps.upload")
        editor = gr.Code(language="yaml", interactive=True, lines=10, label=t(DEFAULT, "sweeps.yaml"),
                         elem_id="sweeps-yaml")
        ctx.tr(editor, label="sweeps.yaml")
        with gr.Row():
            start = gr.Button(t(DEFAULT, "sweeps.start"), variant="primary", elem_id="sweeps-start")
            stop = gr.Button(t(DEFAULT, "sweeps.stop"), variant="stop", elem_id="sweeps-stop")
        ctx.tr(start, value="sweeps.start")
        ctx.tr(stop, value="sweeps.stop")
        progress = gr.Markdown(elem_id="sweeps-progress")
    return {"examples": examples, "example": example, "upload": upload, "editor": editor, "start": start,
            "stop": stop, "progress": progress, "filename": gr.State(None), "watch": gr.State(None),
            "timer": gr.Timer(2.0)}


def wire(ctx: Context, c: dict, pick) -> None:
    """Events of the components `build` made; `pick` is the panel's sweep picker (refreshed on start)."""
    ws = ctx.ws

    def on_example(name):
        path = c["examples"].get(name)  # looked up by name: the page never gives a path to read
        if path is None:
            return gr.skip(), gr.skip()
        return path.read_text(encoding="utf-8"), path.name

    def on_upload(path):
        if not path:
            return gr.skip(), gr.skip()
        return Path(path).read_text(encoding="utf-8", errors="replace"), Path(path).name

    # Start and Stop say what they did as message specs (common.msg / err) in a view: a language
    # switch says the shown message again in the new language (an error in Tetum, then English:
    # the English sentence, nothing of the Tetum one left)
    def start_work(lang, text, filename):
        try:
            rec = sweep_runner.start(ws, text, filename)
        except Exception as e:
            return err(e), [gr.skip(), gr.skip()]
        watch = {"name": rec["sweep"], "sig": None, "lang": lang, "ended": False}
        names = sorted({*sweep.list_sweeps(ws), rec["sweep"]})  # its study may not be written yet
        return (msg("sweeps.started", name=rec["sweep"], trials=rec["trials"], pid=rec["pid"]),
                [watch, gr.update(choices=names, value=rec["sweep"])])

    def stop_work(lang, watch):
        name = (watch or {}).get("name") or running_sweep(ws)
        if not name:
            return msg("sweeps.nothing_running")
        try:
            rec = sweep_runner.stop(ws, name)
        except Exception as e:
            return err(e)
        return msg("sweeps.stopped" if rec else "sweeps.not_running", name=name)

    def tick(lang, watch):
        """The progress of the sweep started here (or running), re-read every tick; what it writes
        clears the view's message (`said.state` None): the progress text is re-read in the new
        language at the next tick after a switch, an older Start/Stop message is not said again."""
        lang = lang or DEFAULT
        name = (watch or {}).get("name") or running_sweep(ws)
        if not name:
            return gr.skip(), gr.skip(), gr.skip()
        same = bool(watch) and watch.get("name") == name and watch.get("lang") == lang
        if same and watch.get("ended"):  # its final state is shown: nothing more to read
            return gr.skip(), gr.skip(), gr.skip()
        rec = sweep_runner.runner(ws, name)
        ended = not (rec and rec["alive"])
        try:
            text = progress_text(ws, lang, name)
        except Exception as e:  # a study being created, a busy database: say so, try next tick
            text, ended = error_text(lang, e), False
        state = {"name": name, "sig": text, "lang": lang, "ended": ended}
        if same and watch.get("sig") == text:
            return gr.skip(), state, gr.skip()
        return text, state, None

    said = ctx.view([c["progress"]])
    c["example"].input(on_example, [c["example"]], [c["editor"], c["filename"]], api_visibility="private")
    c["upload"].upload(on_upload, [c["upload"]], [c["editor"], c["filename"]], api_visibility="private")
    said.act(c["start"].click, start_work, say, [c["editor"], c["filename"]], extra=[c["watch"], pick])
    said.act(c["stop"].click, stop_work, say, [c["watch"]])
    c["timer"].tick(tick, [ctx.lang, c["watch"]], [c["progress"], c["watch"], said.state], api_visibility="private",
                    queue=False)
