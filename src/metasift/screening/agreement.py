"""Inter-rater agreement for two reviewers: percent agreement, Cohen's kappa with a 95% CI, PABAK.

Formulas (spec: ``shared/reference/screening-stats.md`` §1):

- p_o = Σ p_ii, p_e = Σ p_i. p_.i, κ = (p_o − p_e)/(1 − p_e)  (Cohen 1960).
- SE(κ): the large-sample (delta-method) standard error of Fleiss, Cohen & Everitt (1969),
  Psychol Bull 72:323–327 (also Fleiss, Levin & Paik 2003, ch. 18, eq. 18.15)::

      SE = sqrt((A + B − C) / (n (1 − p_e)²))
      A = Σ_i p_ii [1 − (p_i. + p_.i)(1 − κ)]²
      B = (1 − κ)² Σ_{i≠j} p_ij (p_.i + p_j.)²
      C = [κ − p_e (1 − κ)]²

  The 95% CI is the Wald interval κ ± z·SE, truncated to [−1, 1]. ``se0`` is the SE under
  H0: κ = 0 (for the z-test ``zval``/``pval``), from the same paper. Cohen's (1960) simpler
  approximation sqrt(p_o(1 − p_o)/(n(1 − p_e)²)) is *not* used: it ignores the sampling
  variability of p_e.
- PABAK = (k·p_o − 1)/(k − 1) (Byrt, Bishop & Carlin 1993); 2·p_o − 1 for two categories.

When p_e = 1 (both reviewers used one and the same category for every item) κ is undefined and
is returned as NaN, with p_o and PABAK still reported.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metasift.errors import MetasiftError, ParameterError

__all__ = ["Agreement", "agreement", "AgreementError"]


class AgreementError(MetasiftError):
    """The paired labels cannot be used to compute agreement (unequal lengths, no items, …)."""


@dataclass(frozen=True)
class Agreement:
    """Agreement between two reviewers on ``n`` items labelled with ``categories``."""

    n: int
    categories: tuple
    table: tuple  # k×k counts, rows = reviewer A, columns = reviewer B, order = categories
    percent_agreement: float  # p_o, as a proportion in [0, 1]
    expected_agreement: float  # p_e
    kappa: float
    kappa_se: float  # Fleiss, Cohen & Everitt (1969) large-sample SE
    ci_lb: float
    ci_ub: float
    se0: float  # SE under H0: kappa = 0
    zval: float
    pval: float
    pabak: float
    level: float = 95.0
    se_method: str = "Fleiss, Cohen & Everitt 1969 (large-sample, delta method)"

    def summary(self) -> str:
        lines = [
            f"Agreement between two reviewers (n = {self.n}, categories = {list(self.categories)})",
            f"  percent agreement  {100 * self.percent_agreement:.1f}%",
            f"  chance agreement   {100 * self.expected_agreement:.1f}%",
            f"  Cohen's kappa      {self.kappa:.4f}  (SE {self.kappa_se:.4f}; "
            f"{self.level:g}% CI {self.ci_lb:.4f} to {self.ci_ub:.4f})",
            f"  test kappa = 0     z = {self.zval:.3f}, p = {self.pval:.4g}",
            f"  PABAK              {self.pabak:.4f}",
            f"  SE method: {self.se_method}",
        ]
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """One row with the statistics (the contingency table is in ``table_frame()``)."""
        keys = [
            "n",
            "percent_agreement",
            "expected_agreement",
            "kappa",
            "kappa_se",
            "ci_lb",
            "ci_ub",
            "se0",
            "zval",
            "pval",
            "pabak",
            "level",
        ]
        return pd.DataFrame([{k: getattr(self, k) for k in keys}])

    def table_frame(self) -> pd.DataFrame:
        cats = [str(c) for c in self.categories]
        return pd.DataFrame(np.array(self.table), index=cats, columns=cats)


def _fce_se(p: np.ndarray, kappa: float, pe: float, n: int) -> float:
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    k = p.shape[0]
    a = sum(p[i, i] * (1.0 - (rows[i] + cols[i]) * (1.0 - kappa)) ** 2 for i in range(k))
    b = (1.0 - kappa) ** 2 * sum(
        p[i, j] * (cols[i] + rows[j]) ** 2 for i in range(k) for j in range(k) if i != j
    )
    c = (kappa - pe * (1.0 - kappa)) ** 2
    var = (a + b - c) / (n * (1.0 - pe) ** 2)
    return math.sqrt(max(var, 0.0))


def agreement(
    labels_a: Sequence[Hashable],
    labels_b: Sequence[Hashable],
    categories: Sequence[Hashable] | None = None,
    *,
    level: float = 95.0,
) -> Agreement:
    """Agreement of two reviewers' paired labels (item i: ``labels_a[i]`` vs ``labels_b[i]``).

    ``categories`` fixes the category set and order (default: the sorted union of the labels);
    it matters for PABAK, whose k is the number of categories. Labels outside ``categories``
    raise :class:`AgreementError`.
    """
    a, b = list(labels_a), list(labels_b)
    if len(a) != len(b):
        raise AgreementError(f"paired labels differ in length: {len(a)} vs {len(b)}")
    if not a:
        raise AgreementError("no paired labels: agreement needs at least one item")
    if not (0 < level < 100):
        raise ParameterError("level", "agreement", None, level)
    if categories is None:
        try:
            cats = tuple(sorted(set(a) | set(b)))
        except TypeError:
            cats = tuple(dict.fromkeys(a + b))
    else:
        cats = tuple(dict.fromkeys(categories))
        unknown = (set(a) | set(b)) - set(cats)
        if unknown:
            raise AgreementError(
                f"labels not in categories {list(cats)}: {sorted(map(str, unknown))}"
            )
    k = len(cats)
    if k < 2:
        # one category seen and none other declared: agreement is perfect but kappa undefined
        cats = cats + ("<other>",)
        k = 2
    index = {c: i for i, c in enumerate(cats)}
    table = np.zeros((k, k), dtype=int)
    for x, y in zip(a, b, strict=True):
        table[index[x], index[y]] += 1
    n = len(a)
    p = table / n
    po = float(np.trace(p))
    pe = float(p.sum(axis=1) @ p.sum(axis=0))
    pabak = (k * po - 1.0) / (k - 1.0)
    from scipy import stats  # imported here: CLI and web start-up stay light

    z = float(stats.norm.ppf(0.5 + level / 200.0))
    if math.isclose(pe, 1.0):
        kappa = se = se0 = ci_lb = ci_ub = zval = pval = float("nan")
    else:
        kappa = (po - pe) / (1.0 - pe)
        se = _fce_se(p, kappa, pe, n)
        rows, cols = p.sum(axis=1), p.sum(axis=0)
        var0 = (pe + pe**2 - float(np.sum(rows * cols * (rows + cols)))) / (n * (1.0 - pe) ** 2)
        se0 = math.sqrt(max(var0, 0.0))
        ci_lb = max(-1.0, kappa - z * se)
        ci_ub = min(1.0, kappa + z * se)
        if se0 > 0:
            zval = kappa / se0
            pval = float(2 * stats.norm.sf(abs(zval)))
        else:
            zval = pval = float("nan")
    return Agreement(
        n=n,
        categories=cats,
        table=tuple(tuple(int(v) for v in row) for row in table),
        percent_agreement=po,
        expected_agreement=pe,
        kappa=float(kappa),
        kappa_se=float(se),
        ci_lb=float(ci_lb),
        ci_ub=float(ci_ub),
        se0=float(se0),
        zval=float(zval),
        pval=float(pval),
        pabak=float(pabak),
        level=float(level),
    )
