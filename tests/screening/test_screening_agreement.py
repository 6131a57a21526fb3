"""Cohen's kappa, its SE and CI, percent agreement and PABAK against hand-computed values.

Reference values are computed by hand from the closed-form formulas (spec
shared/reference/screening-stats.md §1) for textbook tables; each test names its source.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metasift.screening import AgreementError, agreement

RTOL_CLOSED_FORM = 1e-10  # closed-form arithmetic only
ATOL_PRINTED = 5e-4  # values printed to 3–4 decimals in the spec / textbook


def pairs_from_table(table, cats=(1, 0)):
    a, b = [], []
    for i, ci in enumerate(cats):
        for j, cj in enumerate(cats):
            a += [ci] * table[i][j]
            b += [cj] * table[i][j]
    return a, b


def test_spec_vector_2x2():
    # screening-stats.md §1 test vector: a=40, b=10, c=5, d=45
    a, b = pairs_from_table([[40, 10], [5, 45]])
    res = agreement(a, b)
    assert res.n == 100
    assert res.percent_agreement == pytest.approx(0.85, rel=RTOL_CLOSED_FORM)
    assert res.expected_agreement == pytest.approx(0.50, rel=RTOL_CLOSED_FORM)
    assert res.kappa == pytest.approx(0.70, rel=RTOL_CLOSED_FORM)
    assert res.kappa_se == pytest.approx(0.0711, abs=ATOL_PRINTED)
    assert res.ci_lb == pytest.approx(0.561, abs=ATOL_PRINTED)
    assert res.ci_ub == pytest.approx(0.839, abs=ATOL_PRINTED)
    assert res.se0 == pytest.approx(0.0995, abs=ATOL_PRINTED)
    assert res.pabak == pytest.approx(0.70, rel=RTOL_CLOSED_FORM)


def test_fce_se_by_hand():
    # the same table worked through FCE 1969 by hand: rows p1.=.5, p2.=.5; cols p.1=.45, p.2=.55
    # A = .40(1-(.95)(.3))^2 + .45(1-(1.05)(.3))^2 = .2044900 + .2111512 = .41564125
    # B = .09 * (.10(.45+.5)^2 + .05(.55+.5)^2) = .09 * (.09025 + .055125) = .01308375
    # C = (.7 - .5*.3)^2 = .3025 ; SE = sqrt((A + B - C)/(100 * .25))
    expected = math.sqrt((0.41564125 + 0.01308375 - 0.3025) / 25.0)
    a, b = pairs_from_table([[40, 10], [5, 45]])
    assert agreement(a, b).kappa_se == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "table, po, kappa",
    [
        # Wikipedia "Cohen's kappa", simple example: 20/5/10/15 -> p_o .70, p_e .50, kappa .40
        ([[20, 5], [10, 15]], 0.70, 0.40),
        # Wikipedia, "same agreement, different kappa": kappa 0.1304 and 0.2593 at p_o .60
        ([[45, 15], [25, 15]], 0.60, 0.130435),
        ([[25, 35], [5, 35]], 0.60, 0.259259),
    ],
)
def test_textbook_2x2(table, po, kappa):
    a, b = pairs_from_table(table)
    res = agreement(a, b)
    assert res.percent_agreement == pytest.approx(po, rel=RTOL_CLOSED_FORM)
    assert res.kappa == pytest.approx(kappa, abs=1e-6)
    assert res.pabak == pytest.approx(2 * po - 1, rel=RTOL_CLOSED_FORM)


def test_three_categories_fleiss_levin_paik_style():
    # 3 diagnostic categories, n = 100 (Fleiss, Levin & Paik 2003 ch. 18 layout):
    # p_o = .89, rows (.80,.10,.10), cols (.80,.05,.15), p_e = .66, kappa = .23/.34
    table = [[75, 1, 4], [5, 4, 1], [0, 0, 10]]
    cats = ("psych", "neuro", "organic")
    a, b = pairs_from_table(table, cats)
    res = agreement(a, b, categories=cats)
    assert res.percent_agreement == pytest.approx(0.89, rel=RTOL_CLOSED_FORM)
    assert res.expected_agreement == pytest.approx(0.66, rel=RTOL_CLOSED_FORM)
    assert res.kappa == pytest.approx(0.23 / 0.34, rel=RTOL_CLOSED_FORM)
    assert res.pabak == pytest.approx((3 * 0.89 - 1) / 2, rel=RTOL_CLOSED_FORM)
    assert res.table == ((75, 1, 4), (5, 4, 1), (0, 0, 10))


def _delta_method_se(table) -> float:
    """Independent check: delta-method SE of kappa from the multinomial covariance."""
    p = np.asarray(table, dtype=float)
    n = p.sum()
    p = p / n

    def kap(q):
        q = q.reshape(p.shape)
        po = np.trace(q)
        pe = q.sum(1) @ q.sum(0)
        return (po - pe) / (1 - pe)

    flat = p.ravel()
    grad = np.zeros_like(flat)
    h = 1e-7
    for t in range(flat.size):
        up, dn = flat.copy(), flat.copy()
        up[t] += h
        dn[t] -= h
        grad[t] = (kap(up) - kap(dn)) / (2 * h)
    cov = (np.diag(flat) - np.outer(flat, flat)) / n
    return float(np.sqrt(grad @ cov @ grad))


@pytest.mark.parametrize(
    "table",
    [[[40, 10], [5, 45]], [[20, 5], [10, 15]], [[75, 1, 4], [5, 4, 1], [0, 0, 10]]],
)
def test_se_equals_delta_method(table):
    # FCE 1969's large-sample SE is the delta-method SE; this verifies the formula (the spec
    # marks it "from memory") numerically, independent of the closed form
    k = len(table)
    cats = tuple(range(k))
    a, b = pairs_from_table(table, cats)
    assert agreement(a, b, categories=cats).kappa_se == pytest.approx(
        _delta_method_se(table), rel=1e-5
    )


def test_constant_raters_kappa_undefined():
    res = agreement([0] * 10, [0] * 10)
    assert math.isnan(res.kappa)
    assert res.percent_agreement == 1.0
    assert res.pabak == 1.0


def test_bad_input():
    with pytest.raises(AgreementError):
        agreement([1, 0], [1])
    with pytest.raises(AgreementError):
        agreement([], [])
    with pytest.raises(AgreementError):
        agreement(["include"], ["maybe"], categories=["include", "exclude"])


def test_summary_and_frame():
    a, b = pairs_from_table([[40, 10], [5, 45]])
    res = agreement(a, b)
    assert "Fleiss, Cohen & Everitt" in res.summary()
    frame = res.to_frame()
    assert frame.loc[0, "kappa"] == pytest.approx(0.7)
    assert res.table_frame().to_numpy().sum() == 100


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ieM"), st.sampled_from("ieM")), min_size=1, max_size=40))
def test_invariants(pairs):
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    res = agreement(a, b, categories="ieM")
    swapped = agreement(b, a, categories="ieM")
    assert 0.0 <= res.percent_agreement <= 1.0
    assert -1.0 <= res.pabak <= 1.0
    if not math.isnan(res.kappa):
        assert res.kappa <= 1.0 + 1e-12
        assert res.kappa == pytest.approx(swapped.kappa, abs=1e-12)
        assert res.ci_lb <= res.kappa <= res.ci_ub
