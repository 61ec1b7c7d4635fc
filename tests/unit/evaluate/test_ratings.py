"""Blind A/B ratings: anonymised order, recorded choices, win rates with the swaps undone
(`tunestudio rate`: test_ratings_cli.py)."""

from __future__ import annotations

import pytest
from eval_helpers import BASE_ANSWERS, TUNED_ANSWERS, rating_session

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.evaluate import ratings


def test_items_are_anonymised_and_shuffled(workspace):
    ws = Workspace(workspace)
    sid = rating_session(ws)
    session = ratings.get_session(ws, sid)
    swaps = [it["swapped"] for it in session["items"]]
    assert any(swaps) and not all(swaps)  # seed 3 gives a mix, so the test below un-swaps both ways
    for it, base, tuned in zip(session["items"], BASE_ANSWERS, TUNED_ANSWERS):
        assert (it["a"], it["b"]) == ((tuned, base) if it["swapped"] else (base, tuned))
    item = ratings.next_item(ws, sid, "ann")
    assert item["item"] == 0 and item["total"] == 8 and item["done"] == 0
    assert "swapped" not in item  # the rater never sees which side is which


def test_win_rates_undo_the_swap(workspace):
    ws = Workspace(workspace)
    sid = rating_session(ws)
    items = ratings.get_session(ws, sid)["items"]
    # The rater always prefers the tuned answer, wherever it is shown, except two ties.
    for i, it in enumerate(items):
        if i in (2, 5):
            choice = "tie"
        else:
            choice = "A" if it["a"].startswith("tuned") else "B"
        ratings.record_rating(ws, sid, i, choice, comment="clearer" if i == 0 else None, rater="ann")
    assert ratings.next_item(ws, sid, "ann") is None
    s = ratings.summary(ws, sid)
    assert (s["wins_a"], s["wins_b"], s["ties"], s["ratings"]) == (0, 6, 2, 8)
    assert s["a_label"] == "base:run1" and s["b_label"] == "run:run1"
    assert s["win_rate_b"] == pytest.approx(0.75) and s["tie_rate"] == pytest.approx(0.25)
    assert s["preference_a"] == 0.0
    lo, hi = s["win_rate_b_ci95"]
    # Wilson interval for 6/8 by hand: centre (0.75 + 1.92/8) / (1 + 3.84/8), half-width
    z = ratings.Z95
    centre = (0.75 + z * z / 16) / (1 + z * z / 8)
    half = z / (1 + z * z / 8) * (0.75 * 0.25 / 8 + z * z / 256) ** 0.5
    assert (lo, hi) == pytest.approx((centre - half, centre + half))
    assert lo == pytest.approx(0.4093, abs=1e-3) and hi == pytest.approx(0.9285, abs=1e-3)
    assert s["comments"] == [{"item": 0, "rater": "ann", "comment": "clearer"}]


def test_a_rater_can_change_a_choice_and_raters_are_separate(workspace):
    ws = Workspace(workspace)
    sid = rating_session(ws)
    items = ratings.get_session(ws, sid)["items"]
    shown_base = "A" if items[0]["a"].startswith("base") else "B"
    shown_tuned = "B" if shown_base == "A" else "A"
    ratings.record_rating(ws, sid, 0, shown_base, rater="ann")
    ratings.record_rating(ws, sid, 0, shown_tuned, rater="ann")  # replaces ann's first choice
    ratings.record_rating(ws, sid, 0, shown_base.lower(), rater="bob")
    s = ratings.summary(ws, sid)
    assert (s["wins_a"], s["wins_b"], s["ratings"], s["items_rated"]) == (1, 1, 2, 1)
    assert ratings.next_item(ws, sid, "ann")["item"] == 1
    with pytest.raises(UserError, match="A, B or tie"):
        ratings.record_rating(ws, sid, 1, "maybe")
    with pytest.raises(UserError, match="items 0..7"):
        ratings.record_rating(ws, sid, 8, "A")
    with pytest.raises(UserError, match="no rating session 99"):
        ratings.summary(ws, 99)


def test_wilson_edges():
    assert ratings.wilson(0, 0) is None
    lo, hi = ratings.wilson(10, 10)
    assert hi == pytest.approx(1.0) and 0.69 < lo < 0.73  # never the useless [1, 1] of the normal approximation


