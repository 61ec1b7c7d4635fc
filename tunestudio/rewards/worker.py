"""The reward worker: a separate process that imports the user's reward files once and scores batches.

Started by `sandbox.RewardWorker` as `python -m tunestudio.rewards.worker`; it speaks JSON lines:
  request  {"load": {name: path}}                         -> {"ok": true} | {"error": "...", "code", "fields"}
  request  {"score": name, "items": [{"prompt", "completion", "row"}]} -> {"ok": [float]} | {"error": "...", ...}
An error's code and fields are its `engine.<code>` text's parts (webui/i18n/locales), for the web UI.
Errors name the user's file and line (the innermost traceback frame inside that file), never a
frame of ours. User code printing to stdout would break the protocol, so stdout is moved to
stderr and the protocol keeps a private copy of the original stdout.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import traceback

FUNCTION = "reward"


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


def _load(files: dict, funcs: dict) -> dict:
    for name, path in files.items():
        spec = importlib.util.spec_from_file_location(f"tunestudio_user_reward_{len(funcs)}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except BaseException as e:  # noqa: BLE001 - any failure of user code is reported, not raised
            where, detail = _where(e, path, name), _describe(e)
            return {"error": f"{where}: importing the reward file failed: {detail}",
                    "code": "reward_import_failed", "fields": {"where": where, "detail": detail}}
        fn = getattr(module, FUNCTION, None)
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


def main() -> None:
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the user's print() goes to stderr, not into the protocol
    sys.stdout = sys.stderr
    funcs: dict = {}
    for line in sys.stdin:
        request = json.loads(line)
        if "load" in request:
            reply = _load(request["load"], funcs)
        else:
            reply = _score(request["score"], request["items"], funcs)
        proto.write(json.dumps(reply) + "\n")
        proto.flush()


if __name__ == "__main__":
    main()
