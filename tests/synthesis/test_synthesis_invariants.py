"""Hypothesis invariants of the models (STYLE.md): tau^2 >= 0, I^2 in [0, 100), the FE
estimate within [min yi, max yi], weights summing to 100%, and interval orderings."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from metasift.synthesis import confint, escalc, predict, rma

METHODS = ["FE", "DL", "REML", "ML", "PM", "HE", "SJ", "EB", "HS"]


@st.composite
def studies(draw, min_k=2, max_k=25):
    k = draw(st.integers(min_k, max_k))
    finite = dict(allow_nan=False, allow_infinity=False)
    yi = draw(st.lists(st.floats(-5, 5, **finite), min_size=k, max_size=k))
    vi = draw(st.lists(st.floats(1e-3, 5, **finite), min_size=k, max_size=k))
    return np.array(yi), np.array(vi)


@settings(max_examples=60, deadline=None)
@given(studies(min_k=3), st.sampled_from(METHODS), st.sampled_from(["z", "knha"]))
def test_heterogeneity_bounds_and_weights(data, method, test):
    yi, vi = data
    res = rma(yi, vi, method=method, test=test)
    assert res.tau2 >= 0
    assert 0 <= res.i2 < 100
    assert res.h2 >= 1 or method == "FE"
    assert np.isclose(res.weights_pct.sum(), 100.0)
    assert np.all(res.ci_lb <= res.beta) and np.all(res.beta <= res.ci_ub)
    pr = predict(res)
    if pr.pi_lb is not None:
        assert pr.pi_lb[0] <= pr.ci_lb[0] + 1e-12 and pr.ci_ub[0] <= pr.pi_ub[0] + 1e-12


@settings(max_examples=60, deadline=None)
@given(studies(min_k=2))
def test_fixed_effect_estimate_within_range(data):
    yi, vi = data
    res = rma(yi, vi, method="FE")
    assert yi.min() - 1e-12 <= res.beta[0] <= yi.max() + 1e-12


@settings(max_examples=40, deadline=None)
@given(studies(min_k=3), st.sampled_from(["REML", "ML", "PM", "EB"]))
def test_random_effects_estimate_within_range(data, method):
    yi, vi = data
    res = rma(yi, vi, method=method)
    assert yi.min() - 1e-12 <= res.beta[0] <= yi.max() + 1e-12


@settings(max_examples=30, deadline=None)
@given(studies(min_k=3, max_k=15))
def test_qprofile_interval_is_ordered_and_estimator_free(data):
    yi, vi = data
    a = confint(rma(yi, vi, method="DL"))
    b = confint(rma(yi, vi, method="REML"))
    assert 0 <= a.tau2[1] <= a.tau2[2]
    assert np.isclose(a.tau2[1], b.tau2[1], rtol=1e-10, atol=1e-12)
    # the upper search limit is max(100, 10 tau^2) as in metafor, so it may differ by estimator
    if max(a.tau2[2], b.tau2[2]) < 100:
        assert np.isclose(a.tau2[2], b.tau2[2], rtol=1e-10)
    assert 0 <= a.i2[1] <= a.i2[2] < 100


@settings(max_examples=40, deadline=None)
@given(studies(min_k=3), st.floats(-3, 3, allow_nan=False))
def test_location_shift_equivariance(data, shift):
    yi, vi = data
    a = rma(yi, vi, method="REML")
    b = rma(yi + shift, vi, method="REML")
    assert np.isclose(b.beta[0], a.beta[0] + shift, atol=1e-7)
    assert np.isclose(b.tau2, a.tau2, rtol=1e-6, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 50), min_size=4, max_size=4),
    st.sampled_from(["OR", "RR", "RD", "PETO"]),
)
def test_escalc_2x2_finite_with_zero_cells(cells, measure):
    a, b, c, d = cells
    if (a + b) == 0 or (c + d) == 0:
        return
    # escalc's default (metafor's: add 1/2 to the cells of a table with a zero cell) keeps every
    # measure finite, Peto's included
    es = escalc(measure, ai=[a], bi=[b], ci=[c], di=[d])
    assert np.isfinite(es.yi[0]) and es.vi[0] > 0
    if measure == "PETO":  # without the correction a zero margin leaves no information: NaN
        raw = escalc(measure, ai=[a], bi=[b], ci=[c], di=[d], add=0, to="none")
        if a + c == 0 or b + d == 0:
            assert np.isnan(raw.yi[0])
        else:
            assert np.isfinite(raw.yi[0]) and raw.vi[0] > 0
