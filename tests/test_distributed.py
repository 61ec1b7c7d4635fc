"""Scale-out: the same `tunestudio train` under torchrun with 2 CPU processes (gloo) gives ONE
complete run, and the shipped accelerate configs are accepted by accelerate's own launcher.

`accelerate launch --cpu --num_processes 2` starts only one process (its multi-CPU mode needs
mpirun), so the 2-process check uses torchrun. Real DDP/FSDP/DeepSpeed runs need GPUs:
docs/distributed.md has the commands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

from tunestudio.core import registry
from tunestudio.core.workspace import Workspace
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


def test_two_cpu_processes_make_one_complete_run(demo_ws):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "tunestudio", "train", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl",
           "--method", "lora", "--max-steps", "2", "--batch-size", "4", "--max-length", "64",
           "--val-split", "0.01", "--test-split", "0", "--eval-steps", "2", "--name", "ddp-check",
           "--json", "--workspace", str(demo_ws)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=420, env=env, cwd=demo_ws)
    assert r.returncode == 0, r.stderr[-3000:]

    # The CLI contract holds under torchrun too: one JSON object on stdout (rank 0's).
    printed = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1, f"{len(printed)} JSON objects on stdout (one per rank?):\n{r.stdout}"
    result = printed[0]
    assert result["status"] == "completed" and result["metrics"]["steps"] == 2

    conn = registry.connect(Workspace(demo_ws).db_path)
    runs = registry.list_runs(conn)
    conn.close()
    assert [(run["id"], run["status"]) for run in runs] == [(result["run_id"], "completed")]

    run_dirs = [p for p in (demo_ws / "training" / "runs").iterdir() if p.is_dir()]
    assert [p.name for p in run_dirs] == [result["run_id"]]
    events = [json.loads(line) for line in (run_dirs[0] / "events.jsonl").read_text().splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds.count("started") == 1 and kinds.count("completed") == 1, kinds  # rank 0 alone wrote
    started = next(e for e in events if e["type"] == "started")
    assert started["world_size"] == 2  # both ranks took part
    final = run_dirs[0] / "final"
    assert (final / "adapter_config.json").is_file() and (final / "adapter_model.safetensors").is_file()


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


def _one_completed_two_process_run(ws: Path) -> dict:
    conn = registry.connect(Workspace(ws).db_path)
    runs = registry.list_runs(conn)
    conn.close()
    assert [run["status"] for run in runs] == ["completed"], runs
    run_dir = ws / "training" / "runs" / runs[0]["id"]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds.count("started") == 1 and kinds.count("completed") == 1, kinds
    assert next(e for e in events if e["type"] == "started")["world_size"] == 2
    assert (run_dir / "final" / "adapter_model.safetensors").is_file()
    return runs[0]


def test_job_queue_launches_two_gloo_processes_as_one_run(demo_ws):
    """A run config with launcher ddp and 2 processes, submitted to the queue as the Training tab
    does, runs under accelerate launch (2 CPU processes over gloo) and makes one registry row."""
    from tunestudio.core import run_progress
    from tunestudio.jobs import queue as jobs

    ws = Workspace(demo_ws)
    cfg = _cfg(method="lora", max_steps=2, batch_size=4, max_length=64, val_split=0.01, test_split=0,
               eval_steps=2, name="queue-ddp", launcher="ddp", num_processes=2)
    job = jobs.submit(ws, cfg)
    assert job.command_line().startswith("accelerate launch --config_file ")
    assert job.command[job.command.index("--num_processes") + 1] == "2"
    done = jobs.wait(ws, job.id, timeout=420)
    assert done.status == "finished", run_progress.tail(done.log_path, 60)
    run = _one_completed_two_process_run(demo_ws)
    assert done.run_id == run["id"]          # the queue knows its run: the monitor follows rank 0's
    assert run["config"]["launcher"] == "ddp" and run["config"]["num_processes"] == 2   # saved with the run


def test_cli_train_with_a_launcher_relaunches_itself(demo_ws):
    """`tunestudio train --launcher ddp --num-processes 2` typed by hand becomes the same
    accelerate launch: one run, two processes, one JSON object on stdout."""
    from helpers import run_cli

    r = run_cli("train", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--method", "lora",
                "--max-steps", "2", "--batch-size", "4", "--max-length", "64", "--val-split", "0.01",
                "--test-split", "0", "--launcher", "ddp", "--num-processes", "2", "--json", ws=demo_ws, timeout=420)
    assert r.returncode == 0, r.stderr[-3000:]
    printed = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1 and printed[0]["status"] == "completed"
    assert _one_completed_two_process_run(demo_ws)["id"] == printed[0]["run_id"]
