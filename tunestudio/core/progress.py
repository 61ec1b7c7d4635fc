"""Progress of the long data stages (reading, splitting, encoding a million rows), so a person
knows it is working and how long it will take.

`progress(total, desc, unit)` is a tqdm bar on stderr (stdout stays clean for `--json`) that
appears only once a stage has run for `DELAY` seconds, with its rate and ETA; in a log file (not
a terminal) it writes a line every ~10 s instead of redrawing. The web UI's Datasets tab follows
the same bars with `gr.Progress(track_tqdm=True)`. Listeners (`listen`) get
{"stage", "done", "total", "unit", "rate", "eta_s"} about every 2 s: the training process
turns them into events.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

DELAY = 5.0           # seconds before a bar appears: short stages stay silent
LISTEN_EVERY = 2.0    # seconds between two reports to listeners

_listeners: list = []


def listen(fn) -> None:
    """Call `fn(report: dict)` with the progress of every stage from now on."""
    _listeners.append(fn)


def unlisten(fn) -> None:
    if fn in _listeners:
        _listeners.remove(fn)


class _Bar:
    def __init__(self, total, desc, unit):
        from tqdm import tqdm

        tty = sys.stderr.isatty()
        self.tqdm = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B",
                         file=sys.stderr if tty else _Lines(sys.stderr),
                         delay=DELAY, mininterval=0.5 if tty else 10.0, dynamic_ncols=True, leave=tty)
        self.desc, self.unit, self.total = desc, unit, total
        self.done = 0
        self.t0 = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.done += n
        self.tqdm.update(n)
        if _listeners:
            now = time.monotonic()
            if now - self.last >= LISTEN_EVERY:
                self.last = now
                self._report(now)

    def _report(self, now: float) -> None:
        rate = self.done / max(now - self.t0, 1e-9)
        eta = (self.total - self.done) / rate if self.total and rate > 0 else None
        report = {"stage": self.desc, "done": self.done, "total": self.total, "unit": self.unit,
                  "rate": round(rate, 1), "eta_s": round(eta, 1) if eta is not None else None}
        for fn in list(_listeners):
            fn(report)


class _Lines:
    """A log file gets one line per update: tqdm redraws with "\\r", which a log (and the web UI's
    view of the job log) would show as one ever-growing line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").rstrip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


@contextmanager
def progress(total: int | None, desc: str, unit: str = "rows"):
    """A bar for one stage; `.update(n)` as work is done."""
    bar = _Bar(total, desc, unit)
    try:
        yield bar
    finally:
        if _listeners and time.monotonic() - bar.t0 >= LISTEN_EVERY:
            bar._report(time.monotonic())   # the stage's end, so a follower sees it finish
        bar.tqdm.close()
