"""The `tunestudio` command: one parser, with each area adding its own subcommands.

Each module in COMMAND_MODULES has `register(subparsers, common)`, which adds its subcommands and
sets `func` on them; `func(args, ws)` returns the process exit code (or None for 0). A command
module only parses and prints: the work is a library function the web UI calls too.

Exit codes (docs/dev/architecture.md): 0 success, 1 user error (one message on stderr, no traceback),
2 usage error (argparse), 3 a training run stopped on request (resumable), 130 interrupted.

Before any command runs, a missing, empty or damaged registry is rebuilt from the run folders
(with a notice on stderr); a state file that cannot be read or written (a full or read-only disk,
a damaged database) ends the command with one clear message, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sqlite3
import sys
import threading
import warnings
from pathlib import Path

from tunestudio.core.errors import ERROR_FILE_ENV, EXIT_INTERRUPTED, UserError, error_record
from tunestudio.core.statefiles import describe_os_error, write_json
from tunestudio.core.version import __version__
from tunestudio.core.workspace import workspace_from
from tunestudio.jobs.queue import JOB_ENV, record_exit
from tunestudio.runs.reindex import repair_if_needed

COMMAND_MODULES = [
    "tunestudio.cli.demo",
    "tunestudio.cli.models",
    "tunestudio.cli.data",
    "tunestudio.cli.train",
    "tunestudio.cli.runs",
    "tunestudio.cli.eval",
    "tunestudio.cli.ship",
    "tunestudio.cli.webui",
    "tunestudio.cli.sweep",
    "tunestudio.cli.reward",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tunestudio", description="Fine-tune open language models: data, training, evaluation, web UI."
    )
    parser.add_argument("--version", action="version", version=f"tunestudio {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--workspace", default=None,
        help="workspace folder (default: $TUNESTUDIO_HOME or the current directory)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that area is not built yet
                continue
            raise
        module.register(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # peft's PeftModel() (every LoRA run, every adapter loaded) and trl's generation helpers read
    # model.is_gradient_checkpointing, which transformers 5 deprecated for is_activation_checkpointing:
    # a FutureWarning no call of ours can avoid. Only that message is hidden; every other warning shows.
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM (the UI's Stop, `kill`) as SIGINT: cleanup runs and the run's status is recorded,
    # where the default action would end the process mid-write. Training installs its own
    # handler (a graceful stop at the next step) while it trains.
    # SIGUSR1 (the queue's "Stop now") the same way before training has its handler: exit 130, stopped.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGUSR1, _interrupt)
    code = 1  # what an exception escaping here (a bug, with its traceback) exits with
    try:
        code = _run(args)
        return code
    finally:
        _record_job_exit(args, code)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _record_job_exit(args, code: int) -> None:
    """A job launched by the web UI writes how it ended into its own job record, so every UI
    watching the workspace learns the same outcome (only the launching one could wait for it)."""

    job_id = os.environ.get(JOB_ENV)
    if not job_id or os.environ.get("RANK", "0") != "0":
        return
    try:
        error = getattr(args, "user_error", None)
        record_exit(workspace_from(getattr(args, "workspace", None)), job_id, code,
                    run_id=getattr(args, "result_run_id", None),  # set by `train`: the queue knows the run
                    error=error_record(error) if error is not None else None)
    except Exception as e:  # noqa: BLE001 - a full disk: observers fall back to the run's status
        print(f"warning: could not record the job's exit ({e})", file=sys.stderr)


def _write_error_file(e: UserError) -> None:
    """Where the process that started this one asked for it ($TUNESTUDIO_ERROR_FILE: the web UI's
    exports and sweeps), the error as {message, code, fields}, so it is shown in the UI's language."""
    path = os.environ.get(ERROR_FILE_ENV)
    if not path:
        return
    try:
        write_json(Path(path), error_record(e))
    except Exception as err:  # noqa: BLE001 - a full disk: the UI falls back to the stderr line
        print(f"warning: could not write the error file {path} ({err})", file=sys.stderr)


def _run(args) -> int:
    ws = None
    try:
        ws = workspace_from(getattr(args, "workspace", None))
        if not getattr(args, "repairs_registry", False):
            notice = repair_if_needed(ws)
            if notice:
                print(f"notice: {notice}", file=sys.stderr)
        code = args.func(args, ws)
        return int(code or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        args.user_error = e   # its code and fields, for the job's exit record (the web UI words it)
        _write_error_file(e)
        return 1
    except OSError as e:  # a state file on a full or read-only disk: say which and why

        print(f"error: {describe_os_error(e)}", file=sys.stderr)
        return 1
    except sqlite3.Error as e:
        db = ws.db_path if ws is not None else "tunestudio.db"
        print(f"error: the registry {db} cannot be used ({e}): check that the disk has space and "
              "the file is writable; `tunestudio runs reindex` rebuilds it from the run folders", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
