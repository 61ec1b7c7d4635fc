"""The Training tab's live view: the memory estimate, the device line, the pre-start data check
(`precheck`), and the monitor that reads only files (the job queue, the run's events.jsonl, the
job's log), so a reloaded page or a second browser shows the same job. Split out of
tab_training.py, which lays the tab out and wires it.
"""

from __future__ import annotations

import html
import time

import gradio as gr
import pandas as pd

from tunestudio.config.run_config import fields_by_name
from tunestudio.core import run_progress
from tunestudio.data.formats.problems import ProblemError
from tunestudio.data.preference import load_pref_file
from tunestudio.data.split import resolve_dataset
from tunestudio.jobs import queue as jobs
from tunestudio.models import memory
from tunestudio.models.lengths import dataset_lengths
from tunestudio.models.memory import human_bytes
from tunestudio.rewards.data import load_prompts
from tunestudio.train import checkpoint as ckpt
from tunestudio.train.objectives import OBJECTIVES
from tunestudio.webui.common import charts
from tunestudio.webui.common.context import error_text, plotted, say
from tunestudio.webui.i18n.texts import engine_error, engine_warning, t

STATUS_ICONS: dict[str, str] = {}  # plain text: emoji fonts are often missing (boxes on Debian's Chromium)


def memory_text(ws, lang, model, method, batch_size, max_length, precision, checkpointing, lora_r,
                dataset=None) -> str:
    """The Training tab's estimate: `memory.estimate_settings`, the function the Model tab's table
    calls too (same settings, same figure), for the longest batch of `dataset`'s rows when one is
    picked (a sample tokenised, models.lengths.dataset_lengths), else for rows of max_length."""
    if not model:
        return ""
    for name, value in (("batch_size", batch_size), ("max_length", max_length), ("lora_r", lora_r)):
        if value is None:   # an emptied box: Start refuses it too (config_from_form), never a silent default
            from tunestudio.webui.tabs.training.form import empty_field

            return "⚠ " + say(lang, empty_field(fields_by_name()[name]))
        if int(value) < 1:   # the estimate of an impossible setting would mislead
            return "⚠ " + t(lang, "training.at_least_one", field=t(lang, f"param.{name}"), value=int(value))
    try:
        lengths = dataset_lengths(ws, dataset, model, int(max_length)) if dataset else None
        est = memory.estimate_settings(ws.model_path_or_id(model), lengths=lengths, method=method or "full",
                                       batch_size=int(batch_size), max_length=int(max_length),
                                       precision=precision or "auto", gradient_checkpointing=bool(checkpointing),
                                       lora_r=int(lora_r))
        text = t(lang, "training.memory", estimate=breakdown(lang, memory, est),
                 trainable=f"{est['trainable_params']:,}", params=f"{est['params']:,}")
        a = est["assumptions"]
        text += " " + (t(lang, "training.memory_data", dataset=dataset, tokens=a["tokens_per_row"],
                         trained=a["trained_per_row"], batch=a["batch_size"]) if a["lengths"] == "data" else
                       t(lang, "training.memory_max_length", tokens=a["tokens_per_row"], batch=a["batch_size"]))
        try:
            available = memory.available_memory()
            ok, _ = memory.check_fits(est, available)
            if not ok:   # the engine's verdict, in the UI's words; its tips name fields, not flags
                tips = "; ".join(engine_warning(lang, tip) for tip in memory.advice(est))
                text += "\n\n⚠ " + t(lang, "engine.not_enough_memory", estimate=breakdown(lang, memory, est),
                                         available=memory.human_bytes(available), tips=tips)
        except Exception:  # the machine's free memory could not be read: the estimate alone still helps
            pass
        return text
    except Exception as e:
        return error_text(lang, e)


def _mib(mb) -> str:
    return human_bytes(float(mb) * 2**20) if isinstance(mb, (int, float)) else "—"


def device_line(lang: str, summary: dict) -> str:
    """Where the run trains and in what precision, and the training process's memory at its latest
    logged step (CPU resident memory; GPU memory allocated, with its peak), from its events."""
    text = t(lang, "training.device_line", device=summary["device"], precision=summary.get("precision") or "?")
    if summary.get("rss_mb") is not None:
        gpu = (t(lang, "training.gpu_memory", now=_mib(summary["gpu_mb"]), peak=_mib(summary.get("peak_memory_mb")))
               if summary.get("gpu_mb") is not None else t(lang, "training.no_gpu"))
        text += " · " + t(lang, "training.live_memory", rss=_mib(summary["rss_mb"]), gpu=gpu)
    return text


def breakdown(lang: str, memory, est: dict) -> str:
    """`memory.breakdown` (the engine's English line) in `lang`: total, then weights, gradients,
    optimizer and activations, and on a CPU the process itself, as MiB/GiB."""
    key = "training.breakdown_cpu" if est.get("runtime") else "training.breakdown"
    return t(lang, key, **memory.breakdown_sizes(est))


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


PRECHECK_MAX_BYTES = 64 << 20   # larger datasets are checked by the job itself (the UI stays quick)


def precheck(ws, cfg, limit: int = 10) -> tuple[int, list[dict]] | None:
    """(number of unusable rows, the first `limit` of them as `Problem.to_dict()`s: file, line,
    message, code, fields) of the form's dataset, read as the run would read it; None when every
    row can be used, or when the dataset is too large to read here (or streamed): then the job's
    own check reports them. `common.problems` words them in the UI language."""
    from tunestudio.data.quality.check import check_dataset

    files = resolve_dataset(ws, cfg.dataset)
    if cfg.streaming or sum(p.stat().st_size for p in files.values()) > PRECHECK_MAX_BYTES:
        return None
    kind = _objective_data(cfg.objective)
    if kind in ("pairs", "unpaired"):   # preference rows: checked as the preference loader reads them

        errors = [p for path in files.values() for p in load_pref_file(path).errors]
    elif kind == "prompts":   # GRPO's prompts: the loader stops at the first bad row, naming file:line

        try:
            for path in files.values():
                load_prompts(path)
        except ProblemError as e:
            return 1, [e.problem.to_dict()]
        return None
    else:
        errors = check_dataset(ws, cfg.dataset, cfg.format or None, cfg.mapping or None,
                               separator=cfg.separator or None).errors
    return (len(errors), [p.to_dict() for p in errors[:limit]]) if errors else None


def _objective_data(objective: str | None) -> str:
    """The kind of rows `objective` trains on (objectives table: sft, pairs, unpaired, prompts)."""

    o = OBJECTIVES.get(objective or "sft")
    return o.data if o is not None else "sft"


def startup_progress(report: dict | None, lang: str) -> str | None:
    """A bar for the data stage a starting job is in (reading, encoding...), with rate and ETA."""
    if not report:
        return None
    done, total = report.get("done") or 0, report.get("total")
    pct = int(100 * done / total) if total else 0
    unit = report.get("unit", "")
    if unit == "B":   # bytes read: MB are what a person reads
        done, total, rate, unit = done / 1e6, total / 1e6 if total else None, (report.get("rate") or 0) / 1e6, "MB"
    else:
        rate = report.get("rate") or 0
    text = t(lang, "training.preparing", stage=html.escape(str(report.get("stage", ""))), done=f"{done:,.0f}",
             total=f"{total:,.0f}" if total else "?", unit=unit, rate=f"{rate:,.1f}",
             eta=_fmt_eta(report.get("eta_s")))
    return (f'<div class="ts-progress" title="{pct}%"><div style="width:{pct}%"></div></div>'
            f'<div>{pct}% · {text}</div>')


def lr_frame(lang: str, lrs: list) -> pd.DataFrame | None:
    """The learning-rate chart's frame: step, lr, and its one series named in `lang` (a chart's
    legend names what is drawn, one line or many); None without points."""
    name = t(lang, "training.series_lr")
    return pd.DataFrame([{"step": s, "lr": v, "series": name} for s, v in lrs],
                        columns=["step", "lr", "series"]) if lrs else None


def monitor(ws, lang: str, last) -> list:
    """The monitor's outputs for the job a page should show (the running one, else the newest)."""
    listed = jobs.list_jobs(ws)  # one look at the queue per tick (each look also advances it)
    job = jobs.latest_job(ws, listed)
    queued = jobs.queued_jobs(ws, listed)
    queue_df = pd.DataFrame(
        [{t(lang, "training.col.job"): j.id, t(lang, "training.col.name"): j.name or "—",
          t(lang, "training.col.since"): time.strftime("%H:%M:%S", time.localtime(j.created_at))} for j in queued],
        columns=[t(lang, "training.col.job"), t(lang, "training.col.name"), t(lang, "training.col.since")],
    )
    queue_sig = tuple(j.id for j in queued)
    last = last or {}
    # The queue widgets change only when the queue does, so a pick in the cancel list survives ticks.
    if last.get("queue") == (queue_sig, lang):
        queue_out = [gr.skip(), gr.skip()]
    else:
        queue_out = [queue_df, gr.update(choices=[(j.id, j.id) for j in queued], value=None)]
    if job is None:
        sig = {"view": ("none", lang), "queue": (queue_sig, lang)}
        if last.get("view") == sig["view"]:
            return [gr.skip()] * 6 + queue_out + [gr.skip(), sig, gr.skip()]
        no_plot = gr.update(value=None, visible=False)   # no job: no empty axes either
        return [t(lang, "training.no_job"), "", no_plot, no_plot, "", ""] + queue_out + \
            [gr.skip(), sig, gr.update(visible=False)]

    summary = {"status": "starting", "train": [], "val": [], "lrs": [], "warnings": [], "step": 0,
               "total_steps": None, "progress": 0.0, "eta_s": None, "tokens_per_second": None, "epoch": None,
               "error": None, "lr": None}
    n_events = 0
    if job.run_id:
        follower = run_progress.follow(job.run_id, ws)
        summary = run_progress.summarize(follower.events)
        n_events = len(follower.events)
    state = summary["status"]
    if job.status in jobs.ACTIVE and job.started_at and (summary.get("started_at") or 0) < job.started_at - 1:
        state = "starting"   # a resumed run: its events so far are of an earlier process
    if job.stopping:
        state = "stopping"   # asked to stop: saving its checkpoint (a second Stop changes nothing)
    if job.status in jobs.ENDED and state in ("starting", "running"):
        state = "failed"  # the process ended without saying why in its events (often before the run
        # existed: a dataset or model not found, a bad option): its exit record says why, else the log
        summary["error_event"] = summary.get("error_event") or job.error
        if not summary["error_event"]:
            summary["error"] = summary["error"] or t(lang, "training.ended_without_event", code=job.returncode)
    elif state == "failed" and (job.error or {}).get("code") and not (summary.get("error_event") or {}).get("code"):
        summary["error_event"] = job.error   # the exit record has the code an older failed event lacks
    # before the run exists the job reports its data stages (reading, encoding) in a file of its own
    startup = jobs.read_progress(ws, job) if state == "starting" and job.status == "running" else None
    sig = {"view": (job.id, job.run_id, n_events, job.status, job.stopping, lang, startup and startup.get("at")),
           "queue": (queue_sig, lang)}
    log = run_progress.tail(job.log_path, 60)
    if last.get("view") == sig["view"]:
        sig["series"] = last.get("series")
        return [gr.skip()] * 5 + [log] + queue_out + [gr.skip(), sig, gr.skip()]

    status_text = t(lang, "training.status_line", icon=STATUS_ICONS.get(state, ""),
                    status=t(lang, f"training.state.{state}"), run=job.run_id or "…", job=job.id)
    if state == "stopped" and job.run_id:
        status_text += "\n\n" + stopped_text(ws, lang, job.run_id, summary)
    if summary.get("device"):
        status_text += "\n\n" + device_line(lang, summary)
    parts = []
    if summary["total_steps"]:
        parts.append(t(lang, "training.step_of", step=summary["step"], total=summary["total_steps"]))
    if summary["epoch"] is not None:
        parts.append(t(lang, "training.epoch", epoch=f"{float(summary['epoch']):.2f}"))
    if state == "running":
        parts.append(t(lang, "training.eta", eta=_fmt_eta(summary["eta_s"])))
    if summary["tokens_per_second"]:
        parts.append(t(lang, "training.speed", tps=f"{float(summary['tokens_per_second']):,.0f}"))
    if summary["lr"] is not None:
        parts.append(t(lang, "training.lr_now", lr=f"{float(summary['lr']):.2e}"))
    if len(summary["train"]) == 1:   # said in words: its chart waits for a second point (charts.drawable)
        parts.append(t(lang, "training.one_point", step=summary["train"][0][0], loss=f"{summary['train'][0][1]:.4f}"))
    elif summary["train"]:
        parts.append(t(lang, "training.last_loss", loss=f"{summary['train'][-1][1]:.4f}"))
    if summary["val"]:
        parts.append(t(lang, "training.last_val_loss", loss=f"{summary['val'][-1][1]:.4f}"))
    pct = int(round(100 * summary["progress"]))
    progress_html = (f'<div class="ts-progress" title="{pct}%"><div style="width:{pct}%"></div></div>'
                     f'<div>{pct}% · {" · ".join(parts)}</div>')
    progress_html = startup_progress(startup, lang) or progress_html

    train_name, val_name = t(lang, "training.series.train"), t(lang, "training.series.val")
    rows = [{"step": s, "loss": v, "series": train_name} for s, v in summary["train"]]
    rows += [{"step": s, "loss": v, "series": val_name} for s, v in summary["val"]]
    loss_df = pd.DataFrame(rows, columns=["step", "loss", "series"]) if rows else None
    lr_df = lr_frame(lang, summary["lrs"])
    if not charts.drawable(loss_df):   # one point is no line: the chart would be an empty frame
        loss_df = lr_df = None
    series = tuple(sorted({r["series"] for r in rows})) + (t(lang, "training.series_lr"),)
    sig["series"] = series
    if last.get("series") and series != last["series"]:
        # The plot keeps the colour domain of the data it first drew (often only validation, evaluated
        # at step 0; or the series' names in the language before a switch) through later updates:
        # clear it now and draw it afresh on the next tick.
        loss_df = lr_df = None
        sig["view"] = None

    alerts = [f"⚠ {engine_warning(lang, w)}" for w in summary.get("warning_events") or summary["warnings"]]
    if summary.get("early_stop"):
        es = summary["early_stop"]
        alerts.append("■ " + t(lang, "training.early_stop", step=es.get("step"), best=es.get("best_step"),
                                patience=es.get("patience")))
    if summary.get("error_event"):   # the engine's reason, worded from its code in `lang`
        alerts.append("✖ " + t(lang, "training.failed_because", error=engine_error(lang, summary["error_event"])))
    elif summary["error"]:
        alerts.append(f"✖ {summary['error']}")
    loss_out, lr_out = plotted(loss_df), plotted(lr_df)   # a job with nothing logged (yet): no empty axes
    # the command of the job whose status this is (a queued one is in the queue table, not here)
    return [status_text, progress_html, loss_out, lr_out, "\n\n".join(alerts), log] + queue_out + \
        [job.command_line(), sig, gr.update(visible=job.stopping)]


def stopped_text(ws, lang: str, run_id: str, summary: dict) -> str:
    """What a stopped run left, read from its checkpoint folders on disk (never what the stop meant
    to save): the step it stopped at and its last checkpoint, or that it has none and a resume starts
    again from step 0 (with the step its first checkpoint was due at, from its stopped event)."""
    stop = summary.get("stop") or {}
    step = stop.get("step") if isinstance(stop.get("step"), int) else summary["step"]
    point = ckpt.stop_point(ws.runs_dir / run_id / "checkpoints", step)
    if point["checkpoint_step"] is not None:
        return t(lang, "training.stopped_checkpoint", step=step, checkpoint=point["checkpoint_step"])
    if isinstance(stop.get("first_save"), int):
        return t(lang, "training.stopped_no_checkpoint_first", step=step, first=stop["first_save"])
    return t(lang, "training.stopped_no_checkpoint", step=step)
