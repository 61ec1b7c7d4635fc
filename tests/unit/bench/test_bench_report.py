"""bench/train_speed.py's report: three sides (tutorial Trainer, tuned Trainer, tunestudio), each
with tokens/s, peak RSS, held-out loss and share of the matmul peak, and tunestudio's ratios
against both Trainer sides, as one JSON-able object (the runs themselves take minutes: the bench)."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

from helpers import REPO

sys.path.insert(0, str(REPO))
from bench import train_speed  # noqa: E402


def _run(side, tps, rss, loss, precision="fp32", wall=100.0):
    return {"side": side, "precision": precision, "tokens_per_s": tps, "peak_rss_mb": rss, "heldout_loss": loss,
            "wall_s": wall, "padding": 0.01, "sequences": 480, "train_runtime_s": 50.0, "train_loss_last": 1.0,
            "load_before": 0.1, "variant": "defaults"}


def test_report_has_three_sides_and_ratios_against_both_baselines(capsys):
    runs = {"baseline": [_run("baseline", 500, 3000, 6.0), _run("baseline", 600, 3100, 6.0)],
            "tuned": [_run("tuned", 1000, 2500, 6.1, "bf16")],
            "tunestudio": [_run("tunestudio", 1500, 2400, 6.05, "bf16", wall=50.0)]}
    info = {"params": 21e6, "non_embedding_params": 20e6, "lengths": {}, "ws": "x", "model": "y", "workload": "bench",
            "method": "lora"}
    args = SimpleNamespace(max_steps=60, epochs=1.0)
    report = train_speed.summarise(args, info, {"fp32": 100.0, "bf16": 400.0}, runs, [])
    json.dumps(report)                                       # one JSON object
    assert list(report["sides"]) == ["baseline", "tuned", "tunestudio"]
    assert report["sides"]["baseline"]["tokens_per_s"] == 550  # the median of the repeats
    assert report["sides"]["baseline"]["peak_rss_mb"] == 3050 and report["sides"]["baseline"]["repeats"] == 2
    for side in report["sides"].values():
        assert {"tokens_per_s", "peak_rss_mb", "heldout_loss", "mfu", "gflops"} <= set(side)
    # 4 x 20M FLOPs per token: 1,500 tok/s = 120 GFLOP/s, 30% of the 400 GFLOP/s bf16 peak
    assert abs(report["sides"]["tunestudio"]["mfu"] - 0.30) < 1e-9
    vs_tuned, vs_base = report["ratios"]["vs_tuned"], report["ratios"]["vs_baseline"]
    assert vs_tuned["tokens_per_s"] == 1.5 and abs(vs_base["tokens_per_s"] - 1500 / 550) < 1e-9
    assert abs(vs_tuned["peak_rss"] - 2400 / 2500) < 1e-9 and abs(vs_tuned["heldout_loss_diff"] - (6.05 - 6.1) / 6.1) < 1e-9
    assert vs_base["wall"] == 2.0
    train_speed.print_table(report)
    out = capsys.readouterr().out
    assert "tunestudio / tuned: 1.50x non-padding tokens/s" in out and "tunestudio / baseline: 2.73x" in out


def test_sides_alternate_and_variants_are_known():
    assert train_speed.SIDES == ("baseline", "tuned", "tunestudio")
    assert set(train_speed.VARIANTS) >= {"loop-adamw", "compile", "peft-lora", "plain-loss"}
    assert len(train_speed.ABLATION_NAMES) == len(train_speed.ABLATION) + 1   # the last is the defaults


def test_report_of_the_tuned_trainer_and_tunestudio_alone(capsys):
    # bench/gpu_check.sh and the real model's long runs compare these two sides only
    runs = {"tuned": [_run("tuned", 200, 13000, 3.11, "bf16"), _run("tuned", 240, 13400, 3.11, "bf16")],
            "tunestudio": [_run("tunestudio", 440, 7600, 3.12, "bf16"), _run("tunestudio", 460, 7700, 3.12, "bf16")]}
    info = {"params": 134e6, "non_embedding_params": 106e6, "lengths": {}, "ws": "x", "model": "y",
            "workload": "smollm2-full", "method": "full"}
    report = train_speed.summarise(SimpleNamespace(max_steps=0, epochs=1.0), info, {"fp32": 300.0, "bf16": 1800.0},
                                   runs, [])
    assert list(report["sides"]) == ["tuned", "tunestudio"] and list(report["ratios"]) == ["vs_tuned"]
    assert abs(report["ratios"]["vs_tuned"]["tokens_per_s"] - 450 / 220) < 1e-9
    assert report["flops_per_token"] == 6 * 106e6            # full fine-tuning: weight gradients too
    train_speed.print_table(report)
    assert "tunestudio / tuned: 2.05x" in capsys.readouterr().out


def test_one_side_prints_its_runs(capsys):
    # `--sides tunestudio` (a quick look) has no ratios to show; it printed nothing but a KeyError
    report = {"workload": "bench", "runs": {"tunestudio": [{**_run("tunestudio", 672, 1830, 7.0206), "steps": 8,
                                                            "tokens": 16000}]}, "ablation": []}
    train_speed.print_runs(report)
    out = capsys.readouterr().out
    assert "672 non-padding tokens/s" in out and "held-out loss 7.0206" in out and "8 steps" in out
