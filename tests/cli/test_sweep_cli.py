"""Bad sweep files are one message naming the line; `sweep show` of an unknown sweep is a clear error."""

from __future__ import annotations

import pytest
from helpers import run_cli
from sweep_helpers import TINY_LR_SWEEP, needs_optuna

pytestmark = needs_optuna


@pytest.mark.parametrize("text, line, message", [
    (TINY_LR_SWEEP.replace("  weight_decay: [0.0, 0.01]", "  weight_dekay: [0.0, 0.01]"), 16,
     "unknown run-config field 'weight_dekay' in space"),
    (TINY_LR_SWEEP.split("space:")[0] + "space:\nsampler: grid\n", 14, "the space is empty"),
    (TINY_LR_SWEEP.replace("  weight_decay: [0.0, 0.01]", "  weight_decay: []"), 16,
     "'weight_decay': the list of values is empty"),
    (TINY_LR_SWEEP.replace("sampler: grid", "samplr: grid"), 17, "unknown key 'samplr'"),
    (TINY_LR_SWEEP.replace("  lr: [3e-3, 1e-9]", "  lr: {log_uniform: [1e-3, 1e-5]}"), 15, "low below high"),
])
def test_a_bad_sweep_file_is_one_message_naming_the_line(tiny_ws, text, line, message):
    spec = tiny_ws.root / "sweep.yaml"
    spec.write_text(text)
    out = run_cli("sweep", "--config", spec, ws=tiny_ws.root)
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {spec}, line {line}: ") and message in lines[0], lines
    assert not tiny_ws.sweeps_dir.exists()


def test_show_an_unknown_sweep_is_a_clear_error(tiny_ws):
    out = run_cli("sweep", "show", "nope", ws=tiny_ws.root)
    assert out.returncode == 1 and out.stderr.strip() == \
        "error: no sweep 'nope' in this workspace: `tunestudio sweep list` shows them"

