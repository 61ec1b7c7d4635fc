"""`tunestudio train` with bad input exits 1 with one clear message."""

from __future__ import annotations

import pytest
from helpers import run_cli

from tunestudio.core import registry

pytestmark = pytest.mark.usefixtures("one_thread")

ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # see one_thread in conftest.py


@pytest.mark.parametrize("args, message", [
    (["--lr", "-1"], "--lr: the learning rate must be above 0 (or 0 for the preset's)"),
    (["--grad-accum", "0"], "--grad-accum: must be at least 1"),
    (["--val-split", "0.6", "--test-split", "0.5"], "leave nothing to train on"),
    (["--method", "magic"], "unknown method 'magic'"),
    (["--model", "no-such-model"], "model 'no-such-model' is not a folder under"),
    (["--dataset", "broken.jsonl"], "broken.jsonl:2"),
    (["--epochs", "many"], "--epochs: 'many' is not a valid float"),
])
def test_bad_input_exits_1_with_one_clear_message(tiny_ws, args, message):
    (tiny_ws.datasets_dir / "broken.jsonl").write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n{not json\n')
    base = {"--model": "tiny", "--dataset": "tiny.jsonl"}
    for flag in args[::2]:
        base.pop(flag, None)
    out = run_cli("train", *[x for kv in base.items() for x in kv], *args, ws=tiny_ws.root, env=ONE_THREAD)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and message in out.stderr, out.stderr
    assert out.stderr.strip().startswith("error:")
    conn = registry.connect(tiny_ws.db_path)
    assert conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0] == 0
    assert not tiny_ws.runs_dir.exists() or not any(tiny_ws.runs_dir.iterdir())

