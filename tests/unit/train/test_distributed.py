"""Scale-out configs: the shipped accelerate configs (DDP, FSDP, DeepSpeed) are accepted by accelerate's
own launcher, and the launcher field becomes `accelerate launch` (two real processes: test_distributed_e2e.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import REPO

from tunestudio.train.config_check import validate

CONFIGS = REPO / "configs" / "accelerate"


def _launch_env(config: Path) -> tuple[object, dict]:
    """What `accelerate launch --config_file CONFIG` would give the training processes,
    computed by accelerate's own code without starting anything."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(config), "-m", "tunestudio", "train"])
    args, defaults, mp_from_config = _validate_launch_command(args)
    if args.use_deepspeed:  # as accelerate's launch_command does before the DeepSpeed launcher
        fields = list(defaults.deepspeed_config) + (["mixed_precision"] if mp_from_config else [])
        args.deepspeed_fields_from_accelerate_config = ",".join(fields)
        return args, prepare_deepspeed_cmd_env(args)[1]
    return args, prepare_multi_gpu_env(args)


def test_ddp_and_fsdp_configs_launch(monkeypatch):
    args, env = _launch_env(CONFIGS / "ddp.yaml")
    assert args.multi_gpu and not args.use_fsdp and args.num_processes == 2
    args, env = _launch_env(CONFIGS / "fsdp.yaml")
    assert args.use_fsdp and env["FSDP_VERSION"] == "2"
    assert env["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP"
    assert env["FSDP_STATE_DICT_TYPE"] == "FULL_STATE_DICT"  # final/ must be a plain model folder
    # The plugin the training process builds from that environment accepts it.
    for k, v in env.items():
        if k.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(k, v)
    from accelerate.utils import FullyShardedDataParallelPlugin

    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_configs_launch(stage, monkeypatch):
    monkeypatch.chdir(REPO)  # the yaml names the JSON relative to the repository root
    args, env = _launch_env(CONFIGS / f"deepspeed_zero{stage}.yaml")
    assert args.use_deepspeed and env["ACCELERATE_DEEPSPEED_CONFIG_FILE"] == f"configs/deepspeed/zero{stage}.json"
    for k, v in env.items():
        if k.startswith("ACCELERATE_"):
            monkeypatch.setenv(k, v)
    from accelerate.utils import DeepSpeedPlugin

    # Raises when the yaml sets what the JSON file owns (zero_stage, mixed precision...).
    plugin = DeepSpeedPlugin()
    assert plugin.zero_stage == stage and plugin.zero3_init_flag == (stage == 3)
    ds = json.loads((REPO / "configs" / "deepspeed" / f"zero{stage}.json").read_text())
    # "auto" lets the run config fill batch size, accumulation, clipping and precision.
    assert ds["train_micro_batch_size_per_gpu"] == ds["gradient_accumulation_steps"] == "auto"
    if stage == 3:  # without this, saving a ZeRO-3 model writes empty weights
        assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


# ---- the launcher field: the job queue (and `tunestudio train`) start accelerate launch ------------

def _cfg(**kw):
    from tunestudio.config.run_config import RunConfig

    return RunConfig(model="tiny-demo", dataset="demo-reviews.jsonl", **kw)


@pytest.mark.parametrize("launcher", ["ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3"])
def test_launch_command_is_accelerate_with_the_shipped_config(launcher, tmp_path):
    """Each launcher becomes `accelerate launch --config_file configs/accelerate/<x>.yaml
    --num_processes N -m tunestudio train ...`, which accelerate's own parser reads back with an
    absolute DeepSpeed JSON (so the job may run from any folder, here tmp_path)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    from tunestudio.train.launch import launch_command

    cmd = launch_command(_cfg(launcher=launcher, num_processes=3), ["--config", "run.yaml"])
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--config_file") + 1] == str(CONFIGS / f"{launcher}.yaml")
    assert cmd[-5:] == ["-m", "tunestudio", "train", "--config", "run.yaml"]
    os.chdir(tmp_path)
    try:
        args, _, _ = _validate_launch_command(launch_command_parser().parse_args(cmd[3:]))
    finally:
        os.chdir(REPO)
    assert args.num_processes == 3 and args.training_script == "tunestudio" and args.module
    if launcher.startswith("deepspeed"):
        ds = Path(args.deepspeed_config_file)
        assert args.use_deepspeed and ds.is_absolute() and ds == REPO / "configs" / "deepspeed" / f"zero{launcher[-1]}.json"
    else:
        assert args.use_fsdp == (launcher == "fsdp") and args.multi_gpu == (launcher == "ddp")


def test_single_launcher_is_the_plain_command_and_configs_are_found(monkeypatch, tmp_path):
    from tunestudio.core.errors import UserError
    from tunestudio.train import launch

    assert launch.launch_command(_cfg(), ["--config", "x.yaml"])[1:4] == ["-m", "tunestudio", "train"]
    assert launch.configs_dir() == REPO / "configs"          # the checkout's own
    (tmp_path / "accelerate").mkdir()
    monkeypatch.setenv(launch.CONFIGS_ENV, str(tmp_path))    # an installed copy elsewhere
    assert launch.configs_dir() == tmp_path
    with pytest.raises(UserError, match="ddp.yaml is missing"):
        launch.launch_command(_cfg(launcher="ddp", num_processes=2), [])


def test_launcher_options_are_checked():
    import torch

    from tunestudio.core.errors import UserError

    with pytest.raises(UserError, match="--num-processes 2: a single-process run"):
        validate(_cfg(num_processes=2))
    with pytest.raises(UserError, match="--launcher: unknown launcher 'mpi'"):
        validate(_cfg(launcher="mpi"))
    with pytest.raises(UserError, match="--num-processes: must be 0 or more"):
        validate(_cfg(launcher="ddp", num_processes=-1))
    if not torch.cuda.is_available():
        for launcher in ("fsdp", "deepspeed_zero3"):
            with pytest.raises(UserError, match=f"--launcher {launcher} needs CUDA GPUs"):
                validate(_cfg(launcher=launcher, num_processes=2))
        from tunestudio.train.launch import launch_command

        with pytest.raises(UserError, match="no GPU is visible, so give the number of processes"):
            launch_command(_cfg(launcher="ddp"), [])
    validate(_cfg(launcher="ddp", num_processes=2))


