"""Effect sizes and their sampling variances (metafor's ``escalc`` vocabulary).

Formulas are the textbook ones (Borenstein et al. 2009; Hedges 1981 for the exact SMD
bias correction; Morris 2008 for pre-post designs; Miller 1978 for Freeman-Tukey) and match
metafor 3.8 field for field, which the reference tests check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import gammaln

from metasift.errors import check_param
from metasift.synthesis._common import SynthesisError, as_float_array, checksum, version

TWO_BY_TWO = ("OR", "RR", "RD", "PETO")
TWO_MEANS = ("MD", "SMD", "ROM")
ONE_PROP = ("PR", "PLO", "PFT", "PAS", "PLN")
CORR = ("COR", "ZCOR")
PREPOST = ("MC", "SMCR", "SMCC")
RATES = ("IRR",)
MEASURES = TWO_BY_TWO + TWO_MEANS + ONE_PROP + CORR + PREPOST + RATES

# Measures whose natural back-transformation is known (used by predict(transf="auto")).
BACK_TRANSFORM = {
    "OR": "exp",
    "RR": "exp",
    "PETO": "exp",
    "ROM": "exp",
    "IRR": "exp",
    "PLO": "ilogit",
    "PLN": "exp",
    "PFT": "ipft_hm",
    "PAS": "iarcsin",
    "ZCOR": "ztor",
}


@dataclass(frozen=True, eq=False)
class EscalcResult:
    """Effect sizes ``yi`` and sampling variances ``vi`` (NaN where not computable)."""

    measure: str
    yi: np.ndarray
    vi: np.ndarray
    slab: tuple | None = None
    ni: np.ndarray | None = None  # total n per study (used by the PFT back-transformation)
    settings: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.yi.size)

    @property
    def sei(self) -> np.ndarray:
        return np.sqrt(self.vi)

    def to_frame(self):
        import pandas as pd

        df = pd.DataFrame({"yi": self.yi, "vi": self.vi})
        if self.slab is not None:
            df.index = list(self.slab)
        return df

    def summary(self) -> str:
        lines = [f"escalc measure={self.measure}, k={self.k}", f"{'':>24} {'yi':>10} {'vi':>10}"]
        labels = self.slab or tuple(str(i + 1) for i in range(self.k))
        for lab, y, v in zip(labels, self.yi, self.vi, strict=True):
            lines.append(f"{str(lab)[:24]:>24} {y:>10.4f} {v:>10.4f}")
        return "\n".join(lines)


def _arr(x, name, n):
    return None if x is None else as_float_array(x, name, "escalc", n)


def _length(*xs) -> int:
    for x in xs:
        if x is not None:
            return int(np.atleast_1d(np.asarray(x)).size)
    raise SynthesisError("escalc: no data given")


def _need(measure, **kw):
    missing = [k for k, v in kw.items() if v is None]
    if missing:
        raise SynthesisError(f"escalc(measure={measure!r}) needs {', '.join(missing)}")


def _cmi(m):
    """Exact small-sample bias correction c(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2))."""
    m = np.asarray(m, dtype=float)
    return np.exp(gammaln(m / 2.0) - 0.5 * np.log(m / 2.0) - gammaln((m - 1.0) / 2.0))


def escalc(
    measure: str,
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
    m1i=None,
    m2i=None,
    sd1i=None,
    sd2i=None,
    xi=None,
    mi=None,
    ni=None,
    ri=None,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
    vtype: str = "LS",
    slab=None,
    subset=None,
) -> EscalcResult:
    """Compute effect sizes ``yi`` and sampling variances ``vi`` for one ``measure``.

    2x2 tables (OR, RR, RD, PETO) take ``ai, bi, ci, di`` or ``ai, n1i, ci, n2i``; with the
    default ``add=0.5, to="only0"`` one half is added to every cell of a table with a zero
    cell; ``to`` may be "all", "only0", "if0all" or "none"; ``drop00=True`` sets studies with no
    events (or no non-events) in both groups to NaN. MD/SMD/ROM take ``m1i, sd1i, n1i, m2i,
    sd2i, n2i`` (SMD is Hedges' g with the exact correction; ``vtype`` "LS" or "UB").
    Proportions take ``xi, ni`` (or ``xi, mi``); correlations ``ri, ni``; pre-post designs
    (MC, SMCR, SMCC) ``m1i, m2i, sd1i, (sd2i), ni, ri``; IRR ``x1i, t1i, x2i, t2i``.
    """
    check_param(measure, MEASURES, "measure", "escalc")
    check_param(to, ("all", "only0", "if0all", "none"), "to", "escalc")
    check_param(vtype, ("LS", "UB"), "vtype", "escalc")
    n = _length(ai, xi, x1i, m1i, ri, ni, n1i)
    g = {
        k: _arr(v, k, n)
        for k, v in dict(
            ai=ai, bi=bi, ci=ci, di=di, n1i=n1i, n2i=n2i, x1i=x1i, x2i=x2i, t1i=t1i, t2i=t2i,
            m1i=m1i, m2i=m2i, sd1i=sd1i, sd2i=sd2i, xi=xi, mi=mi, ni=ni, ri=ri,
        ).items()
    }  # fmt: skip
    total_n = None
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure in TWO_BY_TWO:
            yi, vi, total_n = _two_by_two(measure, g, add, to, drop00)
        elif measure in TWO_MEANS:
            yi, vi, total_n = _two_means(measure, g, vtype)
        elif measure in ONE_PROP:
            yi, vi, total_n = _one_prop(measure, g, add, to)
        elif measure in CORR:
            _need(measure, ri=g["ri"], ni=g["ni"])
            r, nn = g["ri"], g["ni"]
            total_n = nn
            if measure == "COR":
                yi, vi = r.copy(), (1 - r**2) ** 2 / (nn - 1)
            else:
                yi, vi = np.arctanh(r), 1.0 / (nn - 3)
        elif measure in PREPOST:
            yi, vi, total_n = _prepost(measure, g)
        else:
            yi, vi, total_n = _irr(g, add, to)
    bad = ~(np.isfinite(yi) & np.isfinite(vi))
    yi = np.where(bad, np.nan, yi)
    vi = np.where(bad, np.nan, vi)
    labels = None if slab is None else tuple(str(s) for s in np.atleast_1d(np.asarray(slab)))
    if labels is not None and len(labels) != n:
        raise SynthesisError(f"escalc: slab has length {len(labels)}, expected {n}")
    if subset is not None:
        sel = np.asarray(subset)
        if sel.dtype != bool:
            idx = sel.astype(int)
            sel = np.zeros(n, dtype=bool)
            sel[idx] = True
        yi, vi = yi[sel], vi[sel]
        total_n = None if total_n is None else np.asarray(total_n)[sel]
        labels = None if labels is None else tuple(np.asarray(labels, dtype=object)[sel])
    settings = dict(measure=measure, add=add, to=to, drop00=drop00, vtype=vtype)
    prov = dict(
        metasift_version=version(),
        settings=settings,
        input_checksum=checksum(*[g[k] for k in sorted(g)]),
    )
    return EscalcResult(measure, yi, vi, labels, total_n, settings, prov)


def _two_by_two(measure, g, add, to, drop00):
    ai, bi, ci, di = g["ai"], g["bi"], g["ci"], g["di"]
    if bi is None and g["n1i"] is not None and ai is not None:
        bi = g["n1i"] - ai
    if di is None and g["n2i"] is not None and ci is not None:
        di = g["n2i"] - ci
    _need(measure, ai=ai, bi=bi, ci=ci, di=di)
    ai, bi, ci, di = (np.array(x, dtype=float) for x in (ai, bi, ci, di))
    if np.any((ai < 0) | (bi < 0) | (ci < 0) | (di < 0)):
        raise SynthesisError("escalc: 2x2 cell counts must be non-negative")
    total_n = ai + bi + ci + di
    dz = ((ai == 0) & (ci == 0)) | ((bi == 0) & (di == 0))
    if drop00:
        for x in (ai, bi, ci, di):
            x[dz] = np.nan
    if to != "none" and add:
        any0 = (ai == 0) | (bi == 0) | (ci == 0) | (di == 0)
        if to == "all":
            sel = np.ones(ai.size, dtype=bool)
        elif to == "only0":
            sel = any0
        else:  # if0all
            sel = np.repeat(bool(np.any(any0)), ai.size)
        for x in (ai, bi, ci, di):
            x[sel] += add
    n1, n2 = ai + bi, ci + di
    if measure == "OR":
        yi = np.log(ai * di / (bi * ci))
        vi = 1 / ai + 1 / bi + 1 / ci + 1 / di
    elif measure == "RR":
        yi = np.log((ai / n1) / (ci / n2))
        vi = 1 / ai - 1 / n1 + 1 / ci - 1 / n2
    elif measure == "RD":
        p1, p2 = ai / n1, ci / n2
        yi = p1 - p2
        vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    else:  # PETO (Yusuf et al. 1985)
        nt = n1 + n2
        xt, xc = ai + ci, bi + di
        ei = xt * n1 / nt
        var = xt * xc * n1 * n2 / (nt**2 * (nt - 1))
        yi = (ai - ei) / var
        vi = 1 / var
    return yi, vi, total_n


def _two_means(measure, g, vtype):
    m1, m2, s1, s2, n1, n2 = (g[k] for k in ("m1i", "m2i", "sd1i", "sd2i", "n1i", "n2i"))
    _need(measure, m1i=m1, m2i=m2, sd1i=s1, sd2i=s2, n1i=n1, n2i=n2)
    if measure == "MD":
        return m1 - m2, s1**2 / n1 + s2**2 / n2, n1 + n2
    if measure == "ROM":
        return np.log(m1 / m2), s1**2 / (n1 * m1**2) + s2**2 / (n2 * m2**2), n1 + n2
    m = n1 + n2 - 2
    sp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / m)
    cm = _cmi(m)
    yi = cm * (m1 - m2) / sp
    if vtype == "LS":
        vi = 1 / n1 + 1 / n2 + yi**2 / (2 * (n1 + n2))
    else:  # UB: unbiased estimate of the sampling variance of g (Hedges 1983)
        vi = 1 / n1 + 1 / n2 + (1 - (m - 2) / (m * cm**2)) * yi**2
    return yi, vi, n1 + n2


def _one_prop(measure, g, add, to):
    xi, ni, mi = g["xi"], g["ni"], g["mi"]
    if ni is None and xi is not None and mi is not None:
        ni = xi + mi
    _need(measure, xi=xi, ni=ni)
    x = np.array(xi, dtype=float)
    nn = np.array(ni, dtype=float)
    if np.any((x < 0) | (x > nn)):
        raise SynthesisError("escalc: need 0 <= xi <= ni")
    if measure in ("PR", "PLO", "PLN") and to != "none" and add:
        mm = nn - x
        any0 = (x == 0) | (mm == 0)
        sel = (
            np.ones(x.size, bool)
            if to == "all"
            else (any0 if to == "only0" else np.repeat(bool(any0.any()), x.size))
        )
        x = np.where(sel, x + add, x)
        mm = np.where(sel, mm + add, mm)
        nn_adj = x + mm
    else:
        nn_adj = nn
    p = x / nn_adj
    if measure == "PR":
        return p, p * (1 - p) / nn_adj, np.asarray(ni, dtype=float)
    if measure == "PLO":
        return np.log(p / (1 - p)), 1 / x + 1 / (nn_adj - x), np.asarray(ni, dtype=float)
    if measure == "PLN":
        return np.log(p), 1 / x - 1 / nn_adj, np.asarray(ni, dtype=float)
    if measure == "PAS":
        return np.arcsin(np.sqrt(p)), 1 / (4 * nn), nn
    # PFT: Freeman-Tukey double arcsine
    yi = 0.5 * (np.arcsin(np.sqrt(x / (nn + 1))) + np.arcsin(np.sqrt((x + 1) / (nn + 1))))
    return yi, 1 / (4 * nn + 2), nn


def _prepost(measure, g):
    m1, m2, s1, s2, nn, r = (g[k] for k in ("m1i", "m2i", "sd1i", "sd2i", "ni", "ri"))
    if measure == "SMCR":
        _need(measure, m1i=m1, m2i=m2, sd1i=s1, ni=nn, ri=r)
        cm = _cmi(nn - 1)
        yi = cm * (m1 - m2) / s1
        return yi, 2 * (1 - r) / nn + yi**2 / (2 * nn), nn
    _need(measure, m1i=m1, m2i=m2, sd1i=s1, sd2i=s2, ni=nn, ri=r)
    vd = s1**2 + s2**2 - 2 * r * s1 * s2
    if measure == "MC":
        return m1 - m2, vd / nn, nn
    cm = _cmi(nn - 1)
    yi = cm * (m1 - m2) / np.sqrt(vd)
    return yi, 1 / nn + yi**2 / (2 * nn), nn


def _irr(g, add, to):
    x1, x2, t1, t2 = g["x1i"], g["x2i"], g["t1i"], g["t2i"]
    _need("IRR", x1i=x1, x2i=x2, t1i=t1, t2i=t2)
    x1, x2 = np.array(x1, float), np.array(x2, float)
    if to != "none" and add:
        any0 = (x1 == 0) | (x2 == 0)
        sel = (
            np.ones(x1.size, bool)
            if to == "all"
            else (any0 if to == "only0" else np.repeat(bool(any0.any()), x1.size))
        )
        x1 = np.where(sel, x1 + add, x1)
        x2 = np.where(sel, x2 + add, x2)
    return np.log((x1 / t1) / (x2 / t2)), 1 / x1 + 1 / x2, None
