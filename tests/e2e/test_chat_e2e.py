"""`tunestudio chat` as a user runs it: one prompt with --json, an interactive session with /reset,
and an unknown model refused without a traceback (generation in-process: test_chat.py)."""

from __future__ import annotations

import json

from helpers import run_cli


def test_chat_cli_one_prompt_and_interactive(demo_template):
    r = run_cli("chat", "--model", "tiny-demo", "--prompt", "The kettle is great.", "--system", "Classify.",
                "--max-new-tokens", "6", "--json", ws=demo_template)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["response"] and 0 < out["tokens"] <= 6 and out["sampling"]["max_new_tokens"] == 6

    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "tunestudio", "chat", "--model", "tiny-demo",
                           "--max-new-tokens", "4", "--workspace", str(demo_template)],
                          input="hello\n/reset\nhow are you\n/exit\n", capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("> ") >= 3 and "history cleared" in proc.stderr

    r = run_cli("chat", "--model", "no-such-model", "--prompt", "x", ws=demo_template)
    assert r.returncode == 1 and "no-such-model" in r.stderr and "Traceback" not in r.stderr

