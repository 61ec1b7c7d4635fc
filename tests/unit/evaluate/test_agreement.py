"""Cohen's kappa of a judge against people, checked by hand on a 2x2 and a 3x3 table."""

from __future__ import annotations

import pytest

from tunestudio.evaluate.agreement import agreement, agreement_line, cohen_kappa


def _pairs(table: dict) -> list[tuple[str, str]]:
    return [(j, h) for (j, h), k in table.items() for _ in range(k)]


def test_kappa_two_categories_by_hand():
    # judge \ human   tuned  base | total
    #   tuned           20     5  |  25
    #   base            10    15  |  25
    #   total           30    20  |  50
    # p_o = (20 + 15) / 50 = 0.70
    # p_e = (25*30 + 25*20) / 50^2 = (750 + 500) / 2500 = 0.50
    # kappa = (0.70 - 0.50) / (1 - 0.50) = 0.40
    pairs = _pairs({("tuned", "tuned"): 20, ("tuned", "base"): 5, ("base", "tuned"): 10, ("base", "base"): 15})
    assert cohen_kappa(pairs) == pytest.approx(0.40)


def test_kappa_three_categories_by_hand_and_the_line():
    # judge \ human   base  tuned  tie | total
    #   base            4     1     1  |   6
    #   tuned           1     8     1  |  10
    #   tie             0     2     2  |   4
    #   total           5    11     4  |  20
    # p_o = (4 + 8 + 2) / 20 = 14/20 = 0.70
    # p_e = (6*5 + 10*11 + 4*4) / 20^2 = (30 + 110 + 16) / 400 = 156/400 = 0.39
    # kappa = (0.70 - 0.39) / (1 - 0.39) = 0.31 / 0.61 = 0.5082
    pairs = _pairs({("base", "base"): 4, ("base", "tuned"): 1, ("base", "tie"): 1,
                    ("tuned", "base"): 1, ("tuned", "tuned"): 8, ("tuned", "tie"): 1,
                    ("tie", "tuned"): 2, ("tie", "tie"): 2})
    a = agreement(pairs)
    assert (a["n"], a["agree"], a["share"]) == (20, 14, pytest.approx(0.70))
    assert a["kappa"] == pytest.approx(0.31 / 0.61)
    assert a["table"]["tuned"] == {"base": 1, "tuned": 8, "tie": 1}
    assert agreement_line(a) == "judge agrees with your ratings on 14 of 20 (70%), κ = 0.51"


def test_chance_level_and_degenerate_cases():
    # the judge always says "tuned", people split evenly: 50% raw agreement, but no better than chance
    pairs = [("tuned", "tuned")] * 5 + [("tuned", "base")] * 5
    assert agreement(pairs)["share"] == 0.5 and cohen_kappa(pairs) == pytest.approx(0.0)
    # both always the same single category: chance agreement is 1, kappa undefined (not 1, not an error)
    assert cohen_kappa([("tie", "tie")] * 3) is None
    assert cohen_kappa([]) is None and agreement([])["share"] is None
    assert "no human ratings" in agreement_line(agreement([]))
