"""Small-study effects and influence: ``regtest`` (Egger-type tests), ``trimfill`` (Duval &
Tweedie 2000, estimators L0 and R0) and ``leave1out``. All take a fitted :class:`RmaResult`
and refit with the same method and test (never touching the original)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from metasift.errors import check_param
from metasift.synthesis._common import SynthesisError, fmt, fmt_p, p_t2
from metasift.synthesis.rma import RmaResult, _fit


@dataclass(frozen=True, eq=False)
class RegtestResult:
    """Regression test for funnel plot asymmetry; ``est`` is the limit estimate (predictor -> 0)."""

    model: str  # "rma" or "lm"
    predictor: str
    zval: float
    pval: float
    dfs: int | None
    est: float
    ci_lb: float
    ci_ub: float
    fit_beta: dict
    fit_se: tuple
    fit_tau2: float | None
    provenance: dict = field(default_factory=dict)

    def summary(self) -> str:
        mod = "weighted regression with multiplicative dispersion" if self.model == "lm" else (
            "mixed-effects meta-regression model")  # fmt: skip
        stat = "t" if self.dfs is not None else "z"
        df = f", df = {self.dfs}" if self.dfs is not None else ""
        return "\n".join(
            [
                "Regression Test for Funnel Plot Asymmetry",
                "",
                f"Model:     {mod}",
                f"Predictor: {self.predictor}",
                "",
                f"Test for Funnel Plot Asymmetry: {stat} = {fmt(self.zval)}{df}, "
                f"p = {fmt_p(self.pval)}",
                f"Limit Estimate (as {self.predictor} -> 0): b = {fmt(self.est)} "
                f"(CI: {fmt(self.ci_lb)}, {fmt(self.ci_ub)})",
            ]
        )

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            {
                "stat": [self.zval],
                "pval": [self.pval],
                "dfs": [self.dfs],
                "limit_est": [self.est],
                "limit_ci_lb": [self.ci_lb],
                "limit_ci_ub": [self.ci_ub],
            }
        )

    def metafor_dict(self, expected=None, interp=None) -> dict:
        beta = dict(self.fit_beta)
        if "sqrtninv" in beta:  # metafor 3.8 labels the 1/sqrt(ni) coefficient "ni"
            beta["ni"] = beta.pop("sqrtninv")
        fit = {"beta": beta, "se": list(self.fit_se)}
        if self.fit_tau2 is not None:
            fit["tau2"] = self.fit_tau2
        return {
            "model": "regtest",
            "regtest_model": self.model,
            "predictor": self.predictor,
            "stat_type": "t" if self.dfs is not None else "z",
            "stat": self.zval,
            "pval": self.pval,
            "dfs": self.dfs,
            "limit_est": self.est,
            "limit_ci.lb": self.ci_lb,
            "limit_ci.ub": self.ci_ub,
            "fit": fit,
        }


def _predictor_values(x: RmaResult, predictor: str) -> np.ndarray:
    if predictor == "sei":
        return np.sqrt(x.vi)
    if predictor == "vi":
        return x.vi.copy()
    if x.ni is None:
        raise SynthesisError(f"regtest: predictor={predictor!r} needs the sample sizes (ni)")
    ni = np.asarray(x.ni, dtype=float)
    return {"ni": ni, "ninv": 1 / ni, "sqrtni": np.sqrt(ni), "sqrtninv": 1 / np.sqrt(ni)}[predictor]


def regtest(x: RmaResult, model: str = "rma", predictor: str = "sei") -> RegtestResult:
    """Egger-type regression test (metafor ``regtest``). ``model="rma"`` adds the predictor as a
    moderator to a model with the fit's method and test; ``model="lm"`` is Egger's classic
    weighted regression (weights 1/vi, multiplicative dispersion, t with k-2 df)."""
    check_param(model, ("rma", "lm"), "model", "regtest")
    check_param(predictor, ("sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv"), "predictor",
                "regtest")  # fmt: skip
    if not isinstance(x, RmaResult) or not x.int_only:
        raise SynthesisError("regtest: needs an intercept-only rma fit")
    pv = _predictor_values(x, predictor)
    X = np.column_stack([np.ones(x.k), pv])
    alpha = 1 - x.level
    if model == "rma":
        fit = _fit(x.yi, x.vi, X, ("intrcpt", predictor), x.method, x.test, alpha, x.slab,
                   x.measure, x.ni)  # fmt: skip
        dfs = x.k - 2 if x.test == "knha" else None
        return RegtestResult(
            "rma", predictor, float(fit.zval[1]), float(fit.pval[1]), dfs, float(fit.beta[0]),
            float(fit.ci_lb[0]), float(fit.ci_ub[0]),
            {"intrcpt": float(fit.beta[0]), predictor: float(fit.beta[1])},
            (float(fit.se[0]), float(fit.se[1])), fit.tau2, dict(x.provenance),
        )  # fmt: skip
    if x.k < 3:
        raise SynthesisError("regtest: model='lm' needs k >= 3")
    w = 1 / x.vi
    Xw = X * w[:, None]
    xtwx_inv = np.linalg.inv(X.T @ Xw)
    b = xtwx_inv @ (Xw.T @ x.yi)
    r = x.yi - X @ b
    df = x.k - 2
    sigma2 = float(w @ (r * r)) / df
    se = np.sqrt(np.diag(xtwx_inv) * sigma2)
    t = b / se
    crit = float(special.stdtrit(df, 1 - alpha / 2))
    return RegtestResult(
        "lm", predictor, float(t[1]), float(p_t2(t[1], df)), df, float(b[0]),
        float(b[0] - crit * se[0]), float(b[0] + crit * se[0]),
        {"Xintrcpt": float(b[0]), f"X{predictor}": float(b[1])},
        (float(se[0]), float(se[1])), None, dict(x.provenance),
    )  # fmt: skip


@dataclass(frozen=True, eq=False)
class TrimfillResult:
    """The model refitted with the imputed studies (``fit``) and the trim-and-fill details."""

    fit: RmaResult
    k0: int
    side: str
    se_k0: float
    p_k0: float | None
    estimator: str
    filled: np.ndarray  # bool per study of ``fit`` (True for imputed studies)

    def __getattr__(self, name):  # delegate beta, se, tau2, ... to the filled fit
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.fit, name)

    def summary(self) -> str:
        head = (f"Estimated number of missing studies on the {self.side} side: {self.k0} "
                f"(SE = {fmt(self.se_k0)})")  # fmt: skip
        if self.p_k0 is not None:
            head += f"\nTest of H0: no missing studies on the {self.side} side: p-val = " \
                    f"{fmt_p(self.p_k0)}"  # fmt: skip
        return head + "\n\n" + self.fit.summary()

    def to_frame(self):
        df = self.fit.to_frame()
        df.attrs["k0"] = self.k0
        return df

    def metafor_dict(self, expected=None, interp=None) -> dict:
        exp = dict(expected or {})
        exp.pop("pred_transformed", None)
        exp.pop("pred_newmods", None)
        exp.pop("confint", None)
        out = self.fit.metafor_dict(exp, interp)
        out["model"] = "trimfill"
        out["studies"]["filled"] = [bool(f) for f in self.filled]
        out.update(k0=self.k0, side=self.side, estimator=self.estimator)
        out["se.k0"] = self.se_k0
        out["p.k0"] = self.p_k0
        return out


def trimfill(x: RmaResult, side: str | None = None, estimator: str = "L0",
             maxiter: int = 100) -> TrimfillResult:  # fmt: skip
    """Duval & Tweedie's trim and fill (estimators L0, R0, Q0). ``side=None`` picks the side from the sign of the
    Egger-type slope (a model with sei as moderator, same method): positive -> "left"."""
    check_param(estimator, ("L0", "R0", "Q0"), "estimator", "trimfill")
    if side is not None:
        check_param(side, ("left", "right"), "side", "trimfill")
    if not isinstance(x, RmaResult) or not x.int_only:
        raise SynthesisError("trimfill: needs an intercept-only rma fit")
    alpha = 1 - x.level
    k = x.k
    ones = np.ones((k, 1))
    if side is None:
        X = np.column_stack([ones, np.sqrt(x.vi)])
        eg = _fit(x.yi, x.vi, X, ("intrcpt", "sei"), x.method, "z", alpha)
        side = "left" if eg.beta[1] > 0 else "right"
    sign = -1.0 if side == "right" else 1.0
    yi = sign * x.yi
    order = np.argsort(yi, kind="stable")
    ys, vs = yi[order], x.vi[order]
    k0, k0_prev, it = 0, -1, 0
    beta = float(x.beta[0]) * sign
    se_k0 = 0.0
    while k0 != k0_prev and it < maxiter:
        k0_prev = k0
        it += 1
        kt = k - k0
        ft = _fit(ys[:kt], vs[:kt], np.ones((kt, 1)), ("intrcpt",), x.method, "z", alpha)
        beta = float(ft.beta[0])
        yc = ys - beta
        ranks = np.empty(k)
        ranks[np.argsort(np.abs(yc), kind="stable")] = np.arange(1, k + 1)
        signed = np.sign(yc) * ranks
        if estimator == "R0":
            neg = -signed[signed < 0]
            k0 = int(k - (neg.max() if neg.size else 0) - 1)
            se_k0 = math.sqrt(2 * max(0, k0) + 2)
        elif estimator == "Q0":
            sr = signed[signed > 0].sum()
            k0f = k - 0.5 - math.sqrt(max(0.0, 2 * k * k - 4 * sr + 0.25))
            var_sr = (k * (k + 1) * (2 * k + 1) + 10 * k0f**3 + 27 * k0f**2 + 17 * k0f
                      - 18 * k * k0f**2 - 18 * k * k0f + 6 * k**2 * k0f) / 24  # fmt: skip
            den = (k - 0.5) ** 2 - k0f * (2 * k - k0f - 1)
            se_k0 = 2 * math.sqrt(max(var_sr, 0.0)) / math.sqrt(den) if den > 0 else math.nan
            k0 = k0f
        else:
            sr = signed[signed > 0].sum()
            k0f = (4 * sr - k * (k + 1)) / (2 * k - 1)
            var_sr = (k * (k + 1) * (2 * k + 1) + 10 * k0f**3 + 27 * k0f**2 + 17 * k0f
                      - 18 * k * k0f**2 - 18 * k * k0f + 6 * k**2 * k0f) / 24  # fmt: skip
            se_k0 = 4 * math.sqrt(max(var_sr, 0.0)) / (2 * k - 1)
            k0 = k0f
        k0 = int(round(max(0.0, k0)))
        se_k0 = max(0.0, se_k0)
    p_k0 = None
    if estimator == "R0":
        # P(R0 >= k0 + 1) under no missing studies is 2^-(k0+1) (Duval & Tweedie 2000)
        p_k0 = 0.5 ** (k0 + 1)
    slab = x.labels
    if k0 > 0 and (x.provenance.get("slab_default", False) or slab is None):
        slab = tuple(f"Study {i + 1}" for i in range(k))
    if k0 > 0:
        fill_y = sign * (2 * beta - ys[k - k0 :])
        fill_v = vs[k - k0 :]
        y_all = np.concatenate([x.yi, fill_y])
        v_all = np.concatenate([x.vi, fill_v])
        slab_all = tuple(slab) + tuple(f"Filled {i + 1}" for i in range(k0))
    else:
        y_all, v_all, slab_all = x.yi, x.vi, tuple(slab)
    ka = y_all.size
    fit = _fit(y_all, v_all, np.ones((ka, 1)), ("intrcpt",), x.method, x.test, alpha,
               slab_all, x.measure, None)  # fmt: skip
    filled = np.r_[np.zeros(k, bool), np.ones(ka - k, bool)]
    return TrimfillResult(fit, k0, side, float(se_k0), p_k0, estimator, filled)


@dataclass(frozen=True, eq=False)
class LeaveOneOutResult:
    """One row per omitted study (metafor ``leave1out``)."""

    slab: tuple
    estimate: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    q: np.ndarray
    qp: np.ndarray
    tau2: np.ndarray | None
    i2: np.ndarray
    h2: np.ndarray
    method: str = "REML"
    provenance: dict = field(default_factory=dict)

    def to_frame(self):
        import pandas as pd

        d = {"estimate": self.estimate, "se": self.se, "zval": self.zval, "pval": self.pval,
             "ci_lb": self.ci_lb, "ci_ub": self.ci_ub, "Q": self.q, "Qp": self.qp}  # fmt: skip
        if self.tau2 is not None:
            d["tau2"] = self.tau2
        d["I2"], d["H2"] = self.i2, self.h2
        return pd.DataFrame(d, index=list(self.slab))

    def summary(self) -> str:
        return self.to_frame().to_string(float_format=lambda v: f"{v:.4f}")

    def metafor_dict(self, expected=None, interp=None) -> dict:
        from metasift.synthesis.refcases import _lst

        out = {
            "model": "leave1out",
            "slab": list(self.slab),
            "estimate": _lst(self.estimate),
            "se": _lst(self.se),
            "stat": _lst(self.zval),
            "pval": _lst(self.pval),
            "ci.lb": _lst(self.ci_lb),
            "ci.ub": _lst(self.ci_ub),
            "Q": _lst(self.q),
            "Qp": _lst(self.qp),
            "I2": _lst(self.i2),
            "H2": _lst(self.h2),
        }
        if self.tau2 is not None:
            out["tau2"] = _lst(self.tau2)
        return out


def leave1out(x: RmaResult) -> LeaveOneOutResult:
    """Refit the intercept-only model k times, each time leaving one study out."""
    if not isinstance(x, RmaResult) or not x.int_only:
        raise SynthesisError("leave1out: needs an intercept-only rma fit")
    if x.k < 3:
        raise SynthesisError("leave1out: needs k >= 3")
    alpha = 1 - x.level
    rows = []
    for i in range(x.k):
        keep = np.arange(x.k) != i
        rows.append(_fit(x.yi[keep], x.vi[keep], np.ones((x.k - 1, 1)), ("intrcpt",), x.method,
                         x.test, alpha))  # fmt: skip

    def col(f):
        return np.array([f(r) for r in rows], dtype=float)

    fe = x.method in ("FE", "EE")
    slab = x.labels
    return LeaveOneOutResult(
        tuple(slab), col(lambda r: r.beta[0]), col(lambda r: r.se[0]), col(lambda r: r.zval[0]),
        col(lambda r: r.pval[0]), col(lambda r: r.ci_lb[0]), col(lambda r: r.ci_ub[0]),
        col(lambda r: r.qe), col(lambda r: r.qep), None if fe else col(lambda r: r.tau2),
        col(lambda r: r.i2), col(lambda r: r.h2), x.method, dict(x.provenance),
    )  # fmt: skip
