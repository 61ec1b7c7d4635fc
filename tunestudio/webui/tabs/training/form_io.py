"""The Training tab's form outside the browser: the `tunestudio train ...` command line that makes
the same run, shown (and kept current) before Start; the form saved as a run-config YAML file
(the same RunConfig YAML `tunestudio train --config FILE` reads) and loaded back from one.

The command and the YAML come from the RunConfig the engine builds from the form
(`tab_training.config_from_form`), so what is shown is what Start would run.
"""

from __future__ import annotations

import dataclasses
import shlex
import tempfile
from pathlib import Path

import gradio as gr

from tunestudio.config import run_config
from tunestudio.webui.common.context import Context, err, msg, say
from tunestudio.webui.common.safety import safe_name
from tunestudio.webui.i18n.texts import DEFAULT, t


def train_command(cfg, workspace: str | None = None) -> str:
    """`tunestudio train` with one flag per option that differs from its default, in the order of
    the config's fields (booleans as --x / --no-x, lists as YAML): typed in a shell, it makes the
    same config. `workspace` adds --workspace (the UI's own, when it is not the current folder)."""
    import yaml

    args = ["tunestudio", "train"]
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        default = run_config.field_default(f)
        if value == default and not (f.name in ("model", "dataset") and value):
            continue
        flag = run_config.flag_name(f)
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, (list, dict)):
            args += [flag, yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip()]
        else:
            args += [flag, str(value)]
    if workspace:
        args += ["--workspace", str(workspace)]
    return shlex.join(args)


def save_yaml(cfg) -> str:
    """A temp file (for the browser to download) holding `cfg` as run-config YAML, named after the
    run's name (else run-config.yaml)."""

    try:
        name = safe_name(f"{cfg.name}.yaml", "file name") if cfg.name else "run-config.yaml"
    except Exception:  # a name that makes no good file name: the plain one
        name = "run-config.yaml"
    path = Path(tempfile.mkdtemp(prefix="tunestudio-config-")) / name
    run_config.save_config(cfg, path)
    return str(path)


def build(ctx: Context, form_inputs: list, names: list[str], make_config) -> None:
    """The command preview and the (folded) YAML save/load box, under the Start button. `form_inputs`:
    [model (or a State), dataset, *the fields in `names`]; make_config(model, dataset, values)
    builds the RunConfig (raises UserError for a bad form)."""
    preview = gr.Code(language="shell", interactive=False, elem_id="training-command-preview", lines=2,
                      label=t(DEFAULT, "training.command_preview"))
    ctx.tr(preview, label="training.command_preview")
    problem = gr.Markdown(elem_id="training-command-problem")
    # saving and loading a YAML file is seldom needed: folded, so the page stays short
    with gr.Accordion(t(DEFAULT, "training.yaml_box"), open=False, elem_id="training-yaml-box") as box:
        ctx.tr(box, label="training.yaml_box")
        with gr.Row():
            save = gr.Button(t(DEFAULT, "training.save_yaml"), elem_id="training-save-yaml", scale=0, min_width=200)
            saved = gr.File(label=t(DEFAULT, "training.saved_yaml"), interactive=False, elem_id="training-saved-yaml",
                            scale=2)
            load = gr.File(label=t(DEFAULT, "training.load_yaml"), file_types=[".yaml", ".yml"], scale=2,
                           elem_id="training-load-yaml")
        ctx.tr(save, value="training.save_yaml")
        ctx.tr(saved, label="training.saved_yaml")
        ctx.tr(load, label="training.load_yaml")
        note = gr.Markdown(elem_id="training-yaml-message")
    workspace = str(ctx.ws.root)

    def command_work(lang, model, dataset, *values):
        try:
            cfg = make_config(model, dataset, dict(zip(names, values)))
        except Exception as e:   # the form as it stands would not start: say why, no command
            return err(e), [""]
        return [], [train_command(cfg, workspace)]

    def save_work(lang, model, dataset, *values):
        try:
            cfg = make_config(model, dataset, dict(zip(names, values)))
            path = save_yaml(cfg)
        except Exception as e:
            return err(e), [None]
        return msg("training.yaml_saved", file=Path(path).name), [path]

    has_model = not isinstance(form_inputs[0], gr.State)   # no Model tab: no model picker to fill
    editable = form_inputs if has_model else form_inputs[1:]

    def load_work(lang, path):
        from tunestudio.webui.common.config_to_form import form_values

        if not path:
            return [], [gr.skip()] * len(editable)
        try:
            cfg = run_config.load_config(path).to_dict()
        except Exception as e:   # not a run config: say why, the form stays as it was
            return err(e), [gr.skip()] * len(editable)
        values = form_values(cfg, names)
        head = [values["model"]] if has_model else []
        return msg("training.yaml_loaded", file=Path(path).name), head + [values["dataset"]] + [values[k] for k in names]

    shown_problem = ctx.view([problem])
    # one handler for every field's change (gr.on with many triggers), not one per field
    triggers = [c.change for c in form_inputs if hasattr(c, "change")]
    shown_problem.act(lambda fn, inputs, outputs, **kw: gr.on(triggers, fn, inputs, outputs, **kw),
                      command_work, say, form_inputs, extra=[preview], trigger_mode="always_last")
    ctx.on_load(lambda *a: command_work(*a)[1][0], [ctx.lang, *form_inputs], [preview])
    said = ctx.view([note])
    said.act(save.click, save_work, say, form_inputs, extra=[saved])
    said.act(load.upload, load_work, say, [load], extra=editable)
