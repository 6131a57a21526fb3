"""SWiM vote counting by direction, against ../shared/reference/swim-direction.md."""

from __future__ import annotations

import pytest
from scipy import stats

from metasift.errors import MetasiftError
from metasift.synthesis import direction_summary
from metasift.synthesis.narrative import sign_test, size_class, wilson_ci


def test_worked_check_wilson_and_sign_test():
    # spec: u = 8, n = 10 -> 0.80, Wilson 95% CI 0.49 to 0.94, sign test P = 0.109
    lo, hi = wilson_ci(8, 10)
    assert (round(lo, 2), round(hi, 2)) == (0.49, 0.94)
    assert sign_test(8, 10) == pytest.approx(0.109375)


@pytest.mark.parametrize("u,n", [(0, 5), (3, 7), (10, 10), (6, 12), (1, 20)])
def test_sign_test_equals_scipy_binomtest(u, n):
    assert sign_test(u, n) == pytest.approx(stats.binomtest(u, n, 0.5).pvalue, rel=1e-12)


def test_seventy_percent_rule_and_votes():
    study = ["A"] * 10 + ["B"] * 3 + ["C", "C"] + ["D"]
    domain = ["pain"] * 16
    direction = (["benefit"] * 7 + ["harm"] * 3  # A: exactly 70% -> benefit
                 + ["benefit", "harm", "harm"]  # B: 67% harm -> mixed
                 + ["harm", "harm"]  # C: harm
                 + ["no change"])  # D: no change  # fmt: skip
    s = direction_summary(study, domain, direction=direction, n=[400] * 10 + [60] * 3 + [20] * 3)
    assert [s.direction(x, "pain") for x in "ABCD"] == ["benefit", "mixed", "harm", "no change"]
    v = s.vote("pain")
    assert (v.benefit, v.harm, v.excluded, v.n) == (1, 1, 2, 2)
    assert v.pval == 1.0
    assert "1 of 2 studies showed benefit" in v.sentence()
    assert s.to_frame().loc["A", "pain"] == "\u25b2"


def test_direction_from_effects_respects_favourable_side():
    s = direction_summary(["a", "b", "c"], ["x"] * 3, effect=[-0.2, 0.3, 0.0], favourable="lower")
    assert [s.direction(k, "x") for k in "abc"] == ["benefit", "harm", "no change"]


def test_size_classes_and_errors():
    assert [size_class(n) for n in (20, 50, 299, 300)] == ["small", "medium", "medium", "large"]
    with pytest.raises(MetasiftError):
        direction_summary(["a"], ["x"], direction=["better"])
    with pytest.raises(MetasiftError):
        direction_summary(["a", "b"], ["x"])
