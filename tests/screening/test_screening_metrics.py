"""Screening-order metrics against hand-computed values (Cohen et al. 2006 WSS; RRF; TD/ATD)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metasift.screening import metrics as M

# N = 20 records, R = 3 relevant at positions 1, 2 and 4
LABELS = [1, 1, 0, 1] + [0] * 16


def test_n_to_recall_by_hand():
    assert M.n_to_recall(LABELS, 0.95) == 4  # ceil(0.95 * 3) = 3 relevant -> 4 screened
    assert M.n_to_recall(LABELS, 1.0) == 4
    assert M.n_to_recall(LABELS, 0.5) == 2  # ceil(1.5) = 2
    assert M.n_to_recall(LABELS, 0.3) == 1


def test_wss_by_hand():
    # WSS@r = (N - n_r)/N - (1 - r): (20 - 4)/20 - 0.05 = 0.75
    assert M.wss(LABELS, 0.95) == pytest.approx(0.75)
    assert M.wss(LABELS, 1.0) == pytest.approx(0.80)


def test_wss_float_guard_at_twenty_relevant():
    # 0.95 * 20 = 19.000000000000004 must mean 19 relevant, not 20
    labels = [1] * 19 + [0] * 80 + [1]
    assert M.n_to_recall(labels, 0.95) == 19
    assert M.wss(labels, 0.95) == pytest.approx(0.95 - 19 / 100)
    assert M.wss(labels, 1.0) == pytest.approx(0.0)


def test_recall_at_and_rrf():
    # floor(0.10 * 20) = 2 screened -> 2 of 3 relevant
    assert M.recall_at(LABELS, 0.10) == pytest.approx(2 / 3)
    assert M.rrf(LABELS, 10) == pytest.approx(200 / 3)
    assert M.recall_at(LABELS, 0.0) == 0.0


def test_time_to_discovery():
    assert list(M.time_to_discovery(LABELS)) == [1, 2, 4]
    assert M.atd(LABELS) == pytest.approx(7 / 3)
    assert M.atd(LABELS, proportion=True) == pytest.approx(7 / 3 / 20)


def test_random_order_wss_near_zero():
    # the expected WSS of a random order is ~0 (Cohen 2006): check the mean over many shuffles
    rng = np.random.default_rng(1)
    base = np.array([1] * 30 + [0] * 970)
    vals = [M.wss(rng.permutation(base), 0.95) for _ in range(300)]
    assert abs(np.mean(vals)) < 0.02


def test_all_metrics_keys():
    m = M.all_metrics(LABELS)
    assert set(m) == {"wss95", "wss100", "recall_at_10pct", "rrf10", "n_to_95", "n_to_100", "atd"}
    assert m["n_to_100"] == 4


@pytest.mark.parametrize("bad", [[], [0, 0, 0], [1, 2, 0]])
def test_bad_labels(bad):
    with pytest.raises(M.MetricError):
        M.wss(bad)


def test_bad_recall():
    with pytest.raises(M.ParameterError):
        M.wss(LABELS, 1.5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=1, max_size=200).filter(lambda x: sum(x) > 0))
def test_invariants(labels):
    n = len(labels)
    assert 1 <= M.n_to_recall(labels, 0.95) <= M.n_to_recall(labels, 1.0) <= n
    assert -1.0 <= M.wss(labels, 0.95) < 0.95
    curve = M.recall_curve(labels)
    assert np.all(np.diff(curve) >= 0) and curve[-1] == pytest.approx(1.0)
    # relevant-first order is optimal
    best = sorted(labels, reverse=True)
    assert M.wss(best, 0.95) >= M.wss(labels, 0.95)
