"""Pooled study characteristics, checked against the worked examples of
../shared/reference/pooled-descriptives.md (Handbook 6.5.2.10; Wan 2014; Luo 2018; Shi 2020)."""

from __future__ import annotations

import math

import pytest

from metasift.errors import MetasiftError
from metasift.synthesis import pool_characteristics
from metasift.synthesis.descriptives import combine_groups, mean_sd_from_quantiles


def test_combine_two_groups_worked_check():
    # spec: (30, 10, 2) + (20, 14, 3) -> N = 50, M = 11.6, SD = 3.1266
    N, M, SD = combine_groups([30, 20], [10, 14], [2, 3])
    assert (N, M) == (50, pytest.approx(11.6))
    assert SD == pytest.approx(3.1266, abs=5e-5)


def test_combining_repeatedly_equals_closed_form():
    n, m, s = [12, 30, 7], [5.0, 6.5, 4.0], [1.2, 2.0, 0.7]
    N12, M12, S12 = combine_groups(n[:2], m[:2], s[:2])
    step = combine_groups([N12, n[2]], [M12, m[2]], [S12, s[2]])
    assert step == pytest.approx(combine_groups(n, m, s), rel=1e-12)


@pytest.mark.parametrize(
    "kw, method, mean, sd, scenario",
    [
        (dict(minimum=2, maximum=10), "wan", 5.5, 1.783, "S1"),
        (dict(q1=4, q3=7, minimum=2, maximum=10), "wan", 5.5, 2.036, "S2"),
        (dict(q1=4, q3=7), "wan", 5.333, 2.290, "S3"),
        (dict(minimum=2, maximum=10), "luo-shi", 5.175, 1.783, "S1"),
        (dict(q1=4, q3=7, minimum=2, maximum=10), "luo-shi", 5.413, 1.997, "S2"),
        (dict(q1=4, q3=7), "luo-shi", 5.354, 2.290, "S3"),
    ],
)
def test_mean_sd_from_quantiles_worked_check(kw, method, mean, sd, scenario):
    # spec: n = 50, a = 2, q1 = 4, m = 5, q3 = 7, b = 10 (3 decimals given)
    got = mean_sd_from_quantiles(50, 5, method=method, **kw)
    assert got[0] == pytest.approx(mean, abs=5e-4)
    assert got[1] == pytest.approx(sd, abs=5e-4)
    assert got[2] == scenario


def test_worked_example_style_summary():
    res = pool_characteristics(
        n=[120, 150, 84, None],
        percent=[80, 85, None, 90],
        mean=[52.0, 55.0, None, None],
        sd=[8.0, 9.0, None, None],
        median=[None, None, 54.0, None],
        q1=[None, None, 48.0, None],
        q3=[None, None, 60.0, None],
        name="age",
        study=["A", "B", "C", "D"],
    )
    assert res.total_n == 354 and res.k_n == 3 and res.k_total == 4
    assert res.proportion == pytest.approx((96 + 127.5) / 270)
    assert res.k_proportion == 2  # D has a percentage but no n: not counted
    assert res.mean == pytest.approx((120 * 52 + 150 * 55) / 270)
    assert res.medians_only == ("C",)  # reported as such, not mixed in
    assert res.missing == () and res.without_n == ("D",)
    assert "reported as median only: C" in res.summary()


def test_medians_estimated_only_on_request_and_flagged():
    kw = dict(n=[50, 50], mean=[5.0, None], sd=[2.0, None], median=[None, 5], q1=[None, 4],
              q3=[None, 7], minimum=[None, 2], maximum=[None, 10], study=["x", "y"])  # fmt: skip
    plain = pool_characteristics(**kw)
    assert plain.k_mean_sd == 1 and plain.medians_only == ("y",)
    est = pool_characteristics(estimate_from_median=True, **kw)
    assert est.k_mean_sd == 2 and est.medians_only == ()
    assert est.estimated == (("y", "S2", "luo-shi"),)
    m2, s2, _ = mean_sd_from_quantiles(50, 5, 4, 7, 2, 10)
    assert est.mean == pytest.approx(combine_groups([50, 50], [5.0, m2], [2.0, s2])[1])


def test_mean_without_sd_is_reported_separately():
    res = pool_characteristics(n=[10, 30], mean=[4.0, 8.0], sd=[1.0, None])
    assert res.mean == 4.0 and res.sd == pytest.approx(1.0) and res.k_mean_sd == 1
    assert res.mean_of_means == 8.0 and res.k_mean_only == 1


def test_missing_and_bad_input():
    res = pool_characteristics(n=[10, 20], count=[3, None])
    assert res.missing == ("2",) and res.proportion == pytest.approx(0.3)
    with pytest.raises(MetasiftError):
        pool_characteristics(n=[10, -1])
    with pytest.raises(MetasiftError):
        pool_characteristics(n=[10], percent=[120])
    with pytest.raises(MetasiftError):
        mean_sd_from_quantiles(50, 5)
    assert math.isnan(combine_groups([1], [3.0], [1.0])[2])
