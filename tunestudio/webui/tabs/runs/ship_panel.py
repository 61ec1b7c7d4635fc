"""The Runs tab's Ship panel: export run A (hf, merged, adapter, gguf with a quantisation), see
the round-trip check's verdict and every export of the run, and start/stop an OpenAI-compatible
server for it, with its URL and a `curl` example.

Exports and servers are processes (`tunestudio.ship.background`: `tunestudio export ... --json` and
`tunestudio serve ...`), never work in the UI's process; a timer follows them while they run.
The list of exports is the registry's (`registry.run_exports`, written by `tunestudio export`).
"""

from __future__ import annotations

import time

import gradio as gr
import pandas as pd

from tunestudio.core import registry
from tunestudio.models.loading import find_run
from tunestudio.ship import background as ship_jobs
from tunestudio.webui.common.context import Context, download_copy, error_text
from tunestudio.webui.i18n.texts import DEFAULT, engine_error, engine_warning, t

QUANTS = ("f16", "q8_0", "bf16", "f32", "q4_k_m", "q5_k_m", "q6_k", "q4_0")


def run_exports(ws, run_id: str) -> list[dict]:
    """The registry's exports of a run, newest first ([] without a registry or an exports table yet:
    the UI reads with a read-only connection, which never creates tables)."""
    import sqlite3


    if not run_id or not ws.db_path.is_file():
        return []
    try:
        conn = registry.connect(ws.db_path, readonly=True)
        try:
            return registry.run_exports(conn, run_id)
        finally:
            conn.close()
    except sqlite3.Error:
        return []


def _pct(v) -> str:
    return f"{v:.0%}" if isinstance(v, (int, float)) else ""


def _short(path: str, root) -> str:
    """A path inside the workspace relative to it (the table is narrow); others as they are."""
    from pathlib import Path

    try:
        return str(Path(path).relative_to(root)) if root else path
    except ValueError:
        return path


def exports_frame(lang: str, rows: list[dict], root=None) -> pd.DataFrame:
    cols = ["created", "format", "path", "seconds", "identical", "stopped", "exact_match", "warnings"]
    out = []
    for e in rows:
        rt = e.get("roundtrip") or {}
        fmt = e["format"] + (f" {e['quant']}" if e.get("quant") else "") + (f" ({e['kind']})" if e.get("kind") else "")
        if rt.get("rows"):
            same, em = f"{rt['identical']}/{rt['rows']}", f"{rt['exact_match']:.2f} / {rt['reference_exact_match']:.2f}"
        else:
            same, em = t(lang, "ship.not_checked") if not rt else t(lang, "ship.skipped"), ""
        out.append([time.strftime("%Y-%m-%d %H:%M", time.localtime(e["created_at"])), fmt, _short(e["path"], root),
                    f"{e['seconds']:.1f}" if e.get("seconds") is not None else "", same, _pct(rt.get("stopped")), em,
                    len(rt.get("warnings") or [])])
    return pd.DataFrame(out, columns=[t(lang, f"ship.col.{c}") for c in cols])


def roundtrip_text(lang: str, rt: dict | None) -> str:
    """The round-trip verdict in words: identical answers n/N, stopped share, exact match vs the
    run's, and every warning."""
    if not rt:
        return t(lang, "ship.not_checked")
    if "skipped" in rt:
        return "⚠ " + t(lang, "ship.skipped") + f": {engine_warning(lang, rt.get('skipped_part') or rt['skipped'])}"
    mark = "✔" if not rt.get("warnings") else "⚠"
    text = mark + " " + t(lang, "ship.roundtrip", identical=rt["identical"], rows=rt["rows"],
                          stopped=_pct(rt["stopped"]), exact=f"{rt['exact_match']:.2f}",
                          run_exact=f"{rt['reference_exact_match']:.2f}", seconds=rt["seconds"])
    worded = {p["message"]: p for p in rt.get("warning_parts") or []}   # an older check: the English only
    return text + "".join(f"\n\n- ⚠ {engine_warning(lang, worded.get(w, w))}" for w in rt.get("warnings") or [])


def export_text(lang: str, st: dict) -> str:
    if st["status"] == "running":
        return t(lang, "ship.exporting", format=st["format"] + (f" {st['quant']}" if st.get("quant") else ""),
                         run=st["name"], seconds=int(time.time() - st["started_at"]), job=st["id"])
    if st["status"] == "failed":
        return "✖ " + t(lang, "ship.export_failed", error=engine_error(lang, st.get("error_record") or st.get("error") or ""))
    res = st["result"]
    head = t(lang, "ship.exported", path=res.get("file") or res["output"], seconds=res.get("seconds", ""))
    return head + "\n\n" + roundtrip_text(lang, res.get("roundtrip"))


def server_text(lang: str, st: dict) -> str:
    if st["status"] == "none":
        return t(lang, "ship.no_server")
    if st["status"] == "starting":
        return t(lang, "ship.server_starting", url=st["url"])
    if st["status"] == "failed":
        return "✖ " + t(lang, "ship.server_failed", error=engine_error(lang, st.get("error_record") or st.get("error") or ""))
    if st["status"] == "stopped":
        return t(lang, "ship.server_stopped", url=st["url"])
    return "✔ " + t(lang, "ship.server_running", url=st["url"], name=st["name"]) + f"\n\n```sh\n{st['curl']}\n```"


def formats_for(ws, run: str | None) -> tuple[str, ...]:
    """The export formats that make sense for `run`: all of them for a run that trained an adapter;
    no "adapter merged" or "adapter only" for a full (or freeze) fine-tune, which has none."""
    if not run:
        return ship_jobs.FORMATS

    try:
        adapter = find_run(ws, run).is_adapter
    except Exception:   # an unknown or unfinished run: Export says why when pressed
        return ship_jobs.FORMATS
    return ship_jobs.FORMATS if adapter else tuple(f for f in ship_jobs.FORMATS if f in ("hf", "gguf"))


def build(ctx: Context, run_pick) -> None:
    """The panel under the Runs tab's buttons; `run_pick` is its Run A dropdown (a run id)."""
    ws = ctx.ws
    with gr.Accordion(t(DEFAULT, "ship.title"), open=True, elem_id="ship") as box:
        ctx.tr(box, label="ship.title")
        ctx.shared["ship_box"] = box   # the Runs tab's "Export it" opens it
        with gr.Row():
            fmt = gr.Dropdown(choices=[(t(DEFAULT, f"ship.format.{f}"), f) for f in ship_jobs.FORMATS], value="hf",
                              label=t(DEFAULT, "ship.format_label"), elem_id="ship-format",
                              scale=2, min_width=300)   # its choices are long: "Transformers folder (adapter as is)"
            quant = gr.Dropdown(choices=list(QUANTS), value="f16", label=t(DEFAULT, "ship.quant"),
                                info=t(DEFAULT, "ship.quant_info"), elem_id="ship-quant")
            verify = gr.Checkbox(value=True, label=t(DEFAULT, "ship.verify"), info=t(DEFAULT, "ship.verify_info"),
                                 elem_id="ship-verify")
            build_q = gr.Checkbox(value=False, label=t(DEFAULT, "ship.build_quantize"),
                                  info=t(DEFAULT, "ship.build_quantize_info"), elem_id="ship-build-quantize")
            export = gr.Button(t(DEFAULT, "ship.export"), variant="primary", elem_id="ship-export")
        # the choices follow run A (no "adapter merged" for a full fine-tune) and the language: on_pick
        ctx.tr(fmt, label="ship.format_label")
        ctx.tr(quant, label="ship.quant", info="ship.quant_info")
        ctx.tr(verify, label="ship.verify", info="ship.verify_info")
        ctx.tr(build_q, label="ship.build_quantize", info="ship.build_quantize_info")
        ctx.tr(export, value="ship.export")
        export_msg = gr.Markdown(elem_id="ship-export-status")
        table = gr.Dataframe(interactive=False, elem_id="ship-exports", label=t(DEFAULT, "ship.exports"), wrap=True,
                             visible=False)
        download = gr.File(label=t(DEFAULT, "ship.download"), elem_id="ship-download", interactive=False)
        ctx.tr(table, label="ship.exports")
        ctx.tr(download, label="ship.download")
        with gr.Row():
            # no minimum=/maximum=: Gradio's red pill would hide the server's state; Start says why
            port = gr.Number(value=0, precision=0, label=t(DEFAULT, "ship.port"),
                             info=t(DEFAULT, "ship.port_info"), elem_id="ship-port")
            start = gr.Button(t(DEFAULT, "ship.start_server"), elem_id="ship-start-server")
            stop = gr.Button(t(DEFAULT, "ship.stop_server"), elem_id="ship-stop-server")
            to_chat = gr.Button(t(DEFAULT, "ship.to_chat"), elem_id="ship-to-chat")
        ctx.tr(port, label="ship.port", info="ship.port_info")
        for b, k in ((start, "start_server"), (stop, "stop_server"), (to_chat, "to_chat")):
            ctx.tr(b, value=f"ship.{k}")
        server_msg = gr.Markdown(elem_id="ship-server")
    job = gr.State(None)
    url = gr.State(None)
    timer = gr.Timer(2.0, active=False)

    def table_update(lang, run):
        rows = run_exports(ws, run)
        return gr.update(value=exports_frame(lang, rows, ws.root), visible=bool(rows))

    def on_export(lang, run, f, q, check, build_it):
        lang = lang or DEFAULT
        if not run:
            return t(lang, "runs.pick_one"), None, gr.update()
        try:
            rec = ship_jobs.start_export(ws, run, f, quant=q, verify=bool(check), build_quantize=bool(build_it))
        except Exception as e:
            return error_text(lang, e), None, gr.update()
        return export_text(lang, {**rec, "status": "running"}), rec["id"], gr.Timer(active=True)

    def on_tick(lang, run, job_id):
        """Follow the export job and the run's server; the timer stops when neither is busy."""
        lang = lang or DEFAULT
        busy, msg, file, next_job = False, gr.update(), gr.update(), job_id
        if job_id:
            st = ship_jobs.export_status(ws, job_id)
            msg = export_text(lang, st)
            if st["status"] == "running":
                busy = True
            else:
                next_job = None
                if st["status"] == "finished":
                    file = download_copy(st["result"]["output"])
        srv = ship_jobs.server_status(ws, run) if run else {"status": "none"}
        busy = busy or srv["status"] == "starting"
        return (msg, table_update(lang, run), file, server_text(lang, srv), srv.get("url"), next_job,
                gr.Timer(active=busy))

    def on_pick(lang, run, current_fmt):
        """Another run picked: its exports, its server, its export still running (a reloaded page),
        and the formats that fit it."""
        lang = lang or DEFAULT
        formats = formats_for(ws, run)
        full = "adapter" not in formats   # the hf format of a full fine-tune is the model itself
        fmt_update = gr.update(choices=[(t(lang, "ship.format.hf_full" if full and f == "hf" else f"ship.format.{f}"), f)
                                        for f in formats],
                               value=current_fmt if current_fmt in formats else formats[0])
        latest = ship_jobs.latest_export(ws, run) if run else None
        running = latest and ship_jobs.export_status(ws, latest["id"])["status"] == "running"
        srv = ship_jobs.server_status(ws, run) if run else {"status": "none"}
        return ("" if not running else export_text(lang, ship_jobs.export_status(ws, latest["id"])),
                table_update(lang, run), server_text(lang, srv), srv.get("url"),
                latest["id"] if running else None, gr.Timer(active=bool(running) or srv["status"] == "starting"),
                fmt_update)

    def on_start(lang, run, p):
        lang = lang or DEFAULT
        if not run:
            return t(lang, "runs.pick_one"), None, gr.update()
        try:
            st = ship_jobs.start_server(ws, run, port=int(p or 0) or None)
        except Exception as e:
            return error_text(lang, e), None, gr.update()
        return server_text(lang, st), st.get("url"), gr.Timer(active=True)

    def on_stop(lang, run):
        lang = lang or DEFAULT
        if not run:
            return t(lang, "runs.pick_one")
        return server_text(lang, ship_jobs.stop_server(ws, run))

    private = {"api_visibility": "private"}
    export.click(on_export, [ctx.lang, run_pick, fmt, quant, verify, build_q], [export_msg, job, timer], **private)
    timer.tick(on_tick, [ctx.lang, run_pick, job], [export_msg, table, download, server_msg, url, job, timer], **private)
    picked = [export_msg, table, server_msg, url, job, timer, fmt]
    run_pick.change(on_pick, [ctx.lang, run_pick, fmt], picked, **private)
    # its exports table, server line and formats in a newly chosen language (reads only)
    ctx.on_language(on_pick, [ctx.lang, run_pick, fmt], picked)
    start.click(on_start, [ctx.lang, run_pick, port], [server_msg, url, timer], **private)
    stop.click(on_stop, [ctx.lang, run_pick], [server_msg], **private)

    def wire_chat(ctx):
        endpoint = ctx.shared.get("chat_endpoint")
        if endpoint is not None:  # fills the Chat tab's endpoint box; the user then talks to it there
            to_chat.click(lambda u: u or gr.update(), [url], [endpoint], **private)

    ctx.after_build.append(wire_chat)
