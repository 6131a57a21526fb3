"""GRADE certainty per outcome and the summary-of-findings table.

Guidance cited: GRADE Handbook (2013) 5.1-5.3; Guyatt et al. J Clin Epidemiol 2011 (GRADE 4-9);
Schünemann et al. J Clin Epidemiol 2019;111:105-114 (GRADE 18, Table 1: randomized trials start
High, observational studies Low; with ROBINS-I non-randomised studies start High); Cochrane
Handbook v6 ch. 14 (14.1.5 absolute effects; 14.1.6 SoF layout). Expected absolute effects are
worked by hand from the Handbook formulas in the comments.
"""

from __future__ import annotations

import dataclasses
import math
import types

import numpy as np
import pytest

from metasift.certainty import (
    CertaintyError,
    Rating,
    corresponding_risk,
    grade,
    relative_effect_from,
    sof_row,
    sof_table,
    start_level,
)
from metasift.errors import MetasiftError, ParameterError

NOT_SERIOUS = {
    "risk_of_bias": (0, "all trials low risk of bias"),
    "inconsistency": (0, "I2 = 0%, overlapping CIs"),
    "indirectness": (0, "population and outcome as in the question"),
    "imprecision": (0, "CI excludes no effect; OIS met"),
    "publication_bias": (0, "no small-study effects"),
}


def down(**kw):
    out = dict(NOT_SERIOUS)
    out.update({k: (v, f"reason for {k}") for k, v in kw.items()})
    return out


@pytest.mark.parametrize(
    ("design", "tool", "start"),
    [
        ("rct", None, "High"),
        ("rct", "rob2", "High"),
        ("nrs", None, "Low"),
        ("nrs", "nos_cohort", "Low"),
        ("nrs", "robins_i", "High"),
    ],
)
def test_start_level_by_design(design, tool, start):
    # GRADE 18 Table 1 (RCT High, observational Low); GRADE 18 text: with ROBINS-I, NRS start High.
    assert start_level(design, tool) == start
    assert grade("o", design, NOT_SERIOUS, rob_tool=tool).level == start


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, "High"),
        ({"risk_of_bias": -1}, "Moderate"),  # one serious concern: down one level
        ({"imprecision": -2}, "Low"),  # very serious: down two levels
        ({"inconsistency": -1, "indirectness": -1}, "Low"),
        ({"publication_bias": -1, "imprecision": -1, "risk_of_bias": -1}, "Very low"),
        ({"risk_of_bias": -2, "imprecision": -2}, "Very low"),  # clamped at Very low
    ],
)
def test_rating_down_from_randomised(kw, expected):
    c = grade("Mortality", "rct", down(**kw))
    assert c.level == expected
    assert len(c.footnotes) == len(kw)
    assert all(f"reason for {k}" in " ".join(c.footnotes) for k in kw)


def test_clamping_is_noted_and_symbols():
    c = grade("x", "rct", down(risk_of_bias=-2, imprecision=-2))
    assert c.level == "Very low" and c.symbol == "⊕◯◯◯"
    assert any("clamped" in n for n in c.notes)
    assert grade("x", "rct", NOT_SERIOUS).symbol == "⊕⊕⊕⊕"
    assert grade("x", "rct", down(imprecision=-1)).symbol == "⊕⊕⊕◯"


@pytest.mark.parametrize(
    ("up", "expected"),
    [
        ({"large_effect": (1, "RR 0.3")}, "Moderate"),  # GRADE 9: RR < 0.5 -> +1
        ({"large_effect": (2, "RR 0.1")}, "High"),  # very large: +2
        ({"dose_response": (1, "gradient with dose")}, "Moderate"),
        ({"plausible_confounding": (1, "confounding would reduce effect")}, "Moderate"),
        ({"large_effect": (2, "RR 0.1"), "dose_response": (1, "gradient")}, "High"),  # capped
    ],
)
def test_rating_up_non_randomised(up, expected):
    c = grade("Remission", "nrs", NOT_SERIOUS, up)
    assert c.level == expected
    # Low (index 1) + more than two levels up would pass High: clamped, and noted.
    assert bool(c.notes) == (sum(v[0] for v in up.values()) > 2)
    assert len(c.upgrades) == len(up)


def test_rating_up_with_a_reason_to_rate_down_is_noted():
    # GRADE 18 Table 1 footnote: upgrading is usually only for NRS without reasons to rate down.
    c = grade("x", "nrs", down(imprecision=-1), {"large_effect": (1, "RR 0.4")})
    assert c.level == "Low" and any("rated up although rated down" in n for n in c.notes)
    c = grade("x", "rct", NOT_SERIOUS, {"dose_response": (1, "gradient")})
    assert c.level == "High" and any("unusual" in n for n in c.notes)


def test_every_downgrading_domain_needs_a_level_and_a_reason():
    partial = dict(NOT_SERIOUS)
    del partial["publication_bias"]
    with pytest.raises(CertaintyError, match="publication_bias"):
        grade("x", "rct", partial)
    with pytest.raises(CertaintyError, match="reason"):
        grade("x", "rct", NOT_SERIOUS | {"inconsistency": (-1, "  ")})
    with pytest.raises(CertaintyError, match="reason"):
        grade("x", "nrs", NOT_SERIOUS, {"large_effect": (1, "")})
    with pytest.raises(ParameterError, match="risk_of_bias level"):
        grade("x", "rct", NOT_SERIOUS | {"risk_of_bias": (-3, "r")})
    with pytest.raises(ParameterError, match="risk_of_bias level"):
        grade("x", "rct", NOT_SERIOUS | {"risk_of_bias": (1, "down-rating is negative")})
    with pytest.raises(ParameterError, match="dose_response level"):
        grade("x", "nrs", NOT_SERIOUS, {"dose_response": (2, "only +1 exists")})
    with pytest.raises(ParameterError, match="downgrades"):
        grade("x", "rct", NOT_SERIOUS | {"bias": (0, "r")})
    with pytest.raises(ParameterError, match="design"):
        grade("x", "observational", NOT_SERIOUS)
    with pytest.raises(ParameterError):
        grade("x", "rct", NOT_SERIOUS | {"imprecision": -1})  # no (level, reason) pair
    assert issubclass(CertaintyError, MetasiftError)


def test_certainty_is_frozen_and_reports():
    c = grade("Skin (mRSS)", "nrs", down(risk_of_bias=-1), rob_tool="robins_i")
    assert isinstance(c.downgrades[0], Rating)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.level = "High"
    df = c.to_frame()
    assert list(df.domain) == [
        "risk_of_bias",
        "inconsistency",
        "indirectness",
        "imprecision",
        "publication_bias",
    ]
    assert df.loc[0, "label"] == "serious"
    assert "MODERATE" in c.summary() and "robins_i" in c.summary()


# ---- absolute effects (Cochrane Handbook 14.1.5) ------------------------------------------


@pytest.mark.parametrize(
    ("acr", "effect", "measure", "icr"),
    [
        (0.20, 0.75, "RR", 0.15),  # 0.75 x 0.20
        (0.20, 0.70, "OR", 0.14 / 0.94),  # 0.7x0.2 / (1 - 0.2 + 0.7x0.2) = 0.14/0.94
        (0.20, 0.50, "HR", 1 - 0.8**0.5),  # 1 - (1 - 0.2)^0.5
        (0.20, -0.05, "RD", 0.15),  # 0.20 + (-0.05)
        (0.02, -0.05, "RD", 0.0),  # kept within [0, 1]
        (0.30, 1.0, "OR", 0.30),  # no effect leaves the risk unchanged
    ],
)
def test_corresponding_risk_formulas(acr, effect, measure, icr):
    assert corresponding_risk(acr, effect, measure) == pytest.approx(icr, rel=1e-12)


def test_sof_row_worked_example_rr():
    # grade.md worked check: ACR 0.20, RR 0.75 (0.60 to 0.94) -> 200 vs 150 per 1,000;
    # 50 fewer (80 fewer to 12 fewer): 0.6 x 200 = 120, 0.94 x 200 = 188.
    c = grade("Mortality", "rct", down(imprecision=-1))
    r = sof_row("Mortality", 5, 1200, (0.75, 0.60, 0.94, "RR"), 0.20, c, "fewer deaths")
    assert r.comparator_per_1000 == 200
    assert r.intervention_per_1000 == (150, 120, 188)
    assert r.difference_per_1000 == (-50, -80, -12)
    assert r.absolute_text == "50 fewer per 1,000 (from 80 fewer to 12 fewer)"
    assert r.relative_text == "RR 0.75 (0.60 to 0.94)"
    assert r.participants_text == "1,200 (5 RCTs)"


def test_sof_row_or_hr_rd():
    # OR 0.70 (0.50 to 1.20), ACR 0.20: 0.1/0.9 = 0.1111 -> 111; 0.24/1.04 = 0.2308 -> 231.
    r = sof_row("Relapse", 3, 150, (0.70, 0.50, 1.20, "OR"), 0.20, None)
    assert r.intervention_per_1000 == (149, 111, 231)
    assert r.difference_per_1000 == (-51, -89, 31)
    assert r.absolute_text == "51 fewer per 1,000 (from 89 fewer to 31 more)"
    # HR 0.5 (0.25 to 1.0), ACR 0.2: 1 - 0.8^0.25 = 0.0543 -> 54; 1 - 0.8^0.5 = 0.1056 -> 106.
    r = sof_row("Death at 1 year", 2, 90, (0.5, 0.25, 1.0, "HR"), 0.2, None)
    assert r.intervention_per_1000 == (106, 54, 200)
    assert r.difference_per_1000 == (-94, -146, 0)
    # RD -0.05 (-0.08 to -0.02), ACR 0.2: 150 (120 to 180).
    r = sof_row("Ulcers", 4, 300, (-0.05, -0.08, -0.02, "RD"), 0.2, None)
    assert (r.intervention_per_1000, r.difference_per_1000) == ((150, 120, 180), (-50, -80, -20))


def test_sof_rounding_is_half_away_from_zero():
    # 1000 x 0.1225 = 122.5 -> 123 (not banker's 122); RR 1 keeps it: difference 0.
    r = sof_row("x", 1, 10, (1.0, 0.5, 2.0, "RR"), 0.1225, None)
    assert r.comparator_per_1000 == 123 and r.intervention_per_1000[0] == 123
    # difference 1000 x (0.5 x 0.005 - 0.005) = -2.5 -> -3
    r = sof_row("x", 1, 10, (0.5, 0.5, 0.5, "RR"), 0.005, None)
    assert r.difference_per_1000 == (-3, -3, -3)


def test_sof_row_without_pooled_estimate_or_control_risk():
    c = grade("Skin (mRSS)", "nrs", down(risk_of_bias=-1, inconsistency=-1))
    r = sof_row("Skin (mRSS)", 11, 295, None, None, c, "improved in 9 of 11 studies")
    assert r.intervention_per_1000 is None and r.absolute_text == "" and r.relative_text == ""
    assert r.participants_text == "295 (11 non-randomised studies)"
    r = sof_row("x", 2, 50, (0.8, 0.6, 1.1, "RR"), None, None)
    assert r.relative_text and r.difference_per_1000 is None


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("x", 1, 10, (0.8, 0.9, 1.1, "RR"), 0.2, None), "relative_effect"),  # est < lb
        (("x", 1, 10, (0.8, 0.0, 1.1, "RR"), 0.2, None), "relative_effect"),  # ratio <= 0
        (("x", 1, 10, (0.8, 0.6, 1.1, "SMD"), 0.2, None), "measure"),
        (("x", 1, 10, (0.8, 0.6, 1.1, "RR"), 1.5, None), "assumed_control_risk"),
        (("x", -1, 10, None, None, None), "'k'"),
        (("x", 1, 10, (0.8, 0.6), 0.2, None), "relative_effect"),
        (("", 1, 10, None, None, None), "outcome"),
        (("x", 1, 10, None, None, "High"), "certainty"),
    ],
)
def test_sof_row_rejects_bad_input(args, match):
    with pytest.raises(ParameterError, match=match):
        sof_row(*args)


def test_sof_table_frame_and_footnotes():
    c1 = grade("Mortality", "rct", down(imprecision=-1))
    c2 = grade("Skin", "nrs", down(risk_of_bias=-1, inconsistency=-1), rob_tool="robins_i")
    rows = [
        sof_row("Mortality", 1, 63, (0.75, 0.60, 0.94, "RR"), 0.20, c1),
        sof_row("Skin", 11, 295, None, None, c2, "narrative"),
    ]
    t = sof_table(rows, "IVIG compared with placebo or no IVIG for systemic sclerosis")
    df = t.to_frame()
    assert list(df.columns) == [
        "Outcomes",
        "Risk with comparator",
        "Risk with intervention (95% CI)",
        "Risk difference (95% CI)",
        "Relative effect (95% CI)",
        "№ of participants (studies)",
        "Certainty of the evidence (GRADE)",
        "Comments",
    ]
    assert df.loc[0, "Risk with intervention (95% CI)"] == "150 per 1,000 (120 to 188)"
    assert df.loc[0, "№ of participants (studies)"] == "63 (1 RCT)"
    assert df.loc[0, "Certainty of the evidence (GRADE)"] == "⊕⊕⊕◯ MODERATE (a)"
    assert df.loc[1, "Certainty of the evidence (GRADE)"] == "⊕⊕◯◯ LOW (b,c)"
    assert df.loc[1, "Risk with comparator"] == "" and df.loc[1, "Comments"] == "narrative"
    notes = t.footnotes()
    assert [n[:2] for n in notes] == ["a.", "b.", "c."] and "imprecision" in notes[0]
    assert t.summary().startswith("IVIG compared")
    with pytest.raises(ParameterError):
        sof_table([{"outcome": "x"}])


# ---- from a fitted synthesis result --------------------------------------------------------
# Stand-ins with the fields of metasift.synthesis RmaResult / MHResult (metafor's names), so
# these tests do not depend on the synthesis engine's state. Values: metafor's dat.bcg,
# rma(measure="RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg), REML:
# estimate -0.7145, ci.lb -1.0669, ci.ub -0.3622 (metafor documentation example).


def _fit(**kw):
    base = {
        "measure": "RR",
        "level": 0.95,
        "beta": np.array([-0.7145]),
        "ci_lb": np.array([-1.0669]),
        "ci_ub": np.array([-0.3622]),
    }
    return types.SimpleNamespace(**(base | kw))


def test_relative_effect_from_a_pooled_fit():
    est, lb, ub, m = relative_effect_from(_fit())
    assert m == "RR"
    assert (est, lb, ub) == pytest.approx((math.exp(-0.7145), math.exp(-1.0669), math.exp(-0.3622)))
    assert est == pytest.approx(0.4894, abs=1e-4)  # metafor predict(res, transf=exp): 0.4894
    # rma_mh / rma_peto results carry floats; Peto's log OR is reported as an OR.
    assert relative_effect_from(_fit(measure="PETO", beta=0.0, ci_lb=-0.1, ci_ub=0.1))[3] == "OR"
    assert relative_effect_from(
        _fit(measure="RD", beta=-0.05, ci_lb=-0.08, ci_ub=-0.02, level=95)
    ) == (-0.05, -0.08, -0.02, "RD")
    r = sof_row("TB cases", 13, 357347, relative_effect_from(_fit()), 0.01, None)
    assert r.intervention_per_1000 == (5, 3, 7)  # 1000 x 0.01 x (0.489, 0.344, 0.696)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"measure": "SMD"}, "measure"),
        ({"level": 0.9}, "level"),
        ({"beta": [0.1, 0.2], "ci_lb": [0, 0], "ci_ub": [1, 1]}, "meta-regression"),
    ],
)
def test_relative_effect_from_rejects_what_a_sof_cannot_show(kw, match):
    with pytest.raises(ParameterError, match=match):
        relative_effect_from(_fit(**kw))
