"""The Runs tab's table controls and run housekeeping: search, status filter and sort of the runs
table; a click on a row picks that run as A; rename and delete run A (delete asks first, and
keeps the run's files unless the user ticks the box); and, for a completed run A, buttons that
open Evaluate or Chat with it picked, or the Ship panel to export it.

The work is `tunestudio.runs.manage` (rename_run, delete_run); the table is `table.table`.
"""

from __future__ import annotations

import gradio as gr

from tunestudio.jobs import queue as jobs
from tunestudio.runs.manage import delete_run, rename_run
from tunestudio.webui.common.context import Context, err, list_runs, msg, run_choices, say
from tunestudio.webui.i18n.texts import DEFAULT, t

STATUSES = ("completed", "running", "stopped", "failed", "queued")


def filters(ctx: Context) -> list:
    """The search box, status filter, sort key and order above the table: [search, status, sort, descending]."""
    from tunestudio.webui.tabs.runs.table import SORTS

    with gr.Row(elem_id="runs-filters"):
        search = gr.Textbox(label=t(DEFAULT, "runs.search"), elem_id="runs-search", scale=3)
        status = gr.Dropdown(choices=status_choices(DEFAULT), value="", label=t(DEFAULT, "runs.status_filter"),
                             elem_id="runs-status-filter", scale=1)
        sort = gr.Dropdown(choices=sort_choices(DEFAULT, SORTS), value="created", label=t(DEFAULT, "runs.sort"),
                           elem_id="runs-sort", scale=1)
        descending = gr.Checkbox(value=True, label=t(DEFAULT, "runs.descending"), elem_id="runs-descending", scale=1)
    ctx.tr(search, label="runs.search", placeholder="runs.search_hint")
    ctx.tr(status, label="runs.status_filter", choices=status_choices)
    ctx.tr(sort, label="runs.sort", choices=lambda lang: sort_choices(lang, SORTS))
    ctx.tr(descending, label="runs.descending")
    return [search, status, sort, descending]


def status_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(lang, "runs.all_statuses"), "")] + [(t(lang, f"training.state.{s}"), s) for s in STATUSES]


def sort_choices(lang: str, sorts) -> list[tuple[str, str]]:
    return [(t(lang, f"runs.sort_by.{s}"), s) for s in sorts]


def build(ctx: Context, runs_df, run_a, run_b, table_inputs: list, refresh_table) -> None:
    """Row click, rename/delete and the next-step buttons, under the Runs tab's buttons.
    `refresh_table(lang, *table_inputs)` is the table in `lang` with the current filters."""
    ws = ctx.ws
    with gr.Row():
        evaluate = gr.Button(t(DEFAULT, "runs.to_evaluate"), elem_id="runs-to-evaluate", interactive=False)
        chat = gr.Button(t(DEFAULT, "runs.to_chat"), elem_id="runs-to-chat", interactive=False)
        export = gr.Button(t(DEFAULT, "runs.to_export"), elem_id="runs-to-export", interactive=False)
        for b, k in ((evaluate, "to_evaluate"), (chat, "to_chat"), (export, "to_export")):
            ctx.tr(b, value=f"runs.{k}")
    with gr.Accordion(t(DEFAULT, "runs.manage"), open=False, elem_id="runs-manage") as box:
        ctx.tr(box, label="runs.manage")
        with gr.Row():
            new_name = gr.Textbox(label=t(DEFAULT, "runs.new_name"), elem_id="runs-new-name", scale=3)
            rename = gr.Button(t(DEFAULT, "runs.rename"), elem_id="runs-rename", scale=1)
            delete = gr.Button(t(DEFAULT, "runs.delete"), variant="stop", elem_id="runs-delete", scale=1)
        ctx.tr(new_name, label="runs.new_name")
        ctx.tr(rename, value="runs.rename")
        ctx.tr(delete, value="runs.delete")
        with gr.Group(visible=False, elem_id="runs-confirm") as confirm_box:
            question = gr.Markdown(elem_id="runs-confirm-question")
            with gr.Row():
                with_files = gr.Checkbox(value=False, label=t(DEFAULT, "runs.delete_files"),
                                         elem_id="runs-delete-files")
                yes = gr.Button(t(DEFAULT, "runs.delete_yes"), variant="stop", elem_id="runs-delete-yes")
                no = gr.Button(t(DEFAULT, "runs.delete_no"), elem_id="runs-delete-no")
            ctx.tr(with_files, label="runs.delete_files")
            ctx.tr(yes, value="runs.delete_yes")
            ctx.tr(no, value="runs.delete_no")
        said = gr.Markdown(elem_id="runs-manage-message")
    pending = gr.State(None)   # the run the confirmation asks about: a later pick of A cannot change it

    def on_row(evt: gr.SelectData):
        from tunestudio.webui.tabs.runs.table import ID_COLUMN

        row = evt.row_value or []
        run_id = row[ID_COLUMN] if len(row) > ID_COLUMN else None
        return run_id if run_id else gr.skip()

    runs_df.select(on_row, None, [run_a], api_visibility="private")

    def on_pick(run_id):
        """Next steps only for a completed run; the rename box starts from its name."""
        row = next((r for r in list_runs(ws) if r["id"] == run_id), None)
        done = bool(row) and row["status"] == "completed"
        return ([gr.update(interactive=done)] * 3 + [row["name"] if row else "", gr.update(visible=False), None])

    run_a.change(on_pick, [run_a], [evaluate, chat, export, new_name, confirm_box, pending], api_visibility="private")

    def rename_work(lang, run_id, name):
        if not run_id:
            return msg("runs.pick_one"), [gr.skip()] * 3
        try:
            row = rename_run(ws, run_id, name)
        except Exception as e:
            return err(e), [gr.skip()] * 3
        opts = run_choices(ws, lang=lang)
        return msg("runs.renamed", id=row["id"], name=row["name"]), [
            gr.update(choices=opts), gr.update(choices=opts), gr.skip()]

    def ask(lang, run_id):
        """Delete pressed: the question (or why not); an earlier message goes, at a switch too."""
        if not run_id:
            return msg("runs.pick_one"), [gr.update(visible=False), None, ""]
        return None, [gr.update(visible=True), run_id, t(lang, "runs.delete_question", id=run_id,
                                                          folder=str(ws.runs_dir / run_id))]

    def delete_work(lang, run_id, files):
        if not run_id:
            return msg("runs.pick_one"), [gr.skip()] * 4
        try:
            out = delete_run(ws, run_id, delete_files=bool(files))
        except Exception as e:
            return err(e), [gr.skip()] * 4
        opts = run_choices(ws, lang=lang)
        key = "runs.deleted_with_files" if out["files_deleted"] else "runs.deleted_kept_files"
        return msg(key, id=out["id"], name=out["name"], folder=out["folder"]), [
            gr.update(choices=opts, value=None), gr.update(choices=opts), gr.update(visible=False), None]

    view = ctx.view([said])
    view.act(rename.click, rename_work, say, [run_a, new_name], extra=[run_a, run_b, pending]).then(
        refresh_table, [ctx.lang, *table_inputs], [runs_df], api_visibility="private")
    view.act(delete.click, ask, say, [run_a], extra=[confirm_box, pending, question])
    view.act(no.click, lambda lang: (None, [gr.update(visible=False), None]), say, [], extra=[confirm_box, pending])
    view.act(yes.click, delete_work, say, [pending, with_files], extra=[run_a, run_b, confirm_box, pending]).then(
        refresh_table, [ctx.lang, *table_inputs], [runs_df], api_visibility="private")
    ctx.on_language(lambda lang, p: t(lang or DEFAULT, "runs.delete_question", id=p, folder=str(ws.runs_dir / p))
                    if p else gr.skip(), [ctx.lang, pending], [question])

    open_with(ctx, {"evaluate": evaluate, "chat": chat}, lambda run_id: run_id, [run_a])

    def wire(ctx: Context) -> None:
        ship = ctx.shared.get("ship_box")
        if ship is not None:   # the Ship panel is on this tab: open it and bring it into sight
            export.click(lambda: gr.update(open=True), None, [ship], api_visibility="private",
                         js="() => { document.getElementById('ship')?.scrollIntoView(); }")

    ctx.after_build.append(wire)


def open_with(ctx: Context, buttons: dict, run_of, inputs: list) -> None:
    """Wire `buttons` ({tab id: button}, tab ids "evaluate", "chat", "runs") to open that tab with
    the run run_of(*input values) picked there, marked as the user's pick so the tab's own refresh
    keeps it. A button does nothing while run_of gives None."""
    ws = ctx.ws

    def hook(ctx: Context) -> None:
        from tunestudio.webui.tabs.chat import choices as chat_choices

        tabs = ctx.shared.get("tabs")
        targets = {
            "evaluate": (ctx.shared.get("eval_pick"),
                         lambda r, lang: gr.update(choices=run_choices(ws, finished_only=True, lang=lang), value=r)),
            "chat": (ctx.shared.get("chat_pick"),
                     lambda r, lang: gr.update(choices=chat_choices(ws, lang), value=f"run:{r}")),
            "runs": (ctx.shared.get("runs_pick"),
                     lambda r, lang: gr.update(choices=run_choices(ws, lang=lang), value=r)),
        }
        for tab_id, button in buttons.items():
            pick, value = targets[tab_id]
            if pick is None or tabs is None:
                continue

            def go(lang, *args, value=value, tab_id=tab_id):
                run_id = run_of(*args)
                if not run_id:
                    return gr.skip(), gr.skip(), gr.skip()
                # the list as it is now (a run finished after the page opened), with the run picked
                return value(run_id, lang), True, gr.Tabs(selected=tab_id)

            button.click(go, [ctx.lang, *inputs], [*pick, tabs], api_visibility="private")

    ctx.after_build.append(hook)


def finished_run(ws) -> str | None:
    """The run of the newest training job, when it has completed (the Training tab's next steps)."""

    job = jobs.latest_job(ws)
    if job is None or not job.run_id:
        return None
    row = next((r for r in list_runs(ws) if r["id"] == job.run_id), None)
    return job.run_id if row and row["status"] == "completed" else None


def training_next_steps(ctx: Context, timer=None) -> None:
    """The Training tab's buttons under the monitor: evaluate, chat with or export the run the
    newest job trained, live once it has completed (checked every 5 s; `timer` is unused)."""
    ws = ctx.ws
    with gr.Row(elem_id="training-next-steps"):
        evaluate = gr.Button(t(DEFAULT, "training.to_evaluate"), elem_id="training-to-evaluate", interactive=False)
        chat = gr.Button(t(DEFAULT, "training.to_chat"), elem_id="training-to-chat", interactive=False)
        export = gr.Button(t(DEFAULT, "training.to_export"), elem_id="training-to-export", interactive=False)
        for b, k in ((evaluate, "to_evaluate"), (chat, "to_chat"), (export, "to_export")):
            ctx.tr(b, value=f"training.{k}")
    ready = gr.State(None)

    def check(last):
        run_id = finished_run(ws)
        if run_id == last:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return (*[gr.update(interactive=run_id is not None)] * 3, run_id)

    # its own slow timer, queued and never piled up: the monitor's 1 s tick must stay light
    slow = gr.Timer(5.0)
    slow.tick(check, [ready], [evaluate, chat, export, ready], api_visibility="private", trigger_mode="once",
              concurrency_limit=1)
    open_with(ctx, {"evaluate": evaluate, "chat": chat, "runs": export}, lambda: finished_run(ws), [])
