"""Experiment trackers: a run's metrics, config and lineage streamed to TensorBoard, MLflow, W&B, Trackio.

`--report-to tensorboard,mlflow,wandb,trackio` (RunConfig.report_to) picks them. Offline first:

  tensorboard  event files in <run>/tensorboard/ (transformers' TensorBoardCallback)
  mlflow       the workspace's training/mlflow.db (a `sqlite:///` store), or $MLFLOW_TRACKING_URI
               when set; written with mlflow's own client (see `MlflowTracker` for why not
               transformers' MLflowCallback)
  wandb        offline files in <run>/wandb/ unless $WANDB_API_KEY (or $WANDB_MODE) is set
               (transformers' WandbCallback)
  trackio      its local store, in training/trackio/ unless $TRACKIO_DIR is set (transformers'
               TrackioCallback; the final metrics as final/<name> by us)

Every tracker gets the run config and the lineage (run id, parent run, dataset hash, base model and
revision, sweep) as parameters, the training/validation curves while the run goes on, and at the
end the same final metrics as metrics.json. Where each tracker wrote is kept in <run>/trackers.json
(`runs show` prints it). The engine calls `open_session` before it makes the Trainer, `attach` once
the Trainer exists and `finish` when the run ends; only the main process does.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from pathlib import Path

from tunestudio.config.run_config import dump_config
from tunestudio.core.errors import UserError
from tunestudio.core.statefiles import read_json_or_none, write_json

# tracker -> (the module that must import, transformers' report_to name or None when we write it)
TRACKERS = {
    "tensorboard": ("tensorboard", "tensorboard"),
    "mlflow": ("mlflow", None),
    "wandb": ("wandb", "wandb"),
    "trackio": ("trackio", "trackio"),
}
EXTRA = "pip install 'tunestudio[trackers]'"


def parse(report_to: str) -> list[str]:
    """The trackers named in a comma list ('' or 'none': none). Raises UserError for an unknown name."""
    names = [n.strip().lower() for n in str(report_to or "").split(",") if n.strip()]
    names = [n for n in names if n != "none"]
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise UserError(f"--report-to: unknown tracker '{unknown[0]}': choose from {', '.join(TRACKERS)} "
                        "(a comma list)", "tracker_unknown", option="report_to", value=unknown[0],
                        choices=", ".join(TRACKERS))
    return list(dict.fromkeys(names))


def check_trackers(report_to: str) -> list[str]:
    """The trackers of `report_to`, after making sure each one's package imports (else UserError)."""
    names = parse(report_to)
    missing = [n for n in names if importlib.util.find_spec(TRACKERS[n][0]) is None]
    if missing:
        raise UserError(f"--report-to {','.join(missing)}: the {' and '.join(missing)} package"
                        f"{'s are' if len(missing) > 1 else ' is'} not installed: {EXTRA}",
                        "trackers_not_installed" if len(missing) > 1 else "tracker_not_installed",
                        option="report_to", trackers=missing, install=EXTRA)
    return names


def hf_report_to(cfg) -> list[str] | str:
    """What TrainingArguments(report_to=) gets: the trackers transformers' own callbacks drive."""
    names = [TRACKERS[n][1] for n in parse(cfg.report_to) if TRACKERS[n][1]]
    return names or "none"


def mlflow_uri(ws) -> str:
    """$MLFLOW_TRACKING_URI when set, else a SQLite store in the workspace (no server needed)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{ws.mlflow_db_path.resolve()}"


def _numbers(values: dict) -> dict[str, float]:
    """The finite numeric entries (bools as 0/1): what a tracker can plot."""
    out = {}
    for k, v in (values or {}).items():
        if isinstance(v, bool):
            out[k] = float(v)
        elif isinstance(v, (int, float)) and math.isfinite(v):
            out[k] = float(v)
    return out


def _params(cfg, lineage: dict) -> dict[str, str]:
    params = {k: (json.dumps(v) if isinstance(v, (list, dict)) else str(v)) for k, v in cfg.to_dict().items()}
    params.update({f"lineage.{k}": str(v if v is not None else "") for k, v in lineage.items()})
    return params


# ---- MLflow ----------------------------------------------------------------------------------

def _mlflow_callback_base():
    from transformers import TrainerCallback

    return TrainerCallback


class MlflowTracker:
    """One MLflow run per tunestudio run, written with `MlflowClient` (no global active run).

    transformers' MLflowCallback logs TrainingArguments under names that clash with the run
    config's (max_steps -1 vs 0, save_steps 500 vs 0...), and MLflow refuses a parameter logged
    twice with two values; it also cannot know metrics.json. So the run config and lineage are the
    parameters here, curves go under train/* and eval/*, and the final metrics under their
    metrics.json names.
    """

    def __init__(self, ws, run_dir: Path, run_id: str, cfg, lineage: dict, previous: dict | None):
        from mlflow.tracking import MlflowClient

        self.uri = mlflow_uri(ws)
        if self.uri.startswith("sqlite:///"):
            Path(self.uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "tunestudio"
        exp = self.client.get_experiment_by_name(name)
        self.experiment_id = exp.experiment_id if exp else self.client.create_experiment(name)
        if previous and previous.get("tracking_uri") == self.uri and previous.get("run_id"):
            self.run_id = previous["run_id"]  # a resumed run goes on in the same MLflow run
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            tags = {"tunestudio.run_id": run_id, "tunestudio.sweep": cfg.sweep or "",
                    "tunestudio.parent_run": lineage.get("parent_run") or ""}
            run = self.client.create_run(self.experiment_id, run_name=cfg.name or run_id, tags=tags)
            self.run_id = run.info.run_id
            self._log(params=_params(cfg, lineage))

    def _log(self, params: dict | None = None, metrics: dict | None = None, step: int = 0) -> None:
        import time

        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        p = [Param(k, v[:6000]) for k, v in (params or {}).items()]
        m = [Metric(k, v, now, step) for k, v in (metrics or {}).items()]
        for i in range(0, max(len(p), len(m)), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=p[i:i + 100], metrics=m[i:i + 100])

    def on_log(self, logs: dict, step: int) -> None:
        metrics = {}
        for k, v in _numbers(logs).items():
            metrics[f"eval/{k[5:]}" if k.startswith("eval_") else f"train/{k}"] = v
        if metrics:
            self._log(metrics=metrics, step=step)

    def finish(self, status: str, metrics: dict | None) -> None:
        if metrics:
            self._log(metrics=_numbers({k: v for k, v in metrics.items() if k != "warnings"}),
                      step=int(metrics.get("steps") or 0))
        state = {"completed": "FINISHED", "stopped": "KILLED"}.get(status, "FAILED")
        self.client.set_terminated(self.run_id, status=state)

    def info(self) -> dict:
        return {"tracking_uri": self.uri, "experiment_id": self.experiment_id, "run_id": self.run_id}


# ---- the session: what one training process has open -------------------------------------------

class Session:
    def __init__(self, cfg, ws, run_dir: Path, run_id: str, lineage: dict):
        self.cfg, self.ws, self.run_dir, self.run_id, self.lineage = cfg, ws, Path(run_dir), run_id, lineage
        self.names = parse(cfg.report_to)
        self.saved_env: dict[str, str | None] = {}
        self.mlflow: MlflowTracker | None = None
        self.trackio_config: dict | None = None
        self.info: dict = {}
        self._set_env()
        previous = read_json_or_none(self.run_dir / "trackers.json") or {}
        if "mlflow" in self.names:
            try:
                self.mlflow = MlflowTracker(ws, self.run_dir, run_id, cfg, lineage, previous.get("mlflow"))
            except Exception as e:  # noqa: BLE001 - an unreachable server, a bad URI, a locked store
                detail = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                raise UserError(f"--report-to mlflow: cannot open the MLflow store {mlflow_uri(ws)}: {detail}",
                                "mlflow_store_unusable", option="report_to", store=str(mlflow_uri(ws)),
                                detail=detail) from None
            self.info["mlflow"] = self.mlflow.info()
        if "tensorboard" in self.names:
            self.info["tensorboard"] = {"logdir": str(self.run_dir / "tensorboard"),
                                        "view": f"tensorboard --logdir {self.run_dir / 'tensorboard'}"}
        if "wandb" in self.names:
            self.info["wandb"] = {"mode": os.environ.get("WANDB_MODE"), "dir": os.environ.get("WANDB_DIR"),
                                  "project": os.environ.get("WANDB_PROJECT")}
        if "trackio" in self.names:
            self.info["trackio"] = {"dir": os.environ.get("TRACKIO_DIR"), "project": "tunestudio",
                                    "view": "trackio show --project tunestudio"}
        self._write_info()

    def _env(self, key: str, value: str, only_if_unset: bool = True) -> None:
        if only_if_unset and os.environ.get(key):
            return
        self.saved_env.setdefault(key, os.environ.get(key))
        os.environ[key] = value

    def _set_env(self) -> None:
        # transformers' callbacks read these when training begins (TensorBoard's: see `attach`)
        if "wandb" in self.names:
            if not os.environ.get("WANDB_API_KEY"):
                self._env("WANDB_MODE", "offline")  # never ask for a login, never reach the network
            self._env("WANDB_DIR", str(self.run_dir))
            self._env("WANDB_PROJECT", "tunestudio")
        if "trackio" in self.names:
            self._env("TRACKIO_DIR", str(self.ws.trackio_dir))

    def _write_info(self) -> None:
        if self.info:
            write_json(self.run_dir / "trackers.json", self.info, indent=2)

    def finish(self, status: str, metrics: dict | None) -> None:
        try:
            if self.mlflow is not None:
                self.mlflow.finish(status, metrics)
            if "tensorboard" in self.names:
                self._tensorboard_summary(status, metrics)
            if metrics and "wandb" in self.names:
                import wandb

                if wandb.run is not None:  # transformers' callback leaves the run open for this
                    wandb.run.summary.update(_numbers(metrics))
                    wandb.finish()
            if metrics and "trackio" in self.names:
                self._trackio_final(metrics)
        finally:
            for key, value in self.saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    @property
    def run_name(self) -> str:
        return self.cfg.name or self.run_id  # what W&B and Trackio call the run (TrainingArguments.run_name)

    def config_values(self) -> dict[str, str]:
        """The run config and lineage as W&B / Trackio config entries, under 'tunestudio/' so they
        never overwrite transformers' own TrainingArguments entries (max_steps -1 vs 0...)."""
        return {f"tunestudio/{k}": v for k, v in _params(self.cfg, self.lineage).items()}

    def on_train_begin(self) -> None:
        """Once transformers' W&B and Trackio callbacks have opened their runs: add our config."""
        if "wandb" in self.names:
            import wandb

            if wandb.run is not None:
                wandb.run.config.update(self.config_values(), allow_val_change=True)
        if "trackio" in self.names:
            import trackio

            trackio.config.update(self.config_values(), allow_val_change=True)
            self.trackio_config = dict(trackio.config)  # the final-metrics init below must send it again

    def _trackio_final(self, metrics: dict) -> None:
        """The final metrics (metrics.json's, as final/<name>) into the same Trackio run, which
        transformers' callback already finished at the end of training."""
        import trackio

        # a re-opened run stores the config it is given as the run's config: give it the whole one
        trackio.init(project="tunestudio", name=self.run_name, resume="must",
                     config={k: v for k, v in (self.trackio_config or self.config_values()).items()
                             if not k.startswith("_")})
        try:
            trackio.log({f"final/{k}": v for k, v in _numbers(
                {k: v for k, v in metrics.items() if k != "warnings"}).items()})
        finally:
            trackio.finish()

    def _tensorboard_summary(self, status: str, metrics: dict | None) -> None:
        """The config, the lineage and the final metrics beside transformers' curves."""
        from torch.utils.tensorboard import SummaryWriter


        writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
        try:
            step = int((metrics or {}).get("steps") or 0)
            writer.add_text("tunestudio/config", "```\n" + dump_config(self.cfg) + "\n```", step)
            writer.add_text("tunestudio/lineage", json.dumps({**self.lineage, "status": status}), step)
            for k, v in _numbers({k: v for k, v in (metrics or {}).items() if k != "warnings"}).items():
                writer.add_scalar(f"final/{k}", v, step)
        finally:
            writer.close()


def links(run_dir: Path) -> dict:
    """Where the run's trackers wrote (<run>/trackers.json), each with a `view`: the command or
    address that opens it. {} when the run reported to none."""
    info = read_json_or_none(Path(run_dir) / "trackers.json") or {}
    ml = info.get("mlflow")
    if ml:
        where = ml["tracking_uri"]
        ml["view"] = (f"mlflow ui --backend-store-uri {where}, then #/experiments/{ml['experiment_id']}/runs/"
                      f"{ml['run_id']}" if not where.startswith("http") else
                      f"{where.rstrip('/')}/#/experiments/{ml['experiment_id']}/runs/{ml['run_id']}")
    return info


_session: Session | None = None


def open_session(cfg, ws, run_dir: Path, run_id: str, lineage: dict) -> None:
    """Open the trackers of `cfg.report_to` (once per run and process). Call it before the Trainer
    exists: its callbacks import the trackers then, and Trackio fixes its folder ($TRACKIO_DIR) at
    import, so the environment must already point into the workspace."""
    global _session
    if parse(cfg.report_to) and (_session is None or _session.run_id != run_id):
        _session = Session(cfg, ws, run_dir, run_id, lineage)


def attach(trainer, cfg, ws, run_dir: Path, run_id: str, lineage: dict) -> None:
    """Hook the trackers of `cfg.report_to` into `trainer` (opening them first if `open_session` was not called)."""
    if not parse(cfg.report_to):
        return
    open_session(cfg, ws, run_dir, run_id, lineage)
    trainer.args.run_name = cfg.name or run_id   # the name W&B and Trackio show
    trainer.args.project = "tunestudio"           # Trackio's project
    for cb in trainer.callback_handler.callbacks:
        if type(cb).__name__ == "TensorBoardCallback":  # it read $TENSORBOARD_LOGGING_DIR when the Trainer was made
            cb.logging_dir = str(run_dir / "tensorboard")
    if _session.mlflow is not None or {"wandb", "trackio"} & set(_session.names):
        trainer.add_callback(_callback(_session))  # after transformers' own: their runs are open by then


def _callback(session: Session):
    base = _mlflow_callback_base()

    class _Callback(base):
        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                session.on_train_begin()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs and session.mlflow is not None:
                session.mlflow.on_log(logs, state.global_step)

    return _Callback()


def finish(status: str, metrics: dict | None = None) -> None:
    """Send the final metrics (metrics.json's) and close every tracker the run opened."""
    global _session
    if _session is None:
        return
    session, _session = _session, None
    try:
        session.finish(status, metrics)
    except Exception as e:  # noqa: BLE001 - a tracker's trouble never changes how the run ended
        print(f"warning: could not send the final metrics to the trackers: {type(e).__name__}: {e}",
              file=sys.stderr, flush=True)
