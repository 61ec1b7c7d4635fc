"""--report-to: a run's curves, config, lineage and final metrics reach TensorBoard, MLflow, W&B
(offline) and Trackio (read back with their own readers), offline, in the workspace (a missing or
unknown tracker: test_trackers.py, test_tracking_cli.py)."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
from helpers import run_cli

from tunestudio.core import registry

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is None or importlib.util.find_spec("mlflow") is None,
    reason="needs the trackers extra: pip install 'tunestudio[trackers]'")

ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def _events(run_dir, kind):
    return [e for e in map(json.loads, (run_dir / "events.jsonl").read_text().splitlines()) if e["type"] == kind]


def _train_reporting_to(tiny_ws, trackers: str, env: dict):
    """Train 8 steps with --report-to TRACKERS; returns (run_id, run_dir, numeric final metrics,
    the train losses of events.jsonl), what each tracker's read-back is compared with."""
    out = run_cli("train", "--model", "tiny", "--dataset", "tiny.jsonl", "--method", "full", "--lr", "3e-3",
                  "--max-steps", "8", "--batch-size", "8", "--max-length", "64", "--val-split", "0.15",
                  "--test-split", "0", "--eval-steps", "4", "--logging-steps", "2",
                  "--report-to", trackers, "--json", ws=tiny_ws.root, env={**ONE_THREAD, **env})
    assert out.returncode == 0, out.stderr[-3000:]
    run_id = json.loads(out.stdout)["run_id"]
    run_dir = tiny_ws.runs_dir / run_id
    metrics = json.loads((run_dir / "metrics.json").read_text())
    numeric = {k: float(v) for k, v in metrics.items()
               if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v))}
    train_losses = [e["loss"] for e in _events(run_dir, "train") if e.get("loss") is not None]
    assert len(train_losses) >= 4 and "eval_loss" in numeric
    return run_id, run_dir, numeric, train_losses


@pytest.mark.slow
def test_tensorboard_and_mlflow_get_the_curves_config_lineage_and_final_metrics(tiny_ws):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_id, run_dir, numeric, train_losses = _train_reporting_to(tiny_ws, "tensorboard,mlflow",
                                                                 {"MLFLOW_TRACKING_URI": ""})

    # TensorBoard: event files in the run folder, the same curve as events.jsonl, the final metrics
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    scalars = acc.Tags()["scalars"]
    assert "train/loss" in scalars and "eval/loss" in scalars, scalars
    assert [round(s.value, 4) for s in acc.Scalars("train/loss")] == [round(v, 4) for v in train_losses]
    for key, value in numeric.items():
        assert acc.Scalars(f"final/{key}")[-1].value == pytest.approx(value, rel=1e-5), key
    assert "tunestudio/config/text_summary" in acc.Tags()["tensors"]

    # MLflow: a local SQLite store in the workspace, found through trackers.json
    info = json.loads((run_dir / "trackers.json").read_text())["mlflow"]
    assert info["tracking_uri"] == f"sqlite:///{tiny_ws.root.resolve() / 'training' / 'mlflow.db'}"
    client = MlflowClient(info["tracking_uri"])
    run = client.get_run(info["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["tunestudio.run_id"] == run_id
    params = run.data.params
    assert params["lr"] == "0.003" and params["method"] == "full" and params["report_to"] == "tensorboard,mlflow"
    conn = registry.connect(tiny_ws.db_path)
    try:
        row = registry.get_run(conn, run_id)
    finally:
        conn.close()
    assert params["lineage.dataset_hash"] == row["dataset_hash"] and row["dataset_hash"]
    assert params["lineage.run_id"] == run_id and params["lineage.parent_run"] == ""
    for key, value in numeric.items():
        assert run.data.metrics[key] == pytest.approx(value, rel=1e-6), key
    history = client.get_metric_history(info["run_id"], "train/loss")
    assert [round(m.value, 4) for m in sorted(history, key=lambda m: m.step)] == [round(v, 4) for v in train_losses]

    # the run's own page says where to look
    shown = run_cli("runs", "show", run_id, ws=tiny_ws.root)
    assert shown.returncode == 0, shown.stderr
    assert f"tensorboard --logdir {run_dir / 'tensorboard'}" in shown.stdout
    assert f"#/experiments/{info['experiment_id']}/runs/{info['run_id']}" in shown.stdout


def _wandb_records(path):
    """The records of a W&B offline run file (run-*.wandb): a ':W&B' header, then LevelDB-log blocks
    of 32 KiB whose chunks (FULL 1, FIRST 2, MIDDLE 3, LAST 4) carry protobuf `Record`s."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:7]
    pos, block, out, buf = 7, 32768, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a chunk header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(buf)
            out.append(record)
    return out


def _items(items) -> dict:
    return {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in items}


TRACKIO_READ = """
import json, sys
from trackio.sqlite_storage import SQLiteStorage as S
run = sys.argv[1]
print(json.dumps({"runs": S.get_runs("tunestudio"), "logs": S.get_logs("tunestudio", run),
                  "config": S.get_run_config("tunestudio", run)}, default=str))
"""


@pytest.mark.slow
def test_wandb_offline_and_trackio_local_get_the_curves_config_and_final_metrics(tiny_ws):
    pytest.importorskip("wandb")
    pytest.importorskip("trackio")
    import os
    import subprocess
    import sys

    run_id, run_dir, numeric, train_losses = _train_reporting_to(
        tiny_ws, "wandb,trackio", {"WANDB_MODE": "offline", "WANDB_API_KEY": "", "WANDB_DIR": "", "TRACKIO_DIR": ""})
    conn = registry.connect(tiny_ws.db_path)
    try:
        dataset_hash = registry.get_run(conn, run_id)["dataset_hash"]
    finally:
        conn.close()
    assert dataset_hash

    # W&B: an offline run in the run folder, read back record by record
    files = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1, list((run_dir / "wandb").rglob("*"))
    records = _wandb_records(files[0])
    kinds = [r.WhichOneof("record_type") for r in records]
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.display_name == run_id and run.project == "tunestudio"
    history = [_items(r.history.item) for r in records if r.WhichOneof("record_type") == "history"]
    assert [round(h["train/loss"], 4) for h in history if "train/loss" in h] == [round(v, 4) for v in train_losses]
    summary, config = {}, {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            summary.update(_items(r.summary.update))
        elif r.WhichOneof("record_type") == "config":
            config.update(_items(r.config.update))
    for key, value in numeric.items():
        assert summary[key] == pytest.approx(value, rel=1e-6), key
    assert config["tunestudio/lr"] == "0.003" and config["tunestudio/report_to"] == "wandb,trackio"
    assert config["tunestudio/lineage.dataset_hash"] == dataset_hash
    assert "exit" in kinds

    # Trackio: its local store in the workspace (not ~/.cache), read back with its own storage class
    store = tiny_ws.trackio_dir
    assert (store / "tunestudio.db").is_file(), list(store.parent.iterdir())
    read = subprocess.run([sys.executable, "-c", TRACKIO_READ, run_id], capture_output=True, text=True,
                          env={**os.environ, "TRACKIO_DIR": str(store)}, timeout=120)
    assert read.returncode == 0, read.stderr[-2000:]
    got = json.loads(read.stdout)
    assert got["runs"] == [run_id]
    logged = [row["train/loss"] for row in got["logs"] if "train/loss" in row]
    assert [round(v, 4) for v in logged] == [round(v, 4) for v in train_losses]
    final = {k[len("final/"):]: v for row in got["logs"] for k, v in row.items() if k.startswith("final/")}
    for key, value in numeric.items():
        assert final[key] == pytest.approx(value, rel=1e-6), key
    assert got["config"]["tunestudio/lr"] == "0.003"
    assert got["config"]["tunestudio/lineage.dataset_hash"] == dataset_hash
    assert json.loads((run_dir / "trackers.json").read_text())["trackio"]["dir"] == str(store)
