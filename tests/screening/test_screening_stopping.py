"""Stopping rules: Callaghan & Müller-Hansen (2020) hypergeometric test against values computed
by hand, and the consecutive-irrelevant heuristic."""

from __future__ import annotations

import numpy as np
import pytest

from metasift import plugins
from metasift.screening import StopEstimate, estimate
from metasift.screening.stopping import ConsecutiveIrrelevantStop, RandomSamplingStop

RTOL_CLOSED_FORM = 1e-10


def test_registered_names_load():
    assert plugins.load("stopping", "random_sampling") is RandomSamplingStop
    assert plugins.load("stopping", "consecutive_irrelevant") is ConsecutiveIrrelevantStop


def test_prospective_by_hand_continue():
    # N = 1000; 200 screened by model with 40 relevant; then 300 random draws, none relevant.
    # urn 800, K_tar = floor(40/0.95 - 40 + 1) = 3; p = P(X = 0) = (500·499·498)/(800·799·798)
    labels = [1] * 40 + [0] * 160 + [0] * 300
    res = estimate(labels, 1000, sample_start=200)
    p = (500 * 499 * 498) / (800 * 799 * 798)
    assert res.pval == pytest.approx(p, rel=RTOL_CLOSED_FORM)
    assert not res.should_stop
    assert res.recall_estimate == pytest.approx(1.0)
    assert res.params["variant"] == "prospective"
    assert "uniformly at random" in res.assumptions


def test_prospective_by_hand_stop():
    # the same with 600 random draws: p = (200·199·198)/(800·799·798) < 0.05
    labels = [1] * 40 + [0] * 160 + [0] * 600
    res = estimate(labels, 1000, sample_start=200)
    p = (200 * 199 * 198) / (800 * 799 * 798)
    assert res.pval == pytest.approx(p, rel=RTOL_CLOSED_FORM)
    assert res.should_stop
    assert res.recall_lb >= 0.95
    assert isinstance(res, StopEstimate)


def test_prospective_point_estimate_with_hits():
    # 2 relevant in a random sample of 100 from an urn of 800: 14 more expected among the other 700
    labels = [1] * 40 + [0] * 160 + [1, 1] + [0] * 98
    res = estimate(labels, 1000, sample_start=200, target=0.9)
    assert res.recall_estimate == pytest.approx(42 / (42 + 0.02 * 700))
    assert not res.should_stop
    assert res.recall_lb < res.recall_estimate


def test_recall_bound_consistent_with_test():
    # stopping at target t means the one-sided bound is at least t, and vice versa (grid)
    rng = np.random.default_rng(3)
    for _ in range(20):
        n_sample = int(rng.integers(50, 700))
        labels = [1] * 30 + [0] * 170 + [0] * n_sample
        res = estimate(labels, 1000, sample_start=200)
        assert res.should_stop == (res.recall_lb >= 0.95 - 1e-12)


def test_retrospective_variant_is_flagged():
    labels = [1] * 40 + [0] * 600
    res = estimate(labels, 1000)
    assert res.params["variant"] == "retrospective"
    assert "Conservative only if" in res.assumptions
    # best tail: all 600 trailing zeros, urn 960, K_tar 3
    p = (360 * 359 * 358) / (960 * 959 * 958)
    assert res.pval == pytest.approx(p, rel=RTOL_CLOSED_FORM)


def test_sampling_order_is_a_seeded_permutation():
    ids = list(range(100, 150))
    a = RandomSamplingStop.sampling_order(ids, 7)
    b = RandomSamplingStop.sampling_order(ids, 7)
    assert sorted(a) == ids and list(a) == list(b) and list(a) != ids


def test_consecutive_irrelevant():
    labels = [1, 0, 1] + [0] * 49
    assert not estimate(labels, 500, rule="consecutive_irrelevant").should_stop
    res = estimate(labels + [0], 500, rule="consecutive_irrelevant")
    assert res.should_stop and res.recall_estimate is None and res.params["run"] == 50
    assert estimate([0] * 10, 500, rule="consecutive_irrelevant", n=10).should_stop


def test_errors():
    with pytest.raises(plugins.ParameterError):
        estimate([1, 0], 10, rule="knee-ish")
    with pytest.raises(plugins.ParameterError):
        estimate([1, 0], 1)
    with pytest.raises(plugins.ParameterError):
        estimate([1, 0], 10, target=1.5)
    with pytest.raises(plugins.ParameterError):
        estimate([1, 0], 10, sample_start=5)


def test_summary_and_frame():
    res = estimate([1] * 5 + [0] * 100, 200, sample_start=5)
    assert "random_sampling" in res.summary()
    assert res.to_frame().loc[0, "n_screened"] == 105


def test_prospective_rule_controls_false_stops():
    # a pool of 1000 with 50 relevant; the model phase found 44 (recall 0.88 < 0.95) in the first
    # 300; then 300 random draws from the other 700. Stopping claims recall >= 0.95 with 95%
    # confidence, so it may stop in at most ~5% of replications (Callaghan & Müller-Hansen 2020)
    rng = np.random.default_rng(2020)
    urn = np.array([1] * 6 + [0] * 694)
    stops = 0
    reps = 400
    for _ in range(reps):
        sample = rng.permutation(urn)[:300]
        labels = np.concatenate([[1] * 44 + [0] * 256, sample])
        stops += estimate(labels, 1000, sample_start=300).should_stop
    assert stops / reps <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / reps)
