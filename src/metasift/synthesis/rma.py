"""Random- and fixed-effects meta-analysis and meta-regression (metafor's ``rma.uni``).

Estimators: EE/FE, DL, HE, HS, SJ (closed forms), ML, REML (Fisher scoring with closed-form
derivatives), PM and EB (Newton on the generalised Q equation; metafor's EB iteration has the
same fixed point as PM). Tests: ``test="z"`` or ``"knha"`` (Hartung-Knapp-Sidik-Jonkman,
metafor 3.8 semantics: the scale factor is not truncated at 1 and t(k-p) is used for the
coefficients, the QM F test and the prediction interval).

The intercept-only model has a vectorised fast path (sums instead of k x k matrices): that is
the common case and the one the speed goal is set on.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

from metasift.errors import check_param
from metasift.synthesis._common import (
    SynthesisError,
    alpha_from_level,
    as_float_array,
    checksum,
    fmt,
    fmt_p,
    p_chi2,
    p_f,
    p_norm2,
    p_t2,
    version,
)


@functools.lru_cache(maxsize=64)
def _ones_column(k: int) -> np.ndarray:
    """The intercept-only design matrix (cached, read-only)."""
    x = np.ones((k, 1))
    x.setflags(write=False)
    return x


_ALL_TRUE = np.ones(1, dtype=bool)  # sentinel: every study has finite yi and vi
METHODS = ("EE", "FE", "DL", "REML", "ML", "PM", "HE", "SJ", "EB", "HS")
TESTS = ("z", "knha")
THRESHOLD = 1e-10  # convergence of tau^2 (change between iterations); metafor default is 1e-5
MAXITER = 1000
LOG2PI = math.log(2 * math.pi)


@dataclass(frozen=True, eq=False)
class RmaResult:
    """A fitted ``rma`` model. Field names follow metafor (``beta``, ``se``, ``ci_lb``, ...)."""

    method: str
    test: str
    level: float
    k: int
    p: int
    coef_names: tuple
    beta: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    vb: np.ndarray
    ddf: int | None
    tau2: float
    se_tau2: float | None
    i2: float
    h2: float
    r2: float | None
    qe: float
    qe_df: int
    qep: float
    qm: float
    qm_df: tuple
    qmp: float
    btt: tuple
    loglik: float
    deviance: float
    aic: float
    bic: float
    aicc: float
    s2: float  # "typical" within-study variance, (k - p) / tr(P) with FE weights
    s2w: float  # knha scale factor (1 for test="z")
    yi: np.ndarray
    vi: np.ndarray
    X: np.ndarray
    weights: np.ndarray  # model weights 1/(vi + tau2)
    int_only: bool
    slab: tuple | None = None
    measure: str | None = None
    ni: np.ndarray | None = None
    provenance: dict = field(default_factory=dict)

    # -- metafor-style accessors
    @property
    def b(self) -> np.ndarray:
        return self.beta

    @property
    def labels(self) -> tuple:
        """Study labels: ``slab`` or metafor's default 1..k."""
        return self.slab if self.slab is not None else tuple(str(i + 1) for i in range(self.k))

    @property
    def weights_pct(self) -> np.ndarray:
        return 100.0 * self.weights / self.weights.sum()

    @property
    def tau(self) -> float:
        return math.sqrt(self.tau2)

    @property
    def fit_stats(self) -> dict:
        return {
            "logLik": self.loglik,
            "deviance": self.deviance,
            "AIC": self.aic,
            "BIC": self.bic,
            "AICc": self.aicc,
        }

    @property
    def crit(self) -> float:
        alpha = 1 - self.level
        if self.test == "knha":
            return float(special.stdtrit(self.k - self.p, 1 - alpha / 2))
        return float(-special.ndtri(alpha / 2))

    def to_frame(self):
        """Coefficient table (estimate, se, zval/tval, pval, ci_lb, ci_ub) indexed by name."""
        import pandas as pd

        stat = "tval" if self.test == "knha" else "zval"
        return pd.DataFrame(
            {
                "estimate": self.beta,
                "se": self.se,
                stat: self.zval,
                "pval": self.pval,
                "ci_lb": self.ci_lb,
                "ci_ub": self.ci_ub,
            },
            index=list(self.coef_names),
        )

    def summary(self) -> str:
        fe = self.method in ("FE", "EE")
        kind = "Fixed-Effects" if fe else ("Random-Effects" if self.int_only else "Mixed-Effects")
        head = f"{kind} Model (k = {self.k}"
        head += "" if fe else f"; tau^2 estimator: {self.method}"
        lines = [head + ")", ""]
        if not fe:
            st = f" (SE = {fmt(self.se_tau2)})" if self.se_tau2 is not None else ""
            lines.append(f"tau^2 (estimated amount of {'residual ' if not self.int_only else ''}"
                         f"heterogeneity): {fmt(self.tau2)}{st}")  # fmt: skip
            lines.append(f"tau (square root of estimated tau^2 value): {fmt(self.tau)}")
        lines.append(f"I^2 ({'residual ' if not self.int_only else ''}heterogeneity / "
                     f"unaccounted variability): {self.i2:.2f}%")  # fmt: skip
        lines.append(f"H^2 (unaccounted variability / sampling variability): {self.h2:.2f}")
        if self.r2 is not None:
            lines.append(f"R^2 (amount of heterogeneity accounted for): {self.r2:.2f}%")
        lines += [
            "",
            f"Test for {'Residual ' if not self.int_only else ''}Heterogeneity:",
            f"QE(df = {self.qe_df}) = {fmt(self.qe)}, p-val {fmt_p(self.qep)}",
        ]
        if not self.int_only:
            if self.test == "knha":
                lines += ["", f"Test of Moderators (coefficients {','.join(map(str, self.btt))}):",
                          f"F(df1 = {self.qm_df[0]}, df2 = {self.qm_df[1]}) = {fmt(self.qm)}, "
                          f"p-val {fmt_p(self.qmp)}"]  # fmt: skip
            else:
                lines += ["", f"Test of Moderators (coefficients {','.join(map(str, self.btt))}):",
                          f"QM(df = {self.qm_df[0]}) = {fmt(self.qm)}, p-val {fmt_p(self.qmp)}"]  # fmt: skip
        stat = "tval" if self.test == "knha" else "zval"
        lines += ["", "Model Results:", ""]
        lines.append(f"{'':>12} {'estimate':>9} {'se':>8} {stat:>8} {'pval':>8} "
                     f"{'ci.lb':>8} {'ci.ub':>8}")  # fmt: skip
        for i, name in enumerate(self.coef_names):
            lines.append(
                f"{name[:12]:>12} {self.beta[i]:>9.4f} {self.se[i]:>8.4f} {self.zval[i]:>8.4f} "
                f"{fmt_p(self.pval[i]):>8} {self.ci_lb[i]:>8.4f} {self.ci_ub[i]:>8.4f}"
            )
        lines += ["", f"metasift {self.provenance.get('metasift_version', '')}, "
                  f"input checksum {self.provenance.get('input_checksum', '')}"]  # fmt: skip
        return "\n".join(lines)

    def __repr__(self) -> str:  # keep reprs short (arrays can be long)
        return (
            f"RmaResult(method={self.method!r}, k={self.k}, beta={self.beta!r}, tau2={self.tau2!r})"
        )

    # -- reference-case schema
    def metafor_dict(self, expected: dict | None = None, interp=None) -> dict:
        """This fit in the cases.json schema (for comparison with metafor)."""
        from metasift.synthesis.refcases import _lst

        expected = expected or {}
        out = {
            "model": "rma.uni",
            "method": self.method,
            "test": self.test,
            "k": self.k,
            "p": self.p,
            "beta": {n: float(b) for n, b in zip(self.coef_names, self.beta, strict=True)},
            "se": _lst(self.se),
            "stat_type": "t" if self.test == "knha" else "z",
            "stat": _lst(self.zval),
            "pval": _lst(self.pval),
            "ci.lb": _lst(self.ci_lb),
            "ci.ub": _lst(self.ci_ub),
            "tau2": self.tau2,
            "se.tau2": self.se_tau2,
            "I2": self.i2,
            "H2": self.h2,
            "R2": self.r2,
            "QE": self.qe,
            "QEp": self.qep,
            "QE.df": self.qe_df,
            "QM": self.qm,
            "QMp": self.qmp,
            "QMdf": list(self.qm_df),
            "fitstats": self.fit_stats,
            "studies": {
                "yi": _lst(self.yi),
                "vi": _lst(self.vi),
                "weights_pct": _lst(self.weights_pct),
                "slab": list(self.labels),
            },
        }
        if self.ddf is not None:
            out["ddf"] = [self.ddf]
        if self.int_only:
            pr = predict(self)
            out["pred"] = pr.as_dict()
        if "pred_transformed" in expected:
            spec = expected["pred_transformed"].get("transf", "")
            transf, targs = _transf_from_r(spec, interp)
            pt = predict(self, transf=transf, targs=targs).as_dict()
            pt["transf"] = spec
            out["pred_transformed"] = pt
        if "pred_newmods" in expected:
            nm = expected["pred_newmods"]["newmods"]
            pn = predict(self, newmods=nm)
            out["pred_newmods"] = {
                "newmods": nm,
                "pred": _lst(pn.pred),
                "se": _lst(pn.se),
                "ci.lb": _lst(pn.ci_lb),
                "ci.ub": _lst(pn.ci_ub),
                "pi.lb": _lst(pn.pi_lb),
                "pi.ub": _lst(pn.pi_ub),
            }
        if "confint" in expected:
            out["confint"] = confint(self).as_dict()
        return out


def _transf_from_r(spec: str, interp=None):
    """Map a metafor transf name (as printed in cases.json) to metasift's."""
    if spec.startswith("transf.ipft.hm"):
        ni = None
        if interp is not None and "ni=" in spec:
            expr = spec.split("ni=", 1)[1].rstrip(")")
            ni = np.asarray(interp.run(expr), dtype=float)
        return "ipft_hm", {"ni": ni}
    return spec.replace("transf.", ""), None


# ----------------------------------------------------------------------------- predictions
TRANSFORMS = ("exp", "ilogit", "ztor", "iarcsin", "ipft", "ipft_hm", "identity")


def _ipft(x, n):
    """Inverse Freeman-Tukey double arcsine (Miller 1978), clamped to [0, 1]."""
    x = np.asarray(x, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.sin(2 * x)
        z = 0.5 * (1 - np.sign(np.cos(2 * x)) * np.sqrt(1 - (s + (s - 1 / s) / n) ** 2))
    lo = 0.5 * (np.arcsin(0.0) + np.arcsin(np.sqrt(1 / (n + 1))))
    hi = 0.5 * (np.arcsin(np.sqrt(n / (n + 1))) + np.arcsin(1.0))
    z = np.where(np.isnan(z), np.nan, z)
    z = np.where(x > hi, 1.0, z)
    return np.where(x < lo, 0.0, z)


def apply_transf(x, transf, targs=None):
    """Back-transform ``x`` by name (metafor's transf.* without the prefix) or a callable."""
    if transf is None or transf == "identity":
        return x
    if callable(transf):
        return transf(x)
    check_param(transf, TRANSFORMS, "transf", "predict")
    x = np.asarray(x, dtype=float)
    if transf == "exp":
        return np.exp(x)
    if transf == "ilogit":
        return special.expit(x)
    if transf == "ztor":
        return np.tanh(x)
    if transf == "iarcsin":
        return np.where(x < 0, 0.0, np.where(x > np.pi / 2, 1.0, np.sin(x) ** 2))
    ni = None if not targs else targs.get("ni")
    if ni is None:
        raise SynthesisError(f"transf={transf!r} needs targs={{'ni': ...}} (the sample sizes)")
    ni = np.asarray(ni, dtype=float)
    n = 1.0 / np.mean(1.0 / ni) if transf == "ipft_hm" else ni
    return _ipft(x, n)


@dataclass(frozen=True, eq=False)
class PredictResult:
    """Predicted (pooled) values with confidence and prediction intervals."""

    pred: np.ndarray
    se: np.ndarray | None
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    pi_lb: np.ndarray | None
    pi_ub: np.ndarray | None
    transf: str | None = None
    level: float = 0.95
    provenance: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        def one(a):
            if a is None:
                return None
            a = np.atleast_1d(a)
            return float(a[0]) if a.size == 1 else [float(v) for v in a]

        out = {"pred": one(self.pred)}
        if self.se is not None:
            out["se"] = one(self.se)
        out["ci.lb"] = one(self.ci_lb)
        out["ci.ub"] = one(self.ci_ub)
        if self.pi_lb is not None:
            out["pi.lb"] = one(self.pi_lb)
            out["pi.ub"] = one(self.pi_ub)
        return out

    def to_frame(self):
        import pandas as pd

        d = {"pred": np.atleast_1d(self.pred)}
        if self.se is not None:
            d["se"] = np.atleast_1d(self.se)
        d["ci_lb"], d["ci_ub"] = np.atleast_1d(self.ci_lb), np.atleast_1d(self.ci_ub)
        if self.pi_lb is not None:
            d["pi_lb"], d["pi_ub"] = np.atleast_1d(self.pi_lb), np.atleast_1d(self.pi_ub)
        return pd.DataFrame(d)

    def summary(self) -> str:
        df = self.to_frame()
        return df.to_string(float_format=lambda v: f"{v:.4f}", index=False)


def predict(res: RmaResult, newmods=None, transf=None, targs=None, level=None) -> PredictResult:
    """Predicted values (metafor ``predict.rma``): the pooled estimate for an intercept-only
    model, or fitted values at ``newmods`` (moderator values without the intercept column).
    ``transf`` back-transforms pred, CI and PI ("exp", "ilogit", "ztor", "iarcsin", "ipft_hm"
    with ``targs={"ni": ...}``, or a callable). The PI uses sqrt(se^2 + tau^2) with the normal
    quantile (test="z") or t(k-p) (test="knha"); there is none for FE/EE models."""
    alpha = 1 - res.level if level is None else alpha_from_level(level, "predict")
    crit = _crit(alpha, res.k - res.p if res.test == "knha" else None)
    if newmods is None and res.int_only and transf is None:
        b, se0 = float(res.beta[0]), float(res.se[0])
        one = np.array
        if res.method in ("FE", "EE"):
            pil = piu = None
        else:
            sp = math.sqrt(se0 * se0 + res.tau2)
            pil, piu = one([b - crit * sp]), one([b + crit * sp])
        return PredictResult(one([b]), one([se0]), one([b - crit * se0]), one([b + crit * se0]),
                             pil, piu, None, 1 - alpha, res.provenance)  # fmt: skip

    if newmods is None:
        if not res.int_only:
            X = res.X
        else:
            X = np.ones((1, 1))
    else:
        nm = np.asarray(newmods, dtype=float)
        has_int = "intrcpt" in res.coef_names
        m = res.p - (1 if has_int else 0)
        nm = nm.reshape(-1, m) if nm.ndim < 2 else nm
        if nm.shape[1] != m:
            raise SynthesisError(f"predict: newmods needs {m} column(s), got {nm.shape[1]}")
        X = np.column_stack([np.ones(nm.shape[0]), nm]) if has_int else nm
    pred = X @ res.beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", X, res.vb, X))
    ci_lb, ci_ub = pred - crit * se, pred + crit * se
    if res.method in ("FE", "EE"):
        pi_lb = pi_ub = None
    else:
        sp = np.sqrt(se**2 + res.tau2)
        pi_lb, pi_ub = pred - crit * sp, pred + crit * sp
    if targs is None and transf in ("ipft_hm", "ipft") and res.ni is not None:
        targs = {"ni": res.ni}
    if transf is not None:
        t = [apply_transf(a, transf, targs) for a in (pred, ci_lb, ci_ub)]
        pred, ci_lb, ci_ub = t
        if pi_lb is not None:
            pi_lb, pi_ub = (apply_transf(a, transf, targs) for a in (pi_lb, pi_ub))
        se = None
    name = transf if isinstance(transf, str) or transf is None else getattr(transf, "__name__", "f")
    return PredictResult(pred, se, ci_lb, ci_ub, pi_lb, pi_ub, name, 1 - alpha, res.provenance)


# ----------------------------------------------------------------------------- confint
@dataclass(frozen=True, eq=False)
class ConfintResult:
    """Q-profile confidence intervals for tau^2, tau, I^2 (%) and H^2."""

    level: float
    tau2: tuple
    tau: tuple
    i2: tuple
    h2: tuple
    type: str = "Q-profile"
    provenance: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        def d(t):
            return {"estimate": t[0], "ci.lb": t[1], "ci.ub": t[2]}

        return {
            "type": self.type,
            "tau2": d(self.tau2),
            "tau": d(self.tau),
            "I2": d(self.i2),
            "H2": d(self.h2),
        }

    def to_frame(self):
        import pandas as pd

        rows = {"tau^2": self.tau2, "tau": self.tau, "I^2(%)": self.i2, "H^2": self.h2}
        return pd.DataFrame(rows, index=["estimate", "ci_lb", "ci_ub"]).T

    def summary(self) -> str:
        return self.to_frame().to_string(float_format=lambda v: f"{v:.4f}")


def _qgen(tau2, y, v, X):
    """Generalised Q: sum of squared weighted residuals at the GLS fit for ``tau2``."""
    w = 1.0 / (v + tau2)
    if X is None:
        mu = (w @ y) / w.sum()
        r = y - mu
        return float(w @ (r * r))
    Xw = X * w[:, None]
    b = np.linalg.solve(X.T @ Xw, Xw.T @ y)
    r = y - X @ b
    return float(w @ (r * r))


def confint(res: RmaResult, level=None) -> ConfintResult:
    """Q-profile CI for tau^2 (Viechtbauer 2007) and the derived tau, I^2 and H^2 intervals.

    The bounds solve Q_gen(tau^2) = chi^2_{k-p} quantiles; they do not depend on the tau^2
    estimator of the fit. A bound below 0 is set to 0.
    """
    alpha = 1 - res.level if level is None else alpha_from_level(level, "confint")
    df = res.k - res.p
    if df < 1:
        raise SynthesisError("confint: needs k > p")
    X = None if res.int_only else res.X
    y, v = res.yi, res.vi
    q_lo = float(special.chdtri(df, alpha / 2))  # upper alpha/2 quantile -> lower bound
    q_hi = float(special.chdtri(df, 1 - alpha / 2))

    def bound(target):
        f0 = _qgen(0.0, y, v, X) - target
        if f0 <= 0:
            return 0.0
        # metafor searches [0, tau2_max] with tau2_max = max(100, 10 tau^2) and reports
        # tau2_max when the bound lies beyond it; we do the same so results agree.
        hi = max(100.0, 10 * res.tau2)
        if _qgen(hi, y, v, X) - target > 0:
            return hi
        return optimize.brentq(
            lambda t: _qgen(t, y, v, X) - target, 0.0, hi, xtol=1e-15, rtol=1e-15, maxiter=500
        )

    lb, ub = bound(q_lo), bound(q_hi)
    s2 = res.s2

    def i2(t):
        return 100 * t / (t + s2)

    def h2(t):
        return (t + s2) / s2

    return ConfintResult(
        1 - alpha,
        (res.tau2, lb, ub),
        (math.sqrt(res.tau2), math.sqrt(lb), math.sqrt(ub)),
        (res.i2, i2(lb), i2(ub)),
        (res.h2, h2(lb), h2(ub)),
        "Q-profile",
        res.provenance,
    )


# ----------------------------------------------------------------------------- estimation
def _int_sums(w, y):
    sw = w.sum()
    mu = (w @ y) / sw
    r = y - mu
    return sw, mu, r


def _tau2_intercept(method, y, v, k):
    """tau^2 for the intercept-only model using sums (no k x k matrices). Returns (tau2, se)."""
    p = 1
    if method in ("FE", "EE"):
        return 0.0, None
    if method == "HE":
        r = y - y.mean()
        rss = r @ r
        trpv = v.sum() - v.sum() / k  # tr((I - J/k) V)
        t = max(0.0, (rss - trpv) / (k - p))
        # P = I - J/k; PV PV etc. via sums
        tr_pvpv = (v @ v) - 2 * (v @ v) / k + v.sum() ** 2 / k**2
        tr_pvp = v.sum() - v.sum() / k
        tr_pp = k - 1.0
        se = math.sqrt((2 * tr_pvpv + 4 * t * tr_pvp + 2 * t * t * tr_pp) / (k - p) ** 2)
        return t, se
    if method in ("DL", "HS"):
        w = 1.0 / v
        sw, _, r = _int_sums(w, y)
        rss = w @ (r * r)
        sw2 = w @ w
        trp = sw - sw2 / sw
        trpp = sw2 - 2 * (w @ (w * w)) / sw + (sw2 / sw) ** 2
        if method == "DL":
            t = max(0.0, (rss - (k - p)) / trp)
            se = math.sqrt((2 * (k - p) + 4 * t * trp + 2 * t * t * trpp) / trp**2)
        else:
            t = max(0.0, (rss - k) / sw)
            se = math.sqrt((2 * (k - p) + 4 * t * trp + 2 * t * t * trpp) / sw**2)
        return t, se
    if method == "SJ":
        t0 = float(np.mean((y - y.mean()) ** 2))
        w = 1.0 / (v + t0)
        sw, _, r = _int_sums(w, y)
        rss = w @ (r * r)
        t = t0 * rss / (k - p)
        X = np.ones((k, 1))
        P = _pmat(w, X)[0]
        PV = P * v[None, :]
        se = math.sqrt(
            t0**2
            / (k - p) ** 2
            * (2 * np.sum(PV * PV.T) + 4 * t * np.sum(PV * P.T) + 2 * t * t * np.sum(P * P.T))
        )
        return t, se
    if method in ("PM", "EB"):
        t = _pm_root(y, v, None, k, p)
        # metafor 3.8's SE for PM/EB: sqrt(2 k^2 / (k - p)) / sum(w) (matched to its output)
        return t, math.sqrt(2.0 * k * k / (k - p)) / (1.0 / (v + t)).sum()
    # REML / ML: Newton (REML) or Fisher scoring (ML) from the DL estimate, on power sums
    return _reml_ml_intercept(method == "REML", y, v, k)


_POW = np.array([1.0, 2.0, 3.0])
_POW0 = np.array([[0.0], [1.0], [2.0]])


def _power_sums(yc3, v, t):
    """All sums sum_i w_i^a y_i^b (a = 1..3, b = 0..2) at tau^2 = t in one matrix product."""
    w = 1.0 / (v + t)
    return (yc3 @ (w[:, None] ** _POW)).tolist(), w


def _reml_ml_intercept(reml, y, v, k, with_cache=False):
    """tau^2 by Newton-Raphson on the REML (or Fisher scoring on the ML) likelihood of the
    intercept-only model. Every derivative is a closed form in the power sums of the weights,
    so an iteration costs a few numpy calls. ``y`` is centred first (shift invariance) so the
    expanded sums do not cancel. Iteration stops when the step is below THRESHOLD; the returned
    tau^2 is the last iterate at which the sums were evaluated (Newton: its error is about the
    square of the last step)."""
    ybar = float(np.add.reduce(y)) / k
    yc3 = (y - ybar)[None, :] ** _POW0  # rows: 1, yc, yc^2
    tau2 = 0.0
    fe = None
    for it in range(MAXITER):
        ((s1, s2, s3), (a1, b1, c1), (a2, b2, c2)), w = _power_sums(yc3, v, tau2)
        mu = a1 / s1
        wr2 = a2 - mu * a1  # sum w r^2
        trp = s1 - s2 / s1
        if it == 0:  # DL start from the tau^2 = 0 sums (also the FE quantities)
            fe = (wr2, trp)
            tau2 = max(0.0, (wr2 - (k - 1)) / trp)
            if tau2 > 0.0:
                continue
        w2r = b1 - mu * s2  # sum w^2 r
        w2r2 = b2 - 2 * mu * b1 + mu * mu * s2  # y'PPy
        trpp = s2 - 2 * s3 / s1 + (s2 / s1) ** 2
        if reml:
            score = 0.5 * (w2r2 - trp)
            w3r2 = c2 - 2 * mu * c1 + mu * mu * s3
            hess = -(w3r2 - w2r * w2r / s1) + 0.5 * trpp
            step = -score / hess if hess < 0 else score / (0.5 * trpp)
        else:
            step = (w2r2 - s1) / s2
        new = tau2 + step
        if new < 0:
            if tau2 == 0.0:
                break
            new = 0.0
        if abs(new - tau2) < THRESHOLD:
            break
        tau2 = new
    info = trpp if reml else s2
    se = math.sqrt(2.0 / info)
    if not with_cache:
        return tau2, se
    # quantities at the returned tau^2 and at tau^2 = 0, for the caller
    return tau2, se, (w, s1, ybar + mu, wr2, fe[0], fe[1])


def _pmat(w, X):
    Xw = X * w[:, None]
    A = np.linalg.inv(X.T @ Xw)
    P = np.diag(w) - Xw @ A @ Xw.T
    return P, A


def _pm_root(y, v, X, k, p):
    """Paule-Mandel: the tau^2 >= 0 with Q_gen(tau^2) = k - p (Newton from 0; Q_gen is
    convex and decreasing, so Newton from the left converges monotonically)."""
    t = 0.0
    target = k - p
    for _ in range(MAXITER):
        w = 1.0 / (v + t)
        if X is None:
            sw = w.sum()
            r = y - (w @ y) / sw
            py = w * r
            q = py @ r
            # d Q / d tau2 = -y'PPy
            dq = -(py @ py)
        else:
            P = _pmat(w, X)[0]
            py = P @ y
            q = y @ py
            dq = -(py @ py)
        f = q - target
        if t == 0.0 and f <= 0:
            return 0.0
        step = -f / dq
        t_new = max(0.0, t + step)
        if abs(t_new - t) <= 1e-15 * max(1.0, t):
            return t_new
        t = t_new
    return t


def _tau2_general(method, y, v, X, k, p):
    """tau^2 for a model with moderators (k x k matrices). Returns (tau2, se)."""
    if method in ("FE", "EE"):
        return 0.0, None
    eye = np.eye(k)
    if method == "HE":
        P = eye - X @ np.linalg.solve(X.T @ X, X.T)
        rss = y @ P @ y
        PV = P * v[None, :]
        t = max(0.0, (rss - np.trace(PV)) / (k - p))
        se = math.sqrt(
            (2 * np.sum(PV * PV.T) + 4 * t * np.sum(PV * P.T) + 2 * t * t * np.sum(P * P.T))
            / (k - p) ** 2
        )
        return t, se
    if method in ("DL", "HS"):
        w = 1.0 / v
        P = _pmat(w, X)[0]
        rss = y @ P @ y
        trp = np.trace(P)
        trpp = np.sum(P * P.T)
        if method == "DL":
            t = max(0.0, (rss - (k - p)) / trp)
            den = trp**2
        else:
            t = max(0.0, (rss - k) / w.sum())
            den = w.sum() ** 2
        return t, math.sqrt((2 * (k - p) + 4 * t * trp + 2 * t * t * trpp) / den)
    if method == "SJ":
        # metafor 3.8 starts SJ from the variance of y around its mean, also with moderators
        t0 = float(np.mean((y - y.mean()) ** 2))
        w = 1.0 / (v + t0)
        P = _pmat(w, X)[0]
        rss = y @ P @ y
        t = t0 * rss / (k - p)
        PV = P * v[None, :]
        se = math.sqrt(
            t0**2
            / (k - p) ** 2
            * (2 * np.sum(PV * PV.T) + 4 * t * np.sum(PV * P.T) + 2 * t * t * np.sum(P * P.T))
        )
        return t, se
    if method in ("PM", "EB"):
        t = _pm_root(y, v, X, k, p)
        return t, math.sqrt(2.0 * k * k / (k - p)) / (1.0 / (v + t)).sum()
    t = _tau2_general("DL", y, v, X, k, p)[0]
    reml = method == "REML"
    for _ in range(MAXITER):
        w = 1.0 / (v + t)
        P = _pmat(w, X)[0]
        py = P @ y
        if reml:
            adj = (py @ py - np.trace(P)) / np.sum(P * P.T)
        else:
            adj = (py @ py - w.sum()) / (w @ w)
        new = t + adj
        if new < 0:
            if t == 0.0:
                break
            new = 0.0
        if abs(new - t) < THRESHOLD:
            t = new
            break
        t = new
    w = 1.0 / (v + t)
    if reml:
        P = _pmat(w, X)[0]
        info = np.sum(P * P.T)
    else:
        info = w @ w
    return t, math.sqrt(2.0 / info)


def _design(mods, k, intercept, mod_names):
    """Build the design matrix from ``mods`` (array, dict or DataFrame; strings -> dummies)."""
    names: list[str] = []
    cols: list[np.ndarray] = []
    if mods is not None:
        if hasattr(mods, "columns") or isinstance(mods, dict):
            items = [(str(c), np.asarray(mods[c])) for c in mods.keys()]  # noqa: SIM118
        else:
            arr = np.asarray(mods)
            if arr.dtype.kind in "OUS":
                items = [("mods", arr.ravel())]
            else:
                arr = arr.astype(float)
                arr = arr.reshape(k, -1) if arr.ndim < 2 else arr
                given = list(mod_names) if mod_names is not None else None
                if given is not None and len(given) == arr.shape[1]:
                    return arr, tuple(given)
                items = [(f"mods{j + 1}" if arr.shape[1] > 1 else "mods", arr[:, j])
                         for j in range(arr.shape[1])]  # fmt: skip
        for name, col in items:
            if col.size != k:
                raise SynthesisError(f"rma: moderator {name!r} has length {col.size}, expected {k}")
            if col.dtype.kind in "OUSb":
                levels = sorted({str(x) for x in col.tolist()})
                use = levels[1:] if intercept else levels
                for lev in use:
                    cols.append(np.array([str(x) == lev for x in col.tolist()], dtype=float))
                    names.append(f"{name}{lev}")
            else:
                cols.append(col.astype(float))
                names.append(name)
    if intercept:
        cols.insert(0, np.ones(k))
        names.insert(0, "intrcpt")
    if not cols:
        raise SynthesisError("rma: the model has no coefficients (intercept=False and no mods)")
    return np.column_stack(cols), tuple(names)


def rma(
    yi=None,
    vi=None,
    sei=None,
    mods=None,
    method: str = "REML",
    test: str = "z",
    level=95,
    slab=None,
    intercept: bool = True,
    btt=None,
    measure: str | None = None,
    ni=None,
    mod_names=None,
) -> RmaResult:
    """Fit a fixed-, random- or mixed-effects model (metafor ``rma.uni``).

    ``yi`` may be an :class:`~metasift.synthesis.escalc.EscalcResult` (its ``vi``, ``slab``,
    ``measure`` and ``ni`` are used). ``mods`` is an array (k or k x m), a dict or a DataFrame
    of moderators (string columns become treatment dummies with sorted levels). ``btt`` are
    1-based coefficient indices for the omnibus QM test (default: all but the intercept).
    Studies with a missing ``yi`` or ``vi`` are dropped.
    """
    check_param(method, METHODS, "method", "rma")
    check_param(test, TESTS, "test", "rma")
    alpha = alpha_from_level(level, "rma")
    if hasattr(yi, "yi") and hasattr(yi, "vi") and hasattr(yi, "measure"):
        es = yi
        yi, vi = es.yi, es.vi
        slab = es.slab if slab is None else slab
        measure = es.measure if measure is None else measure
        ni = es.ni if ni is None else ni
    y = as_float_array(yi, "yi", "rma")
    k_all = y.size
    if vi is None:
        if sei is None:
            raise SynthesisError("rma: give vi or sei")
        v = as_float_array(sei, "sei", "rma", k_all) ** 2
    else:
        v = as_float_array(vi, "vi", "rma", k_all)
    if mods is None and intercept:
        X, names = _ones_column(k_all), ("intrcpt",)
        if math.isfinite(float(np.add.reduce(y)) + float(np.add.reduce(v))):
            ok = _ALL_TRUE
        else:
            ok = np.isfinite(y) & np.isfinite(v)
    else:
        X, names = _design(mods, k_all, intercept, mod_names)
        ok = np.isfinite(y) & np.isfinite(v) & np.all(np.isfinite(X), axis=1)
    slab_default = slab is None
    if not slab_default:
        slab = tuple(str(s) for s in slab)
        if len(slab) != k_all:
            raise SynthesisError(f"rma: slab has length {len(slab)}, expected {k_all}")
    if ni is not None:
        ni = np.asarray(ni, dtype=float)
    if ok is not _ALL_TRUE and not ok.all():
        if slab is None:  # metafor's default labels: the 1-based row numbers of the input
            slab = tuple(str(i + 1) for i in range(k_all))
        y, v, X = y[ok], v[ok], X[ok]
        slab = None if slab is None else tuple(s for s, o in zip(slab, ok, strict=True) if o)
        ni = None if ni is None or ni.size != k_all else ni[ok]
    if y.size == 0 or float(v.min()) <= 0:
        raise SynthesisError("rma: sampling variances must be positive (and k >= 1)")
    return _fit(y, v, X, names, method, test, alpha, slab, measure, ni, btt, slab_default)


def _fit(
    y, v, X, names, method, test, alpha, slab=None, measure=None, ni=None, btt=None,
    slab_default=False,
):  # fmt: skip
    k, p = X.shape
    if k < p or k < 1:
        raise SynthesisError(f"rma: too few studies (k={k}) for {p} coefficient(s)")
    if p == 1 and names[0] == "intrcpt" and btt is None and k >= 2:
        return _fit_int(y, v, X, method, test, alpha, slab, measure, ni, slab_default)
    if np.linalg.matrix_rank(X) < p:
        raise SynthesisError("rma: the design matrix is not of full rank")
    int_only = p == 1 and names[0] == "intrcpt"
    knha = test == "knha"
    # --- tau^2
    if int_only:
        tau2, se_tau2 = _tau2_intercept(method, y, v, k)
    else:
        tau2, se_tau2 = _tau2_general(method, y, v, X, k, p)
    # --- fixed effects at tau^2
    w = 1.0 / (v + tau2)
    wf = 1.0 / v
    if int_only:
        sw = w.sum()
        mu = (w @ y) / sw
        beta = np.array([mu])
        vb = np.array([[1.0 / sw]])
        r = y - mu
        rss_re = float(w @ (r * r))
        logdet_xwx = math.log(sw)
        logdet_xx = math.log(k)
        swf = wf.sum()
        rf = y - (wf @ y) / swf
        qe = float(wf @ (rf * rf))
        trpf = swf - (wf @ wf) / swf
    else:
        Xw = X * w[:, None]
        xwx = X.T @ Xw
        vb = np.linalg.inv(xwx)
        beta = vb @ (Xw.T @ y)
        r = y - X @ beta
        rss_re = float(w @ (r * r))
        logdet_xwx = float(np.linalg.slogdet(xwx)[1])
        logdet_xx = float(np.linalg.slogdet(X.T @ X)[1])
        Pf, _ = _pmat(wf, X)
        qe = float(y @ Pf @ y)
        trpf = float(np.trace(Pf))
    df = k - p
    s2w = 1.0
    if knha:
        s2w = rss_re / df if df > 0 else 1.0
        vb = vb * s2w
    se = np.sqrt(np.diag(vb))
    zval = beta / se
    if knha:
        crit = float(special.stdtrit(df, 1 - alpha / 2))
        pval = p_t2(zval, df)
    else:
        crit = float(-special.ndtri(alpha / 2))
        pval = p_norm2(zval)
    ci_lb, ci_ub = beta - crit * se, beta + crit * se
    # --- heterogeneity
    qep = float(p_chi2(qe, df)) if df > 0 else 1.0
    s2 = df / trpf if df > 0 else 0.0
    if method in ("FE", "EE"):
        if df > 0 and qe > 0:
            i2 = max(0.0, 100.0 * (qe - df) / qe)
            h2 = qe / df
        else:
            i2, h2 = 0.0, 1.0
    else:
        i2 = 100.0 * tau2 / (tau2 + s2) if df > 0 else 0.0
        h2 = (tau2 + s2) / s2 if df > 0 else 1.0
    # --- omnibus test of moderators
    has_int = names[0] == "intrcpt"
    if btt is None:
        btt_idx = list(range(1, p)) if (has_int and p > 1) else list(range(p))
    else:
        btt_idx = [int(b) - 1 for b in np.atleast_1d(btt)]
    bb = beta[btt_idx]
    m = len(btt_idx)
    qm = float(bb @ np.linalg.solve(vb[np.ix_(btt_idx, btt_idx)], bb)) if m else 0.0
    if knha:
        qm = qm / m if m else 0.0
        qmp = float(p_f(qm, m, df)) if m else 1.0
        qm_df = (m, df)
    else:
        qmp = float(p_chi2(qm, m)) if m else 1.0
        qm_df = (m,)
    # --- R^2 (mixed models with an intercept)
    r2 = None
    if not int_only and has_int and p > 1:
        if method not in ("FE", "EE"):
            t0 = _tau2_intercept(method, y, v, k)[0]
            r2 = None if t0 <= 0 else max(0.0, 100.0 * (t0 - tau2) / t0)
        elif df > 0:
            # FE models: metafor 3.8 reports the proportional reduction in H^2 = QE / df
            swf = wf.sum()
            rf0 = y - (wf @ y) / swf
            h2_0 = float(wf @ (rf0 * rf0)) / (k - 1)
            r2 = max(0.0, 100.0 * (h2_0 - h2) / h2_0) if h2_0 > 0 else None
    # --- fit statistics (REML likelihood for REML, else ML)
    sum_log = float(np.log(v + tau2).sum())
    npar = p + (0 if method in ("FE", "EE") else 1)
    if method == "REML":
        ll = -0.5 * (df * LOG2PI - logdet_xx + sum_log + logdet_xwx + rss_re)
        dev = -2.0 * ll
        n_ic = df
    else:
        ll = -0.5 * (k * LOG2PI + sum_log + rss_re)
        # saturated model: each study's own mean with variance vi (metafor's ll at the data)
        dev = rss_re + sum_log - float(np.log(v).sum())
        n_ic = k
    aic = -2 * ll + 2 * npar
    bic = -2 * ll + npar * math.log(n_ic) if n_ic > 0 else math.nan
    nn = max(n_ic, npar + 2)
    aicc = -2 * ll + 2 * npar * nn / (nn - npar - 1)
    prov = {
        "metasift_version": version(),
        "settings": {"method": method, "test": test, "level": 1 - alpha, "btt": tuple(btt_idx)},
        "input_checksum": checksum(y, v, X),
        "slab_default": slab_default,
    }
    return RmaResult(
        method=method,
        test=test,
        level=1 - alpha,
        k=k,
        p=p,
        coef_names=tuple(names),
        beta=beta,
        se=se,
        zval=zval,
        pval=pval,
        ci_lb=ci_lb,
        ci_ub=ci_ub,
        vb=vb,
        ddf=df if knha else None,
        tau2=float(tau2),
        se_tau2=None if se_tau2 is None else float(se_tau2),
        i2=float(i2),
        h2=float(h2),
        r2=r2,
        qe=qe,
        qe_df=df,
        qep=qep,
        qm=qm,
        qm_df=qm_df,
        qmp=qmp,
        btt=tuple(b + 1 for b in btt_idx),
        loglik=float(ll),
        deviance=float(dev),
        aic=float(aic),
        bic=float(bic),
        aicc=float(aicc),
        s2=float(s2),
        s2w=float(s2w),
        yi=y,
        vi=v,
        X=X,
        weights=w,
        int_only=int_only,
        slab=slab,
        measure=measure,
        ni=ni,
        provenance=prov,
    )


@functools.lru_cache(maxsize=256)
def _crit(alpha: float, df: int | None) -> float:
    if df is None:
        return float(-special.ndtri(alpha / 2))
    return float(special.stdtrit(df, 1 - alpha / 2))


_SQRT1_2 = math.sqrt(0.5)


def _fit_int(y, v, X, method, test, alpha, slab, measure, ni, slab_default):
    """The intercept-only model with scalar arithmetic (the hot path; same fields as _fit)."""
    k = y.size
    df = k - 1
    knha = test == "knha"
    if method in ("REML", "ML"):
        tau2, se_tau2, (w, sw, mu, rss_re, qe, trpf) = _reml_ml_intercept(
            method == "REML", y, v, k, with_cache=True
        )
        vt = v + tau2
    else:
        tau2, se_tau2 = _tau2_intercept(method, y, v, k)
        vt = v + tau2
        w = 1.0 / vt
        sw = float(w.sum())
        mu = float(w @ y) / sw
        r = y - mu
        rss_re = float(w @ (r * r))
        wf = 1.0 / v
        swf = float(wf.sum())
        rf = y - float(wf @ y) / swf
        qe = float(wf @ (rf * rf))
        trpf = swf - float(wf @ wf) / swf
    s2w = rss_re / df if knha else 1.0
    var_b = s2w / sw
    se = math.sqrt(var_b)
    # identical estimates under Hartung-Knapp give se = 0: R's mu / 0 is +-Inf (0 / 0 is NaN)
    z = mu / se if se > 0 else (math.copysign(math.inf, mu) if mu != 0 else math.nan)
    if knha:
        crit = _crit(alpha, df)
        pv = float(p_t2(z, df))
    else:
        crit = _crit(alpha, None)
        pv = math.erfc(abs(z) * _SQRT1_2)
    qep = float(p_chi2(qe, df))
    s2 = df / trpf
    fe = method in ("FE", "EE")
    if fe:
        if qe > 0:
            i2 = max(0.0, 100.0 * (qe - df) / qe)
            h2 = qe / df
        else:
            i2, h2 = 0.0, 1.0
    else:
        i2 = 100.0 * tau2 / (tau2 + s2)
        h2 = (tau2 + s2) / s2
    if knha:
        qm, qm_df = z * z, (1, df)
    else:
        qm, qm_df = z * z, (1,)
    sum_log = float(np.log(vt).sum())
    npar = 1 if fe else 2
    if method == "REML":
        ll = -0.5 * (df * LOG2PI - math.log(k) + sum_log + math.log(sw) + rss_re)
        dev = -2.0 * ll
        n_ic = df
    else:
        ll = -0.5 * (k * LOG2PI + sum_log + rss_re)
        dev = rss_re + sum_log - float(np.log(v).sum())
        n_ic = k
    aic = -2 * ll + 2 * npar
    bic = -2 * ll + npar * math.log(n_ic) if n_ic > 0 else math.nan
    nn = max(n_ic, npar + 2)
    aicc = -2 * ll + 2 * npar * nn / (nn - npar - 1)
    prov = {
        "metasift_version": version(),
        "settings": {"method": method, "test": test, "level": 1 - alpha, "btt": (0,)},
        "input_checksum": checksum(y, v),
        "slab_default": slab_default,
    }
    beta = np.array([mu])
    sea = np.array([se])
    return RmaResult(
        method, test, 1 - alpha, k, 1, ("intrcpt",), beta, sea, np.array([z]), np.array([pv]),
        np.array([mu - crit * se]), np.array([mu + crit * se]), np.array([[var_b]]),
        df if knha else None, float(tau2), None if se_tau2 is None else float(se_tau2),
        float(i2), float(h2), None, qe, df, qep, float(qm), qm_df, float(pv), (1,), float(ll),
        float(dev), float(aic), float(bic), float(aicc), float(s2), float(s2w), y, v, X, w, True,
        slab, measure, ni, prov,
    )  # fmt: skip
