"""Hyper-parameter sweeps: Optuna asks for a config, the job queue trains it as an ordinary run.

`run_sweep(ws, spec)` loops ask -> submit -> follow -> tell:

  - each trial is a run config (the sweep's base + the trial's values, `sweep` = the sweep id, name
    `<sweep>-t<N>`) submitted with `jobs.submit`, so it queues behind any other job, runs detached
    and shows up in the registry and the UI like any run;
  - while it trains, the validation losses in its events.jsonl are reported to the trial; when the
    pruner says so the job is stopped (`jobs.stop`: a checkpoint, run status `stopped`) and the trial
    recorded as pruned;
  - when it ends, the objective comes from its metrics.json (eval_loss), or from `tunestudio eval
    --split val` for a generation metric such as exact_match.

The Optuna study lives in training/sweeps/<sweep>/optuna.db (SQLite): a sweep whose process was
killed resumes with the same command, first following the trial that was running (its job went on
without it), then asking for the rest. When maximising a metric the pruner sees -eval_loss, so
"better" points the same way for the intermediate values and the objective.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tunestudio.config.run_config import from_dict, load_config
from tunestudio.core import run_progress
from tunestudio.core.errors import UserError, error_record
from tunestudio.jobs import queue as jobs
from tunestudio.sweeps.spec import EVAL_METRICS, SweepSpec, load_spec  # noqa: F401 (load_spec: re-exported)
from tunestudio.sweeps.spec import load_spec as _load
from tunestudio.train.config_check import validate

STOP_GRACE_S = 120


def _optuna():
    try:
        import optuna
    except ImportError:
        raise UserError("sweeps need the optuna package: pip install 'tunestudio[sweep]'", "optuna_missing") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def storage_url(ws, name: str, read_only: bool = False) -> str:
    """The sweep's optuna storage. `read_only`: for readers (the UI's polling, `sweep show`), which
    opened read-write would create the storage's tables while the sweep itself is creating them."""
    path = (ws.sweep_dir(name) / 'optuna.db').resolve()
    return f"sqlite:///file:{path}?mode=ro&uri=true" if read_only else f"sqlite:///{path}"


def _sampler(optuna, spec: SweepSpec):
    if spec.sampler == "grid":
        return optuna.samplers.GridSampler(spec.grid(), seed=spec.seed)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=spec.seed)
    return optuna.samplers.TPESampler(seed=spec.seed)


def _pruner(optuna, spec: SweepSpec):
    if spec.pruner == "median":
        # step 0 is the untrained model (every trial alike): judge from the first real evaluation on
        return optuna.pruners.MedianPruner(**{"n_startup_trials": 2, "n_warmup_steps": 1, **spec.pruner_args})
    if spec.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(**{"min_resource": 1, "max_resource": "auto",
                                                  "reduction_factor": 3, **spec.pruner_args})
    return optuna.pruners.NopPruner()


def open_study(ws, spec: SweepSpec):
    """The sweep's study, created or (same name) loaded from the workspace."""
    optuna = _optuna()
    d = ws.sweep_dir(spec.name)
    d.mkdir(parents=True, exist_ok=True)
    saved = d / "sweep.yaml"
    if not saved.is_file():
        saved.write_text(spec.source, encoding="utf-8")
    study = optuna.create_study(study_name=spec.name, storage=storage_url(ws, spec.name), load_if_exists=True,
                                sampler=_sampler(optuna, spec), pruner=_pruner(optuna, spec),
                                direction=spec.direction)
    study.set_user_attr("objective", spec.objective)
    study.set_user_attr("base", spec.base)
    return study


def load_study(ws, name: str):
    optuna = _optuna()
    if not (ws.sweep_dir(name) / "optuna.db").is_file():
        raise UserError(f"no sweep '{name}' in this workspace: `tunestudio sweep list` shows them", "sweep_not_found",
                        name=name)
    try:   # read only: a running sweep writes it
        return optuna.load_study(study_name=name, storage=storage_url(ws, name, read_only=True))
    except KeyError:   # the file is there, the study not yet: the sweep is starting
        raise UserError(f"sweep '{name}' is starting: its study is not written yet, try again in a moment",
                        "sweep_starting", name=name) from None
    except Exception as e:  # noqa: BLE001 - sqlalchemy's errors while the sweep creates or writes its tables
        # (the reader may also find a table being created: "already exists")
        if any(s in str(e) for s in ("no such table", "already exists", "readonly", "locked")):
            raise UserError(f"sweep '{name}' is being written by the sweep: try again in a moment", "sweep_busy",
                            name=name) from None
        raise


def trial_config(spec: SweepSpec, number: int, params: dict):
    """The run config of trial `number`: base, the trial's values, its name and the sweep id."""

    values = {**spec.base, **params, "name": f"{spec.name}-t{number}", "sweep": spec.name}
    return from_dict(values, source=f"sweep {spec.name} trial {number}")


def _suggest(trial, p):
    if p.kind == "choice":
        return trial.suggest_categorical(p.name, p.values)
    step = p.values[2] if len(p.values) == 3 else None
    if p.kind in ("int", "log_int"):
        return trial.suggest_int(p.name, int(p.values[0]), int(p.values[1]), step=int(step or 1),
                                 log=p.kind == "log_int")
    return trial.suggest_float(p.name, p.values[0], p.values[1], step=step, log=p.kind == "log_uniform")


class _Log:
    def __init__(self, ws, name: str):
        self.path = ws.sweep_dir(name) / "sweep.log"

    def __call__(self, text: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {text}"
        print(text, file=sys.stderr, flush=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def run_sweep(ws, spec: SweepSpec) -> dict:
    """Run (or resume) the sweep until `spec.trials` trials have ended or the time budget is spent.
    Returns `summary(ws, spec.name)`."""
    optuna = _optuna()
    study = open_study(ws, spec)
    log = _Log(ws, spec.name)
    started = time.time()
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    study.set_user_attr("stopped", None)   # a resumed sweep is no longer stopped for what stopped it before
    failures: list = []   # the failed trials in a row: (number, error); a bad base fails every trial alike
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        log(f"sweep {spec.name}: trial {t.number} was running when the sweep stopped; following its job")
        _follow_trial(ws, spec, study, t.number, t.user_attrs.get("job_id"), log)
        failures = _count_failure(study, spec, t.number, failures, log)
    grid_size = 1
    for p in spec.space:
        grid_size *= len(p.values)
    while True:
        ended = [t for t in study.get_trials(deepcopy=False) if t.state in finished]
        if spec.trials and len(ended) >= spec.trials:
            break
        if spec.timeout_min and time.time() - started > spec.timeout_min * 60:
            log(f"sweep {spec.name}: time budget of {spec.timeout_min:g} min spent")
            break
        if spec.sampler == "grid" and len(study.trials) >= grid_size:
            log(f"sweep {spec.name}: every point of the grid has been tried")
            break
        trial = study.ask()
        params = {p.name: _suggest(trial, p) for p in spec.space}
        try:
            cfg = validate(trial_config(spec, trial.number, params))
        except UserError as e:
            log(f"trial {trial.number} {params}: not started: {e}")
            trial.set_user_attr("error", str(e))
            _tell(study, trial.number, state=optuna.trial.TrialState.FAIL)
        else:
            job = jobs.submit(ws, cfg, name=cfg.name, allow_duplicate=True)   # a trial is the sweep's own
            trial.set_user_attr("job_id", job.id)
            log(f"trial {trial.number} {params}: job {job.id} {job.status}")
            _follow_trial(ws, spec, study, trial.number, job.id, log)
        failures = _count_failure(study, spec, trial.number, failures, log)
    return summary(ws, spec.name)


def _count_failure(study, spec: SweepSpec, number: int, failures: list, log) -> list:
    """`failures` with trial `number` added if it failed, emptied if it did not. After
    `spec.max_failures` in a row the sweep stops: without this, a base every trial fails with (a
    missing dataset, a bad option) asks, fails and logs several trials a second for as long as the
    time budget lasts. The reason is kept in the study (`stopped`, shown by `sweep show` and the UI)."""
    optuna = _optuna()
    frozen = study.get_trials(deepcopy=False)[number]
    if frozen.state != optuna.trial.TrialState.FAIL:
        return []
    failures = [*failures, (number, str(frozen.user_attrs.get("error") or "no error recorded"))]
    if not spec.max_failures or len(failures) < spec.max_failures:
        return failures
    first, error = failures[0]
    error = " ".join(error.split())[:500]   # one line, whatever the trial's log held
    e = UserError(f"sweep {spec.name} stopped: {len(failures)} trials failed in a row (max_failures "
                  f"{spec.max_failures}); the first, trial {first}: {error}", "sweep_failing",
                  name=spec.name, failures=len(failures), limit=spec.max_failures, trial=first, error=error)
    study.set_user_attr("stopped", error_record(e))
    log(str(e))
    raise e


def _tell(study, number: int, value=None, state=None) -> None:
    try:
        study.tell(number, value, state=state)
    except RuntimeError as e:
        # GridSampler calls study.stop() once the grid is used up, which only works inside
        # study.optimize; the trial itself is already stored (Optuna stores it in a `finally`)
        if "Study.stop" not in str(e):
            raise


def _follow_trial(ws, spec: SweepSpec, study, number: int, job_id: str | None, log) -> None:
    """Report the job's validation losses to trial `number`, prune it or tell its result."""
    optuna = _optuna()
    State = optuna.trial.TrialState
    frozen = study.get_trials(deepcopy=False)[number]
    trial = optuna.trial.Trial(study, frozen._trial_id)
    reported = set(frozen.intermediate_values)
    sign = 1.0 if spec.direction == "minimize" else -1.0  # the pruner compares in the study's direction
    if not job_id:
        trial.set_user_attr("error", "the sweep stopped before the trial's job was submitted")
        return _tell(study, number, state=State.FAIL)
    run_dir, offset = None, 0
    while True:
        job = jobs.get_job(ws, job_id)
        if job.run_id and run_dir is None:
            run_dir = ws.runs_dir / job.run_id
            trial.set_user_attr("run_id", job.run_id)
        if run_dir is not None:
            events, offset = run_progress.read_events(run_dir / "events.jsonl", offset)
            for e in events:
                step, loss = e.get("step"), e.get("eval_loss")
                if e.get("type") != "eval" or loss is None or step is None or step in reported:
                    continue
                trial.report(sign * float(loss), int(step))
                reported.add(step)
                if job.status == "running" and trial.should_prune():
                    log(f"trial {number}: pruned at step {step} (eval_loss {loss:.4f}); stopping job {job_id}")
                    jobs.stop(ws, job_id, grace=STOP_GRACE_S)
                    job = _wait(ws, job_id)
                    value, error = _objective(ws, spec, job, run_dir)
                    if error is None:  # it finished before the stop reached it: a complete trial
                        log(f"trial {number}: finished before it could be stopped: {spec.objective} {value:.4f}")
                        return _tell(study, number, value)
                    trial.set_user_attr("pruned_at_step", int(step))
                    return _tell(study, number, state=State.PRUNED)
        if job.status not in jobs.ACTIVE:
            break
        time.sleep(0.5)
    value, error = _objective(ws, spec, job, run_dir)
    if error:
        trial.set_user_attr("error", error)
        log(f"trial {number}: failed: {error}")
        return _tell(study, number, state=State.FAIL)
    log(f"trial {number}: {spec.objective} {value:.4f} (run {job.run_id})")
    _tell(study, number, value)


def _wait(ws, job_id: str):
    """The job once it has ended (killed if a stop did not end it)."""
    try:
        return jobs.wait(ws, job_id, timeout=STOP_GRACE_S + 30)
    except TimeoutError:
        jobs.stop(ws, job_id, grace=5)
        return jobs.get_job(ws, job_id)


def _objective(ws, spec: SweepSpec, job, run_dir: Path | None) -> tuple[float | None, str | None]:
    """The trial's objective value, or (None, why there is none)."""
    if run_dir is None or not (run_dir / "metrics.json").is_file():
        return None, f"job {job.id} {job.status} without a finished run (log: {job.log_path}): " + \
            run_progress.tail(job.log_path, 3).replace("\n", " | ")[-300:]
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    if metrics.get("status") != "completed":
        return None, f"run {run_dir.name} {metrics.get('status')}"
    if spec.objective not in EVAL_METRICS:
        value = metrics.get(spec.objective)
        if value is None:
            return None, f"run {run_dir.name} has no {spec.objective} (set val_split above 0 in base)"
        return float(value), None
    cmd = [sys.executable, "-m", "tunestudio", "eval", "--run", run_dir.name, "--split", "val",
           "--metrics", spec.objective, "--json", "--workspace", str(ws.root)]
    out = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        return None, f"evaluating run {run_dir.name} failed: {out.stderr.strip()[-300:]}"
    return float(json.loads(out.stdout)["metrics"][spec.objective]), None


# ---- reading a sweep back ----------------------------------------------------------------------

def summary(ws, name: str) -> dict:
    """{sweep, objective, direction, trials (best first), best (number, value, params, run_id,
    config), importances {param: share}, counts {state: n}, stopped (why the sweep stopped early:
    errors.error_record, or None)}."""
    optuna = _optuna()

    study = load_study(ws, name)
    State = optuna.trial.TrialState
    minimize = study.direction == optuna.study.StudyDirection.MINIMIZE
    objective = study.user_attrs.get("objective", "value")
    rows = []
    for t in study.get_trials(deepcopy=False):
        last = t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None
        rows.append({"number": t.number, "state": t.state.name.lower(), "value": t.value, "params": t.params,
                     "run_id": t.user_attrs.get("run_id"), "job_id": t.user_attrs.get("job_id"),
                     "pruned_at_step": t.user_attrs.get("pruned_at_step"), "error": t.user_attrs.get("error"),
                     "last_intermediate": last,
                     "duration_s": round((t.datetime_complete - t.datetime_start).total_seconds(), 1)
                     if t.datetime_complete and t.datetime_start else None})
    order = {"complete": 0, "pruned": 1, "running": 2, "waiting": 3, "fail": 4}

    def key(r):
        v = r["value"] if r["state"] == "complete" else r["last_intermediate"]
        v = float("inf") if v is None else (v if minimize else -v)
        return (order.get(r["state"], 5), v, r["number"])

    rows.sort(key=key)
    best = None
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == State.COMPLETE]
    if complete:
        bt = study.best_trial
        run_cfg = ws.runs_dir / str(bt.user_attrs.get("run_id")) / "config.yaml"
        try:  # the config the best run really trained with; else rebuilt from the sweep file
            config = (load_config(run_cfg) if run_cfg.is_file()
                      else trial_config(_load(ws.sweep_dir(name) / "sweep.yaml"), bt.number, bt.params)).to_dict()
        except UserError:
            config = {**(study.user_attrs.get("base") or {}), **bt.params}
        best = {"number": bt.number, "value": bt.value, "params": bt.params,
                "run_id": bt.user_attrs.get("run_id"), "config": config}
    importances, note = {}, None
    if len(complete) >= 2:
        try:
            importances = {k: round(float(v), 4) for k, v in optuna.importance.get_param_importances(study).items()}
        except (RuntimeError, ValueError, ImportError) as e:
            note = f"no parameter importances: {e}"
    else:
        note = "parameter importances need at least 2 completed trials"
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    return {"sweep": name, "objective": objective, "direction": "minimize" if minimize else "maximize",
            "trials": rows, "best": best, "importances": importances, "importance_note": note, "counts": counts,
            "stopped": study.user_attrs.get("stopped"), "storage": storage_url(ws, name)}


def list_sweeps(ws) -> list[str]:
    root = ws.sweeps_dir
    return sorted(d.name for d in root.iterdir() if (d / "optuna.db").is_file()) if root.is_dir() else []
