"""Mantel-Haenszel (OR, RR, RD, IRR) and Peto (OR) fixed-effect methods on raw counts.

References: Mantel & Haenszel (1959); Robins, Breslow & Greenland (1986) variance of the MH log
OR; Greenland & Robins (1985) for RR and IRR; Sato, Greenland & Robins (1989) for RD; Tarone
(1985) homogeneity test; Yusuf et al. (1985) for Peto. No continuity correction enters the
pooled estimate; the per-study ``yi, vi`` (for Q and the forest plot) come from ``escalc``
with ``add=0.5, to="only0", drop00=True``, as in metafor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from metasift.errors import check_param
from metasift.synthesis._common import (
    SynthesisError,
    alpha_from_level,
    as_float_array,
    checksum,
    fmt,
    fmt_p,
    p_chi2,
    p_norm2,
    version,
)
from metasift.synthesis.escalc import escalc


@dataclass(frozen=True, eq=False)
class MHResult:
    """A Mantel-Haenszel or Peto fit. ``beta`` is on the log scale for OR/RR/IRR/PETO."""

    model: str  # "rma.mh" or "rma.peto"
    measure: str
    level: float
    k: int
    k_yi: int
    beta: float
    se: float
    zval: float
    pval: float
    ci_lb: float
    ci_ub: float
    qe: float
    qep: float
    i2: float
    h2: float
    mh: float | None
    mhp: float | None
    ta: float | None
    tap: float | None
    yi: np.ndarray
    vi: np.ndarray
    weights: np.ndarray
    slab: tuple | None = None
    provenance: dict = field(default_factory=dict)
    tau2: float = 0.0
    method: str = "FE"

    @property
    def weights_pct(self) -> np.ndarray:
        return 100.0 * self.weights / self.weights.sum()

    @property
    def exp(self) -> dict | None:
        if self.measure == "RD":
            return None
        return {
            "pred": math.exp(self.beta),
            "ci_lb": math.exp(self.ci_lb),
            "ci_ub": math.exp(self.ci_ub),
        }

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            {
                "estimate": [self.beta],
                "se": [self.se],
                "zval": [self.zval],
                "pval": [self.pval],
                "ci_lb": [self.ci_lb],
                "ci_ub": [self.ci_ub],
            },
            index=["intrcpt"],
        )

    def summary(self) -> str:
        name = "Mantel-Haenszel" if self.model == "rma.mh" else "Peto's"
        lines = [
            f"Fixed-Effects Model ({name} method; k = {self.k})",
            "",
            f"I^2 (total heterogeneity / total variability): {self.i2:.2f}%",
            f"H^2 (total variability / sampling variability): {self.h2:.2f}",
            "",
            "Test for Heterogeneity:",
            f"Q(df = {self.k_yi - 1}) = {fmt(self.qe)}, p-val = {fmt_p(self.qep)}",
            "",
            f"Model Results ({self.measure}, log scale):" if self.exp else "Model Results:",
            f"estimate {self.beta:.4f}  se {self.se:.4f}  zval {self.zval:.4f}  "
            f"pval {fmt_p(self.pval)}  ci.lb {self.ci_lb:.4f}  ci.ub {self.ci_ub:.4f}",
        ]
        if self.exp:
            e = self.exp
            lines.append(f"exp: {e['pred']:.4f} [{e['ci_lb']:.4f}, {e['ci_ub']:.4f}]")
        if self.mh is not None:
            lines.append(f"Cochran-Mantel-Haenszel Test: CMH = {fmt(self.mh)}, p-val = "
                         f"{fmt_p(self.mhp)}")  # fmt: skip
        if self.ta is not None:
            lines.append(f"Tarone's Test for Heterogeneity: X^2 = {fmt(self.ta)}, df = "
                         f"{self.k_yi - 1}, p-val = {fmt_p(self.tap)}")  # fmt: skip
        return "\n".join(lines)

    def metafor_dict(self, expected=None, interp=None) -> dict:
        from metasift.synthesis.refcases import _lst

        out = {
            "model": self.model,
            "measure": self.measure,
            "k": self.k,
            "k.yi": self.k_yi,
            "beta": self.beta,
            "se": self.se,
            "stat_type": "z",
            "stat": self.zval,
            "pval": self.pval,
            "ci.lb": self.ci_lb,
            "ci.ub": self.ci_ub,
            "QE": self.qe,
            "QEp": self.qep,
            "I2": self.i2,
            "H2": self.h2,
            "tau2": 0.0,
            "studies": {
                "yi": _lst(self.yi[np.isfinite(self.yi)]),
                "vi": _lst(self.vi[np.isfinite(self.vi)]),
                "weights_pct": _lst(self.weights_pct),
            },
        }
        if self.mh is not None:
            out["MH"], out["MHp"] = self.mh, self.mhp
        if self.ta is not None:
            out["TA"], out["TAp"] = self.ta, self.tap
        if self.exp:
            e = self.exp
            out["exp"] = {"pred": e["pred"], "ci.lb": e["ci_lb"], "ci.ub": e["ci_ub"]}
        return out


def _tables(ai, bi, ci, di, n1i, n2i, func):
    n = None
    for x in (ai, ci, bi, di, n1i, n2i):
        if x is not None:
            n = np.atleast_1d(np.asarray(x)).size
            break
    if n is None:
        raise SynthesisError(f"{func}: give ai, bi, ci, di (or ai, n1i, ci, n2i)")
    a = as_float_array(ai, "ai", func, n)
    c = as_float_array(ci, "ci", func, n)
    b = (
        as_float_array(bi, "bi", func, n)
        if bi is not None
        else as_float_array(n1i, "n1i", func, n) - a
    )
    d = (
        as_float_array(di, "di", func, n)
        if di is not None
        else as_float_array(n2i, "n2i", func, n) - c
    )
    return a, b, c, d


def _subset(subset, *arrays):
    sel = np.asarray(subset)
    out = []
    for a in arrays:
        if a is None:
            out.append(None)
        else:
            arr = np.asarray(a, dtype=object if isinstance(a, (list, tuple)) else None)
            out.append(arr[sel])
    return out


def _het(yi, vi, beta):
    ok = np.isfinite(yi) & np.isfinite(vi)
    k_yi = int(ok.sum())
    qe = float(((yi[ok] - beta) ** 2 / vi[ok]).sum())
    df = k_yi - 1
    qep = float(p_chi2(qe, df)) if df > 0 else 1.0
    i2 = max(0.0, 100.0 * (qe - df) / qe) if (df > 0 and qe > 0) else 0.0
    h2 = qe / df if df > 0 else 1.0
    return k_yi, qe, qep, i2, h2


def _finish(model, measure, alpha, beta, var, yi, vi, wts, slab, mh, ta, k, inputs):
    se = math.sqrt(var)
    z = beta / se
    crit = float(-special.ndtri(alpha / 2))
    k_yi, qe, qep, i2, h2 = _het(yi, vi, beta)
    ta_stat, tap = (None, None) if ta is None else ta
    mh_stat, mhp = (None, None) if mh is None else mh
    prov = {
        "metasift_version": version(),
        "settings": {"model": model, "measure": measure, "level": 1 - alpha},
        "input_checksum": checksum(*inputs),
    }
    return MHResult(
        model, measure, 1 - alpha, k, k_yi, float(beta), se, z, float(p_norm2(z)),
        beta - crit * se, beta + crit * se, qe, qep, i2, h2, mh_stat, mhp, ta_stat, tap,
        yi, vi, wts, slab, prov,
    )  # fmt: skip


def _drop_missing(arrays, slab):
    ok = np.all([np.isfinite(a) for a in arrays], axis=0)
    if slab is not None:
        slab = tuple(s for s, o in zip(slab, ok, strict=True) if o)
    return [a[ok] for a in arrays], slab


def rma_mh(
    measure: str = "OR",
    ai=None,
    bi=None,
    ci=None,
    di=None,
    n1i=None,
    n2i=None,
    x1i=None,
    x2i=None,
    t1i=None,
    t2i=None,
    level=95,
    correct: bool = True,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = True,
    slab=None,
    subset=None,
) -> MHResult:
    """Mantel-Haenszel pooled OR, RR, RD (2x2 tables) or IRR (person-time), with the
    Cochran-Mantel-Haenszel test (OR, IRR; ``correct`` applies the 0.5 continuity correction)
    and Tarone's test of homogeneity (OR)."""
    check_param(measure, ("OR", "RR", "RD", "IRR"), "measure", "rma_mh")
    alpha = alpha_from_level(level, "rma_mh")
    if subset is not None:
        ai, bi, ci, di, n1i, n2i, x1i, x2i, t1i, t2i, slab = _subset(
            subset, ai, bi, ci, di, n1i, n2i, x1i, x2i, t1i, t2i, slab
        )
    slab = None if slab is None else tuple(str(s) for s in slab)
    if measure == "IRR":
        n = np.atleast_1d(np.asarray(x1i)).size
        x1, x2, t1, t2 = (as_float_array(z, nm, "rma_mh", n)
                          for z, nm in ((x1i, "x1i"), (x2i, "x2i"), (t1i, "t1i"), (t2i, "t2i")))  # fmt: skip
        (x1, x2, t1, t2), slab = _drop_missing([x1, x2, t1, t2], slab)
        es = escalc("IRR", x1i=x1, x2i=x2, t1i=t1, t2i=t2, add=add, to=to)
        tt = t1 + t2
        r = x1 * t2 / tt
        s = x2 * t1 / tt
        R, S = r.sum(), s.sum()
        if R <= 0 or S <= 0:
            raise SynthesisError("rma_mh: no events in one group; the MH IRR is not estimable")
        beta = math.log(R / S)
        var = float((t1 * t2 * (x1 + x2) / tt**2).sum() / (R * S))
        xt = x1 + x2
        e = xt * t1 / tt
        vv = xt * t1 * t2 / tt**2
        num = abs(x1.sum() - e.sum()) - (0.5 if correct else 0.0)
        cmh = float(num**2 / vv.sum())
        return _finish("rma.mh", measure, alpha, beta, var, es.yi, es.vi, s, slab,
                       (cmh, float(p_chi2(cmh, 1))), None, x1.size, [x1, x2, t1, t2])  # fmt: skip
    a, b, c, d = _tables(ai, bi, ci, di, n1i, n2i, "rma_mh")
    (a, b, c, d), slab = _drop_missing([a, b, c, d], slab)
    es = escalc(measure, ai=a, bi=b, ci=c, di=d, add=add, to=to, drop00=drop00)
    n1, n2 = a + b, c + d
    N = n1 + n2
    mh = ta = None
    if measure == "OR":
        r = a * d / N
        s = b * c / N
        R, S = r.sum(), s.sum()
        if R <= 0 or S <= 0:
            raise SynthesisError("rma_mh: the MH odds ratio is not estimable (R or S is 0)")
        beta = math.log(R / S)
        P = (a + d) / N
        Q = (b + c) / N
        var = float(
            (P * r).sum() / (2 * R**2)
            + (P * s + Q * r).sum() / (2 * R * S)
            + (Q * s).sum() / (2 * S**2)
        )
        wts = s
        xt = a + c
        use = N > 1
        e = n1 * xt / N
        vv = np.where(use, n1 * n2 * xt * (N - xt) / (N**2 * np.where(use, N - 1, 1)), 0.0)
        num = abs(a.sum() - e.sum()) - (0.5 if correct else 0.0)
        cmh = float(num**2 / vv.sum())
        mh = (cmh, float(p_chi2(cmh, 1)))
        ta = _tarone(a, n1, n2, xt, math.exp(beta), np.isfinite(es.yi))
    elif measure == "RR":
        r = a * n2 / N
        s = c * n1 / N
        R, S = r.sum(), s.sum()
        if R <= 0 or S <= 0:
            raise SynthesisError("rma_mh: the MH risk ratio is not estimable (R or S is 0)")
        beta = math.log(R / S)
        var = float(((n1 * n2 * (a + c) - a * c * N) / N**2).sum() / (R * S))
        wts = s
    else:  # RD, Sato-Greenland-Robins variance
        W = n1 * n2 / N
        sw = W.sum()
        beta = float(((a * n2 - c * n1) / N).sum() / sw)
        Pn = ((n1**2 * c - n2**2 * a + n1 * n2 * (n2 - n1) / 2) / N**2).sum()
        Qn = ((a * (n2 - c) + c * (n1 - a)) / (2 * N)).sum()
        var = float((beta * Pn + Qn) / sw**2)
        wts = W
    return _finish("rma.mh", measure, alpha, beta, var, es.yi, es.vi, wts, slab, mh, ta,
                   a.size, [a, b, c, d])  # fmt: skip


def _tarone(a, n1, n2, xt, psi, ok):
    """Tarone's (1985) corrected Breslow-Day statistic with df = tables used - 1."""
    sel = ok & (xt > 0) & (xt < n1 + n2)
    a, n1, n2, xt = a[sel], n1[sel], n2[sel], xt[sel]
    if a.size < 2:
        return None
    qa = 1 - psi
    qb = n2 - xt + psi * (n1 + xt)
    qc = -psi * n1 * xt
    if abs(qa) < 1e-14:
        A = -qc / qb
    else:
        disc = np.sqrt(qb * qb - 4 * qa * qc)
        r1 = (-qb + disc) / (2 * qa)
        r2 = (-qb - disc) / (2 * qa)
        lo = np.maximum(0, xt - n2)
        hi = np.minimum(n1, xt)
        A = np.where((r1 >= lo - 1e-9) & (r1 <= hi + 1e-9), r1, r2)
    V = 1 / (1 / A + 1 / (n1 - A) + 1 / (xt - A) + 1 / (n2 - xt + A))
    stat = float(((a - A) ** 2 / V).sum() - (a.sum() - A.sum()) ** 2 / V.sum())
    return stat, float(p_chi2(stat, a.size - 1))


def rma_peto(ai=None, bi=None, ci=None, di=None, n1i=None, n2i=None, level=95, add=0.5,
             to="only0", drop00=True, slab=None, subset=None) -> MHResult:  # fmt: skip
    """Peto's one-step pooled log odds ratio (Yusuf et al. 1985), on the raw counts."""
    alpha = alpha_from_level(level, "rma_peto")
    if subset is not None:
        ai, bi, ci, di, n1i, n2i, slab = _subset(subset, ai, bi, ci, di, n1i, n2i, slab)
    slab = None if slab is None else tuple(str(s) for s in slab)
    a, b, c, d = _tables(ai, bi, ci, di, n1i, n2i, "rma_peto")
    (a, b, c, d), slab = _drop_missing([a, b, c, d], slab)
    es = escalc("PETO", ai=a, bi=b, ci=c, di=d, add=add, to=to, drop00=drop00)
    n1, n2 = a + b, c + d
    N = n1 + n2
    xt = a + c
    use = N > 1
    e = n1 * xt / N
    V = np.where(use, n1 * n2 * xt * (N - xt) / (N**2 * np.where(use, N - 1, 1)), 0.0)
    sv = V.sum()
    if sv <= 0:
        raise SynthesisError("rma_peto: no table carries information (all variances are 0)")
    oe = a - e
    beta = float(oe.sum() / sv)
    pos = V > 0
    res = _finish("rma.peto", "PETO", alpha, beta, 1.0 / sv, es.yi, es.vi, V, slab, None, None,
                  a.size, [a, b, c, d])  # fmt: skip
    # Peto's Q: sum (O-E)^2/V - (sum (O-E))^2 / sum V over informative tables
    qe = float((oe[pos] ** 2 / V[pos]).sum() - oe.sum() ** 2 / sv)
    k_yi = int(pos.sum())
    df = k_yi - 1
    qep = float(p_chi2(qe, df)) if df > 0 else 1.0
    i2 = max(0.0, 100.0 * (qe - df) / qe) if (df > 0 and qe > 0) else 0.0
    h2 = qe / df if df > 0 else 1.0
    from dataclasses import replace

    return replace(res, qe=qe, qep=qep, i2=i2, h2=h2, k_yi=k_yi)
