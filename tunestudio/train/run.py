"""The training engine: `train(cfg, ws)` runs one training job from config to final model.

It reads top to bottom:
  1. check everything the user gave us (config, model, data) before a run exists, so a mistake
     costs one clear message and leaves nothing behind;
  2. open the run: its folder (never reused), config.yaml, split.json, the registry row, events;
  3. load the model, apply the method, build the Trainer, train (retrying smaller micro-batches on
     CUDA out-of-memory);
  4. publish final/ (the best checkpoint) and metrics.json (results.py), and the run's end in the
     registry.

`resume_run(ws, ref)` continues a stopped or crashed run in its own folder from its newest intact
checkpoint (damaged ones are moved aside, with a warning saying which and why); its final/ stays
until a complete new one replaces it, so a failed or killed resume never loses the model.
`train` with `cfg.stages` runs each stage as a run whose parent is the stage before.
Under torchrun every process runs this code; only the main one writes files and the registry.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from tunestudio.config import presets
from tunestudio.config.run_config import RunConfig, load_config, save_config, stage_config
from tunestudio.core import registry, runlock
from tunestudio.core.errors import UserError, error_record
from tunestudio.core.statefiles import describe_os_error, read_json, write_json
from tunestudio.models import memory
from tunestudio.models.lengths import data_lengths
from tunestudio.train import checkpoint as ckpt
from tunestudio.train import model_source, recovery, tracking
from tunestudio.train.config_check import validate
from tunestudio.train.context import TrainerContext
from tunestudio.train.events import EventLog, earlier_segments, fmt_duration
from tunestudio.train.objectives import OBJECTIVES
from tunestudio.train.oom import run_with_oom_retry
from tunestudio.train.results import adapter_snapshot, nothing_changed, publish_final, run_metrics


@dataclass
class Data:
    info: dict                      # the split, as load_splits records it
    train: list                     # encoded examples (an IterableDataset with --streaming)
    val: list
    stats: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)

    @property
    def train_rows(self) -> int | None:
        """Training examples, or None for a stream (its length is not known in advance)."""
        return len(self.train) if hasattr(self.train, "__len__") else None


# ---- public ------------------------------------------------------------------------------------

def train(cfg: RunConfig, ws, run_id: str | None = None) -> dict:
    """Run `cfg` (all its stages, if it has some). Returns {run_id, status, output_dir, metrics}."""
    validate(cfg)
    if not cfg.stages:
        return _train_one(cfg, ws, run_id=run_id)
    results, parent = [], cfg.from_run or None
    for i in range(len(cfg.stages)):
        result = _train_one(stage_config(cfg, i, from_run=parent), ws, run_id=run_id if i == 0 else None)
        results.append(result)
        if result["status"] != "completed":
            break
        parent = result["run_id"]
    return {**results[-1], "stages": [{k: r[k] for k in ("run_id", "status", "output_dir")} for r in results]}


def resume_run(ws, ref: str) -> dict:
    """Continue run `ref` (id or name) from its last complete checkpoint, in its own folder.
    The run's lock (core/runlock.py) is taken before anything is read or written: a second resume
    of the same run, or one while it is exported, evaluated, served or deleted, is refused."""
    run_id = registry.lookup_run(ws.db_path, ref)["id"]
    lock = _lock_run(ws.runs_dir / run_id, "resume", run_id)
    try:
        return _resume_locked(ws, run_id, lock)
    finally:
        if lock is not None:
            lock.release()


def _resume_locked(ws, ref: str, lock) -> dict:
    run = registry.lookup_run(ws.db_path, ref)  # a run whose process died is marked failed here
    if run["status"] == "running":
        raise UserError(f"run {run['id']} is still running (pid {run['pid']}): stop it first", "run_still_running",
                        run=run["id"], pid=run["pid"])
    if run["status"] == "completed":
        raise UserError(f"run {run['id']} already completed; to train it further start a new run "
                        f"with --from-run {run['id']}", "run_already_completed", run=run["id"])
    run_dir = ws.runs_dir / run["id"]
    if not (run_dir / "config.yaml").is_file() or not (run_dir / "split.json").is_file():
        raise UserError(f"run {run['id']} cannot be resumed: {run_dir} has no config.yaml/split.json",
                        "resume_files_missing", run=run["id"], folder=str(run_dir))
    cfg = validate(load_config(run_dir / "config.yaml"))
    return _train_one(cfg, ws, run_id=run["id"], resume=True, lock=lock)


# ---- one run -----------------------------------------------------------------------------------

def _train_one(cfg: RunConfig, ws, run_id: str | None = None, resume: bool = False, lock=None) -> dict:
    """One run; `lock`: a resume's, taken by resume_run (a new run takes its own, once its folder exists)."""
    import torch

    from tunestudio.train.callbacks import StopFlag

    dist = _distributed()
    main = dist.is_main_process

    # 1. Everything that can be wrong with the inputs, before a run exists (the config itself was
    # validated by `train` / `resume_run`).
    base = model_source.resolve_base(cfg, ws)
    lr_note = presets.resolve_lr(cfg, model_source.original_model(cfg, ws, base))   # --lr left out: the preset's, saved
    tokenizer = model_source.load_tokenizer(base)
    run_dir = ws.runs_dir / run_id if resume else None
    objective = OBJECTIVES[cfg.objective]
    split_info = read_json(run_dir / "split.json", "the run's split file") if resume else None
    data = Data(**objective.load_data(cfg, ws, tokenizer, split_info=split_info))
    estimate = _memory_precheck(cfg, base, data)
    if not resume:
        run_id = _new_run_id(ws, run_id) if main else None
        run_id = _broadcast(run_id, dist)
        run_dir = ws.runs_dir / run_id

    # 2. The run: folder, config, split, registry row, events (main process only).
    conn = registry.connect(ws.db_path) if main else None
    if main:
        new_lock = _open_run(cfg, ws, run_id, run_dir, base, data, conn, resume)
        lock = lock or new_lock
    events = EventLog(run_dir, enabled=main)
    ckpt_dir = run_dir / "checkpoints"
    stop = StopFlag().install()
    started = time.time()
    try:
        resume_from = recovery.resume_point(ckpt_dir, events, dist) if resume else None
        for w in data.warnings:
            events.warn(w["code"], w["message"], **w.get("fields", {}))
        if data.stats.get("replay") and main:
            n = data.stats["replay"]
            events.emit("note", code="replay_rows", message=f"replay: {n} answers of the base model to general "
                        "requests are mixed into the training rows (--replay 0 turns it off)", rows=n)
            events.say(f"replay: {n} answers of the base model to general requests are mixed into the training "
                       "rows, so it keeps answering them (--replay 0 turns it off)")
        if lr_note and main:
            events.emit("note", code=lr_note.code, message=str(lr_note), **lr_note.fields)
            events.say(str(lr_note))
        trainer, monitor, model = _fit(cfg, ws, base, tokenizer, data, run_dir, events, stop, dist,
                                       estimate, resume_from, run_id)
        status = "stopped" if monitor.stopped else "completed"
        final_dir = publish_final(trainer, monitor, tokenizer, run_dir, main)
        metrics = run_metrics(trainer, monitor, data, started, model) if main else {}
        if main:
            plain = (data.info or {}).get("format") == "text" \
                or ((data.stats or {}).get("train") or {}).get("text_mode") == "stream"
            metrics["warnings"] = monitor.warnings + nothing_changed(cfg, monitor, model, events, plain_text=plain)
            write_json(run_dir / "metrics.json", {"status": status, **metrics}, indent=2)
            tracking.finish(status, metrics)
            registry.update_run(conn, run_id, status=status, metrics=metrics, output_dir=str(final_dir),
                                finished_at=time.time(), pid=os.getpid(), error=None)
            if status == "stopped":
                point = ckpt.stop_point(ckpt_dir, trainer.state.global_step, monitor.save_every)
                events.emit("stopped", reason=stop.reason, checkpoint=str(ckpt.last_checkpoint(ckpt_dir) or ""),
                            **point)
                events.say(f"{recovery.stopped_words(point)} ({stop.reason}): "
                           f"resume with `tunestudio train --resume {run_id}`")
            else:
                events.emit("completed", metrics=metrics, output_dir=str(final_dir))
                took = time.time() - started
                earlier = earlier_segments(run_dir / "events.jsonl")  # a resumed run: its earlier processes too
                total = f" ({fmt_duration(took + sum(earlier))} in all {len(earlier) + 1} segments)" if earlier else ""
                events.say(f"completed in {fmt_duration(took)}{total}: {final_dir}")
        return {"run_id": run_id, "status": status, "output_dir": str(final_dir), "metrics": metrics}
    except BaseException as e:
        status = "stopped" if isinstance(e, KeyboardInterrupt) else "failed"
        error = recovery.cause(e, run_dir)
        point = None
        if main:
            ckpt.clear_staging(ckpt_dir)  # first: a half-written save may be what filled the disk
            shutil.rmtree(run_dir / ".final.tmp", ignore_errors=True)
            if status == "stopped":   # stopped at once: say what is (not) on disk, never a checkpoint it lacks
                point = ckpt.stop_point(ckpt_dir, stop.step, stop.save_every)
                error = recovery.stopped_words(point)
            recovery.record_end(events, conn, run_id, status, error, e, extra=point)
            tracking.finish(status)
        if isinstance(e, Exception) and not isinstance(e, UserError) and error.startswith("no space left"):
            raise UserError(f"run {run_id} failed: {error}", "run_failed_no_space", run=run_id,
                            detail=recovery.brief(e)) from e
        raise
    finally:
        stop.restore()
        events.close()
        if conn is not None:
            conn.close()
        if lock is not None and not resume:   # a resume's is resume_run's to release
            lock.release()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _fit(cfg, ws, base, tokenizer, data, run_dir, events, stop, dist, estimate, resume_from, run_id):
    """Build the model and the Trainer, and train; on CUDA out-of-memory, again with a smaller
    micro-batch (same effective batch) from the last checkpoint. Returns (trainer, monitor, model)."""
    import torch

    from tunestudio.train.callbacks import RunMonitor

    ckpt_dir = run_dir / "checkpoints"
    if dist.is_main_process:
        ckpt.clear_staging(ckpt_dir)
    world = dist.num_processes
    attempt = {"n": 0}
    out: dict = {}

    def fit(micro_batch: int, grad_accum: int):
        if attempt["n"]:  # a retry: the weights in memory are half-trained, start again from disk
            out.clear()
            torch.cuda.empty_cache()
        attempt["n"] += 1
        # the adapter's initial weights come from the seed, not from whatever the process drew before
        # (a second run in the same process, a sweep's next trial, would otherwise start elsewhere)
        from transformers import set_seed

        set_seed(cfg.seed)
        model = model_source.build_model(cfg, base, tokenizer)
        # a GRPO batch counts answers, num_generations per prompt, so an epoch over the prompts takes
        # num_generations times the steps a supervised batch of that size would
        answers = data.train_rows * (cfg.num_generations if cfg.objective == "grpo" else 1) \
            if data.train_rows is not None else None
        steps_per_epoch = cfg.max_steps if answers is None else \
            max(1, math.ceil(math.ceil(answers / (micro_batch * world)) / grad_accum))
        eval_every = cfg.eval_steps or max(1, math.ceil(steps_per_epoch / 4))
        save_every = cfg.save_steps or eval_every
        monitor = RunMonitor(cfg, events, stop, has_val=bool(data.val), eval_every=eval_every,
                             save_every=save_every, world_size=world)
        lineage = {"run_id": run_id, "parent_run": base.parent_id, "dataset": cfg.dataset,
                   "dataset_hash": data.info.get("hash"), "base_model": base.path, "base_revision": base.revision,
                   "sweep": cfg.sweep}
        if dist.is_main_process:  # --report-to: TensorBoard, MLflow, W&B, Trackio (tunestudio/train/tracking.py)
            tracking.open_session(cfg, ws, run_dir, run_id, lineage)  # before the Trainer imports the trackers
        # the objective's builder (train/objectives.py): SFT, DPO-family or GRPO Trainer
        trainer = OBJECTIVES[cfg.objective].build(TrainerContext(
            cfg, model, tokenizer, data, ckpt_dir, micro_batch, grad_accum, monitor,
            eval_on_start=bool(data.val) and resume_from is None, base=base, ws=ws, run_dir=run_dir))
        if dist.is_main_process:
            tracking.attach(trainer, cfg, ws, run_dir, run_id, lineage)
        out.update(trainer=trainer, monitor=monitor, model=model)
        start_from = resume_from if attempt["n"] == 1 else ckpt.last_checkpoint(ckpt_dir)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        monitor.trainable_params, monitor.total_params = trainable, total
        monitor.initial_weights = adapter_snapshot(cfg, model)
        events.emit("started", run_id=run_id, name=cfg.name or run_id, model=base.path, method=cfg.method, objective=cfg.objective,
                    dataset=cfg.dataset, pid=os.getpid(), world_size=world,
                    total_steps=cfg.max_steps or math.ceil(cfg.epochs * steps_per_epoch),
                    steps_per_epoch=steps_per_epoch, micro_batch=micro_batch, grad_accum=grad_accum,
                    train_rows=data.train_rows, val_rows=len(data.val), trainable_params=trainable,
                    total_params=total, memory=_memory_estimate(cfg, model, micro_batch, estimate, data),
                    resumed_from=str(start_from) if start_from else None,
                    device=model_source.device_name(), precision=model_source.precision(cfg))
        blocks = ((data.stats or {}).get("train") or {}).get("text_mode") == "stream"   # plain text: blocks, not rows
        unit = "blocks" if blocks else "rows"
        rows = f"streamed training {unit}" if data.train_rows is None else f"{data.train_rows} training {unit}"
        what = cfg.method if cfg.objective == "sft" else f"{cfg.objective} ({cfg.method})"
        events.say(f"run {run_id}: {what} on {base.path}, {rows}, "
                   f"{len(data.val)} validation {unit}, {trainable:,} of {total:,} parameters trained"
                   + (f"; resuming from {start_from.name}" if start_from else ""))
        slow = presets.slow_learning(cfg.method, cfg.lr, cfg.max_steps or math.ceil(cfg.epochs * steps_per_epoch),
                                     presets.model_kind(model_source.original_model(cfg, ws, base)), cfg.scheduler)
        if slow and cfg.objective == "sft" and not start_from:
            events.warn(slow.code, str(slow), **slow.fields)
        trainer.train(resume_from_checkpoint=str(start_from) if start_from else None)
        return trainer, monitor, model

    if torch.cuda.is_available() and world == 1:
        return run_with_oom_retry(
            fit, cfg.batch_size, cfg.grad_accum,
            on_retry=lambda e: (events.emit("oom_retry", **{k: v for k, v in e.items() if k != "event"}),
                                events.say(f"CUDA out of memory: retrying with micro-batch {e['new_micro_batch']} "
                                           f"x accumulation {e['new_grad_accum']}")),
            method=cfg.method, max_length=cfg.max_length, grad_checkpointing=cfg.gradient_checkpointing)
    return fit(cfg.batch_size, cfg.grad_accum)


# ---- step 1: inputs ----------------------------------------------------------------------------

# ---- step 1b: memory ----------------------------------------------------------------------------

def _memory_precheck(cfg: RunConfig, base: model_source.Base, data: Data | None = None) -> dict | None:
    """Refuse a run that clearly cannot fit, from the model's config alone (before loading it) and
    the lengths of the encoded training rows (their longest batch, not --max-length)."""

    if not Path(base.path).is_dir():
        return None
    try:
        est = memory.estimate_for_config(cfg, base.path, lengths=_data_lengths(data))
    except UserError:
        raise
    except Exception:  # noqa: BLE001 - an architecture the estimator does not know: no estimate
        return None
    available, device = memory.available_memory(), model_source.device_name()
    ok, message = memory.check_fits(est, available, device=device)
    if not ok:   # its parts too: the web UI words the estimate and each tip (engine.tip_*)
        raise UserError(message, "not_enough_memory_on", available=memory.human_bytes(available), device=device,
                        estimate={"code": memory.breakdown_code(est), "message": memory.breakdown(est),
                                  **memory.breakdown_sizes(est)},
                        tips=[{"code": tip.code, "message": str(tip), **tip.fields} for tip in memory.advice(est)])
    return {**est, "message": message}


def _data_lengths(data) -> dict | None:
    try:
        return data_lengths(data.train) if data is not None else None
    except Exception:  # noqa: BLE001 - without them the estimate assumes --max-length
        return None


def _memory_estimate(cfg, model, micro_batch, precheck, data=None) -> dict | None:
    try:
        est = memory.estimate_for_config(cfg, model, batch_size=micro_batch, lengths=_data_lengths(data))
        return {"total": est["total"], "weights": est["weights"], "gradients": est["gradients"],
                "optimizer": est["optimizer"], "activations": est["activations"], "runtime": est["runtime"],
                "tokens_per_row": est["assumptions"]["tokens_per_row"],
                "available": memory.available_memory(), "message": memory.breakdown(est)}
    except Exception:  # noqa: BLE001 - the estimate is informative, never a reason to fail
        return {k: precheck[k] for k in ("total", "message")} if precheck else None


# ---- step 2: the run ---------------------------------------------------------------------------

def _new_run_id(ws, wanted: str | None) -> str:
    if wanted:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", wanted):
            raise UserError(f"--run-id '{wanted}': use letters, digits, '.', '_' and '-'", "run_id_bad", run=wanted)
        if (ws.runs_dir / wanted).exists():
            raise UserError(f"--run-id '{wanted}': a run with that id already exists", "run_id_taken", run=wanted)
        return wanted
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def _open_run(cfg, ws, run_id, run_dir, base, data, conn, resume):
    """Open the run (main process only); a new run's lock, held from right after its folder is made."""
    if resume:  # final/ stays: only a complete new one replaces it (results.publish_final)
        registry.update_run(conn, run_id, status="running", pid=os.getpid(), error=None, finished_at=None,
                            started_at=time.time())
        return None
    ws.runs_dir.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir()  # exist_ok=False: a new run never writes into an existing folder
    lock = None
    try:
        lock = runlock.acquire(run_dir, "train", run_id)
        _register_new_run(cfg, ws, run_id, run_dir, base, data, conn)
        return lock
    except BaseException as e:
        if lock is not None:
            lock.release()
        # a run folder the registry does not know would be a stray (and a row without its folder
        # a ghost): take both away again
        shutil.rmtree(run_dir, ignore_errors=True)
        try:
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        except sqlite3.Error:
            pass
        if isinstance(e, (OSError, sqlite3.Error)):
            raise UserError(f"cannot create run {run_id}: {_db_or_os_error(e, ws)}", "run_not_created", run=run_id,
                            detail=_db_or_os_error(e, ws)) from None
        raise


def _db_or_os_error(e: BaseException, ws) -> str:
    if isinstance(e, OSError):
        return describe_os_error(e)
    return f"the registry {ws.db_path} refused the write ({e})"


def _register_new_run(cfg, ws, run_id, run_dir, base, data, conn) -> None:
    save_config(cfg, run_dir / "config.yaml")
    write_json(run_dir / "split.json", data.info, indent=2)
    info = data.info
    split_summary = {k: v for k, v in info.items() if k != "rows"}
    split_summary["counts"] = {k: len(v) for k, v in info.get("rows", {}).items()}
    split_summary["file"] = str((run_dir / "split.json").relative_to(ws.root))
    split_summary["encoded"] = data.stats
    now = time.time()
    registry.insert_run(conn, id=run_id, name=cfg.name or run_id, status="running", created_at=now,
                        started_at=now, pid=os.getpid(), base_model=base.path, base_revision=base.revision,
                        method=cfg.method, dataset=cfg.dataset, dataset_hash=info.get("hash"),
                        split=split_summary, config=cfg.to_dict(), parent_id=base.parent_id)
    for key, f in info.get("files", {}).items():  # the datasets table: each file by content hash
        conn.execute("INSERT OR IGNORE INTO datasets (hash, name, path, rows, format, first_seen) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (f["sha256"], f["name"], f["path"], f.get("rows"),
                                                   info.get("format"), now))


# ---- small helpers -----------------------------------------------------------------------------

def _distributed():
    import torch
    from accelerate import PartialState

    # initialises the process group under torchrun (gloo on CPU), as TrainingArguments will
    return PartialState(cpu=not torch.cuda.is_available())


def _lock_run(run_dir: Path, what: str, run_id: str):
    """The run's lock, taken by the main process alone; under many processes the others learn from
    it whether it was refused, and are refused alike (none waits for a process that gave up)."""
    dist = _distributed()
    lock, refused = None, None
    if dist.is_main_process:
        try:
            lock = runlock.acquire(run_dir, what, run_id)
        except UserError as e:
            refused = error_record(e)
    refused = _broadcast(refused, dist)
    if refused:
        raise UserError(refused["message"], refused["code"], **refused["fields"])
    return lock


def _broadcast(value, dist):
    if dist.num_processes == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value], from_process=0)[0]
