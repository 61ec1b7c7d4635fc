"""Many processes for one run: the `accelerate launch` command line for a run config's `launcher`.

tunestudio has no launcher of its own. A run whose config says `launcher: ddp` (fsdp,
deepspeed_zero2, deepspeed_zero3) and `num_processes: N` is started as

    accelerate launch --config_file configs/accelerate/ddp.yaml --num_processes N \
        -m tunestudio train --config run.yaml ...

by the job queue (tunestudio/jobs/queue.py) and by `tunestudio train` itself when typed by hand; every
process then runs the ordinary engine, and rank 0 alone writes the run (docs/distributed.md).

The configs are files a user may read and edit, so they live in `configs/` at the top of the
source checkout; an installed package finds them under `<prefix>/share/tunestudio/configs`
(pyproject's data-files), and $TUNESTUDIO_CONFIGS points elsewhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tunestudio.core.errors import UserError

CONFIGS_ENV = "TUNESTUDIO_CONFIGS"


def configs_dir() -> Path:
    """The folder holding accelerate/ and deepspeed/: $TUNESTUDIO_CONFIGS, else the checkout's
    configs/, else the installed copy. UserError when none of them has accelerate/."""
    candidates = [Path(os.environ[CONFIGS_ENV])] if os.environ.get(CONFIGS_ENV) else []
    candidates += [Path(__file__).resolve().parents[2] / "configs",            # a source checkout
                   Path(sys.prefix) / "share" / "tunestudio" / "configs"]      # pip install
    for c in candidates:
        if (c / "accelerate").is_dir():
            return c
    raise UserError("cannot find the launcher configs (configs/accelerate/*.yaml): looked in "
                    + ", ".join(str(c) for c in candidates) + f"; set {CONFIGS_ENV} to the folder holding accelerate/",
                    "launcher_configs_missing", looked=", ".join(str(c) for c in candidates), env=CONFIGS_ENV)


def under_launcher() -> bool:
    """True inside a process started by torchrun / accelerate launch (it sets LOCAL_RANK)."""
    return "LOCAL_RANK" in os.environ


def process_count(cfg) -> int:
    """How many processes `cfg` asks for: its num_processes, or (0) one per visible CUDA device."""
    if cfg.num_processes:
        return cfg.num_processes
    import torch

    n = torch.cuda.device_count()
    if n < 1:
        raise UserError(f"--launcher {cfg.launcher}: no GPU is visible, so give the number of processes "
                        "with --num-processes N (on a CPU, ddp runs N processes over gloo)", "launcher_no_gpu",
                        option="launcher", launcher=cfg.launcher)
    return n


def launch_command(cfg, train_args: list[str]) -> list[str]:
    """The argv that runs `tunestudio train TRAIN_ARGS` under `cfg.launcher` (a plain
    `python -m tunestudio train` for launcher single). The DeepSpeed configs name their JSON
    relative to the checkout: an absolute --deepspeed_config_file makes the command work from
    any folder (accelerate lets a flag override its config file)."""
    plain = [sys.executable, "-m", "tunestudio", "train", *train_args]
    if cfg.launcher == "single":
        return plain
    root = configs_dir()
    yaml_file = root / "accelerate" / f"{cfg.launcher}.yaml"
    if not yaml_file.is_file():
        raise UserError(f"--launcher {cfg.launcher}: {yaml_file} is missing", "launcher_config_missing",
                        option="launcher", launcher=cfg.launcher, file=str(yaml_file))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(yaml_file),
           "--num_processes", str(process_count(cfg))]
    if cfg.launcher.startswith("deepspeed_"):
        cmd += ["--deepspeed_config_file", str(root / "deepspeed" / f"zero{cfg.launcher[-1]}.json")]
    return cmd + ["-m", "tunestudio", "train", *train_args]


def check_launcher(cfg) -> None:
    """UserError for a launch this machine cannot do (called by RunConfig.check_device)."""
    if cfg.launcher == "single":
        if cfg.num_processes > 1:
            raise UserError(f"--num-processes {cfg.num_processes}: a single-process run starts one process; "
                            "choose --launcher ddp (or fsdp, deepspeed_zero2, deepspeed_zero3) to start several",
                            "single_launcher_processes", option="num_processes", value=cfg.num_processes)
        return
    import importlib.util

    import torch

    if cfg.launcher != "ddp" and not torch.cuda.is_available():
        # accelerate turns FSDP on CPUs into plain DDP without a word; DeepSpeed needs CUDA
        raise UserError(f"--launcher {cfg.launcher} needs CUDA GPUs; on this machine use --launcher ddp "
                        "(gloo processes) or single", "launcher_needs_cuda", option="launcher",
                        launcher=cfg.launcher)
    if cfg.launcher.startswith("deepspeed_") and importlib.util.find_spec("deepspeed") is None:
        raise UserError(f"--launcher {cfg.launcher} needs DeepSpeed: pip install 'tunestudio[deepspeed]'",
                        "launcher_needs_deepspeed", option="launcher", launcher=cfg.launcher)
    if cfg.method == "qlora" and cfg.launcher != "ddp":
        raise UserError(f"--launcher {cfg.launcher}: QLoRA's 4-bit weights cannot be sharded; use --launcher ddp",
                        "launcher_qlora_sharded", option="launcher", launcher=cfg.launcher)
