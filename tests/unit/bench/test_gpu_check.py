"""bench/gpu_check.sh, the GPU check, without a GPU: its --dry-run checks its files and prints
every command it would run; each printed `tunestudio train` must be a run the CLI accepts."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys

import pytest
from helpers import REPO

sys.path.insert(0, str(REPO))   # bench/ is a folder of scripts beside the package

SCRIPT = REPO / "bench" / "gpu_check.sh"


def _dry_run(cwd=REPO, script=SCRIPT):
    return subprocess.run(["bash", str(script), "--dry-run"], capture_output=True, text=True, cwd=cwd, timeout=60)


def test_dry_run_prints_every_step_and_the_runs_parse():
    from tunestudio.cli.main import build_parser
    from tunestudio.config.run_config import RunConfig, fields_by_name, from_dict, overrides_from_args

    r = _dry_run()
    assert r.returncode == 0, r.stderr
    steps = dict(line[1:].split("] ", 1) for line in r.stdout.splitlines() if line.startswith("["))
    methods = ("full", "freeze", "lora", "dora", "ia3", "prefix", "prompt", "qlora")
    assert set(steps) == {"speed", "speed-padded", "workspace", "oom-retry", "launcher-fsdp", "launcher-deepspeed_zero3",
                          "speed-smollm2-lora", "speed-smollm2-qlora", "speed-smollm2-full",
                          *(f"method-{m}" for m in methods)}
    assert "--shape qwen0.5b" in steps["speed"] and "--json" in steps["speed"]
    assert "--set padding_free=off" in steps["speed-padded"] and "--sides tunestudio" in steps["speed-padded"]
    # the real model's workloads exist in the bench, each against the tuned Trainer
    from bench.speed_setup import WORKLOADS

    for method in ("lora", "qlora", "full"):
        argv = shlex.split(steps[f"speed-smollm2-{method}"])
        workload = argv[argv.index("--workload") + 1]
        assert WORKLOADS[workload]["method"] == method and WORKLOADS[workload]["model"] == "smollm2"
        assert "--sides" in argv and argv[argv.index("--sides") + 1] == "tuned,tunestudio" and "--json" in argv
    for name, line in steps.items():
        argv = shlex.split(line)
        if argv[1:4] != ["-m", "tunestudio", "train"]:
            continue
        args = build_parser().parse_args(argv[3:])   # an unknown or misspelt flag exits here
        cfg = from_dict(overrides_from_args(args))
        assert isinstance(cfg, RunConfig) and set(cfg.to_dict()) == set(fields_by_name())
        if name.startswith("method-"):
            assert cfg.method == name.split("-", 1)[1] and cfg.max_steps > 0
        if name.startswith("launcher-"):
            assert (cfg.launcher, cfg.num_processes, cfg.method) == (name.split("-", 1)[1], 1, "full")
        if name == "oom-retry":
            assert cfg.batch_size >= 1024 and cfg.dataset == "long-text.jsonl"


def test_dry_run_refuses_a_checkout_without_its_files(tmp_path):
    (tmp_path / "bench").mkdir()
    copy = tmp_path / "bench" / "gpu_check.sh"
    shutil.copy(SCRIPT, copy)
    r = _dry_run(cwd=tmp_path, script=copy)
    assert r.returncode == 1 and "bench/train_speed.py is missing" in r.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
