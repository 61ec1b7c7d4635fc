"""The Evaluate tab's test file: the run's own test split, or a held-out file of the workspace's
datasets (or one uploaded here, stored there), scored whole by `run_eval.evaluate` as
`tunestudio eval --run R --dataset FILE` scores it.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import gradio as gr

from tunestudio.core.errors import UserError
from tunestudio.webui.common.context import Context, err, msg, say
from tunestudio.webui.i18n.texts import DEFAULT, t
from tunestudio.webui.tabs.datasets.tab import ALLOWED, store_upload

OWN = ""   # the picker's value for the run's own recorded split


def file_choices(ws, lang: str) -> list[tuple[str, str]]:
    """(label in `lang`, value): the run's own split first, then every dataset file."""
    return [(t(lang, "evaluate.test_file_own"), OWN), *((name, name) for name in ws.list_datasets())]


def stored_test_file(ws, path: str) -> str:
    """The uploaded file stored in training/datasets (store_upload's checks), its name; a file of
    that name with the same bytes is the one already there (uploading it again picks it)."""
    try:
        return store_upload(ws, path).name
    except UserError as e:
        same = ws.datasets_dir / Path(path).name
        if e.code == "upload_exists" and same.is_file() and filecmp.cmp(same, path, shallow=False):
            return same.name
        raise


def build_test_file(ctx: Context, limit) -> gr.Dropdown:
    """The test-file picker and its upload (a row of the tab); returns the picker. Picking a file
    empties `limit` (a held-out file is scored whole); picking the run's split puts 50 back."""
    ws = ctx.ws
    with gr.Row():
        pick = gr.Dropdown(choices=file_choices(ws, DEFAULT), value=OWN, label=t(DEFAULT, "evaluate.test_file"),
                           info=t(DEFAULT, "evaluate.test_file_info"), elem_id="eval-test-file", scale=3)
        upload = gr.File(label=t(DEFAULT, "evaluate.test_upload"), file_types=list(ALLOWED),
                         elem_id="eval-test-upload", scale=2)
        ctx.tr(pick, label="evaluate.test_file", info="evaluate.test_file_info",
               choices=lambda lang: file_choices(ws, lang))
        ctx.tr(upload, label="evaluate.test_upload")
    said = gr.Markdown(elem_id="eval-test-upload-message")

    def on_upload(lang, path):
        if not path:
            return gr.update(), ""
        try:
            name = stored_test_file(ws, path)
        except Exception as e:   # a refused upload: its one line, the pick unchanged
            return gr.update(), say(lang or DEFAULT, err(e))
        return (gr.update(choices=file_choices(ws, lang or DEFAULT), value=name),
                say(lang or DEFAULT, msg("evaluate.test_upload_saved", name=name)))

    upload.upload(on_upload, [ctx.lang, upload], [pick, said], api_visibility="private")
    pick.input(lambda v: gr.update(value=None if v else 50), [pick], [limit], api_visibility="private", queue=False)
    if ctx.current_tab is not None:   # files stored since the page opened (Datasets tab, the CLI)
        ctx.current_tab.select(lambda lang, v: gr.update(choices=file_choices(ws, lang or DEFAULT), value=v),
                               [ctx.lang, pick], [pick], api_visibility="private")
    return pick
