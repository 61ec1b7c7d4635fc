"""A run's progress as a monitor reads it: its events.jsonl followed line by line and summarised
(status, steps, losses, ETA, memory), and the tail of a log file.

The engine writes the events (train/events.py lists their types); the Training and Runs tabs,
sweeps and `jobs` read them here, whatever process started the run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tunestudio.core.statefiles import read_jsonl
from tunestudio.core.workspace import Workspace


def read_events(path: Path, offset: int = 0) -> tuple[list[dict], int]:
    """The complete JSON lines of `path` from byte `offset`, and the offset after the last one.

    A line still being written (no newline yet) is left for the next call, so a reader never
    sees half an event; a damaged line (not JSON, not an object) is skipped (`read_jsonl`).
    """
    events, end, _ = read_jsonl(Path(path), offset)
    return events, end


class Follower:
    """Follows one run's events.jsonl: each `poll()` reads only what was appended since the last."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self.events: list[dict] = []
        self.bad_lines = 0                # damaged lines skipped so far

    def poll(self) -> list[dict]:
        new, self.offset, bad = read_jsonl(self.path, self.offset)
        self.bad_lines += bad
        self.events.extend(new)
        return new


_followers: dict[str, Follower] = {}


def follow(run: str | Path, ws: Workspace | None = None) -> Follower:
    """The follower of a run (its id with `ws`, or its folder), polled up to date.

    Followers are shared by every page that watches the same run, so ten open tabs read the
    file once per tick, not ten times from the start.
    """
    path = Path(run) if ws is None else ws.runs_dir / str(run)
    path = path / "events.jsonl" if path.suffix != ".jsonl" else path
    f = _followers.setdefault(str(path), Follower(path))
    f.poll()
    return f


def tail(path: str | Path, lines: int = 40, max_bytes: int = 64_000) -> str:
    """The last `lines` lines of a log file (the console view)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def summarize(events: list[dict], now: float | None = None) -> dict:
    """What a monitor shows, from a run's events (tunestudio/train/events.py lists the types).

    Returns {status, step, total_steps, epoch, progress (0-1), eta_s, tokens_per_second, lr,
    train [(step, loss)], val [(step, eval_loss)], lrs [(step, lr)], warnings [text],
    warning_events [the warning events themselves: code, message, fields; the UI words them],
    early_stop (dict or None), stop ({step, first_save, reason} of a stopped end, else None), error, error_event ({code, message, fields} of a failed end), metrics,
    checkpoints, run_id, device and precision (of the latest process), rss_mb, gpu_mb and peak_memory_mb (MiB, at the latest logged step)}.
    """
    now = now or time.time()
    out = {"status": "starting", "step": 0, "total_steps": None, "epoch": None, "progress": 0.0,
           "eta_s": None, "tokens_per_second": None, "lr": None, "train": [], "val": [], "lrs": [],
           "warnings": [], "warning_events": [], "early_stop": None, "error": None, "error_event": None,
           "metrics": {}, "checkpoints": 0, "stop": None,
           "started_at": None, "run_id": None, "last_time": None,
           "device": None, "precision": None, "rss_mb": None, "gpu_mb": None, "peak_memory_mb": None}
    for e in events:
        try:
            _summarize_one(out, e)
        except (TypeError, ValueError, AttributeError):  # a damaged event (a hand edit): skipped
            continue
    return _finish_summary(out, now)


def _summarize_one(out: dict, e: dict) -> None:
    """Fold one event into the summary `out` (see `summarize`); ValueError, before changing
    anything, for an event whose numbers are not numbers."""
    for key in ("step", "total_steps", "epoch", "loss", "lr", "eval_loss", "eta_s", "tokens_per_second", "time"):
        v = e.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ValueError(f"{key} is not a number")
    kind = e.get("type")
    step = e.get("step")
    if e.get("total_steps"):
        out["total_steps"] = e["total_steps"]
    if kind == "started":
        out["status"] = "running"
        out["started_at"] = e.get("time")
        out["run_id"] = e.get("run_id")
        out["device"], out["precision"] = e.get("device"), e.get("precision")
    elif kind in ("train", "log"):
        out["last_time"] = e.get("time")
        for key in ("rss_mb", "gpu_mb", "peak_memory_mb"):   # the training process's memory, live
            v = e.get(key)
            out[key] = v if isinstance(v, (int, float)) and not isinstance(v, bool) else out[key]
        if step is not None:
            out["step"] = step
        for key in ("epoch", "tokens_per_second", "lr", "eta_s"):
            if e.get(key) is not None:
                out[key] = e[key]
        if e.get("loss") is not None and step is not None:
            out["train"].append((step, float(e["loss"])))
        if e.get("lr") is not None and step is not None:
            out["lrs"].append((step, float(e["lr"])))
    elif kind == "eval":
        if e.get("eval_loss") is not None:
            out["val"].append((step if step is not None else out["step"], float(e["eval_loss"])))
    elif kind == "warning":
        out["warnings"].append(e.get("message") or e.get("code") or "warning")
        out["warning_events"].append(e)
    elif kind == "early_stop":
        out["early_stop"] = {k: e.get(k) for k in ("step", "best_step", "patience")}
    elif kind == "checkpoint":
        out["checkpoints"] += 1
    elif kind in ("stopped", "failed", "completed"):
        out["status"] = kind
        if kind == "stopped":   # where it stopped and when its first checkpoint was due (train/checkpoint.stop_point)
            out["stop"] = {k: e.get(k) for k in ("step", "first_save", "reason")}
        if kind == "failed":
            out["error"] = e.get("error") or e.get("message")
            # {code, message, fields} for the web UI to word (engine_warning); code None: uncoded
            out["error_event"] = {"code": e.get("code"), "message": out["error"], "fields": e.get("fields") or {}}
        out["metrics"] = e.get("metrics") or out["metrics"]


def _finish_summary(out: dict, now: float) -> dict:
    total, step = out["total_steps"], out["step"]
    if total:
        out["progress"] = min(1.0, step / total)
        if out["eta_s"] is None and out["status"] == "running" and out["started_at"] and step:
            out["eta_s"] = max(0.0, (now - float(out["started_at"])) / step * (total - step))
    if out["status"] == "running" and out["eta_s"] is not None and out["last_time"]:
        out["eta_s"] = max(0.0, float(out["eta_s"]) - (now - float(out["last_time"])))  # count down between logs
    if out["status"] != "running":
        out["eta_s"] = None
    if out["status"] == "completed":
        out["progress"] = 1.0
    return out
