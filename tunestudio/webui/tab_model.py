"""Model tab: pick the base model (a folder under models/ or a hub id) and see what it is.

Size and memory come from `tunestudio.train.memory` (config.json only, no weights loaded); the
chat template from the tokenizer, given the same fallback template training uses.
"""

from __future__ import annotations

import json

import gradio as gr
import pandas as pd

from tunestudio.demo import demo_pick
from tunestudio.webui.common import Context, empty_table, error_text, optional
from tunestudio.webui.i18n import DEFAULT, t

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
    refresh.click(refresh_models, [model], [model], api_visibility="private")
    details.load(describe, inputs)


def model_summary(ws, lang: str, name: str) -> str:
    source = ws.model_path_or_id(name)
    memory = optional("tunestudio.train.memory")
    lines = [f"**{name}** — `{source}`"]
    from pathlib import Path

    cfg_path = Path(source) / "config.json"
    if cfg_path.is_file():
        cfg = json.loads(cfg_path.read_text())
        arch = ", ".join(cfg.get("architectures") or []) or cfg.get("model_type", "?")
        lines.append(t(lang, "model.architecture", arch=arch, type=cfg.get("model_type", "?"),
                       layers=cfg.get("num_hidden_layers", "?"), hidden=cfg.get("hidden_size", "?"),
                       vocab=cfg.get("vocab_size", "?"), context=cfg.get("max_position_embeddings", "?")))
        weights = sum(p.stat().st_size for p in Path(source).glob("*.safetensors"))
        if weights:
            lines.append(t(lang, "model.on_disk", size=memory.human_bytes(weights) if memory else f"{weights:,} B"))
    else:
        lines.append(t(lang, "model.hub_id"))
    if memory is not None:
        try:
            lines.append(t(lang, "model.params", n=f"{memory.count_params(source):,}"))
        except Exception as e:  # not a Llama-like model: size unknown from the config alone
            lines.append(f"_{e}_")
    return "\n\n".join(lines)


def memory_rows(ws, lang: str, name: str, batch_size, max_length):
    memory = optional("tunestudio.train.memory")
    if memory is None:
        return empty_memory_table(lang)
    source = ws.model_path_or_id(name)
    rows = []
    for method in METHODS:
        try:
            precision = "bf16" if method == "qlora" else "fp32"
            est = memory.estimate(source, method=method, batch_size=int(batch_size or 1),
                                  max_length=int(max_length or 512), precision=precision)
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
        })
    return pd.DataFrame(rows, columns=[t(lang, f"model.col.{c}") for c in MEMORY_COLUMNS]).fillna("")


MEMORY_COLUMNS = ["method", "trainable", "total", "weights", "optimizer", "activations"]


def empty_memory_table(lang: str):
    """The memory table's headers in `lang`, with no rows (no model picked, or no estimate)."""
    return empty_table(lang, [f"model.col.{c}" for c in MEMORY_COLUMNS])


def chat_template(ws, lang: str, name: str) -> str:
    stats = optional("tunestudio.data.stats")
    if stats is None:
        return t(lang, "common.not_available", what="tunestudio.data.stats.load_tokenizer")
    tok = stats.load_tokenizer(ws, name)
    template = getattr(tok, "chat_template", None)
    return template if isinstance(template, str) else json.dumps(template, indent=1)
