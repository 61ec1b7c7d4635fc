"""The one exception type that means "the user gave us something we cannot use".

The CLI turns it into one line on stderr and exit code 1, with no traceback: the message must
say what is wrong and where (file, line or row, option name), and what to do about it.
Anything else that escapes is a bug in tunestudio and keeps its traceback.
"""


class UserError(Exception):
    """Bad input from the user: a data file, an option, a missing model or run."""


# Exit codes of the `tunestudio` command (README, ARCHITECTURE.md): 0 success, 1 user error,
# 2 usage error, 3 a training run that stopped on request (SIGINT/SIGTERM, the UI's Stop) with a
# checkpoint to resume from, 130 interrupted outright (a second signal).
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130
