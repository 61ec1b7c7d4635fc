"""--report-to before any run: a missing tracker package names the extra to install, and MLflow goes
where MLFLOW_TRACKING_URI says."""

from __future__ import annotations

import importlib.util

import pytest

from tunestudio.config.run_config import RunConfig
from tunestudio.core.errors import UserError
from tunestudio.train import tracking
from tunestudio.train.config_check import validate

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is None or importlib.util.find_spec("mlflow") is None,
    reason="needs the trackers extra: pip install 'tunestudio[trackers]'")


def test_a_missing_tracker_package_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    cfg = RunConfig(model="m", dataset="d.jsonl", report_to="tensorboard, mlflow")
    with pytest.raises(UserError, match=r"--report-to mlflow: the mlflow package is not installed: "
                                        r"pip install 'tunestudio\[trackers\]'"):
        validate(cfg)
    assert tracking.parse(" TensorBoard ,none,") == ["tensorboard"]
    assert tracking.hf_report_to(RunConfig(report_to="")) == "none"
    assert tracking.hf_report_to(RunConfig(report_to="mlflow,tensorboard")) == ["tensorboard"]


def test_mlflow_goes_where_mlflow_tracking_uri_says(monkeypatch, tmp_path):
    from tunestudio.core.workspace import Workspace

    ws = Workspace(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.mlflow_uri(ws) == f"sqlite:///{tmp_path.resolve() / 'training' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert tracking.mlflow_uri(ws) == "http://mlflow.example:5000"

