"""The Evaluate tab's LLM judge panel, its handler called without a browser against a stub judge:
the run's latest saved evaluation graded, the results and per-example tables with the raw verdicts,
the agreement with people's ratings, and one worded error for an unserved run."""

from __future__ import annotations

import json
import time

from eval_helpers import BASE_ANSWERS, RATING_PROMPTS, TUNED_ANSWERS, rating_session
from judge_helpers import answer_of, stub_judge

from tunestudio.core import registry
from tunestudio.core.workspace import Workspace
from tunestudio.evaluate import ratings


def _evaluated_run(ws: Workspace) -> None:
    """run1 with one saved evaluation (compare-base) of the eight rating prompts."""
    final = ws.runs_dir / "run1" / "final"
    final.mkdir(parents=True)
    (final / "config.json").write_text("{}")
    folder = ws.runs_dir / "run1" / "eval" / "20260101-000000"
    folder.mkdir(parents=True)
    rows = [{"index": i, "input": q, "reference": "r", "prediction": TUNED_ANSWERS[i],
             "base_prediction": BASE_ANSWERS[i]} for i, q in enumerate(RATING_PROMPTS)]
    (folder / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    conn = registry.connect(ws.db_path)
    conn.execute("INSERT INTO evaluations (created_at, run_id, model, dataset, split, n, metrics, output_dir)"
                 " VALUES (?, 'run1', 'run run1', 'd', 'test', 8, ?, ?)",
                 (time.time(), json.dumps({"exact_match": 0.5, "stopped": 1.0}), str(folder)))
    conn.close()


def _judge_handler(ws: Workspace):
    from tunestudio.webui.app import build_app

    demo = build_app(ws)
    go = next(c for c in demo.blocks.values() if getattr(c, "elem_id", None) == "judge-run")
    (dep,) = [d for d in demo.fns.values() if (go._id, "click") in [tuple(t) for t in d.targets]]
    return dep.fn


def test_judge_panel_grades_the_latest_evaluation_and_compares_with_people(workspace):
    ws = Workspace(workspace)
    _evaluated_run(ws)
    sid = rating_session(ws)
    for i, it in enumerate(ratings.get_session(ws, sid)["items"]):   # people: tuned better on every prompt
        ratings.record_rating(ws, sid, i, "A" if it["swapped"] else "B", rater="ana")

    def judge(prompt):   # tuned better, except on question 0 where it says base
        a, _ = answer_of(prompt)
        better = "base" if "question 0\n" in prompt else "tuned"
        return f"Reason.\n{'[[A]]' if a.startswith(better) else '[[B]]'}"

    handler = _judge_handler(ws)
    with stub_judge(judge) as stub:
        message, results, examples, _ = handler("en", "run1", stub.url, "", "pairwise", None)
    # judge: 7 tuned + 1 base; people: 8 tuned. p_o = 7/8, p_e = (7*8)/64 = 7/8: kappa 0
    assert "agrees with your ratings on **7 of 8** (88%), κ = 0.00" in message
    table = dict(zip(results.iloc[:, 0], results.iloc[:, 1]))
    assert table["fine-tuned wins"] == 7 and table["fine-tuned losses"] == 1 and table["win rate"] == "88% (7/8)"
    first = examples.iloc[0].to_dict()
    assert first["pairwise"] == "base better" and "[base_first] Reason.\n[[A]]" in first["judge's text"]
    assert (ws.runs_dir / "run1/eval/20260101-000000/judge.jsonl").is_file()

    message, *_ = _judge_handler(ws)("tet", "run1", "run1", "", "both", None)   # not served: worded, no traceback
    assert "seidauk serve" in message
