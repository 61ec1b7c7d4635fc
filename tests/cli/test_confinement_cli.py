"""The CLI refuses a link out of the workspace without showing what it leads to (the rest of the
workspace's confinement, in the library and the UI: test_confinement.py)."""

from __future__ import annotations

from helpers import run_cli
from workspaces import SECRET


def test_the_cli_refuses_the_link_without_showing_its_content(outside):
    ws, secret, _ = outside
    for args in (["data", "check", "passwd.jsonl"], ["data", "stats", "passwd.jsonl"]):
        out = run_cli(*args, ws=ws.root, timeout=120)
        assert out.returncode == 1 and "outside the workspace" in out.stderr, out.stderr[-2000:]
        assert SECRET not in out.stdout + out.stderr and "Traceback" not in out.stderr

