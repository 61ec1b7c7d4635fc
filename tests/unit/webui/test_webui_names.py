"""Metric and option names in tables, and series names in legends, as a person reads them: the
engine's keys (train_loss, stopped, lr) worded in the UI language with the key beside them, and
every legend label short enough that the chart does not cut it ("…")."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from lang_check import wrong_language

from tunestudio.core import registry
from tunestudio.core.workspace import Workspace
from tunestudio.webui.common.context import LEGEND_LABEL_PX, fit_legend, label_px, metric_label, plotted

METRICS = {"steps": 6, "train_loss": 3.8, "eval_loss": 3.7, "stopped_early": False, "best_step": 6, "runtime_s": 7.8}


def test_metric_names_are_worded_with_their_key_beside_them():
    assert metric_label("en", "train_loss") == "training loss (train_loss)"
    assert metric_label("tet", "train_loss") == "perda treinamentu (train_loss)"
    assert metric_label("tet", "steps") == "pasu (steps)" and metric_label("en", "steps") == "steps"
    assert metric_label("tet", "stopped") == "para rasik (stopped)"
    assert metric_label("tet", "test_exact_match") == "teste hanesan loloos (test_exact_match)"
    assert metric_label("tet", "lr") == "Taxa aprendizajen (lr)"   # a run option: its Training-tab label
    assert metric_label("tet", "my_custom_metric") == "my_custom_metric"   # not ours to name
    assert metric_label("tet", "train_loss", with_id=False) == "perda treinamentu"


@pytest.mark.parametrize("lang", ["en", "tet"])
def test_every_run_option_is_named_in_the_config_tables(lang):
    """The Runs tab's config table (Details, Compare) names every key of a run's config.yaml, the
    model and dataset picked outside the form too (a bare "model" row was English in Tetum)."""
    import dataclasses

    from tunestudio.config.run_config import RunConfig
    from tunestudio.webui.i18n.texts import has

    # a name equal to its key is fine where the files say so ("epochs" in English)
    bare = [f.name for f in dataclasses.fields(RunConfig) if metric_label(lang, f.name, with_id=False) == f.name
            and not has(lang, f"metric.{f.name}")]
    assert not bare, bare
    assert metric_label("tet", "model") == "Modelu baze (model)" and metric_label("tet", "dataset") == "Dataset (dataset)"


def test_runs_table_and_details_show_metric_names_in_tetum(workspace):
    from tunestudio.webui.tabs.runs import table as tab_runs

    ws = Workspace(workspace)
    conn = registry.connect(ws.db_path)
    registry.insert_run(conn, id="r1", name="walk", status="stopped", created_at=time.time(), method="full",
                        dataset="d.jsonl", base_model="tiny-demo", metrics=METRICS,
                        config={"lr": 0.001, "batch_size": 8})
    conn.close()
    df = tab_runs.table(ws, "tet")
    cell = df.iloc[0][df.columns[6]]
    assert cell.startswith("pasu 6, perda treinamentu 3.8") and "stopped_early" not in cell, cell
    assert not wrong_language(" ".join(map(str, df.columns)) + " " + cell, "tet", "en")


def test_runs_table_leaves_out_metrics_without_a_value(workspace):
    """A run stopped before its first evaluation has eval_loss None: the metrics cell does not end
    in "validation loss" with nothing after it."""
    from tunestudio.webui.tabs.runs import table as tab_runs

    ws = Workspace(workspace)
    conn = registry.connect(ws.db_path)
    registry.insert_run(conn, id="r1", name="walk", status="stopped", created_at=time.time(), method="full",
                        dataset="d.jsonl", base_model="tiny-demo", metrics={**METRICS, "eval_loss": None})
    conn.close()
    for lang in ("en", "tet"):
        cell = tab_runs.table(ws, lang).iloc[0, 6]
        assert "validation loss" not in cell and "perda validasaun" not in cell and "3.8" in cell, cell


def test_evaluate_results_benchmark_and_examples_name_metrics_in_tetum():
    from tunestudio.webui.tabs.evaluate.tables import examples_frame, leaderboard_frame, metrics_frame

    df = metrics_frame("tet", {"metrics": {"exact_match": 1.0, "stopped": 0.5, "loss": 2.0}})
    assert list(df.iloc[:, 0]) == ["hanesan loloos (exact_match)", "para rasik (stopped)", "perda (loss)"]
    ex = examples_frame([{"index": 0, "where": "f:1", "input": "q", "reference": "a", "prediction": "a",
                          "scores": {"exact_match": 1.0, "f1": 1.0}}], lang="tet")
    assert ex.iloc[0][ex.columns[4]] == "hanesan loloos=1.0000, F1=1.0000", ex   # the scores column
    lb = leaderboard_frame("tet", [{"model": "m", "metrics": {"exact_match": 0.5}}])
    assert lb.iloc[0][lb.columns[-1]] == "hanesan loloos=0.5000"


def test_sweep_trials_name_the_objective_and_options_in_tetum(monkeypatch, workspace):
    from tunestudio.sweeps import search as sweep
    from tunestudio.webui.tabs.runs import sweep_panel

    summary = {"trials": [{"number": 0, "state": "complete", "value": 1.5, "params": {"lr": 1e-3}, "run_id": "",
                           "last_intermediate": 1.5}], "objective": "eval_loss", "direction": "minimize",
               "importances": {}, "best": None, "name": "s", "target": 1, "ended": 1, "counts": {"complete": 1},
               "log": "", "status": "finished"}
    monkeypatch.setattr(sweep, "summary", lambda ws, name: summary)
    try:
        _, table, *_ = sweep_panel.sweep_view(Workspace(workspace), "tet", "s")
    except KeyError as e:   # a summary field this test does not fake: name it
        raise AssertionError(f"fake summary lacks {e}") from None
    assert "perda validasaun (eval_loss)" in table.columns and "Taxa aprendizajen (lr)" in table.columns, table.columns


def test_series_names_too_wide_for_the_legend_become_keys_spelled_out_in_the_caption():
    long_name = "lora-r16-qwen2.5-reviews-lr3e-4-seed7 validasaun"
    df = pd.DataFrame({"step": [1, 2, 1, 2], "loss": [2.0, 1.5, 2.1, 1.6],
                       "series": ["alpha treinamentu", "alpha treinamentu", long_name, long_name]})
    assert label_px("alpha treinamentu") < LEGEND_LABEL_PX < label_px(long_name)
    fitted, caption = fit_legend(df)
    assert set(fitted["series"]) == {"alpha treinamentu", "#1"} and caption == f"#1 = {long_name}"
    update = plotted(df)
    assert set(update["value"]["series"]) == {"alpha treinamentu", "#1"} and update["caption"] == caption
    assert set(update["color_map"]) == {"alpha treinamentu", "#1"}
    assert plotted(df.iloc[:2])["caption"] is None   # every name fits: no caption left from before


def test_yes_no_values_in_run_tables_are_in_the_ui_language():
    """Details and Compare show run options and metrics such as train_on_prompt, stopped_early:
    a yes/no value is worded in the UI language, not Python's True shown as "true" in Tetum."""
    from tunestudio.webui.tabs.runs.table import fmt_cell as _fmt

    assert (_fmt(True, "tet"), _fmt(False, "tet")) == ("sin", "lae")
    assert (_fmt(True, "en"), _fmt(False, "en")) == ("true", "false")
    assert _fmt(0.123456, "tet") == "0.1235" and _fmt(3, "tet") == 3   # numbers unchanged
