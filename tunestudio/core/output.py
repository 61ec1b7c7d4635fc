"""What a `--json` command prints: exactly one JSON object on stdout (docs/dev/architecture.md, the contract)."""

from __future__ import annotations

import json
import sys


def print_json(obj) -> None:
    """The one JSON object a `--json` command prints on stdout."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()
