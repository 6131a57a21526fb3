"""Public API behaviour: parameter errors, result objects, provenance, zero-cell options,
predictions and back-transformations (numbers against closed forms computed here)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

import metasift.synthesis as S
from metasift.errors import MetasiftError, ParameterError
from metasift.synthesis import (
    confint,
    escalc,
    leave1out,
    predict,
    regtest,
    rma,
    rma_mh,
    rma_peto,
    subgroup,
    trimfill,
)

API = ["escalc", "rma", "rma_mh", "rma_peto", "regtest", "trimfill", "leave1out", "confint",
       "predict", "forest", "funnel", "pool_characteristics", "direction_summary",
       "effect_direction_plot"]  # fmt: skip


@pytest.fixture(scope="module")
def bcg(shared_dir):
    d = pd.read_csv(shared_dir / "benchmarks" / "meta" / "data" / "dat.bcg.csv")
    slab = [f"{a} {y}" for a, y in zip(d.author, d.year, strict=True)]
    es = escalc("RR", ai=d.tpos, bi=d.tneg, ci=d.cpos, di=d.cneg, slab=slab)
    return d, es


def test_public_api_is_exposed():
    for name in API:
        assert callable(getattr(S, name)), name
        assert name in S.__all__


def test_parameter_errors_follow_one_form():
    with pytest.raises(ParameterError) as e:
        rma([0.1, 0.2, 0.3], [0.01, 0.02, 0.03], method="reml2")
    assert str(e.value).startswith("The 'method' parameter of rma must be one of {")
    assert "Got 'reml2' instead." in str(e.value)
    with pytest.raises(ParameterError):
        escalc("XYZ", ai=[1], bi=[2], ci=[3], di=[4])
    with pytest.raises(ParameterError):
        rma([0.1, 0.2], [0.1, 0.1], test="t")


def test_bad_input_raises_typed_errors():
    with pytest.raises(MetasiftError):
        rma([0.1, 0.2], [0.1])
    with pytest.raises(MetasiftError):
        rma([0.1, 0.2, 0.3], [0.1, 0.0, 0.2])
    with pytest.raises(MetasiftError):
        escalc("OR", ai=[-1], bi=[2], ci=[3], di=[4])
    with pytest.raises(MetasiftError):
        rma(yi=[0.1, 0.2, 0.3])


def test_results_are_frozen_with_summary_frame_and_provenance(bcg):
    _, es = bcg
    res = rma(es, method="REML", test="knha")
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.tau2 = 0.0
    text = res.summary()
    assert "Random-Effects Model (k = 13; tau^2 estimator: REML)" in text
    assert "tval" in text and f"{res.tau2:.4f}" in text
    frame = res.to_frame()
    assert list(frame.index) == ["intrcpt"] and frame.loc["intrcpt", "estimate"] == res.beta[0]
    prov = res.provenance
    assert prov["metasift_version"] == __import__("metasift").__version__
    assert prov["settings"]["method"] == "REML" and prov["settings"]["test"] == "knha"
    assert prov["input_checksum"] == rma(es, method="DL").provenance["input_checksum"]
    assert prov["input_checksum"] != rma(es.yi + 1, es.vi).provenance["input_checksum"]
    for obj in (confint(res), predict(res), leave1out(res), regtest(res), trimfill(res),
                subgroup(es, groups=bcg[0].alloc)):  # fmt: skip
        assert isinstance(obj.summary(), str) and len(obj.to_frame()) >= 1


def test_escalc_zero_cell_options():
    a, b, c, d = [0, 5, 0], [10, 5, 10], [0, 3, 2], [10, 7, 8]
    es = escalc("OR", ai=a, bi=b, ci=c, di=d)
    # table 1 is a double zero, kept; 1/2 added to its cells
    assert es.yi[0] == pytest.approx(math.log(0.5 * 10.5 / (10.5 * 0.5)))
    assert es.vi[1] == pytest.approx(1 / 5 + 1 / 5 + 1 / 3 + 1 / 7)  # no zero: untouched
    assert np.isnan(escalc("OR", ai=a, bi=b, ci=c, di=d, drop00=True).yi[0])
    allc = escalc("OR", ai=a, bi=b, ci=c, di=d, to="all")
    assert allc.vi[1] == pytest.approx(1 / 5.5 + 1 / 5.5 + 1 / 3.5 + 1 / 7.5)
    none = escalc("OR", ai=a, bi=b, ci=c, di=d, to="none")
    assert np.isnan(none.yi[0]) and np.isfinite(none.yi[1])
    if0 = escalc("OR", ai=a, bi=b, ci=c, di=d, to="if0all", add=1.0)
    assert if0.vi[1] == pytest.approx(1 / 6 + 1 / 6 + 1 / 4 + 1 / 8)


def test_predict_newmods_and_transforms(bcg):
    d, es = bcg
    res = rma(es, mods={"ablat": d.ablat.to_numpy(float)})
    p = predict(res, newmods=[10, 30])
    x = np.array([[1, 10], [1, 30]])
    assert np.allclose(p.pred, x @ res.beta)
    assert np.allclose(p.se, np.sqrt(np.einsum("ij,jk,ik->i", x, res.vb, x)))
    assert np.allclose(p.pi_ub - p.pred, 1.959963984540054 * np.sqrt(p.se**2 + res.tau2))
    pe = predict(res, newmods=[10], transf="exp")
    assert pe.pred[0] == pytest.approx(math.exp(p.pred[0]))
    with pytest.raises(MetasiftError):
        predict(res, newmods=[[1, 2]])
    fe = rma(es, method="FE")
    assert predict(fe).pi_lb is None


def test_mh_and_peto_summaries(bcg):
    d, _ = bcg
    mh = rma_mh("OR", ai=d.tpos, bi=d.tneg, ci=d.cpos, di=d.cneg)
    assert "Mantel-Haenszel" in mh.summary() and "Tarone" in mh.summary()
    assert mh.exp["pred"] == pytest.approx(math.exp(mh.beta))
    pe = rma_peto(ai=d.tpos, bi=d.tneg, ci=d.cpos, di=d.cneg)
    assert pe.k == 13 and np.isclose(pe.weights_pct.sum(), 100)


def test_subgroup_q_between_equals_meta_regression_of_estimates(bcg):
    d, es = bcg
    sg = subgroup(es, groups=d.alloc, method="DL")
    est = np.array([f.beta[0] for f in sg.fits])
    w = 1 / np.array([f.se[0] for f in sg.fits]) ** 2
    mean = (w @ est) / w.sum()
    assert sg.qb == pytest.approx(float(w @ (est - mean) ** 2), rel=1e-10)
    assert sg.levels == ("alternate", "random", "systematic")


def test_categorical_moderator_gives_treatment_dummies(bcg):
    d, es = bcg
    res = rma(es, mods={"alloc": d.alloc.to_numpy()})
    assert res.coef_names == ("intrcpt", "allocrandom", "allocsystematic")
    assert res.qm_df == (2,)


@pytest.mark.parametrize("method", ["REML", "DL"])
def test_identical_estimates_under_knha_give_zero_se_as_metafor(method):
    """metafor 4.x: rma(c(.5,.5,.5), c(.1,.2,.1), test="knha") gives se = 0, pval = 0 and
    ci.lb = ci.ub = 0.5 (R divides by zero to Inf); no error."""
    from metasift.synthesis import rma

    r = rma([0.5, 0.5, 0.5], [0.1, 0.2, 0.1], method=method, test="knha")
    assert (float(r.se[0]), float(r.pval[0])) == (0.0, 0.0)
    assert float(r.ci_lb[0]) == float(r.ci_ub[0]) == 0.5
