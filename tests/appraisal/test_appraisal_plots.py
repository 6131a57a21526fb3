"""robvis-style plots: structure (what is drawn where) and an image comparison at fixed DPI
against committed baselines in tests/appraisal/baseline/.

To regenerate the baselines after an intended change of look:
``.venv/bin/python tests/appraisal/test_appraisal_plots.py`` (and look at them before committing).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.style
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.testing.compare import compare_images

from metasift.appraisal import TOOLS, apply_override, assess
from metasift.appraisal.plots import summary_plot, traffic_light
from metasift.errors import ParameterError

HERE = Path(__file__).parent
DATA = HERE / "data"
BASELINE = HERE / "baseline"
DPI = 72
# RMS difference allowed between renderings (0-255 scale): absorbs anti-aliasing differences
# between FreeType builds; recolouring a single cell of the ROBINS-I plot gives RMS 4.9.
IMAGE_TOL = 2.0
D7 = ("D1", "D2", "D3", "D4", "D5", "D6", "D7")


def robins_i_rows():
    df = pd.read_csv(DATA / "robvis_data_robins_i.csv", dtype=str)
    return {r.Study: {c: r[c] for c in (*D7, "Overall")} for _, r in df.iterrows()}


def robins_weighted():
    df = pd.read_csv(DATA / "robvis_data_robins.csv")
    rows = {r.Study: {c: r[c] for c in (*D7, "Overall")} for _, r in df.iterrows()}
    return rows, dict(zip(df.Study, df.Weight, strict=True)), df


def rob2_assessments():
    base = {
        "1.1": "Y",
        "1.2": "Y",
        "1.3": "N",
        "2.1": "N",
        "2.2": "N",
        "2.6": "Y",
        "3.1": "Y",
        "4.1": "N",
        "4.2": "N",
        "4.3": "N",
        "5.1": "Y",
        "5.2": "N",
        "5.3": "N",
    }
    a1 = assess("rob2", base, effect="assignment")
    a2 = assess("rob2", base | {"1.1": "N", "5.1": "NI"}, effect="assignment")
    a2 = apply_override(a2, None, "High", "both concerns favour the intervention")
    a3 = assess("rob2", base | {"4.1": "Y"}, effect="assignment")
    a4 = assess("rob2", {"1.2": "Y"}, effect="assignment")  # incomplete: blank cells
    return {"Takehara 2013": a1, "Poelman 2015": a2, "Sanges 2017": a3, "Raja 2016": a4}


def figures():
    rows, weights, _ = robins_weighted()
    return {
        "traffic_light_robins_i": lambda: traffic_light(robins_i_rows(), "robins_i", dpi=DPI),
        "traffic_light_rob2_assessments": lambda: traffic_light(
            rob2_assessments(), "rob2", dpi=DPI
        ),
        "summary_robins_weighted": lambda: summary_plot(rows, "robins_i", weights=weights, dpi=DPI),
    }


def render(name, path):
    with matplotlib.style.context("default"), matplotlib.rc_context({"font.family": "DejaVu Sans"}):
        figures()[name]().savefig(path, dpi=DPI)


# ---- structure -----------------------------------------------------------------------------


def cells(fig):
    ax = fig.axes[0]
    return {ln.get_gid(): ln for ln in ax.lines if (ln.get_gid() or "").startswith("cell:")}


def test_traffic_light_structure():
    data = robins_i_rows()
    fig = traffic_light(data, "robins_i")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [*D7, "Overall"]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(data)
    cs = cells(fig)
    assert len(cs) == len(data) * 8  # one circle per study x (7 domains + overall)
    tool = TOOLS["robins_i"]
    for i, (_study, row) in enumerate(data.items()):
        for col, level in row.items():
            assert to_hex(cs[f"cell:{i}:{col}"].get_markerfacecolor()) == to_hex(
                tool.level(level).colour
            )
    symbols = [t.get_text() for t in ax.texts]
    assert symbols.count("?") == 1 and symbols.count("!") == 4  # 1 NI cell, 4 Critical cells
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["+  Low", "-  Moderate", "X  Serious", "!  Critical", "?  No information"]


def test_traffic_light_from_assessments_draws_final_judgements():
    data = rob2_assessments()
    fig = traffic_light(data, "rob2")
    cs = cells(fig)
    assert len(cs) == 4 * 6
    red = to_hex(TOOLS["rob2"].level("High").colour)
    # Poelman: the reviewer's overall "High" is drawn, not the suggestion "Some concerns".
    assert to_hex(cs["cell:1:Overall"].get_markerfacecolor()) == red
    # Raja: incomplete assessment -> blank (white) cells without symbol.
    assert to_hex(cs["cell:3:D3"].get_markerfacecolor()) == "#ffffff"


def bar_widths(fig):
    ax = fig.axes[0]
    out = {}
    for p in ax.patches:
        out.setdefault(p.get_gid(), []).append(p.get_width())
    return out


def test_summary_plot_unweighted_shares():
    data = robins_i_rows()
    fig = summary_plot(data, "robins_i")
    widths = bar_widths(fig)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "Confounding" and labels[-1] == "Overall risk of bias"
    # 8 bars (7 domains + overall) per level, and each bar sums to 100 %.
    assert all(len(w) == 8 for w in widths.values())
    totals = [sum(w[i] for w in widths.values()) for i in range(8)]
    assert totals == pytest.approx([100.0] * 8)
    # D1 (first bar): 8 Moderate and 2 Serious of 10 studies.
    assert widths["bar:Moderate"][0] == pytest.approx(80.0)
    assert widths["bar:Serious"][0] == pytest.approx(20.0)


def test_summary_plot_weighted_shares_match_weights():
    rows, weights, df = robins_weighted()
    fig = summary_plot(rows, "robins_i", weights=weights)
    widths = bar_widths(fig)
    total = df.Weight.sum()
    for i, col in enumerate((*D7, "Overall")):
        for level, w in df.groupby(col).Weight.sum().items():
            assert widths[f"bar:{level}"][i] == pytest.approx(100 * w / total)


def test_plot_inputs_are_checked():
    data = robins_i_rows()
    with pytest.raises(ParameterError):
        traffic_light({}, "robins_i")
    with pytest.raises(ParameterError):
        traffic_light({"S": {"D1": "Probably fine"}}, "robins_i")
    with pytest.raises(ParameterError):
        traffic_light(rob2_assessments(), "robins_i")  # RoB 2 assessments, ROBINS-I plot
    with pytest.raises(ParameterError):
        summary_plot(data, "robins_i", weights={"Study 1": 1.0})  # missing weights
    with pytest.raises(ParameterError):
        summary_plot(data, "robins_i", weights=dict.fromkeys(data, -1.0))
    with pytest.raises(ParameterError):
        traffic_light(data, "robins_ii")


# ---- images at fixed DPI -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(figures()))
def test_plot_matches_baseline_image(name, tmp_path):
    baseline = BASELINE / f"{name}.png"
    assert baseline.is_file(), f"missing baseline {baseline}; see this module's docstring"
    actual = tmp_path / f"{name}.png"
    render(name, actual)
    diff = compare_images(str(baseline), str(actual), tol=IMAGE_TOL)
    assert diff is None, diff


if __name__ == "__main__":
    BASELINE.mkdir(exist_ok=True)
    for n in figures():
        render(n, BASELINE / f"{n}.png")
        print("wrote", BASELINE / f"{n}.png")
