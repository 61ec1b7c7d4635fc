"""`tunestudio train`: flags generated from RunConfig, a YAML file, or `--resume RUN`."""

from __future__ import annotations

import contextlib
import os
import sys

from tunestudio.config.run_config import add_arguments, load_config, overrides_from_args
from tunestudio.core import registry
from tunestudio.core.errors import EXIT_STOPPED, UserError
from tunestudio.core.output import print_json
from tunestudio.jobs.job import JOB_ENV
from tunestudio.jobs.queue import check_duplicate, report_progress
from tunestudio.train.config_check import validate
from tunestudio.train.launch import launch_command, under_launcher
from tunestudio.train.run import resume_run, train


def register(subparsers, common) -> None:
    p = subparsers.add_parser(
        "train", parents=[common], help="fine-tune a model (full, freeze, lora, dora, ia3, prefix, prompt, qlora)",
        description="Fine-tune a model. Options come from --config FILE (YAML, the same keys as the flags "
                    "with _ for -) and the flags, which win. Writes training/runs/<run>/.")
    p.add_argument("--config", metavar="FILE", help="YAML file with the run options")
    p.add_argument("--resume", metavar="RUN", help="continue a stopped or crashed run (id or name) from its "
                   "last complete checkpoint, with its own config")
    p.add_argument("--run-id", metavar="ID", help="id for the new run (default: timestamp + random suffix); "
                   "lets a launcher such as the web UI know the run folder in advance")
    p.add_argument("--allow-duplicate", action="store_true", help="start even when a queued or running job (or "
                   "run) already trains these same settings (otherwise refused: the same model twice)")
    p.add_argument("--json", action="store_true", help='print one JSON object {"run_id", "status", '
                   '"output_dir", "metrics"} on stdout')
    add_arguments(p)
    p.set_defaults(func=cmd_train)


def cmd_train(args, ws) -> int:
    from transformers.utils import logging as hf_logging

    # transformers' own bars ("Writing model shards" at every checkpoint) would fill the console
    # log the Training tab shows; progress is ours (events.jsonl, core/progress.py)
    hf_logging.disable_progress_bar()
    overrides = overrides_from_args(args)
    _relaunch_if_asked(args, ws, overrides)
    report_progress(ws)   # started by the UI's queue: the Training tab follows the data stages
    # Progress goes to stderr and train.log; with --json nothing else may reach stdout.
    quiet = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with quiet:
        if args.resume:
            if overrides or args.config or args.run_id:
                raise UserError("--resume continues a run with its own config.yaml: give no other training "
                                "options (start a new run with --from-run to change them)", "resume_with_options")
            result = resume_run(ws, args.resume)
        else:
            cfg = load_config(args.config, overrides)
            if not args.allow_duplicate and not os.environ.get(JOB_ENV) and not under_launcher():
                check_duplicate(ws, cfg)   # the queue asked already for its own jobs; a launcher's ranks: their parent did
            result = train(cfg, ws, run_id=args.run_id)
    args.result_run_id = result["run_id"]   # for the job's exit record (cli._record_job_exit)
    if os.environ.get("RANK", "0") != "0":  # under torchrun: one report, from the main process
        return EXIT_STOPPED if result["status"] == "stopped" else 0
    if args.json:
        print_json(result)
    else:
        m = result["metrics"]
        parts = [f"run {result['run_id']} {result['status']}", f"steps {m.get('steps')}"]
        if m.get("train_loss") is not None:
            parts.append(f"train_loss {m['train_loss']:.4f}")
        if m.get("eval_loss") is not None:
            parts.append(f"eval_loss {m['eval_loss']:.4f} (best step {m.get('best_step')})")
        print(" | ".join(parts))
        print(f"model: {result['output_dir']}")
    # a stopped run is not a completed one: scripts (and the job queue) tell them apart by the code
    return EXIT_STOPPED if result["status"] == "stopped" else 0


def _relaunch_if_asked(args, ws, overrides: dict) -> None:
    """A run whose config asks for several processes (`launcher` other than single), typed as a
    plain `tunestudio train`: become `accelerate launch ... -m tunestudio train` with the same
    arguments (same pid, so a job queue following this process follows the launch)."""

    if under_launcher():
        return
    if args.resume:
        run = registry.lookup_run(ws.db_path, args.resume)
        path = ws.runs_dir / run["id"] / "config.yaml"
        if not path.is_file():
            return  # resume_run says what is missing
        cfg = load_config(path)
    else:
        cfg = load_config(args.config, overrides)
    if cfg.launcher == "single":
        return
    validate(cfg)
    if "train" not in sys.argv:  # called in-process (cli.main([...])): no command line to hand on
        raise UserError(f"--launcher {cfg.launcher}: start it from the command line (`tunestudio train ...`) "
                        "or the job queue, which run it under accelerate launch", "launcher_in_process",
                        option="launcher", launcher=cfg.launcher)
    argv = sys.argv[sys.argv.index("train") + 1:]
    if "--workspace" not in argv:
        argv += ["--workspace", str(ws.root)]
    cmd = launch_command(cfg, argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(cmd[0], cmd)
