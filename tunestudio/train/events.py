"""What a run tells the world while it trains: events.jsonl for programs, train.log and the console
for people.

events.jsonl holds one JSON object per line, each with `type` and `time` (unix seconds); each line
is flushed as it is written, because the web UI follows the file while the run goes on. Types:

  started     run_id, name, model, method, dataset, pid, world_size, total_steps, steps_per_epoch,
              train_rows, val_rows, trainable_params, total_params, memory (estimate), resumed_from,
              device (GPU name or "cpu"), precision (fp32, bf16, fp16)
  train       step, total_steps, epoch, loss, token_accuracy, lr, grad_norm, tokens_seen,
              tokens_per_second, elapsed_s, eta_s, peak_memory_mb, rss_mb (CPU memory now),
              gpu_mb (CUDA memory allocated now, null without CUDA)        (every logging step)
  eval        step, epoch, eval_loss, eval_token_accuracy, best_eval_loss, best_step, is_best
  checkpoint  step, path
  warning     code (truncated, overfitting, no_change, memory, checkpoint_damaged (with checkpoint,
              moved_to), no_intact_checkpoint, ...), message
  oom_retry   micro_batch, grad_accum, new_micro_batch, new_grad_accum, error
  early_stop  step, best_step, patience
  stopped     step, reason, checkpoint           (SIGINT/SIGTERM: resumable with --resume)
  failed      error
  completed   metrics, output_dir

Only the main process writes (under torchrun every rank runs this code: `enabled=False` elsewhere).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from tunestudio.core.statefiles import read_jsonl


def _clean(value):
    """JSON has no NaN/inf: write them as null rather than produce a file a browser cannot parse."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class EventLog:
    def __init__(self, run_dir: Path | None, enabled: bool = True, console=None):
        self.enabled = enabled and run_dir is not None
        self.console = console if console is not None else sys.stderr
        self._events = self._log = None
        if self.enabled:
            run_dir.mkdir(parents=True, exist_ok=True)
            self._events = open(run_dir / "events.jsonl", "a", encoding="utf-8")
            self._log = open(run_dir / "train.log", "a", encoding="utf-8")

    def emit(self, type: str, **fields) -> dict:
        event = _clean({"type": type, "time": round(time.time(), 3), **fields})
        if self.enabled:
            self._events.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
            self._events.flush()
        return event

    def say(self, text: str) -> None:
        """A line for people: the console (stderr, so `--json` keeps stdout clean) and train.log."""
        if not self.enabled:
            return
        stamp = time.strftime("%H:%M:%S")
        for line in str(text).splitlines() or [""]:
            self._log.write(f"{stamp} {line}\n")
            print(line, file=self.console, flush=True)
        self._log.flush()

    def warn(self, code: str, message: str, **fields) -> None:
        self.emit("warning", code=code, message=message, **fields)
        self.say(f"warning: {message}")

    def close(self) -> None:
        for f in (self._events, self._log):
            if f is not None:
                f.close()
        self._events = self._log = None
        self.enabled = False


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def earlier_segments(events_path: Path) -> list[float]:
    """Seconds each earlier process of a resumed run trained (from its "started" event to its last
    event before the next "started"), oldest first; [] for a run trained in one go or without an
    events file. The newest "started" opens the current (or last) process, which is not counted:
    its time is the caller's (the registry's started_at..finished_at, or the clock)."""

    if not events_path.is_file():
        return []
    events, _, _ = read_jsonl(events_path)  # damaged lines are skipped
    spans, start, end = [], None, None
    for event in events:
        when = event.get("time")
        if not isinstance(when, (int, float)):
            continue
        if event.get("type") == "started":
            if start is not None:
                spans.append(max(0.0, end - start))
            start = end = when
        elif start is not None:
            end = when
    return spans
