"""Sweep files the sweep tests run, and the mark that skips them without optuna (the `sweep` extra).

- TINY_LR_SWEEP: a 4-trial grid with one clearly bad learning rate that the median pruner stops
  (`tunestudio sweep` end to end, and the bad-file variants the CLI refuses);
- UI_LR_SWEEP: a 2-trial grid of 6 steps, started from the web UI's functions.
"""

from __future__ import annotations

import importlib.util

import pytest

needs_optuna = pytest.mark.skipif(importlib.util.find_spec("optuna") is None,
                                  reason="needs optuna: pip install 'tunestudio[sweep]'")

# seed 4 makes the grid sampler try the good learning rate first: the median pruner then has a
# finished trial to compare the bad ones with (n_startup_trials 1). 100 steps (~10 s) leave the
# sweep time to stop a bad trial after its first evaluation, before it would end by itself.
TINY_LR_SWEEP = """\
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

UI_LR_SWEEP = """\
name: ui-lr
base:
  model: tiny
  dataset: tiny.jsonl
  method: full
  max_steps: 6
  batch_size: 8
  max_length: 64
  val_split: 0.15
  test_split: 0
  eval_steps: 3
  logging_steps: 2
space:
  lr: [3e-3, 1e-3]
sampler: grid
pruner: none
trials: 2
"""
