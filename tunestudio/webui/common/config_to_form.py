""""Start a run from this config": a finished run's saved config (its config.yaml, a RunConfig) put
into the Training tab's form, and the Training tab opened, so the user changes what they want and
presses Start. Used by the Runs tab (the run picked as A) and the Sweeps panel (the best trial).

The Training tab publishes its form in `ctx.shared['training_form']`; the wiring runs in
`ctx.after_build`, once every tab exists.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from tunestudio.config import run_config
from tunestudio.core.errors import UserError
from tunestudio.webui.common.context import Context, FormError, err, error_text, msg, say
from tunestudio.webui.i18n.texts import DEFAULT

# Not carried over: a new run gets its own name, and is no trial of the sweep it came from.
CLEARED = {"name": "", "sweep": ""}


def form_values(cfg: dict, names: list[str]) -> dict:
    """{field: what its form input holds} for a RunConfig dict (lists as YAML text, no from_run as
    None), plus 'model' and 'dataset'. A field the config lacks (an older run) gets its default."""
    import yaml

    by_name = run_config.fields_by_name()
    values = {"model": cfg.get("model") or None, "dataset": cfg.get("dataset") or None}
    for n in names:
        v = cfg.get(n, run_config.field_default(by_name[n]))
        if run_config.field_kind(by_name[n]) == "list":
            v = yaml.safe_dump(v) if v else ""
        elif n == "from_run":
            v = v or None
        values[n] = v
    return values


def run_form_values(ws, run_id: str, names: list[str]) -> dict:
    """The form values of run `run_id`'s saved config (runs/<id>/config.yaml), with its name and
    sweep cleared and a base model under the workspace's models/ given by its folder name (what the
    model picker lists). UserError when the run or its config is not there."""
    if not run_id:
        raise UserError("pick a run first", "pick_run_first")
    path = ws.runs_dir / str(run_id) / "config.yaml"
    if not path.is_file():
        raise UserError(f"run {run_id} has no saved config ({path} not found)", "run_no_config", run=str(run_id),
                        path=str(path))
    cfg = {**run_config.load_config(path).to_dict(), **CLEARED}
    model = cfg.get("model")
    if model and Path(model).is_absolute() and Path(model).parent == ws.models_dir.resolve():
        cfg["model"] = Path(model).name
    return form_values(cfg, names)


def wire(ctx: Context, button, run_input, message, no_run: list | None = None) -> None:
    """When `button` is clicked, fill the Training tab's form from the run in `run_input` (a run id)
    and open the Training tab; `message` (on the caller's tab) says what happened or why not;
    `no_run`: the message spec for an empty `run_input` (default: "pick a run")."""

    def hook(ctx: Context) -> None:
        form = ctx.shared.get("training_form")
        if form is None:
            return
        names, model = form["names"], form["model"]
        head = [model] if model is not None else []
        # the two messages' views (if any) learn what was said, so a language switch says it again
        views = [v for v in (ctx.view_of(form["message"]), ctx.view_of(message)) if v is not None]
        outputs = [*head, form["dataset"], *form["components"], form["message"], message]
        tabs = ctx.shared.get("tabs")
        if tabs is not None:
            outputs.append(tabs)
        n_plain = len(outputs)
        outputs += [v.state for v in views]

        def on_click(lang, run_id):
            lang = lang or DEFAULT
            try:
                if not run_id and no_run is not None:
                    raise FormError(no_run)
                values = run_form_values(ctx.ws, run_id, names)
            except Exception as e:  # only the caller's message says why; the form stays as it was
                out = [gr.skip()] * len(outputs)
                out[n_plain - 1 - (tabs is not None)] = error_text(lang, e)
                for k, v in enumerate(views):
                    if v.outputs[0] is message:
                        out[n_plain + k] = v.shown_message(err(e))
                return out
            note = msg("runs.config_loaded", run=run_id)
            out = ([values["model"]] if model is not None else []) + [values["dataset"]]
            out += [values[n] for n in names] + [say(lang, note), say(lang, note)]
            out += [gr.Tabs(selected="training")] if tabs is not None else []
            return out + [v.shown_message(note) for v in views]

        button.click(on_click, [ctx.lang, run_input], outputs, api_visibility="private")

    ctx.after_build.append(hook)
