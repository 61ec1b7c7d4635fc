"""Datasets tab: the files of training/datasets, upload, check, clean, statistics and a preview
of one training example with the tokens the loss trains on highlighted.

All the work is done by `tunestudio.data` (check_dataset, clean_dataset, stats_dataset,
encode.preview); this module only stores uploads safely and shows results.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from tunestudio.core.errors import UserError
from tunestudio.data.chat import turns
from tunestudio.data.encoding.encode import preview as encode_preview
from tunestudio.data.formats.load import load_file
from tunestudio.data.quality.check import check_dataset
from tunestudio.data.quality.clean import clean_dataset
from tunestudio.data.quality.pick import at_line
from tunestudio.data.quality.stats import load_tokenizer, stats_dataset
from tunestudio.data.split import resolve_dataset
from tunestudio.demo import demo_pick
from tunestudio.webui.common import charts
from tunestudio.webui.common.context import (
    Context,
    err,
    error_text,
    msg,
    number_problem,
    plotted,
    say,
    shown,
    translated_columns,
)
from tunestudio.webui.common.safety import safe_name
from tunestudio.webui.i18n.texts import DEFAULT, engine_warning, has, t
from tunestudio.webui.tabs.datasets import pref_preview

MAX_UPLOAD_BYTES = 200 * 1024 * 1024   # matches `webui --max-upload`'s default
ALLOWED = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt")


def store_upload(ws, src: str | Path, name: str | None = None, max_bytes: int = MAX_UPLOAD_BYTES) -> Path:
    """Copy an uploaded file into training/datasets as `name` (default: its own name).

    Refuses names that escape the folder (`../../x.jsonl`, absolute paths, sub-folders), names
    that are too long or hold control, bidi-override or other odd characters (`safe_name`), files
    over `max_bytes`, unsupported extensions, and existing names: the tool never overwrites the
    user's data files.
    """
    src = Path(src)
    name = safe_name((name or "").strip() or src.name, "file name")
    target = ws.safe_join(ws.datasets_dir, name)  # also refuses a symlink pointing out
    if target.parent != ws.datasets_dir.resolve():
        raise UserError(f"'{name}' points outside {ws.datasets_dir}: use a plain file name", "upload_outside",
                        name=name, folder=ws.datasets_dir)
    if target.suffix.lower() not in ALLOWED:
        raise UserError(f"'{name}': unsupported file type; use one of {', '.join(ALLOWED)}", "upload_type",
                        name=name, allowed=", ".join(ALLOWED))
    size = src.stat().st_size
    if size > max_bytes:
        raise UserError(f"'{name}' is {size / 2**20:.1f} MiB, over the upload limit of {max_bytes / 2**20:.0f} MiB: "
                        f"copy it into {ws.datasets_dir} instead", "upload_too_big", name=name,
                        size=f"{size / 2**20:.1f}", limit=f"{max_bytes / 2**20:.0f}", folder=ws.datasets_dir)
    if target.exists():
        raise UserError(f"{ws.shown_path(ws.datasets_dir / name)} already exists: choose another name (data files are "
                        "never overwritten)", "upload_exists", name=name)
    ws.datasets_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    shutil.copyfile(src, tmp)
    tmp.replace(target)  # whole file or nothing: a reader never sees half an upload
    return target


def files_table(ws, lang: str) -> pd.DataFrame:
    rows = []
    for name in ws.list_datasets():
        p = ws.datasets_dir / name
        st = p.stat()
        rows.append({t(lang, "datasets.col.name"): name, t(lang, "datasets.col.size"): f"{st.st_size / 1024:,.1f} KiB",
                     t(lang, "datasets.col.modified"): time.strftime("%Y-%m-%d %H:%M", time.localtime(st.st_mtime))})
    return pd.DataFrame(rows, columns=[t(lang, f"datasets.col.{c}") for c in ("name", "size", "modified")])


def build(ctx: Context) -> None:
    ws = ctx.ws
    model = ctx.shared.get("model")
    names = ws.list_datasets()
    preselect = demo_pick(ws)["dataset"] if demo_pick(ws)["dataset"] in names else None
    with gr.Row():
        pick = gr.Dropdown(choices=names, value=preselect, label=t(DEFAULT, "datasets.pick"),
                           elem_id="datasets-pick", scale=4)
        ctx.tr(pick, label="datasets.pick")
        refresh = gr.Button(t(DEFAULT, "common.refresh"), scale=0, min_width=100, elem_id="datasets-refresh")
        ctx.tr(refresh, value="common.refresh")
    table = gr.Dataframe(value=files_table(ws, DEFAULT), interactive=False, elem_id="datasets-table")

    with gr.Accordion(t(DEFAULT, "datasets.upload"), open=False) as up_box:
        ctx.tr(up_box, label="datasets.upload")
        with gr.Row():
            upload = gr.File(label=t(DEFAULT, "datasets.upload_file"), file_types=list(ALLOWED),
                             elem_id="datasets-upload", scale=3)
            save_as = gr.Textbox(label=t(DEFAULT, "datasets.save_as"), placeholder="my-data.jsonl",
                                 elem_id="datasets-save-as", scale=2)
            ctx.tr(upload, label="datasets.upload_file")
            ctx.tr(save_as, label="datasets.save_as")
        store = gr.Button(t(DEFAULT, "datasets.store"), elem_id="datasets-store")
        ctx.tr(store, value="datasets.store")
    message = gr.Markdown(elem_id="datasets-message")

    with gr.Row():
        check_btn = gr.Button(t(DEFAULT, "datasets.check"), elem_id="datasets-check")
        clean_btn = gr.Button(t(DEFAULT, "datasets.clean"), elem_id="datasets-clean")
        stats_btn = gr.Button(t(DEFAULT, "datasets.stats"), elem_id="datasets-stats")
        for b, k in ((check_btn, "check"), (clean_btn, "clean"), (stats_btn, "stats")):
            ctx.tr(b, value=f"datasets.{k}")
    report = gr.Markdown(elem_id="datasets-report")
    problems = gr.Dataframe(interactive=False, elem_id="datasets-problems", wrap=True, visible=False)
    histogram = charts.chart(ctx, "bar", elem_id="datasets-histogram", label="datasets.histogram", x="tokens",
                             y="rows", x_title="datasets.axis.tokens", y_title="datasets.axis.rows",
                             legend="datasets.axis.rows", sort=None, height=260, y_axis_format="d",
                             y_lim=[0, None])   # shown once Statistics draws it

    with gr.Row():
        # no minimum= on these: Gradio's own check is a raw red pill over the last result; on_preview
        # says what is wrong, in the UI's language
        row = gr.Number(value=1, precision=0, label=t(DEFAULT, "datasets.row"), elem_id="datasets-row")
        max_len = gr.Number(value=512, precision=0, label=t(DEFAULT, "datasets.max_length"),
                            elem_id="datasets-max-length")
        preview_btn = gr.Button(t(DEFAULT, "datasets.preview"), elem_id="datasets-preview-btn")
        ctx.tr(row, label="datasets.row")
        ctx.tr(max_len, label="datasets.max_length")
        ctx.tr(preview_btn, value="datasets.preview")
    # the legend's marks come with each example (`marked`): those it uses, in the UI language
    preview_head = gr.Markdown(elem_id="datasets-preview-head")   # which row, how many tokens trained
    preview = gr.HighlightedText(elem_id="datasets-preview", label=t(DEFAULT, "datasets.preview_label"),
                                 show_legend=True, combine_adjacent=True)
    ctx.tr(preview, label="datasets.preview_label")
    model_in = model if model is not None else gr.State("")

    def on_refresh(lang, current):
        now = ws.list_datasets()
        return gr.update(choices=now, value=current if current in now else None), files_table(ws, lang or DEFAULT)

    def store_work(lang, file, name):
        if not file:
            return msg("datasets.no_file"), [gr.skip()] * (2 + len(file_panels))
        try:
            # The browser's own file name: Gradio keeps it as the temp file's name.
            target = store_upload(ws, file, name or Path(file).name)
        except Exception as e:
            return err(e), [gr.skip()] * (2 + len(file_panels))  # the selection stays, and its panels
        now = ws.list_datasets()
        # the stored file is selected: the previous file's panels clear (`cleared`, below)
        return msg("datasets.stored", name=target.name), [gr.update(choices=now, value=target.name),
                                                          files_table(ws, lang), *cleared()]

    # progress: the data layer's bars (tunestudio/core/progress.py, tqdm) shown with rate and ETA
    # Check and Statistics read every row once; a language switch says their results again from
    # what they returned (View.act), it does not read the file again.
    def check_work(lang, name, model_name, progress=gr.Progress(track_tqdm=True)):
        try:
            if pref_preview.is_preference(ws, name):  # pairs / KTO rows: their own checks, the same report
                return {"report": pref_preview.check(ws, name, model_name or None)}
            return {"report": check_dataset(ws, name, model=model_name or None).to_json()}
        except Exception as e:
            return {"say": err(e)}

    def check_render(lang, spec):
        if "say" in spec:
            return say(lang, spec["say"]), shown(None), plotted(None)
        out = spec["report"]
        head = t(lang, "datasets.check_ok" if not out["errors"] else "datasets.check_errors",
                 rows=out["rows"], format=out["format"] or "?", errors=len(out["errors"]),
                 warnings=len(out["warnings"]))
        return head, shown(problems_frame(lang, out["errors"], out["warnings"])), plotted(None)

    def clean_work(lang, name, progress=gr.Progress(track_tqdm=True)):
        try:
            results = clean_dataset(ws, name)
        except Exception as e:
            return {"error": err(e)}, [gr.skip(), gr.skip()]
        files = [{"input": r.input.name, "output": r.output.name, "rows": r.rows, "kept": r.kept,
                  "removed": dict(r.removed), "report": r.report.name} for r in results]
        rows = [rm.to_dict() for r in results for rm in r.removals]
        # the files table too: the cleaned copy is a new file beside the original
        return {"files": files, "rows": rows}, [gr.update(choices=ws.list_datasets()), files_table(ws, lang or DEFAULT)]

    def clean_render(lang, spec):
        if "error" in spec:
            return say(lang, spec["error"]), shown(None), plotted(None)
        lines = [t(lang, "datasets.cleaned", input=f["input"], output=f["output"], rows=f["rows"], kept=f["kept"],
                   report=f["report"], removed=", ".join(f"{t(lang, 'datasets.reason.' + k) if has(lang, 'datasets.reason.' + k) else k} {v}"
                                                       for k, v in f["removed"].items()) or "—")
                 for f in spec["files"]]
        frame = translated_columns(lang, removals_frame(lang, spec["rows"]), "datasets.col.") if spec["rows"] else None
        return "\n\n".join(lines), shown(frame), plotted(None)

    def stats_work(lang, name, model_name, length, progress=gr.Progress(track_tqdm=True)):
        try:
            # The cutoff is the max length set here (the preview's too), not the model's context.
            return {"stats": stats_dataset(ws, name, model=model_name or None, max_length=int(length) if length else None)}
        except Exception as e:
            return {"say": err(e)}

    def stats_render(lang, spec):
        if "say" in spec:
            return say(lang, spec["say"]), shown(None), plotted(None)
        s = spec["stats"]
        length = s["length"]
        text = t(lang, "datasets.stats_summary", rows=s["rows"], unit=t(lang, f"datasets.unit.{s['unit']}"),
                 min=length["min"], mean=length["mean"], median=length["median"], p95=length["p95"],
                 max=length["max"], cutoff=s.get("cutoff") or "—", over=s.get("over_cutoff", 0),
                 duplicates=s.get("duplicates", 0))
        if s.get("stream"):   # plain text: blocks of a token stream (data/encoding/stream.py)
            st = s["stream"]
            text += "\n\n" + t(lang, "datasets.stats_stream", documents=st["documents"], tokens=st["tokens"],
                                  blocks=st["blocks"], length=st["max_length"])
        if s.get("labels"):
            text += "\n\n" + t(lang, "datasets.labels") + " " + ", ".join(f"`{k}` {v}" for k, v in s["labels"].items())
        if s.get("warnings"):
            text += "\n\n" + "\n".join(f"- ⚠ {engine_warning(lang, w)}" for w in s.get("warning_parts") or s["warnings"])
        return text, shown(None), gr.update(**histogram_plot(s["histogram"], lang), visible=True)

    def on_preview(lang, name, model_name, row_no, length, progress=gr.Progress(track_tqdm=True)):
        if not model_name:
            return t(lang, "datasets.pick_model"), None
        for key, value, default, least in (("datasets.row", row_no, 1, 1), ("datasets.max_length", length, 512, 8)):
            problem = number_problem(lang, key, value, default, least)
            if problem:
                return problem, None

        try:
            if pref_preview.is_preference(ws, name):  # a pair: prompt, then chosen and rejected, marked
                head, pieces = pref_preview.preview(ws, name, model_name, int(row_no), int(length), lang)
                return head, marked(lang, pieces)

            files = resolve_dataset(ws, name)
            loaded = load_file(files.get("all") or files["train"])
            if not loaded.records:
                raise UserError(t(DEFAULT, "datasets.no_rows", name=name), "dataset_no_rows", name=name)
            picked = at_line(loaded.records, int(row_no), name)   # the file's line, as Check counts
            record = picked.record
            tokenizer = load_tokenizer(ws, model_name)
            pairs = encode_preview(record, tokenizer, int(length))
            info = turns.probe(tokenizer) if record.is_chat else None
        except Exception as e:
            return error_text(lang, e), None
        trained = sum(1 for _, on in pairs if on)
        head = t(lang, "datasets.preview_head", where=record.where(), tokens=len(pairs), trained=trained)
        if picked.asked_line:
            head = t(lang, "datasets.line_moved", asked=picked.asked_line, line=record.line) + "\n\n" + head
        if record.reference_reasoning():
            head += "\n\n" + t(lang, "datasets.preview_reasoning", reasoning=record.reference_reasoning())
        if info is not None and info.prompts_differ:
            head += "\n\n" + t(lang, "datasets.preview_prompts", template=repr(info.template_prompt),
                                 training=repr(info.training_prompt))
        mark = t(lang, "datasets.mark.trained")
        return head, marked(lang, [(piece, mark if on else None) for piece, on in pairs])

    refresh.click(on_refresh, [ctx.lang, pick], [pick, table], api_visibility="private")
    # the files table's headers follow the language switch
    ctx.on_language(lambda lang: files_table(ws, lang or DEFAULT), [ctx.lang], [table])
    # one view for the file's results: whichever of Check, Clean or Statistics was shown last is said
    # again when the language changes; the example has its own view, so a Preview after Statistics
    # does not leave the histogram (its legend, its axes) in the language it was drawn in
    results = ctx.view([report, problems, histogram])
    example = ctx.view([preview_head, preview])
    upload_view = ctx.view([message])
    # Panels about one file clear when another file is selected (the user's pick, or an upload that
    # selects what it stored): nothing of the previous file's report, statistics, histogram or
    # example stays beside the new name. A view's state is cleared too, so a language switch does
    # not bring a cleared panel back.
    file_panels = [report, problems, histogram, results.state, preview_head, preview, example.state]

    def cleared() -> list:   # file_panels' values with nothing shown
        return ["", gr.update(value=None, visible=False), plotted(None), None, "", None, None]

    upload_view.act(store.click, store_work, lambda lang, spec: say(lang, spec), [upload, save_as],
                    extra=[pick, table, *file_panels])
    results.act(check_btn.click, check_work, check_render, [pick, model_in])
    results.act(clean_btn.click, clean_work, clean_render, [pick], extra=[pick, table])
    results.act(stats_btn.click, stats_work, stats_render, [pick, model_in, max_len])
    example.on(preview_btn.click, on_preview, [pick, model_in, row, max_len])

    # `input`, not `change`: Clean picks its new file itself, and its report must stay
    pick.input(lambda: cleared() + ["", None], None, file_panels + [message, upload_view.state],
               api_visibility="private")
    # The upload's message (a refused type, a name that exists, "saved as") is about that upload:
    # it goes when another action runs on a file or another file is chosen to upload, instead of
    # staying on screen beside the next action's result as if it were about that.
    for button in (check_btn, clean_btn, stats_btn, preview_btn):
        button.click(lambda: ("", None), None, [message, upload_view.state], api_visibility="private", queue=False)
    upload.upload(lambda: ("", None), None, [message, upload_view.state], api_visibility="private", queue=False)

    def wire_lists(ctx: Context):
        # An upload or a cleaned file should appear in every dataset list (the Training tab's too).
        others = [d for d in ctx.dataset_lists if d is not pick]

        def choices():
            updates = [gr.update(choices=ws.list_datasets()) for _ in others]
            return updates[0] if len(updates) == 1 else updates

        if others:
            store.click(choices, None, others, api_visibility="private")
            clean_btn.click(choices, None, others, api_visibility="private")

        # The components hold the lists as they were when the server started: a page opened later
        # (a reload, another browser) must show the files stored since (by an upload in another
        # page, Clean, the command line), not wait for each tab's Refresh.
        def on_open(lang):
            return [gr.update(choices=ws.list_datasets()) for _ in (pick, *others)] + [files_table(ws, lang or DEFAULT)]

        ctx.on_load(on_open, [ctx.lang], [pick, *others, table])

    ctx.after_build.append(wire_lists)


def problems_frame(lang: str, errors: list[dict], warnings: list[dict]):
    """Check's problems as a table in `lang` (kind, file, line, message), or None when there are
    none. Each message is worded in `lang` from its code and fields (i18n.engine_warning; a
    library's own words stay as a quoted detail), the engine's English where it has no code."""
    rows = [{"kind": t(lang, "datasets.error"), **p} for p in errors]
    rows += [{"kind": t(lang, "datasets.warning"), **p} for p in warnings]
    if not rows:
        return None
    rows = [{"kind": r["kind"], "file": r.get("file"), "line": r.get("line"), "message": engine_warning(lang, r)}
            for r in rows]
    return translated_columns(lang, pd.DataFrame(rows), "datasets.col.")


def removals_frame(lang: str, rows: list[dict]) -> pd.DataFrame:
    """Clean's removed rows (`Removal.to_dict()`s) with the reason and its detail in `lang`."""
    def reason(k):
        return t(lang, f"datasets.reason.{k}") if has(lang, f"datasets.reason.{k}") else k

    return pd.DataFrame([{"file": r["file"], "line": r["line"], "reason": reason(r["reason"]),
                          "detail": engine_warning(lang, {"code": r.get("code"), "fields": r.get("fields") or {},
                                                          "message": r["detail"]})} for r in rows])


# the preview's marks (named in the UI's language) and their colours
MARKS = (("trained", "green"), ("chosen", "green"), ("rejected", "red"), ("desirable", "green"), ("undesirable", "red"))


def marked(lang: str, pieces: list[tuple[str, str | None]] | None):
    """The example's (text, mark) pieces with a legend of only the marks they use, named and
    coloured as in `lang` (a legend of every mark in every language put both languages on screen)."""
    if pieces is None:
        return None
    colours = {t(lang, f"datasets.mark.{mark}"): colour for mark, colour in MARKS}
    used = {label for _, label in pieces if label}
    return gr.update(value=pieces, color_map={label: c for label, c in colours.items() if label in used})


def histogram_plot(hist: list[dict], lang: str = DEFAULT) -> dict:
    """The histogram plot's value and axes for `stats.histogram` bins: labels "lo–hi" and
    "> cutoff", in length order (the plot sorts text labels alphabetically otherwise: 0–50,
    100–150, 50–100), row counts on a y axis with whole-number ticks from 0."""
    # two series, so the legend says which bars the cutoff cuts
    kept, over = t(lang, "datasets.series_kept"), t(lang, "datasets.series_over")
    bins = [{"tokens": (f"> {b['lo']}" if b["over_cutoff"] else f"{b['lo']}–{b['hi']}"), "rows": int(b["count"]),
             "series": over if b["over_cutoff"] else kept} for b in hist]
    # Vega picks about 6 ticks: a domain of at least 5 rows keeps them whole numbers (0, 1, 2, ...)
    # where a domain of 2 would tick at 0.2, 0.4, ...
    top = max([b["rows"] for b in bins] + [5])
    return {"value": pd.DataFrame(bins, columns=["tokens", "rows", "series"]), "sort": [b["tokens"] for b in bins],
            "y_lim": [0, top], "y_axis_format": "d",
            # both names in the colour domain from the first draw: a series added later may not be drawn
            "color_map": {kept: "#3b82f6", over: "#f97316"},
            "x_title": t(lang, "datasets.axis.tokens"), "y_title": t(lang, "datasets.axis.rows")}
