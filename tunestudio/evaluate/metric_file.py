"""A custom metric file (`eval --metric-file`, the Evaluate tab's upload) run in the process box
(rewards/process_box.py): the user's code never runs in the evaluating process (the web UI's server
among them), and gets the time limit, memory limit and minimal environment reward files get."""

from __future__ import annotations

import math
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.rewards.process_box import Box

METRIC_TIMEOUT_S = 60.0   # for one example's score() in the box


class MetricFile:
    """`score(prediction, reference, example) -> float` from a Python file the user names, run in
    the process box (a worker of its own with the rewards' limits; its working directory `cwd`, the
    workspace). Its column is the file's stem, or custom_STEM for a stem in `reserved` (the
    built-in metrics' names). Use as a context manager, or call close."""

    def __init__(self, path: str | Path, cwd: str | Path | None = None, timeout: float = METRIC_TIMEOUT_S,
                 reserved: tuple[str, ...] = ()):
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise UserError(f"metric file {self.path} not found", "metric_file_missing", path=str(self.path))
        if self.path.suffix != ".py":
            raise UserError(f"metric file {self.path} must be a Python file (.py) with a score() function",
                            "metric_file_not_py", path=str(self.path))
        self.name = self.path.stem
        if self.name in reserved:
            self.name = f"custom_{self.name}"  # never shadow a built-in metric's column
        # the file by its path in the box: its errors name it so (path:line)
        self.box = Box("metric", {str(self.path): self.path.resolve()}, Path(cwd or Path.cwd()), timeout)
        self.box.start_process()
        reply = self._ask({"load": self.box.files}, "?")
        if reply.get("code") == "reward_no_function":
            self.close()
            raise UserError(f"metric file {self.path} has no function score(prediction, reference, example)",
                            "metric_file_no_score", path=str(self.path))
        if reply.get("code") == "reward_import_failed":
            self.close()
            detail = reply["fields"]["detail"]
            raise UserError(f"metric file {self.path} failed to load: {detail}", "metric_file_failed",
                            path=str(self.path), detail=detail)
        self._raise_error(reply)

    def _ask(self, request: dict, where: str) -> dict:
        reply = self.box.ask(request)
        if reply is None:
            raise UserError(f"metric file {self.path} took longer than {self.box.timeout:g} s on example {where} "
                            "(an endless loop?); its process was stopped", "metric_timeout", path=str(self.path),
                            seconds=f"{self.box.timeout:g}", where=where)
        if "ended" in reply:
            raise UserError(f"metric file {self.path}: its process ended on example {where} (exit code "
                            f"{reply['ended']}); does it call exit() or crash the interpreter?", "metric_process_ended",
                            path=str(self.path), where=where, exit_code=reply["ended"])
        return reply

    def _raise_error(self, reply: dict) -> None:
        if "error" in reply:   # the box's own (the memory limit), worded by its code
            self.close()
            raise UserError(reply["error"], reply["code"], **reply["fields"])

    def __call__(self, prediction: str, reference: str, example: dict, where: str = "") -> float:
        if not self.box.alive():   # stopped by an earlier error: never scored quietly without it
            raise UserError(f"metric file {self.path}: its process ended on example {where or '?'} (exit code -); "
                            "does it call exit() or crash the interpreter?", "metric_process_ended",
                            path=str(self.path), where=where or "?", exit_code="-")
        item = {"prediction": prediction, "reference": reference, "example": example}
        reply = self._ask({"metric": str(self.path), "items": [item]}, where or "?")
        self._raise_error(reply)
        if "raised" in reply:
            raise UserError(f"metric file {self.path} raised {reply['raised']} "
                            f"on example {where or '?'} (prediction {prediction!r})", "metric_raised",
                            path=str(self.path), detail=reply["raised"], where=where or "?",
                            prediction=repr(prediction))
        if "not_number" in reply:
            raise UserError(f"metric file {self.path} returned {reply['not_number']} on example {where or '?'}: "
                            "score() must return a number", "metric_not_number", path=str(self.path),
                            value=reply["not_number"], where=where or "?")
        value = reply["ok"][0]
        if math.isnan(value):
            raise UserError(f"metric file {self.path} returned NaN on example {where or '?'}", "metric_nan",
                            path=str(self.path), where=where or "?")
        return value

    def close(self) -> None:
        self.box.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
