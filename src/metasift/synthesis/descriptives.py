"""Pooled study characteristics ("354 patients, 83% women, mean age 53.4"): descriptive
summaries across included studies, not meta-analytic estimates (see
../shared/reference/pooled-descriptives.md).

* Total N = sum of n over the studies that report n (k reporting / k total is kept).
* N-weighted proportion = sum x / sum n over the studies that report the characteristic;
  x = p * n when only a percentage is given. The unweighted median and range of the study
  proportions are reported too.
* Pooled mean and SD combine group moments exactly (Cochrane Handbook 6.5.2.10):
  M = sum n m / N, SD^2 = [sum (n - 1) s^2 + sum n (m - M)^2] / (N - 1).
  Studies with a mean but no SD give an N-weighted mean of means, reported separately.
* Studies reporting only a median (with IQR and/or range) are reported as such and never mixed
  in silently. With ``estimate_from_median=True`` their mean and SD are estimated (Luo 2018
  mean; Wan 2014 SD for range-only or IQR-only, Shi 2020 SD for both) with the closed-form
  xi(n), eta(n) of Wan 2014 (not its small-n tables), and every such study is flagged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from metasift.errors import check_param
from metasift.synthesis._common import SynthesisError, checksum, version


def combine_groups(n, mean, sd) -> tuple[float, float, float]:
    """Exact N, mean and SD of the union of groups given (n_i, m_i, s_i); SD uses N - 1."""
    n = np.asarray(n, dtype=float)
    m = np.asarray(mean, dtype=float)
    s = np.asarray(sd, dtype=float)
    if n.size == 0 or np.any(n <= 0):
        raise SynthesisError("combine_groups: group sizes must be positive")
    N = float(n.sum())
    M = float((n * m).sum() / N)
    if N <= 1:
        return N, M, math.nan
    var = ((n - 1) * s**2).sum() + (n * (m - M) ** 2).sum()
    return N, M, math.sqrt(float(var) / (N - 1))


def _xi(n):
    return 2 * special.ndtri((n - 0.375) / (n + 0.25))


def _eta(n):
    return 2 * special.ndtri((0.75 * n - 0.125) / (n + 0.25))


def mean_sd_from_quantiles(n, median, q1=None, q3=None, minimum=None, maximum=None,
                           method: str = "luo-shi") -> tuple[float, float, str]:  # fmt: skip
    """Estimate (mean, sd, scenario) from a median with range and/or IQR.

    Scenarios keyed on the inputs (Wan 2014 labels): S1 = {min, median, max, n},
    S2 = {min, q1, median, q3, max, n}, S3 = {q1, median, q3, n}. ``method="luo-shi"`` (the
    R meta defaults: Luo mean, Wan/Shi SD) or ``"wan"`` (Wan mean and SD).
    """
    check_param(method, ("luo-shi", "wan"), "method", "mean_sd_from_quantiles")
    a, b, m = minimum, maximum, median
    has_r = a is not None and b is not None and not (np.isnan(a) or np.isnan(b))
    has_q = q1 is not None and q3 is not None and not (np.isnan(q1) or np.isnan(q3))
    if m is None or np.isnan(m) or not (has_r or has_q) or n is None or n < 2:
        raise SynthesisError("mean_sd_from_quantiles: needs n >= 2, a median and a range or IQR")
    xi, eta = float(_xi(n)), float(_eta(n))
    if has_r and has_q:
        sc = "S2"
        if method == "wan":
            mean = (a + 2 * q1 + 2 * m + 2 * q3 + b) / 8
            sd = 0.5 * ((b - a) / xi + (q3 - q1) / eta)
        else:
            w1 = 2.2 / (2.2 + n**0.75)
            w2 = 0.7 - 0.72 / n**0.55
            mean = w1 * (a + b) / 2 + w2 * (q1 + q3) / 2 + (1 - w1 - w2) * m
            w = 1 / (1 + 0.07 * n**0.6)
            sd = w * (b - a) / xi + (1 - w) * (q3 - q1) / eta
    elif has_r:
        sc = "S1"
        sd = (b - a) / xi
        if method == "wan":
            mean = (a + 2 * m + b) / 4
        else:
            w = 4 / (4 + n**0.75)
            mean = w * (a + b) / 2 + (1 - w) * m
    else:
        sc = "S3"
        sd = (q3 - q1) / eta
        if method == "wan":
            mean = (q1 + m + q3) / 3
        else:
            w = 0.7 + 0.39 / n
            mean = w * (q1 + q3) / 2 + (1 - w) * m
    return float(mean), float(sd), sc


@dataclass(frozen=True, eq=False)
class PooledCharacteristic:
    """A characteristic summarised across studies, with what contributed and what was missing."""

    name: str
    k_total: int
    total_n: float
    k_n: int  # studies reporting n
    proportion: float | None = None  # N-weighted, 0..1
    k_proportion: int = 0
    n_proportion: float = 0.0
    proportion_median: float | None = None
    proportion_range: tuple | None = None
    mean: float | None = None
    sd: float | None = None
    k_mean_sd: int = 0
    n_mean_sd: float = 0.0
    mean_of_means: float | None = None  # N-weighted, studies with a mean but no SD
    k_mean_only: int = 0
    medians_only: tuple = ()  # study ids reported as medians (not pooled unless estimated)
    estimated: tuple = ()  # (study id, scenario, method) for means/SDs estimated from quantiles
    missing: tuple = ()  # study ids that report nothing for this characteristic
    without_n: tuple = ()  # study ids without a sample size (cannot contribute)
    provenance: dict = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"{self.name}: k = {self.k_total} studies, N = {self.total_n:g} "
                 f"(n reported by {self.k_n}/{self.k_total})"]  # fmt: skip
        if self.proportion is not None:
            lo, hi = self.proportion_range
            parts.append(f"  {100 * self.proportion:.1f}% (N-weighted; {self.k_proportion} "
                         f"studies, n = {self.n_proportion:g}; median {100 * self.proportion_median:.1f}%, "
                         f"range {100 * lo:.1f}-{100 * hi:.1f}%)")  # fmt: skip
        if self.mean is not None:
            sd = "not estimable" if self.sd is None or math.isnan(self.sd) else f"{self.sd:.2f}"
            est = (
                f"; {len(self.estimated)} estimated from median/IQR/range" if self.estimated else ""
            )
            parts.append(f"  mean {self.mean:.2f} (SD {sd}; {self.k_mean_sd} studies, "
                         f"n = {self.n_mean_sd:g}{est})")  # fmt: skip
        if self.mean_of_means is not None:
            parts.append(f"  N-weighted mean of means {self.mean_of_means:.2f} "
                         f"({self.k_mean_only} studies without SD; SD not estimable)")  # fmt: skip
        if self.medians_only:
            parts.append(f"  reported as median only: {', '.join(map(str, self.medians_only))}")
        if self.missing:
            parts.append(f"  not reported: {', '.join(map(str, self.missing))}")
        if self.without_n:
            parts.append(f"  n not reported (not counted): {', '.join(map(str, self.without_n))}")
        return "\n".join(parts)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [{
                "name": self.name, "k_total": self.k_total, "total_n": self.total_n,
                "k_n": self.k_n, "proportion": self.proportion, "k_proportion": self.k_proportion,
                "mean": self.mean, "sd": self.sd, "k_mean_sd": self.k_mean_sd,
                "mean_of_means": self.mean_of_means, "k_mean_only": self.k_mean_only,
                "medians_only": len(self.medians_only), "estimated": len(self.estimated),
                "missing": len(self.missing),
            }]
        ).set_index("name")  # fmt: skip


def _col(x, k, name):
    if x is None:
        return np.full(k, np.nan)
    arr = np.asarray([np.nan if v is None else v for v in np.atleast_1d(x)], dtype=float)
    if arr.size != k:
        raise SynthesisError(f"pool_characteristics: {name!r} has length {arr.size}, expected {k}")
    return arr


def pool_characteristics(
    n,
    count=None,
    percent=None,
    mean=None,
    sd=None,
    median=None,
    q1=None,
    q3=None,
    minimum=None,
    maximum=None,
    name: str = "characteristic",
    study=None,
    estimate_from_median: bool = False,
    method: str = "luo-shi",
) -> PooledCharacteristic:
    """Summarise one characteristic across studies (one entry per study; None/NaN = missing).

    ``count`` or ``percent`` (0-100) give an N-weighted proportion; ``mean`` with ``sd`` give the
    pooled mean and SD of the combined sample; ``median`` with ``q1, q3`` and/or ``minimum,
    maximum`` are reported as medians unless ``estimate_from_median`` is true.
    """
    nn = np.asarray([np.nan if v is None else v for v in np.atleast_1d(n)], dtype=float)
    k = nn.size
    if k == 0:
        raise SynthesisError("pool_characteristics: no studies")
    if np.any(nn[np.isfinite(nn)] <= 0):
        raise SynthesisError("pool_characteristics: sample sizes must be positive")
    ids = tuple(str(s) for s in study) if study is not None else tuple(str(i + 1) for i in range(k))
    if len(ids) != k:
        raise SynthesisError("pool_characteristics: study has the wrong length")
    cnt, pct = _col(count, k, "count"), _col(percent, k, "percent")
    mu, s = _col(mean, k, "mean"), _col(sd, k, "sd")
    med, lq, uq = _col(median, k, "median"), _col(q1, k, "q1"), _col(q3, k, "q3")
    lo, hi = _col(minimum, k, "minimum"), _col(maximum, k, "maximum")
    if np.any(pct[np.isfinite(pct)] > 100) or np.any(pct[np.isfinite(pct)] < 0):
        raise SynthesisError("pool_characteristics: percent must be within 0..100")
    has_n = np.isfinite(nn)
    out: dict = dict(name=name, k_total=k, total_n=float(nn[has_n].sum()), k_n=int(has_n.sum()))
    # proportion
    x = np.where(np.isfinite(cnt), cnt, pct / 100 * nn)
    has_p = has_n & np.isfinite(x)
    if has_p.any():
        props = x[has_p] / nn[has_p]
        out.update(
            proportion=float(x[has_p].sum() / nn[has_p].sum()),
            k_proportion=int(has_p.sum()),
            n_proportion=float(nn[has_p].sum()),
            proportion_median=float(np.median(props)),
            proportion_range=(float(props.min()), float(props.max())),
        )
    # means
    m_all, s_all = mu.copy(), s.copy()
    estimated = []
    has_med = np.isfinite(med) & ~np.isfinite(mu)
    has_spread = (np.isfinite(lq) & np.isfinite(uq)) | (np.isfinite(lo) & np.isfinite(hi))
    if estimate_from_median:
        for i in np.flatnonzero(has_med & has_spread & has_n):
            m_i, s_i, sc = mean_sd_from_quantiles(
                nn[i], med[i], lq[i], uq[i], lo[i], hi[i], method=method
            )
            m_all[i], s_all[i] = m_i, s_i
            estimated.append((ids[i], sc, method))
    full = has_n & np.isfinite(m_all) & np.isfinite(s_all)
    if full.any():
        N, M, SD = combine_groups(nn[full], m_all[full], s_all[full])
        out.update(mean=M, sd=SD, k_mean_sd=int(full.sum()), n_mean_sd=N)
    mean_only = has_n & np.isfinite(m_all) & ~np.isfinite(s_all)
    if mean_only.any():
        out.update(
            mean_of_means=float((nn[mean_only] * m_all[mean_only]).sum() / nn[mean_only].sum()),
            k_mean_only=int(mean_only.sum()),
        )
    med_only = has_med & ~np.isfinite(m_all)
    reported = has_p | np.isfinite(m_all) | np.isfinite(med) | np.isfinite(pct) | np.isfinite(cnt)
    out["without_n"] = tuple(ids[i] for i in np.flatnonzero(~has_n))
    out["medians_only"] = tuple(ids[i] for i in np.flatnonzero(med_only))
    out["estimated"] = tuple(estimated)
    out["missing"] = tuple(ids[i] for i in np.flatnonzero(~reported))
    out["provenance"] = {
        "metasift_version": version(),
        "settings": {"estimate_from_median": estimate_from_median, "method": method},
        "input_checksum": checksum(nn, cnt, pct, mu, s, med, lq, uq, lo, hi),
    }
    return PooledCharacteristic(**out)
