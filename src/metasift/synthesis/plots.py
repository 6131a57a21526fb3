"""Plots of fitted results (matplotlib, imported lazily): forest, contour-enhanced funnel and
effect direction plot. Every function takes a fitted result and never refits; each returns the
matplotlib Figure. The forest plot's y tick labels are its rows (studies, then summaries), which
is what the structural tests check.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from metasift.synthesis._common import SynthesisError, fmt_p


def _p(p) -> str:
    f = fmt_p(p)
    return f"p {f[0]} {f[1:]}" if f.startswith("<") else f"p = {f}"


def _mpl():
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    return plt, Polygon


def _tf(x, transf):
    from metasift.synthesis.rma import apply_transf

    return apply_transf(np.asarray(x, dtype=float), transf) if transf else np.asarray(x, float)


def _study_rows(res, level):
    """(labels, yi, ci_lb, ci_ub, weight %) of the studies of a fit."""
    from metasift.synthesis.mh import MHResult

    alpha = 1 - (level if level is not None else res.level)
    z = float(-special.ndtri(alpha / 2))
    if isinstance(res, MHResult):
        ok = np.isfinite(res.yi)
        yi, vi = res.yi[ok], res.vi[ok]
        w = res.weights_pct[: res.yi.size][ok] if res.weights_pct.size == res.yi.size else None
        labels = res.slab if res.slab is not None else tuple(str(i + 1) for i in range(res.k))
        labels = tuple(np.asarray(labels, dtype=object)[ok])
    else:
        yi, vi, w = res.yi, res.vi, res.weights_pct
        labels = res.labels
    se = np.sqrt(vi)
    return list(labels), yi, yi - z * se, yi + z * se, w


def _summary_of(res):
    """(label, est, ci_lb, ci_ub, pi_lb, pi_ub, het text) for a fit."""
    from metasift.synthesis.mh import MHResult
    from metasift.synthesis.rma import predict

    if isinstance(res, MHResult):
        name = "MH model" if res.model == "rma.mh" else "Peto model"
        het = (f"Heterogeneity: Q = {res.qe:.2f}, df = {res.k_yi - 1}, {_p(res.qep)}; "
               f"I\u00b2 = {res.i2:.0f}%")  # fmt: skip
        test = f"Test for overall effect: z = {res.zval:.2f}, {_p(res.pval)}"
        return name, res.beta, res.ci_lb, res.ci_ub, None, None, het + "\n" + test
    if not res.int_only:
        raise SynthesisError("forest: needs an intercept-only model (or a subgroup result)")
    pr = predict(res)
    fe = res.method in ("FE", "EE")
    name = "FE model" if fe else f"RE model ({res.method}{', HKSJ' if res.test == 'knha' else ''})"
    het = f"Heterogeneity: Q = {res.qe:.2f}, df = {res.qe_df}, {_p(res.qep)}; "
    het += f"I\u00b2 = {res.i2:.0f}%" + ("" if fe else f"; \u03c4\u00b2 = {res.tau2:.4f}")
    stat = "t" if res.test == "knha" else "z"
    test = f"Test for overall effect: {stat} = {res.zval[0]:.2f}, {_p(res.pval[0])}"
    pil = None if pr.pi_lb is None else float(pr.pi_lb[0])
    piu = None if pr.pi_ub is None else float(pr.pi_ub[0])
    return (name, float(res.beta[0]), float(res.ci_lb[0]), float(res.ci_ub[0]), pil, piu,
            het + "\n" + test)  # fmt: skip


def forest(
    res,
    transf=None,
    xlab: str | None = None,
    refline: float | None = None,
    columns: dict | None = None,
    show_weights: bool = True,
    show_pi: bool = True,
    level=None,
    figsize=None,
    dpi: int = 100,
    title: str | None = None,
):
    """Forest plot: one row per study (label, optional arm-data ``columns``, square sized by
    weight with its CI, estimate [CI] and weight), the pooled diamond, the prediction interval
    (dotted, random-effects models) and the heterogeneity line. A :class:`SubgroupResult` gets
    one block per subgroup with its own diamond, then the overall diamond and the test for
    subgroup differences. ``transf`` (e.g. "exp") back-transforms the axis values."""
    from metasift.synthesis.bias import TrimfillResult
    from metasift.synthesis.subgroup import SubgroupResult

    plt, Polygon = _mpl()
    if isinstance(res, TrimfillResult):
        res = res.fit
    blocks = []  # (heading or None, fit)
    if isinstance(res, SubgroupResult):
        blocks = [(lev, f) for lev, f in zip(res.levels, res.fits, strict=True)]
        overall = res.overall
    else:
        blocks = [(None, res)]
        overall = None
    rows = []  # (kind, label, data)
    for head, fit in blocks:
        if head is not None:
            rows.append(("head", str(head), None))
        labels, yi, lb, ub, w = _study_rows(fit, level)
        for i, lab in enumerate(labels):
            wi = None if w is None else float(w[i])
            rows.append(("study", str(lab), (yi[i], lb[i], ub[i], wi, fit, i)))
        summ = _summary_of(fit)
        if head is not None:
            summ = (f"{summ[0]} for {head}",) + summ[1:]
        rows.append(("summary", None, summ))
        rows += [("text", line, None) for line in summ[6].split("\n")]
    if overall is not None:
        summ = _summary_of(overall)
        rows.append(("summary", None, (f"Overall {summ[0]}",) + summ[1:]))
        rows += [("text", line, None) for line in summ[6].split("\n")]
        rows.append(("text", f"Test for subgroup differences: Q = {res.qb:.2f}, df = {res.qb_df}, "
                             f"{_p(res.qbp)}", None))  # fmt: skip
    n = len(rows)
    ncol = len(columns) if columns else 0
    # layout in inches: label | arm-data columns | plot | estimate [CI] | weight
    w_lab, w_col, w_plot, w_est, w_wt = 2.6, 1.05, 3.6, 2.6, 0.8 if show_weights else 0.0
    total_w = w_lab + ncol * w_col + w_plot + w_est + w_wt + 0.3
    height = figsize[1] if figsize else 1.6 + 0.27 * (n + 3)
    width = figsize[0] if figsize else total_w
    fig = plt.figure(figsize=(width, height), dpi=dpi)
    fx = 1.0 / total_w
    bottom, top_frac = 1.1 / height, 1 - 0.45 / height
    x0 = (w_lab + ncol * w_col + 0.15) * fx
    ax = fig.add_axes((x0, bottom, w_plot * fx, top_frac - bottom))
    right = fig.add_axes((x0 + w_plot * fx, bottom, (w_est + w_wt) * fx, top_frac - bottom),
                         sharey=ax)  # fmt: skip
    right.axis("off")
    right.set_xlim(0, w_est + w_wt)
    ys = np.arange(n, 0, -1, dtype=float)
    tick_y, tick_lab = [], []
    xs_all = []
    wmax = max([r[2][3] for r in rows if r[0] == "study" and r[2][3] is not None] or [1.0])
    col_x = [-(ncol - j) * w_col / w_plot for j in range(ncol)]  # in axes fraction

    from matplotlib.transforms import blended_transform_factory

    left_edge = blended_transform_factory(fig.transFigure, ax.transData)

    def ytext(xfrac, y, txt, **kw):
        ax.text(xfrac, y, txt, transform=ax.get_yaxis_transform(), va="center", fontsize=8, **kw)

    for y, (kind, label, data) in zip(ys, rows, strict=True):
        if kind == "head":
            ax.text(0.01, y, label, transform=left_edge, va="center", fontsize=8,
                    fontweight="bold")  # fmt: skip
            continue
        if kind == "text":
            ax.text(0.01, y, label, transform=left_edge, va="center", fontsize=7)
            continue
        if kind == "study":
            est, lo, hi, wi, fit, idx = data
            e, lo_t, hi_t = _tf([est, lo, hi], transf)
            ax.plot([lo_t, hi_t], [y, y], color="black", lw=0.9)
            size = 3 + 8 * math.sqrt((wi or wmax) / wmax)
            ax.plot([e], [y], marker="s", color="black", ms=size, ls="none")
            xs_all += [lo_t, hi_t]
            tick_y.append(y)
            tick_lab.append(label)
            right.text(0.15, y, f"{e:.2f} [{lo_t:.2f}, {hi_t:.2f}]", va="center", fontsize=8)
            if show_weights and wi is not None:
                right.text(w_est + w_wt - 0.05, y, f"{wi:.1f}%", va="center", ha="right",
                           fontsize=8)  # fmt: skip
            for j, (_, vals) in enumerate((columns or {}).items()):
                ytext(col_x[j] + 0.9 * w_col / w_plot, y, str(list(vals)[idx]), ha="right")
        else:
            name, est, lo, hi, pil, piu, het = data
            e, lo_t, hi_t = _tf([est, lo, hi], transf)
            ax.add_patch(Polygon([[lo_t, y], [e, y + 0.38], [hi_t, y], [e, y - 0.38]],
                                 closed=True, color="black"))  # fmt: skip
            xs_all += [lo_t, hi_t]
            txt = f"{e:.2f} [{lo_t:.2f}, {hi_t:.2f}]"
            if show_pi and pil is not None:
                pl, pu = _tf([pil, piu], transf)
                ax.plot([pl, pu], [y, y], color="black", ls=":", lw=1.2)
                ax.plot([pl, pl], [y - 0.2, y + 0.2], color="black", lw=0.9)
                ax.plot([pu, pu], [y - 0.2, y + 0.2], color="black", lw=0.9)
                xs_all += [pl, pu]
                right.text(0.15, y - 0.5, f"PI [{pl:.2f}, {pu:.2f}]", va="center", fontsize=7)
            tick_y.append(y)
            tick_lab.append(name)
            right.text(0.15, y, txt, va="center", fontsize=8, fontweight="bold")
    ax.set_yticks(tick_y)
    ax.set_yticklabels(tick_lab, fontsize=8)
    ax.tick_params(axis="y", length=0, pad=4 + 72 * ncol * w_col)
    ax.set_ylim(-0.6, n + 0.8)
    log = transf == "exp"
    ref = refline if refline is not None else (1.0 if log else 0.0)
    ax.axvline(ref, color="grey", lw=0.8, ls="--")
    finite = [x for x in xs_all if np.isfinite(x) and (x > 0 or not log)]
    if finite:
        lo, hi = min(finite + [ref]), max(finite + [ref])
        if log:
            ax.set_xscale("log")
            ax.set_xlim(lo / 1.15, hi * 1.15)
        else:
            pad = 0.05 * (hi - lo or 1.0)
            ax.set_xlim(lo - pad, hi + pad)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(xlab or ("Estimate" if transf is None else f"Estimate ({transf})"), fontsize=9)
    head_y = n + 0.45
    right.text(0.15, head_y, "Estimate [95% CI]", fontsize=8, fontweight="bold")
    if show_weights:
        right.text(w_est + w_wt - 0.05, head_y, "Weight", ha="right", fontsize=8,
                   fontweight="bold")  # fmt: skip
    for j, name in enumerate(columns or {}):
        ax.text(col_x[j] + 0.9 * w_col / w_plot, head_y, str(name), ha="right", fontsize=8,
                fontweight="bold", transform=ax.get_yaxis_transform())  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=10)
    fig.metasift_rows = tuple(tick_lab)
    return fig


def funnel(res, contours=(0.90, 0.95, 0.99), refline: float = 0.0, level=None, dpi: int = 100,
           figsize=(6.0, 5.0), xlab: str | None = None):  # fmt: skip
    """Contour-enhanced funnel plot (Peters et al. 2008): effect sizes against their standard
    errors (0 at the top), shaded where a study would be significant at the ``contours`` levels
    (two-sided, around ``refline``), with the pooled estimate and its pseudo confidence limits.
    Studies imputed by :func:`trimfill` are drawn as open circles."""
    from metasift.synthesis.bias import TrimfillResult

    plt, _ = _mpl()
    filled = None
    if isinstance(res, TrimfillResult):
        filled = res.filled
        res = res.fit
    if not getattr(res, "int_only", False):
        raise SynthesisError("funnel: needs an intercept-only model")
    yi, sei = res.yi, np.sqrt(res.vi)
    est = float(res.beta[0])
    alpha = 1 - (level if level is not None else res.level)
    z = float(-special.ndtri(alpha / 2))
    fig, ax = plt.subplots(figsize=figsize, dpi=dpi)
    smax = float(sei.max()) * 1.1
    s = np.linspace(0, smax, 100)
    shades = ["#ffffff", "#dddddd", "#bbbbbb", "#999999"]
    levs = sorted(contours)
    zs = [float(-special.ndtri((1 - c) / 2)) for c in levs]
    xspan = max(np.abs(yi - refline).max(), zs[-1] * smax) * 1.15
    ax.fill_betweenx(s, refline - xspan, refline + xspan, color=shades[-1], lw=0)
    for i in range(len(zs) - 1, -1, -1):
        ax.fill_betweenx(s, refline - zs[i] * s, refline + zs[i] * s, color=shades[i], lw=0)
    ax.plot([est, est - z * smax], [0, smax], color="black", lw=0.8, ls="--")
    ax.plot([est, est + z * smax], [0, smax], color="black", lw=0.8, ls="--")
    ax.axvline(est, color="black", lw=0.9)
    obs = np.ones(yi.size, bool) if filled is None else ~filled
    ax.plot(yi[obs], sei[obs], "o", color="black", ms=5)
    if filled is not None and filled.any():
        ax.plot(yi[filled], sei[filled], "o", mfc="white", mec="black", ms=5)
    ax.set_ylim(smax, 0)
    ax.set_xlim(refline - xspan, refline + xspan)
    ax.set_ylabel("Standard error")
    ax.set_xlabel(xlab or "Effect size")
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=shades[0], edgecolor="grey", label=f"p > {1 - levs[0]:.2f}")]
    for i in range(1, len(levs)):
        handles.append(Patch(facecolor=shades[i], edgecolor="grey",
                             label=f"{1 - levs[i]:.2f} < p \u2264 {1 - levs[i - 1]:.2f}"))  # fmt: skip
    handles.append(Patch(facecolor=shades[len(levs)], edgecolor="grey",
                         label=f"p \u2264 {1 - levs[-1]:.2f}"))  # fmt: skip
    ax.legend(handles=handles, loc="lower right", fontsize=7, frameon=True)
    fig.tight_layout()
    fig.metasift_points = int(yi.size)
    return fig


def effect_direction_plot(summary, dpi: int = 100, figsize=None, show_votes: bool = True):
    """Effect direction plot (Thomson & Thomas 2013; Boon & Thomson 2021): rows = studies,
    columns = outcome domains, then design, sample size and risk of bias. Up/down triangles for
    benefit/harm, a left-right pair for no change or mixed findings, blank when not measured;
    marker size by sample size (large >= 300, medium 50-299, small < 50). The last row gives
    the per-domain vote count and sign-test P."""
    from metasift.synthesis.narrative import BENEFIT, HARM, size_class

    plt, _ = _mpl()
    studies, domains = summary.studies, summary.domains
    extra = ["Design", "N", "RoB"]
    ncols = len(domains) + len(extra)
    nrows = len(studies) + (1 if show_votes else 0)
    fig, ax = plt.subplots(
        figsize=figsize or (2.2 + 1.1 * ncols, 1.0 + 0.35 * (nrows + 1)), dpi=dpi
    )
    sizes = {"large": 11, "medium": 8, "small": 5, None: 8}
    for r, s in enumerate(studies):
        y = nrows - r
        ms = sizes[size_class(summary.sample_size.get(s))]
        for c, d in enumerate(domains):
            cell = summary.cells.get((s, d))
            if cell is None:
                continue
            if cell[0] == BENEFIT:
                ax.plot([c], [y], marker="^", color="black", ms=ms, ls="none")
            elif cell[0] == HARM:
                ax.plot([c], [y], marker="v", color="black", ms=ms, ls="none")
            else:
                ax.plot([c - 0.08], [y], marker="<", color="black", ms=ms * 0.8, ls="none")
                ax.plot([c + 0.08], [y], marker=">", color="black", ms=ms * 0.8, ls="none")
        for j, key in enumerate(extra):
            val = {"Design": summary.design, "N": summary.sample_size, "RoB": summary.rob}[key]
            ax.text(len(domains) + j, y, str(val.get(s, "")), ha="center", va="center",
                    fontsize=8)  # fmt: skip
    if show_votes:
        for c, d in enumerate(domains):
            v = summary.vote(d)
            txt = f"{v.benefit}/{v.n}\nP={v.pval:.2f}" if v.n else "-"
            ax.text(c, 1, txt, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(ncols))
    ax.set_xticklabels(list(domains) + extra, fontsize=8, rotation=30, ha="left")
    ax.xaxis.tick_top()
    ylabels = list(studies) + (["Votes (benefit/n)"] if show_votes else [])
    ax.set_yticks([nrows - r for r in range(nrows)])
    ax.set_yticklabels(ylabels, fontsize=8)
    ax.set_xlim(-0.6, ncols - 0.4)
    ax.set_ylim(0.4, nrows + 0.6)
    ax.tick_params(length=0)
    for sp in ax.spines.values():
        sp.set_visible(False)
    ax.grid(False)
    fig.tight_layout()
    fig.metasift_rows = tuple(ylabels)
    return fig
