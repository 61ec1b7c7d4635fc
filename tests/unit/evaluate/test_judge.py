"""The LLM judge against a stub OpenAI-compatible server on loopback (tests/judge_helpers.py):
verdict parsing, both orders against a position-biased judge, timeouts, bounded parallelism, the
API key, the files and registry row, and agreement with people's blind ratings."""

from __future__ import annotations

import json
import time

import pytest
from eval_helpers import BASE_ANSWERS, RATING_PROMPTS, TUNED_ANSWERS, rating_session
from judge_helpers import answer_of, stub_judge

from tunestudio.core.workspace import Workspace
from tunestudio.evaluate import ratings
from tunestudio.evaluate.judge import Judge, judge_rows, parse_choice, parse_rating
from tunestudio.evaluate.judge_run import connect, judge_evaluation, list_judgements


def _rows(n: int = 8) -> list[dict]:
    return [{"index": i, "input": RATING_PROMPTS[i % 8], "reference": f"ref {i}", "prediction": TUNED_ANSWERS[i % 8],
             "base_prediction": BASE_ANSWERS[i % 8]} for i in range(n)]


def test_verdicts_parse_only_in_the_fixed_format():
    assert parse_rating("Short and right.\nRating: [[7]]") == 7
    assert parse_rating("[[ 8.5 ]]") == 8.5 and parse_rating("[[10]] ... again [[10]]") == 10
    for bad in ("Rating: 7", "[[0]]", "[[11]]", "Rating: [[3]] no, [[9]]", "", None, "[[seven]]"):
        assert parse_rating(bad) is None, bad
    assert parse_choice("B is clearer. [[B]]") == "B" and parse_choice("[[C]]") == "tie"
    for bad in ("A", "[[A]] or maybe [[B]]", "[[D]]", None):
        assert parse_choice(bad) is None, bad


def test_single_grading_counts_unparseable_and_keeps_the_raw_text():
    def judge(prompt):
        answer = answer_of(prompt)
        if answer == TUNED_ANSWERS[2]:
            return "I would give it a seven."        # no [[N]]: unparseable, never guessed as 7
        return "Good.\nRating: [[8]]" if answer.startswith("tuned") else "Weak.\nRating: [[3]]"

    with stub_judge(judge) as stub:
        out = judge_rows(_rows(4), Judge(url=stub.url, model="stub-judge"), "single")
    s = out["single"]
    assert s["tuned"] == {"mean": 8.0, "n": 3} and s["base"] == {"mean": 3.0, "n": 4}
    assert (s["unparseable"], s["failed"]) == (1, 0)
    e = out["examples"][2]["single"]["tuned"]
    assert e["raw"] == "I would give it a seven." and e["score"] is None
    assert out["examples"][0]["verdict"] == "tuned"   # from the two scores when pairwise was not asked


def test_a_position_biased_judge_wins_nothing():
    with stub_judge(lambda prompt: "The first one is better. [[A]]") as stub:
        out = judge_rows(_rows(6), Judge(url=stub.url, model="stub-judge"), "pairwise")
    p = out["pairwise"]
    assert (p["win"], p["loss"], p["tie"], p["inconsistent"], p["judged"]) == (0, 0, 0, 6, 6)
    assert p["win_rate"] == 0.0
    assert len(stub.prompts) == 12   # every example asked in both orders
    orders = [answer_of(x)[0].split()[0] for x in stub.prompts]
    assert orders.count("base") == orders.count("tuned") == 6
    assert {e["verdict"] for e in out["examples"]} == {"tie"}


def test_a_consistent_judge_wins_and_unparseable_is_counted_apart():
    def judge(prompt):
        a, b = answer_of(prompt)
        if "question 5" in prompt:
            return "Both fine."                      # no verdict at all
        return "[[A]]" if a.startswith("tuned") else "[[B]]"

    with stub_judge(judge) as stub:
        out = judge_rows(_rows(6), Judge(url=stub.url, model="stub-judge"), "both")
    p = out["pairwise"]
    assert (p["win"], p["inconsistent"], p["unparseable"], p["judged"]) == (5, 0, 1, 5)
    assert p["win_rate"] == 1.0
    raw = out["examples"][0]["pairwise"]
    assert raw["base_first"]["raw"] == "[[B]]" and raw["tuned_first"]["raw"] == "[[A]]"


def test_a_slow_judge_times_out_counted_in_bounded_time():
    with stub_judge(lambda prompt: "Rating: [[9]]", delay=5.0) as stub:
        t0 = time.monotonic()
        out = judge_rows(_rows(4), Judge(url=stub.url, model="stub-judge", timeout=0.3, parallel=4), "single")
        took = time.monotonic() - t0
    # 8 requests, 4 at once, each 0.3 s and one retry: about 1.2 s, far below one slow answer (5 s)
    assert took < 4.0
    assert out["single"]["failed"] == 8 and out["failed_reasons"] == {"endpoint_timeout": 8}
    assert out["single"]["tuned"] == {"mean": None, "n": 0}
    assert len(stub.prompts) == 16   # each request tried twice, no more


def test_parallel_requests_stay_within_the_bound():
    with stub_judge(lambda prompt: "Rating: [[6]]", delay=0.15) as stub:
        judge_rows(_rows(8), Judge(url=stub.url, model="stub-judge", parallel=3), "single")
    assert 2 <= stub.max_in_flight <= 3


def _served_run(ws_root) -> Workspace:
    ws = Workspace(ws_root)
    final = ws.runs_dir / "run1" / "final"
    final.mkdir(parents=True)
    (final / "config.json").write_text("{}")
    return ws


def test_key_as_bearer_never_written_and_agreement_with_people(workspace, monkeypatch, capsys):
    ws = _served_run(workspace)
    sid = rating_session(ws)
    items = ratings.get_session(ws, sid)["items"]
    # people: tuned better on questions 0-5, base on 6, a tie on 7 (chosen as shown, A or B)
    for i, it in enumerate(items):
        want = "tuned" if i < 6 else "base" if i == 6 else "tie"
        shown = "tie" if want == "tie" else ("B" if (want == "tuned") != it["swapped"] else "A")
        ratings.record_rating(ws, sid, i, shown, rater="ana")

    def judge(prompt):   # prefers the tuned answer in either position, except on question 6
        a, b = answer_of(prompt)
        better = "base" if "question 6" in prompt else "tuned"
        return "[[A]]" if a.startswith(better) else "[[B]]"

    monkeypatch.setenv("TUNESTUDIO_JUDGE_API_KEY", "sk-very-secret")
    folder = workspace / "evalfolder"
    folder.mkdir()
    with stub_judge(judge) as stub:
        j = connect(stub.url)
        out = judge_evaluation(ws, _rows(8), j, "pairwise", run_id="run1", folder=folder)
    assert j.model == "stub-judge"   # the endpoint's first model
    assert set(stub.auth) == {"Bearer sk-very-secret"}
    # judge \ people   tuned  base  tie
    #   tuned            6     0     1      p_o = 7/8; p_e = (7*6 + 1*1 + 0*1)/64 = 43/64
    #   base             0     1     0      kappa = (56/64 - 43/64) / (21/64) = 13/21
    a = out["agreement"]
    assert (a["n"], a["agree"]) == (8, 7) and a["kappa"] == pytest.approx(13 / 21)
    summary = json.loads((folder / "judge.json").read_text())
    assert summary["agreement"]["n"] == 8 and summary["pairwise"]["win"] == 7
    per = [json.loads(x) for x in (folder / "judge.jsonl").read_text().splitlines()]
    assert len(per) == 8 and per[6]["pairwise"]["outcome"] == "loss" and per[6]["pairwise"]["base_first"]["raw"]
    (row,) = list_judgements(ws, "run1")
    assert row["results"]["pairwise"]["win"] == 7 and row["agreement"]["kappa"] == pytest.approx(13 / 21)
    written = (folder / "judge.json").read_text() + (folder / "judge.jsonl").read_text() + json.dumps(row)
    assert "sk-very-secret" not in written + capsys.readouterr().err


def test_a_served_run_is_a_judge_and_an_unserved_one_is_refused(workspace):
    import os

    from tunestudio.core.errors import UserError
    from tunestudio.core.statefiles import write_json
    from tunestudio.ship.background import served_url, servers_dir

    ws = _served_run(workspace)
    with stub_judge(lambda prompt: "Rating: [[5]]") as stub:
        # the record `tunestudio serve` started from the Runs tab leaves, its process alive (this one)
        record = {"run": "run1", "name": "run1", "url": stub.url, "pid": os.getpid(), "pid_start": None,
                  "log": str(workspace / "serve.log")}
        write_json(servers_dir(ws) / "run1.json", record)
        assert served_url(ws, "run1") == stub.url
        out = judge_rows(_rows(1), connect(served_url(ws, "run1")), "single")
        assert out["single"]["tuned"] == {"mean": 5.0, "n": 1}
    write_json(servers_dir(ws) / "run1.json", {**record, "stopped": time.time()})
    with pytest.raises(UserError) as e:
        served_url(ws, "run1")
    assert e.value.code == "judge_run_not_served" and "not served (server stopped)" in str(e.value)
