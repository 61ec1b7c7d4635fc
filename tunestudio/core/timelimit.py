"""A time limit on a block of Python code in any thread: `with time_limit(seconds): ...` raises
TimeLimitExceeded inside the block once its deadline passes (chat templates: data/chat/turns.py).

How the limit is kept: a watchdog thread raises TimeLimitExceeded in the limited thread
(PyThreadState_SetAsyncExc) once its deadline passes. A signal alarm works only in the main thread,
but chat templates are rendered in the web UI's and the server's worker threads too; a process per
call costs more than the call. The exception arrives at the block's next Python instruction (a
template's loops are compiled Python), so a block stuck in one long C call (a huge string repeated)
stops when that call returns. Each armed block fires at most once, and disarming cancels an
exception not yet delivered, so none lands outside the block.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from contextlib import contextmanager


class TimeLimitExceeded(BaseException):
    """Raised inside the limited block at its deadline; a BaseException, so that no `except
    Exception` inside the block (a template's own error handling) swallows it."""


_lock = threading.Lock()
_armed: dict[int, float] = {}      # thread id -> its deadline (time.monotonic)
_fired: set[int] = set()
_watchdog: tuple[int, threading.Thread] | None = None   # (pid, thread) while one runs


@contextmanager
def time_limit(seconds: float):
    """Run the block with TimeLimitExceeded raised in it after `seconds` (at its next Python
    instruction); nothing of the limit outlives the block."""
    tid = _arm(seconds)
    try:
        yield
    finally:
        try:
            _disarm(tid)
        except TimeLimitExceeded:   # delivered while disarming: disarm for good, then let it out
            _disarm(tid)
            raise


def _watch() -> None:
    global _watchdog
    idle = 0.0
    while True:
        time.sleep(0.05)
        with _lock:
            if not _armed:   # ends after 2 s with nothing armed (decided under the lock: no block is lost)
                idle += 0.05
                if idle >= 2.0:
                    _watchdog = None
                    return
                continue
            idle, now = 0.0, time.monotonic()
            for tid, deadline in _armed.items():
                if now >= deadline and tid not in _fired:
                    _fired.add(tid)
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(TimeLimitExceeded))


def _after_fork() -> None:
    """A forked child (a data loader worker) has none of the parent's threads: fresh state."""
    global _lock, _watchdog
    _lock, _watchdog = threading.Lock(), None
    _armed.clear()
    _fired.clear()


os.register_at_fork(after_in_child=_after_fork)


def _arm(seconds: float) -> int:
    global _watchdog
    tid = threading.get_ident()
    with _lock:
        _fired.discard(tid)
        _armed[tid] = time.monotonic() + seconds
        if _watchdog is None or _watchdog[0] != os.getpid():
            thread = threading.Thread(target=_watch, name="tunestudio-time-limit", daemon=True)
            thread.start()
            _watchdog = (os.getpid(), thread)
    return tid


def _disarm(tid: int) -> None:
    with _lock:
        if _armed.pop(tid, None) is not None and tid in _fired:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), None)   # not delivered yet: cancelled
        _fired.discard(tid)
