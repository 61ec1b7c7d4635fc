"""The box's worker: a separate process that imports the user's files once and scores batches.

Started by `process_box.Box` as `python worker.py KIND MEMORY_MB FILE_MB` (KIND: reward or metric);
before any user code it sets its own limits (address space, file size, no core dump). It speaks
JSON lines:
  request  {"load": {name: path}}                         -> {"ok": true} | {"error": "...", "code", "fields"}
  request  {"score": name, "items": [{"prompt", "completion", "row"}]} -> {"ok": [float]} | {"error": "...", ...}
  request  {"metric": name, "items": [{"prediction", "reference", "example"}]}
           -> {"ok": [float]} | {"raised": "...", "item"} | {"not_number": "...", "item"} | {"error": ...}
An error's code and fields are its `engine.<code>` text's parts (webui/i18n/locales), for the web UI.
Errors name the user's file and line (the innermost traceback frame inside that file), never a
frame of ours. User code printing to stdout would break the protocol, so stdout is moved to
stderr and the protocol keeps a private copy of the original stdout.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import math
import os
import resource
import shutil
import signal
import sys
import traceback

FUNCTION = "reward"
MEMORY_ENV = "TUNESTUDIO_BOX_MEMORY_MB"   # process_box.BOX_MEMORY_ENV (this file imports nothing of ours)
MB = 1 << 20
PR_SET_PDEATHSIG = 1   # <linux/prctl.h>
HOME_PREFIX = "tunestudio-box-"   # process_box: the worker's HOME, a temporary folder


def _limit(memory_mb: int, file_mb: int) -> None:
    """The box's limits on this process and every child it forks (they inherit them)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * MB, memory_mb * MB))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb * MB, file_mb * MB))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _end_group() -> None:
    """Remove our HOME (the box's temporary folder, in case our parent cannot) and SIGKILL our
    whole group, ourselves included."""
    home = os.environ.get("HOME", "")
    if os.path.basename(home).startswith(HOME_PREFIX):   # never a real home folder
        shutil.rmtree(home, ignore_errors=True)
    os.killpg(0, signal.SIGKILL)


def _die_with_the_group(parent: int) -> None:
    """SIGTERM (ours from process_box.kill_group, or the kernel's when our parent dies) kills our
    whole group at once, children the user's code forked included; a parent that dies without
    stopping us (SIGKILL) sends it through PR_SET_PDEATHSIG."""
    signal.signal(signal.SIGTERM, lambda *_: _end_group())
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:   # the parent died before the line above took effect
        _end_group()


def _memory_error(where: str, what: str) -> dict:
    limit = resource.getrlimit(resource.RLIMIT_AS)[0] // MB
    return {"error": f"{where}: {what} needed more memory than the limit of {limit} MiB (MemoryError); "
                     f"use less, or raise the limit with {MEMORY_ENV}=MiB",
            "code": "box_memory_limit", "fields": {"where": where, "what": what, "limit_mb": limit,
                                                   "variable": MEMORY_ENV}}


def _where(e: BaseException, path: str, name: str) -> str:
    """'NAME:LINE' for the innermost frame of `e` inside the user's file `path`."""
    line = None
    if isinstance(e, SyntaxError) and e.filename and os.path.realpath(e.filename) == path:
        line = e.lineno
    for frame in traceback.extract_tb(e.__traceback__):
        if os.path.realpath(frame.filename) == path:
            line = frame.lineno
    return f"{name}:{line}" if line else name


def _describe(e: BaseException) -> str:
    text = str(e) if not isinstance(e, SyntaxError) else (e.msg or "invalid syntax")
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _load(files: dict, funcs: dict, function: str = FUNCTION) -> dict:
    for name, path in files.items():
        spec = importlib.util.spec_from_file_location(f"tunestudio_user_reward_{len(funcs)}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except BaseException as e:  # noqa: BLE001 - any failure of user code is reported, not raised
            where, detail = _where(e, path, name), _describe(e)
            if isinstance(e, MemoryError):
                return _memory_error(where, "importing the file")
            return {"error": f"{where}: importing the reward file failed: {detail}",
                    "code": "reward_import_failed", "fields": {"where": where, "detail": detail}}
        fn = getattr(module, function, None)
        if not callable(fn):
            return {"error": f"{name}: defines no function {FUNCTION}(prompt, completion, **row) -> float",
                    "code": "reward_no_function", "fields": {"name": name, "function": FUNCTION}}
        funcs[name] = (fn, path)
    return {"ok": True}


def _score(name: str, items: list, funcs: dict) -> dict:
    fn, path = funcs[name]
    out = []
    for i, item in enumerate(items):
        try:
            value = fn(item["prompt"], item["completion"], **item["row"])
        except BaseException as e:  # noqa: BLE001
            where, detail = _where(e, path, name), _describe(e)
            if isinstance(e, MemoryError):
                return {**_memory_error(where, f"{FUNCTION}()"), "item": i}
            return {"error": f"{where}: {FUNCTION}() raised {detail}", "item": i,
                    "code": "reward_raised", "fields": {"where": where, "function": FUNCTION, "detail": detail}}
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            shown = repr(value)[:80]
            return {"error": f"{name}: {FUNCTION}() returned {shown} ({type(value).__name__}): it must return a "
                             "finite number (a float)", "item": i,
                    "code": "reward_not_number", "fields": {"name": name, "function": FUNCTION, "value": shown,
                                                             "python_type": type(value).__name__}}
        out.append(float(value))
    return {"ok": out}


def _metric(name: str, items: list, funcs: dict) -> dict:
    """A custom metric's score(prediction, reference, example) of each item; the parent words a
    failure (evaluate/metrics.py: its codes name the metric file and the example)."""
    fn, path = funcs[name]
    out = []
    for i, item in enumerate(items):
        try:
            value = fn(item["prediction"], item["reference"], item["example"])
        except BaseException as e:  # noqa: BLE001
            if isinstance(e, MemoryError):
                return {**_memory_error(_where(e, path, name), "score()"), "item": i}
            return {"raised": _describe(e), "item": i}
        try:
            out.append(float(value))
        except (TypeError, ValueError):
            return {"not_number": repr(value)[:80], "item": i}
    return {"ok": out}


def main() -> None:
    kind, memory_mb, file_mb, parent = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    _die_with_the_group(parent)
    _limit(memory_mb, file_mb)
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the user's print() goes to stderr, not into the protocol
    sys.stdout = sys.stderr
    funcs: dict = {}
    try:
        for line in sys.stdin:
            request = json.loads(line)
            if "load" in request:
                reply = _load(request["load"], funcs, "score" if kind == "metric" else FUNCTION)
            elif "metric" in request:
                reply = _metric(request["metric"], request["items"], funcs)
            else:
                reply = _score(request["score"], request["items"], funcs)
            proto.write(json.dumps(reply) + "\n")
            proto.flush()
    finally:
        # stdin closed or the reply pipe broke: our parent is gone; take every child the user's
        # code forked along with us, as the parent would have
        _end_group()


if __name__ == "__main__":
    main()
