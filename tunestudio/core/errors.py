"""The one exception type that means "the user gave us something we cannot use".

The CLI turns it into one line on stderr and exit code 1, with no traceback: the message must
say what is wrong and where (file, line or row, option name), and what to do about it.
Anything else that escapes is a bug in tunestudio and keeps its traceback.
"""

import json


class CodedError(Exception):
    """An error whose English message also comes as a code and the values it was made from, so
    the web UI can say it in its own language (`engine.<code>` in webui/i18n/locales/*.yaml, filled from
    `fields`); the CLI prints the message. `code` None: the message is all there is."""

    def __init__(self, message: str, code: str | None = None, **fields):
        super().__init__(message)
        self.code = code
        self.fields = fields


class UserError(CodedError):
    """Bad input from the user: a data file, an option, a missing model or run.

    `UserError(message)` is enough for the CLI; a raise site a web UI user can reach also gives a
    code and fields (`UserError(message, "dataset_not_found", name=...)`) so the UI words it in its
    language (see CodedError)."""


def error_record(e: BaseException) -> dict:
    """`e` as JSON-safe data a process writes for another to read (a job's exit record, an
    export's error file): {message, code, fields}; code None for an uncoded or foreign error.
    A field value that is not JSON (a Path) is kept as its text."""
    fields = getattr(e, "fields", None) or {}
    return {"message": str(e), "code": getattr(e, "code", None),
            "fields": json.loads(json.dumps(fields, default=str))}


# The environment variable naming a file a CLI process writes its UserError into (error_record as
# JSON) when it ends on one: how the web UI's export and sweep processes report a coded failure.
ERROR_FILE_ENV = "TUNESTUDIO_ERROR_FILE"


class CodedText(str):
    """A message (a warning, a note) that is plain text wherever text goes, and also carries a
    code and the values it was made from, like CodedError, for the web UI to word it."""

    def __new__(cls, message: str, code: str | None = None, **fields):
        self = super().__new__(cls, message)
        self.code, self.fields = code, fields
        return self


# Exit codes of the `tunestudio` command (README, docs/dev/architecture.md): 0 success, 1 user error,
# 2 usage error, 3 a training run that stopped on request (SIGINT/SIGTERM, the UI's Stop) with a
# checkpoint to resume from, 130 interrupted outright (a second signal).
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130
