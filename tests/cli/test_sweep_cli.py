"""Bad sweep files are one message naming the line; `sweep show` of an unknown sweep is a clear error."""

from __future__ import annotations

import json
import time

import pytest
from helpers import one_error, run_cli
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



# every trial of this sweep is refused before it starts (batch size 0); trials 0: only the time budget
# would end it, so the old loop asked, failed and logged several trials a second for the whole 20 s
ALL_INVALID_SWEEP = """\
name: all-invalid
base: {model: tiny, dataset: tiny.jsonl, method: full, max_steps: 2, batch_size: 0}
space:
  lr: {log_uniform: [1e-5, 1e-3]}
sampler: random
trials: 0
timeout_min: 0.34
"""


@pytest.mark.parametrize("flag, stopped_after", [([], 3), (["--max-failures", "5"], 5)])
def test_a_sweep_whose_trials_all_fail_stops_after_a_few_with_the_first_error(tiny_ws, flag, stopped_after):
    spec = tiny_ws.root / "sweep.yaml"
    spec.write_text(ALL_INVALID_SWEEP)
    started = time.monotonic()
    out = run_cli("sweep", "--config", spec, *flag, ws=tiny_ws.root, timeout=60)
    assert time.monotonic() - started < 12   # not the 20 s budget
    line = one_error(out)
    assert line.startswith(f"error: sweep all-invalid stopped: {stopped_after} trials failed in a row "
                           f"(max_failures {stopped_after}); the first, trial 0: ") and "--batch-size: must be at least 1, got 0" in line, line
    shown = json.loads(run_cli("sweep", "show", "all-invalid", "--json", ws=tiny_ws.root).stdout)
    assert shown["counts"] == {"fail": stopped_after}
    assert shown["stopped"]["code"] == "sweep_failing" and shown["stopped"]["message"] == line[len("error: "):]
    assert all("--batch-size" in t["error"] for t in shown["trials"])
    table = run_cli("sweep", "show", "all-invalid", ws=tiny_ws.root).stdout
    assert table.splitlines()[1] == "stopped: " + line[len("error: "):], table
    from tunestudio.webui.tabs.runs.sweep_panel import sweep_view

    text = sweep_view(tiny_ws, "en", "all-invalid")[0]   # the Runs tab's sweep panel says why
    assert f"{stopped_after} trials failed in a row" in text and "--batch-size" in text, text
