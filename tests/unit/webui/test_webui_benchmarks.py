"""The Evaluate tab's benchmark panel: the picked run and its base on the demo's local task, shown as
task | metric | base | tuned | Δ ± error in the UI's language (the engine: tests/unit/evaluate/test_benchmarks.py)."""

from __future__ import annotations

from eval_helpers import make_full_run

from tunestudio.core.workspace import Workspace
from tunestudio.evaluate import benchmarks as B
from tunestudio.webui.tabs.evaluate.benchmarks import benchmark_frame


def _click(demo, elem_id: str):
    """The handler behind the button `elem_id` (what a click runs)."""
    button = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)
    return next(f.fn for f in demo.fns.values() if any(t[0] == button._id for t in f.targets))


def test_the_panel_benchmarks_the_picked_run_against_its_base(demo_ws):
    from tunestudio.webui.app import build_app

    make_full_run(demo_ws)
    demo = build_app(Workspace(demo_ws))
    tasks = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "bench-tasks")
    assert tasks.value == "demo-mc.yaml"   # the demo's local task is there: it is the default
    message, table, *_ = _click(demo, "bench-tasks-run")("tet", "full-run", "demo-mc.yaml", 0, 8)
    assert "full-run" in message and "demo_mc" in message
    assert list(table.columns) == ["tarefa", "métrika", "baze", "afina ona", "Δ ± erru"]
    acc = table.iloc[0].tolist()
    assert acc[:2] == ["demo_mc", "acc"] and "±" in acc[2] and acc[2] == acc[3] and acc[4].startswith("+0.0000 ±")
    # a task it cannot find is said in the panel, not raised
    message, table, *_ = _click(demo, "bench-tasks-run")("en", "full-run", "nope.yaml", 0, 8)
    assert "nope.yaml" in message and len(table) == 0


def test_a_drop_beyond_two_errors_is_marked():
    side = lambda v: {"t": {"n": 60, "metrics": {"acc": v, "acc_stderr": 0.05}, "higher_is_better": {"acc": True}}}  # noqa: E731
    frame = benchmark_frame("en", B.table(side(0.6), side(0.8)))
    assert frame.iloc[0].tolist()[4] == "-0.2000 ± 0.0707 ⚠"


def test_the_leaderboard_button_ranks_the_models(demo_ws):
    """(The handler used to call the models dropdown, named like the engine function, and said an error.)"""
    from tunestudio.webui.app import build_app

    demo = build_app(Workspace(demo_ws))
    message, board, *_ = _click(demo, "bench-run")("en", ["tiny-demo"], "demo-qa.csv")
    assert "Leaderboard over 50 test rows" in message and board.iloc[0].tolist()[0] == "tiny-demo"
