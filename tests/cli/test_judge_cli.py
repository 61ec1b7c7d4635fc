"""`tunestudio eval --judge`: a run's evaluation graded by a stub judge on loopback, its flags, and
one clear line (no traceback, before any generation) when the judge cannot be reached."""

from __future__ import annotations

import json
from pathlib import Path

from eval_helpers import make_full_run
from helpers import one_error, run_cli
from judge_helpers import free_port, stub_judge

KEY = "sk-judge-cli-secret"


def _rate_two(ws_root: Path) -> None:
    """People's blind ratings of the run's first two test prompts: a tie, then the fine-tuned answer better."""
    from tunestudio.core.workspace import Workspace
    from tunestudio.evaluate import ratings
    from tunestudio.evaluate.run_eval import select_records
    from tunestudio.models.loading import find_run

    ws = Workspace(ws_root)
    records, _, _ = select_records(ws, find_run(ws, "full-run"), None, "test", 2)
    sid = ratings.create_session(ws, [r.prompt() for r in records], "base:full-run", "run:full-run",
                                 outputs_a=["x", "x"], outputs_b=["y", "y"], seed=0)
    second = ratings.get_session(ws, sid)["items"][1]
    ratings.record_rating(ws, sid, 0, "tie", rater="ana")
    ratings.record_rating(ws, sid, 1, "A" if second["swapped"] else "B", rater="ana")   # b, the tuned, better


def test_eval_with_a_judge_grades_both_orders_and_saves_verdicts(demo_ws, tmp_path):
    make_full_run(demo_ws, "full-run")
    _rate_two(demo_ws)
    rubric = tmp_path / "rubric.txt"
    rubric.write_text("Only the sentiment label matters: positive, negative or neutral.")

    def judge(prompt):   # the "fine-tuned" weights are the base's here: a fair judge calls it even
        return "Same answers. [[C]]" if "[The Start of Assistant A's Answer]" in prompt else "Rating: [[6]]"

    with stub_judge(judge) as stub:
        r = run_cli("eval", "--run", "full-run", "--limit", "2", "--max-new-tokens", "4", "--metrics", "exact_match",
                    "--judge", stub.url, "--rubric", rubric, "--judge-parallel", "2", "--judge-timeout", "20",
                    ws=demo_ws, env={"TUNESTUDIO_JUDGE_API_KEY": KEY})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "--compare-base" in r.stderr   # pairwise needs the base's answers: said, then done
    assert "tuned  mean score 6.00 / 10 over 2" in r.stdout
    assert "0 win, 2 tie, 0 loss, 0 inconsistent, 0 unparseable, 0 failed; win rate 0% of 2 judged" in r.stdout
    # judge (tie, tie) against people (tie, tuned): p_o = 1/2, p_e = (2*1 + 0*1)/4 = 1/2, kappa = 0
    assert "judge agrees with your ratings on 1 of 2 (50%), κ = 0.00" in r.stdout
    assert len(stub.prompts) == 2 * 2 + 2 * 2 and stub.max_in_flight <= 2
    assert all("Only the sentiment label matters" in p for p in stub.prompts)   # the rubric replaced the criteria
    assert set(stub.auth) == {f"Bearer {KEY}"} and KEY not in r.stdout + r.stderr
    folder = Path(next(x for x in r.stdout.splitlines() if x.startswith("report: "))[8:]).parent
    summary = json.loads((folder / "judge.json").read_text())
    assert summary["mode"] == "both" and summary["judge_model"] == "stub-judge" and summary["agreement"]["n"] == 2
    per = [json.loads(x) for x in (folder / "judge.jsonl").read_text().splitlines()]
    assert [e["pairwise"]["outcome"] for e in per] == ["tie"] * 2 and per[0]["single"]["tuned"]["raw"]
    assert KEY not in (folder / "judge.json").read_text()


def test_a_dead_judge_fails_at_once_with_one_line(demo_ws):
    make_full_run(demo_ws, "full-run")
    url = f"http://127.0.0.1:{free_port()}/v1"   # nothing listens there: connection refused
    r = run_cli("eval", "--run", "full-run", "--limit", "2", "--judge", url, ws=demo_ws,
                env={"OPENAI_API_KEY": KEY})
    line = one_error(r)
    assert "cannot be reached" in line and url in line
    assert "generating" not in r.stderr and KEY not in r.stderr   # refused before any model was loaded


def test_judge_flags_without_a_judge(demo_ws):
    make_full_run(demo_ws, "full-run")
    line = one_error(run_cli("eval", "--run", "full-run", "--judge-mode", "single", ws=demo_ws))
    assert "--judge-mode" in line and "--judge" in line
    line = one_error(run_cli("eval", "--model", "tiny-demo", "--dataset", "demo-reviews.jsonl", "--judge",
                             "http://127.0.0.1:9/v1", "--judge-mode", "pairwise", ws=demo_ws))
    assert "base model" in line
    r = run_cli("eval", "--run", "full-run", "--judge", "x", "--judge-mode", "sometimes", ws=demo_ws)
    assert r.returncode == 2 and "invalid choice" in r.stderr
