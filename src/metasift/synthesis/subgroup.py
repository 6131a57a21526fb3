"""Subgroup analysis: separate fits per subgroup plus a test for subgroup differences.

The test for subgroup differences is the Q-between statistic of a fixed-effect meta-regression
of the subgroup estimates on the subgroup factor, weighted by their squared standard errors
(Borenstein et al. 2009, ch. 19; RevMan's "test for subgroup differences"). A model with a
common tau^2 is ``rma(yi, vi, mods={"group": groups})``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from metasift.synthesis._common import SynthesisError, fmt, fmt_p
from metasift.synthesis.rma import RmaResult, rma


@dataclass(frozen=True, eq=False)
class SubgroupResult:
    """Per-subgroup fits (in sorted level order), the overall fit and the Q-between test."""

    levels: tuple
    fits: tuple  # RmaResult per level
    overall: RmaResult
    between: RmaResult  # FE meta-regression of subgroup estimates
    qb: float
    qb_df: int
    qbp: float
    provenance: dict = field(default_factory=dict)

    def to_frame(self):
        import pandas as pd

        rows = []
        for lev, f in zip(self.levels, self.fits, strict=True):
            rows.append({"subgroup": lev, "k": f.k, "estimate": float(f.beta[0]),
                         "se": float(f.se[0]), "ci_lb": float(f.ci_lb[0]),
                         "ci_ub": float(f.ci_ub[0]), "tau2": f.tau2, "I2": f.i2})  # fmt: skip
        return pd.DataFrame(rows).set_index("subgroup")

    def summary(self) -> str:
        lines = ["Subgroup analysis (separate tau^2 per subgroup)", ""]
        for lev, f in zip(self.levels, self.fits, strict=True):
            lines.append(f"{lev}: k = {f.k}, estimate {fmt(f.beta[0])} "
                         f"[{fmt(f.ci_lb[0])}, {fmt(f.ci_ub[0])}], tau^2 = {fmt(f.tau2)}, "
                         f"I^2 = {f.i2:.1f}%")  # fmt: skip
        lines.append("")
        lines.append(f"Test for subgroup differences: Q = {fmt(self.qb)}, df = {self.qb_df}, "
                     f"p = {fmt_p(self.qbp)}")  # fmt: skip
        return "\n".join(lines)


def subgroup(yi, vi=None, groups=None, method: str = "REML", test: str = "z", level=95,
             slab=None) -> SubgroupResult:  # fmt: skip
    """Fit ``rma`` in each subgroup (``groups``: one label per study) and test the differences."""
    if hasattr(yi, "yi") and hasattr(yi, "vi"):
        vi = yi.vi if vi is None else vi
        slab = yi.slab if slab is None else slab
        yi = yi.yi
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    if groups is None:
        raise SynthesisError("subgroup: give groups (one label per study)")
    g = np.asarray([str(x) for x in groups], dtype=object)
    if g.size != y.size:
        raise SynthesisError(f"subgroup: groups has length {g.size}, expected {y.size}")
    levels = tuple(sorted(set(g.tolist())))
    if len(levels) < 2:
        raise SynthesisError("subgroup: needs at least two subgroups")
    lab = None if slab is None else np.asarray([str(s) for s in slab], dtype=object)
    fits = []
    for lev in levels:
        sel = g == lev
        fits.append(rma(y[sel], v[sel], method=method, test=test, level=level,
                        slab=None if lab is None else list(lab[sel])))  # fmt: skip
    overall = rma(y, v, method=method, test=test, level=level, slab=slab)
    est = np.array([float(f.beta[0]) for f in fits])
    se = np.array([float(f.se[0]) for f in fits])
    between = rma(est, sei=se, mods={"group": np.array(levels, dtype=object)}, method="FE",
                  level=level)  # fmt: skip
    prov = dict(overall.provenance)
    prov["settings"] = {**prov["settings"], "groups": levels}
    return SubgroupResult(levels, tuple(fits), overall, between, between.qm, between.qm_df[0],
                          between.qmp, prov)  # fmt: skip
