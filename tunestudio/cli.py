"""The `tunestudio` command: one parser, with each area adding its own subcommands.

Each module in COMMAND_MODULES has `register(subparsers)`, which adds its subcommands and sets
`func` on them; `func(args, ws)` returns the process exit code (or None for 0). Keeping every
area's flags beside the code they drive lets the web UI call the same functions.

Exit codes (ARCHITECTURE.md): 0 success, 1 user error (one message on stderr, no traceback),
2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from tunestudio import __version__
from tunestudio.errors import UserError
from tunestudio.workspace import workspace_from

COMMAND_MODULES = [
    "tunestudio.demo.commands",
    "tunestudio.data.commands",
    "tunestudio.train.commands",
    "tunestudio.runs.commands",
    "tunestudio.evaluate.commands",
    "tunestudio.webui.commands",
    "tunestudio.sweep_commands",
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


def print_json(obj) -> None:
    """The one JSON object a `--json` command prints on stdout."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        ws = workspace_from(getattr(args, "workspace", None))
        code = args.func(args, ws)
        return int(code or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
