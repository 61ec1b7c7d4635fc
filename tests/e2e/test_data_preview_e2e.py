"""`tunestudio data preview` on plain text: --train-on-prompt, truncate mode and the token stream,
a row out of range and a missing --model (one row of chat data: test_data_preview.py)."""

from __future__ import annotations

from helpers import run_cli

MODEL = "tiny-demo"


def test_preview_train_on_prompt_text_data_and_bad_row(demo_ws):
    p = run_cli("data", "preview", "demo-text.txt", "--model", MODEL, "--row", "3", "--max-length", "8",
                "--train-on-prompt", "--text-mode", "truncate", ws=demo_ws, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "(row 3 of 600)" in p.stdout and "trained on all of the text" in p.stdout
    assert "8 tokens, 8 trained" in p.stdout and "this row is cut at 8 tokens" in p.stdout
    assert "warning: truncated: 600 of 600 rows lose trained tokens at max length 8" in p.stdout
    # plain text is a token stream by default (data/encoding/stream.py): blocks of 8 tokens, nothing cut
    p = run_cli("data", "preview", "demo-text.txt", "--model", MODEL, "--row", "3", "--max-length", "8",
                ws=demo_ws, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "8 tokens, 8 trained" in p.stdout and "blocks of up to 8 tokens; nothing is cut" in p.stdout
    assert "truncated" not in p.stdout and "this row is cut" not in p.stdout
    p = run_cli("data", "preview", "demo-text.txt", "--model", MODEL, "--row", "601", ws=demo_ws, timeout=300)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.strip() == "error: --row 601 is out of range: 'demo-text.txt' has 600 usable rows (1 to 600)"
    p = run_cli("data", "preview", "demo-text.txt", ws=demo_ws, timeout=60)
    assert p.returncode == 2 and "--model" in p.stderr                        # usage error

