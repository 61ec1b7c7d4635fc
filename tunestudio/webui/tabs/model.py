"""Model tab: pick the base model (a folder under models/ or a hub id) and see what it is, or
import a GGUF file as a new one.

Size and memory come from `tunestudio.models.memory` (config.json only, no weights loaded); the
chat template from the tokenizer, given the same fallback template training uses. The import is
`tunestudio.models.gguf_import` (the code `tunestudio models import` runs), in this process: it is
no training, only a file conversion of seconds to minutes.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import gradio as gr
import pandas as pd

from tunestudio.data.quality import stats
from tunestudio.demo import demo_pick
from tunestudio.models import memory
from tunestudio.models.gguf_import import import_gguf
from tunestudio.models.local import imported_from
from tunestudio.webui.common.context import Context, empty_table, err, error_text, msg, say
from tunestudio.webui.i18n.texts import DEFAULT, t

# One import at a time in this server: two (two browsers, a double click) would each hold a whole
# dequantised model in memory, and the same name would race for its folder.
_IMPORTING = threading.Lock()

METHODS = ("full", "freeze", "lora", "dora", "ia3", "prefix", "prompt", "qlora")


def build(ctx: Context) -> None:
    ws = ctx.ws
    models = ws.list_models()
    with gr.Row():
        first = demo_pick(ws)["model"]   # the real demo model when it is there, else the tiny one
        model = gr.Dropdown(choices=models, value=first if first in models else (models[0] if models else None),
                            allow_custom_value=True,
                            label=t(DEFAULT, "model.select"), info=t(DEFAULT, "model.select_info"),
                            elem_id="model-select", scale=4)
        ctx.tr(model, label="model.select", info="model.select_info")
        refresh = gr.Button(t(DEFAULT, "common.refresh"), scale=0, min_width=100)
        ctx.tr(refresh, value="common.refresh")
    ctx.shared["model"] = model
    summary = gr.Markdown(elem_id="model-summary")
    with gr.Row():
        batch = gr.Number(value=8, precision=0, label=t(DEFAULT, "model.batch"), elem_id="model-batch")
        length = gr.Number(value=512, precision=0, label=t(DEFAULT, "model.length"), elem_id="model-length")
        ctx.tr(batch, label="model.batch")
        ctx.tr(length, label="model.length")
    memory_table = gr.Dataframe(value=empty_memory_table(DEFAULT), interactive=False, elem_id="model-memory", label=t(DEFAULT, "model.memory"))
    ctx.tr(memory_table, label="model.memory")
    template = gr.Code(label=t(DEFAULT, "model.template"), language="jinja2", interactive=False,
                       elem_id="model-template", lines=8)
    ctx.tr(template, label="model.template")

    def describe(lang, name, batch_size, max_length):
        lang = lang or DEFAULT
        if not name:
            return t(lang, "model.none"), empty_memory_table(lang), ""
        try:
            return (model_summary(ws, lang, name), memory_rows(ws, lang, name, batch_size, max_length),
                    chat_template(ws, lang, name))
        except Exception as e:
            return error_text(lang, e), empty_memory_table(lang), ""

    def refresh_models(current):
        names = ws.list_models()
        return gr.update(choices=names, value=current or (names[0] if names else None))

    inputs = [model, batch, length]
    details = ctx.view([summary, memory_table, template])  # said again when the language changes
    for comp in inputs:
        details.on(comp.change, describe, inputs)
    details.load(describe, inputs)
    gguf_pick = build_import(ctx, model)
    refresh.click(refresh_models, [model], [model], api_visibility="private").then(
        lambda: gr.update(choices=ws.list_gguf_files()), None, [gguf_pick], api_visibility="private")


def build_import(ctx: Context, model) -> gr.Dropdown:
    """The Import GGUF area: a file in models/ or an upload, an optional name, Import. A model
    imported is picked in `model` and added to every model list of the other tabs (ctx.model_lists).
    Returns the file picker (the tab's Refresh updates it too)."""
    ws = ctx.ws
    with gr.Accordion(t(DEFAULT, "model.import"), open=False, elem_id="model-import-box") as box:
        ctx.tr(box, label="model.import")
        intro = gr.Markdown(t(DEFAULT, "model.import_intro"))
        ctx.tr(intro, value="model.import_intro")
        with gr.Row():
            files = ws.list_gguf_files()
            pick = gr.Dropdown(choices=files, value=files[0] if len(files) == 1 else None, scale=3,
                               label=t(DEFAULT, "model.gguf_pick"), elem_id="model-gguf-pick")
            upload = gr.File(label=t(DEFAULT, "model.gguf_upload"), file_types=[".gguf"], type="filepath",
                             elem_id="model-gguf-upload", scale=3)
            name = gr.Textbox(label=t(DEFAULT, "model.import_name"), info=t(DEFAULT, "model.import_name_info"),
                              elem_id="model-import-name", scale=2)
            ctx.tr(pick, label="model.gguf_pick")
            ctx.tr(upload, label="model.gguf_upload")
            ctx.tr(name, label="model.import_name", info="model.import_name_info")
        go = gr.Button(t(DEFAULT, "model.import_button"), variant="primary", elem_id="model-import-button")
        ctx.tr(go, value="model.import_button")
        message = gr.Markdown(elem_id="model-import-message")
    view = ctx.view([message])

    def starting(lang, picked, uploaded, _name):
        """At once, before the import is queued: what runs, and the button off until it ends."""
        source = uploaded or picked
        if not source:
            return gr.skip(), gr.skip(), gr.skip()
        spec = msg("model.importing", file=Path(str(source)).name)
        return say(lang or DEFAULT, spec), view.shown_message(spec), gr.update(interactive=False)

    def work(lang, picked, uploaded, new_name, progress=gr.Progress(track_tqdm=True)):
        spec, done = import_work(ws, picked, uploaded, new_name)
        if done is None:
            return spec, [gr.skip()] * 4
        names = ws.list_models()
        return spec, [gr.update(choices=names, value=done["name"]), gr.update(choices=ws.list_gguf_files(), value=None),
                      None, ""]

    started = go.click(starting, [ctx.lang, pick, upload, name], [message, view.state, go], api_visibility="private",
                       queue=False)
    imported = view.act(started.then, work, say, [pick, upload, name], extra=[model, pick, upload, name])
    ended = imported.then(lambda: gr.update(interactive=True), None, [go], api_visibility="private")

    def wire_lists(ctx: Context):
        # the new model can be picked on every tab at once, not after each tab's own Refresh
        if not ctx.model_lists:
            return
        comps = [c for c, _ in ctx.model_lists]

        def lists(lang):
            updates = [gr.update(choices=fn(lang or DEFAULT)) for _, fn in ctx.model_lists]
            return updates[0] if len(updates) == 1 else updates

        ended.then(lists, [ctx.lang], comps, api_visibility="private")

    ctx.after_build.append(wire_lists)
    return pick


def import_work(ws, picked: str | None, uploaded: str | None, name: str | None) -> tuple[list, dict | None]:
    """Import the uploaded file, else the one picked under models/: (the message spec, the
    import's result or None when nothing was imported)."""

    if not uploaded and not picked:
        return msg("model.import_pick_first"), None
    if not _IMPORTING.acquire(blocking=False):
        return msg("model.import_busy"), None
    try:
        # an upload is the browser's own file, kept by Gradio under its own name; a pick is a
        # name under models/ (refused if it leads out of it)
        path = Path(uploaded) if uploaded else ws.safe_join(ws.models_dir, picked)
        done = import_gguf(ws, path, name=(name or "").strip() or None)
    except Exception as e:
        return err(e), None
    finally:
        _IMPORTING.release()
    return msg("model.imported", file=path.name, name=done["name"], arch=done["architecture"],
               quant=", ".join(done["quantisation"]), dtype=done["dtype"]), done


def model_summary(ws, lang: str, name: str) -> str:
    source = ws.model_path_or_id(name)
    lines = [f"**{name}** — `{source}`"]
    cfg_path = Path(source) / "config.json"
    if cfg_path.is_file():
        cfg = json.loads(cfg_path.read_text())
        arch = ", ".join(cfg.get("architectures") or []) or cfg.get("model_type", "?")
        lines.append(t(lang, "model.architecture", arch=arch, type=cfg.get("model_type", "?"),
                       layers=cfg.get("num_hidden_layers", "?"), hidden=cfg.get("hidden_size", "?"),
                       vocab=cfg.get("vocab_size", "?"), context=cfg.get("max_position_embeddings", "?")))
        weights = sum(p.stat().st_size for p in Path(source).glob("*.safetensors"))
        if weights:
            lines.append(t(lang, "model.on_disk", size=memory.human_bytes(weights)))

        origin = imported_from(Path(source))
        if origin:
            lines.append(t(lang, "model.from_gguf", file=origin["file"], sha=origin["sha256"][:16]))
    else:
        lines.append(t(lang, "model.hub_id"))
    if memory is not None:
        try:
            lines.append(t(lang, "model.params", n=f"{memory.count_params(source):,}"))
        except Exception as e:  # not a Llama-like model: size unknown from the config alone
            lines.append(f"_{e}_")
    return "\n\n".join(lines)


def memory_rows(ws, lang: str, name: str, batch_size, max_length):
    """One row per method: `memory.estimate_settings` with the run defaults (precision auto,
    LoRA rank...), the function the Training tab's estimate calls, so the same settings show the
    same figure on both tabs. Rows of max_length tokens (this tab has no dataset)."""
    source = ws.model_path_or_id(name)
    rows = []
    for method in METHODS:
        try:
            est = memory.estimate_settings(source, method=method, batch_size=int(batch_size or 1),
                                           max_length=int(max_length or 512), precision="auto")
        except Exception as e:
            rows.append({t(lang, "model.col.method"): method, t(lang, "model.col.total"): str(e)[:80]})
            continue
        rows.append({
            t(lang, "model.col.method"): method,
            t(lang, "model.col.trainable"): f"{est['trainable_params']:,}",
            t(lang, "model.col.total"): memory.human_bytes(est["total"]),
            t(lang, "model.col.weights"): memory.human_bytes(est["weights"]),
            t(lang, "model.col.optimizer"): memory.human_bytes(est["gradients"] + est["optimizer"]),
            t(lang, "model.col.activations"): memory.human_bytes(est["activations"]),
            t(lang, "model.col.runtime"): memory.human_bytes(est["runtime"]),
        })
    return pd.DataFrame(rows, columns=[t(lang, f"model.col.{c}") for c in MEMORY_COLUMNS]).fillna("")


MEMORY_COLUMNS = ["method", "trainable", "total", "weights", "optimizer", "activations", "runtime"]


def empty_memory_table(lang: str):
    """The memory table's headers in `lang`, with no rows (no model picked, or no estimate)."""
    return empty_table(lang, [f"model.col.{c}" for c in MEMORY_COLUMNS])


def chat_template(ws, lang: str, name: str) -> str:
    tok = stats.load_tokenizer(ws, name)
    template = getattr(tok, "chat_template", None)
    return template if isinstance(template, str) else json.dumps(template, indent=1)
