"""What reading a data file reports: a Problem at a file and line (with its code for the web UI's
language), the error that carries one, and a raw Row with the lines it spans."""

from __future__ import annotations

from dataclasses import dataclass, field

from tunestudio.core.errors import UserError


@dataclass
class Problem:
    file: str
    line: int          # 0: the whole file
    message: str       # the engine's English, as `data check` prints it
    code: str | None = None   # its `engine.<code>` text in webui/i18n/locales (None: the message only)
    fields: dict = field(default_factory=dict)   # the values that text is filled from

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        return f"{self.where()}: {self.message}"

    def to_dict(self) -> dict:
        """{file, line, message}, and {code, fields} when the problem has a code."""
        out = {"file": self.file, "line": self.line, "message": self.message}
        if self.code:
            out.update(code=self.code, fields=dict(self.fields))
        return out

    def as_warning(self) -> dict:
        """This problem as a run's warning ({code, message, fields}, for EventLog.warn): its own
        code and fields nested under its file:line, so the web UI words it in its language."""
        if not self.code:
            return {"code": "data", "message": str(self)}
        return {"code": "data_problem", "message": str(self),
                "fields": {"where": self.where(), "problem": {"code": self.code, "message": self.message, **self.fields}}}

    @classmethod
    def of(cls, file: str, line: int, error) -> "Problem":
        """A Problem at `file:line` from an exception, keeping a CodedError's code and fields."""
        return cls(file, line, str(error), getattr(error, "code", None), dict(getattr(error, "fields", None) or {}))


class ProblemError(UserError):
    """A file that cannot be used, for one Problem (its file:line, code and fields kept): where
    reading stops at the first bad row (GRPO's prompt files), the pre-start check still lists it."""

    def __init__(self, problem: Problem):
        w = problem.as_warning()   # its code and fields, so the web UI words it (engine.data_problem)
        super().__init__(str(problem), w["code"], **w.get("fields", {}))
        self.problem = problem


def problem_list(problems: list[Problem], limit: int) -> list[dict] | dict:
    """The first `limit` problems as a UserError field the web UI words item by item, each under
    its file:line (Problem.as_warning); a longer list ends with how many more (engine.list_and_more)."""
    return listed([p.as_warning() for p in problems[:limit]], len(problems))


def listed(parts: list, total: int) -> list | dict:
    """`parts`, the first of `total` items, as a field value: the list itself, or with the count
    of the rest ({code: list_and_more, list, n}) when some were left out."""
    if total <= len(parts):
        return parts
    return {"code": "list_and_more", "message": f"... and {total - len(parts)} more", "list": parts,
            "n": total - len(parts)}


@dataclass
class Row:
    line: int
    end: int
    value: object       # a dict for a usable row; anything else is reported as the wrong type
