"""Bad sweep files are one message naming the line; `sweep show` of an unknown sweep is a clear error."""

from __future__ import annotations

import importlib.util

import pytest
from helpers import run_cli

pytestmark = pytest.mark.skipif(importlib.util.find_spec("optuna") is None,
                                reason="needs optuna: pip install 'tunestudio[sweep]'")


# seed 4 makes the grid sampler try the good learning rate first: the median pruner then has a
# finished trial to compare the bad ones with (n_startup_trials 1). 100 steps (~10 s) leave the
# sweep time to stop a bad trial after its first evaluation, before it would end by itself.
SWEEP = """\
name: tiny-lr
base:
  model: tiny
  dataset: tiny.jsonl
  method: full
  max_steps: 100
  batch_size: 8
  max_length: 64
  val_split: 0.15
  test_split: 0
  eval_steps: 5
  logging_steps: 5
  save_steps: 50
space:
  lr: [3e-3, 1e-9]
  weight_decay: [0.0, 0.01]
sampler: grid
pruner: {name: median, n_startup_trials: 1}
trials: 4
seed: 4
"""


@pytest.mark.parametrize("text, line, message", [
    (SWEEP.replace("  weight_decay: [0.0, 0.01]", "  weight_dekay: [0.0, 0.01]"), 16,
     "unknown run-config field 'weight_dekay' in space"),
    (SWEEP.split("space:")[0] + "space:\nsampler: grid\n", 14, "the space is empty"),
    (SWEEP.replace("  weight_decay: [0.0, 0.01]", "  weight_decay: []"), 16, "'weight_decay': the list of values is empty"),
    (SWEEP.replace("sampler: grid", "samplr: grid"), 17, "unknown key 'samplr'"),
    (SWEEP.replace("  lr: [3e-3, 1e-9]", "  lr: {log_uniform: [1e-3, 1e-5]}"), 15, "low below high"),
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

