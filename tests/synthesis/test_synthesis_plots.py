"""Plots: structural checks (rows = k + summaries) and image comparisons at fixed DPI against
the committed baselines in tests/synthesis/baseline/ (RMS pixel difference, so font hinting
does not flake). Regenerate the baselines with METASIFT_UPDATE_BASELINES=1 after an
intentional change, and look at them before committing."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.testing.compare import compare_images  # noqa: E402

from metasift.errors import MetasiftError  # noqa: E402
from metasift.synthesis import (  # noqa: E402
    direction_summary,
    effect_direction_plot,
    escalc,
    forest,
    funnel,
    rma,
    rma_mh,
    subgroup,
    trimfill,
)

BASELINE = Path(__file__).parent / "baseline"
DPI = 72
RMS_TOL = 6.0  # on the 0-255 scale: text anti-aliasing differences stay well below this


@pytest.fixture(scope="module")
def bcg(shared_dir):
    d = pd.read_csv(shared_dir / "benchmarks" / "meta" / "data" / "dat.bcg.csv")
    slab = [f"{a} {y}" for a, y in zip(d.author, d.year, strict=True)]
    es = escalc("RR", ai=d.tpos, bi=d.tneg, ci=d.cpos, di=d.cneg, slab=slab)
    return d, es


def test_forest_rows_are_studies_plus_summary(bcg):
    _, es = bcg
    res = rma(es)
    fig = forest(res, transf="exp")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == res.k + 1 == len(fig.metasift_rows)
    assert labels[:-1] == list(es.slab) and labels[-1].startswith("RE model")
    squares = [ln for ln in fig.axes[0].lines if ln.get_marker() == "s"]
    assert len(squares) == res.k
    assert len(fig.axes[0].patches) == 1  # one diamond
    plt.close(fig)


def test_forest_subgroups_have_their_own_diamonds(bcg):
    d, es = bcg
    sg = subgroup(es, groups=d.alloc, method="DL")
    fig = forest(sg)
    assert len(fig.metasift_rows) == es.k + len(sg.levels) + 1
    assert len(fig.axes[0].patches) == len(sg.levels) + 1
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "Test for subgroup differences" in texts and "alternate" in texts
    plt.close(fig)


def test_forest_of_mh_fit_and_refusal_of_metaregression(bcg):
    d, es = bcg
    fig = forest(rma_mh("OR", ai=d.tpos, bi=d.tneg, ci=d.cpos, di=d.cneg))
    assert len(fig.metasift_rows) == 14 and fig.metasift_rows[-1] == "MH model"
    plt.close(fig)
    with pytest.raises(MetasiftError):
        forest(rma(es, mods={"ablat": d.ablat.to_numpy(float)}))


def test_funnel_marks_filled_studies(bcg):
    _, es = bcg
    tf = trimfill(rma(es))
    fig = funnel(tf)
    open_pts = [ln for ln in fig.axes[0].lines if ln.get_markerfacecolor() == "white"]
    assert sum(len(ln.get_xdata()) for ln in open_pts) == tf.k0
    assert fig.metasift_points == es.k + tf.k0
    plt.close(fig)


def test_effect_direction_plot_structure():
    s = direction_summary(["A", "A", "B", "C"], ["pain", "sleep", "pain", "sleep"],
                          direction=["benefit", "harm", "mixed", "benefit"], n=[40, 40, 120, 400])  # fmt: skip
    fig = effect_direction_plot(s)
    assert fig.metasift_rows == ("A", "B", "C", "Votes (benefit/n)")
    plt.close(fig)


def _check_image(fig, name, tmp_path):
    actual = tmp_path / name
    fig.savefig(actual, dpi=DPI)
    plt.close(fig)
    expected = BASELINE / name
    if os.environ.get("METASIFT_UPDATE_BASELINES") == "1":
        BASELINE.mkdir(exist_ok=True)
        expected.write_bytes(actual.read_bytes())
    assert expected.is_file(), f"missing baseline {expected} (METASIFT_UPDATE_BASELINES=1)"
    err = compare_images(str(expected), str(actual), tol=RMS_TOL)
    assert err is None, err


def test_forest_image(bcg, tmp_path):
    d, es = bcg
    cols = {
        "Vaccinated": [f"{a}/{a + b}" for a, b in zip(d.tpos, d.tneg, strict=True)],
        "Control": [f"{c}/{c + e}" for c, e in zip(d.cpos, d.cneg, strict=True)],
    }
    with matplotlib.rc_context({"font.family": "DejaVu Sans"}):
        fig = forest(rma(es), transf="exp", columns=cols, dpi=DPI)
        _check_image(fig, "forest_bcg_rr_reml.png", tmp_path)


def test_funnel_image(bcg, tmp_path):
    _, es = bcg
    with matplotlib.rc_context({"font.family": "DejaVu Sans"}):
        fig = funnel(trimfill(rma(es)), dpi=DPI)
        _check_image(fig, "funnel_bcg_rr_trimfill.png", tmp_path)


def test_image_comparison_detects_a_change(bcg, tmp_path):
    """The comparison can fail: a funnel without the filled study differs from the baseline."""
    _, es = bcg
    fig = funnel(rma(es), dpi=DPI)
    out = tmp_path / "other.png"
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    assert compare_images(str(BASELINE / "funnel_bcg_rr_trimfill.png"), str(out),
                          tol=RMS_TOL) is not None  # fmt: skip
    assert np.isfinite(RMS_TOL)
