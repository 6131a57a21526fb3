"""Analyses from the protocol: pooled where two-arm data allow, else direction of effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metasift.protocol import TEMPLATE, parse_protocol
from metasift.synthesis import escalc, rma
from metasift.workflow.analyses import compute

PROTOCOL = parse_protocol(
    TEMPLATE.replace(
        '      - {name: "main outcome", type: continuous, direction: lower_is_better, unit: ""}',
        '      - {name: "pain", type: continuous, direction: lower_is_better, unit: "mm"}\n'
        '      - {name: "relapse", type: dichotomous, direction: lower_is_better}',
    )
)
COLS = ["study", "design", "level", "field", "arm", "outcome", "timepoint", "value", "unit"]


def _rows(study, arm, outcome, tp, **fields):
    return [(study, "RCT", "outcome", f, arm, outcome, tp, str(v), "mm") for f, v in fields.items()]


def _values():
    rows = []
    data = [
        ("A", 20, 30.0, 10.0, 22, 38.0, 12.0),
        ("B", 40, 25.0, 9.0, 41, 29.0, 8.0),
        ("C", 15, 40.0, 15.0, 15, 41.0, 14.0),
    ]
    for s, n1, m1, sd1, n2, m2, sd2 in data:
        rows += [(s, "RCT", "study", "n_total", "", "", "", str(n1 + n2), "")]
        rows += _rows(s, "drug", "pain", "6 months", n=n1, mean=m1, sd=sd1)
        rows += _rows(s, "placebo", "pain", "6 months", n=n2, mean=m2, sd=sd2)
    # a before-after study: pain goes up (harm), relapse from a reported direction
    rows += [("D", "case series", "study", "n_total", "", "", "", "12", "")]
    rows += _rows("D", "baseline", "pain", "baseline", n=12, mean=30.0, sd=5.0)
    rows += _rows("D", "drug", "pain", "3 months", n=12, mean=20.0, sd=5.0)
    rows += _rows("D", "drug", "pain", "12 months", n=11, mean=35.0, sd=6.0)
    rows += _rows("D", "drug", "relapse", "12 months", direction="benefit")
    return pd.DataFrame(rows, columns=COLS)


def test_pooled_outcome_matches_a_direct_fit():
    res = compute(PROTOCOL, _values())
    ((outcome, domain, measure, fit),) = res.pooled
    assert (outcome, domain, measure) == ("pain", "primary", "MD")
    es = escalc(
        "MD",
        n1i=[20, 40, 15],
        m1i=[30, 25, 40],
        sd1i=[10, 9, 15],
        n2i=[22, 41, 15],
        m2i=[38, 29, 41],
        sd2i=[12, 8, 14],
    )
    direct = rma(es.yi, es.vi, method="REML", test="knha")
    assert fit.beta[0] == pytest.approx(direct.beta[0], rel=1e-12)
    assert fit.method == "REML" and fit.test == "knha"


def test_directions_per_study_and_vote_counting():
    res = compute(PROTOCOL, _values())
    d = res.directions.set_index(["study", "outcome"])
    assert d.loc[("A", "pain"), "direction"] == "benefit"  # 30 < 38, lower is better
    assert d.loc[("D", "pain"), "direction"] == "harm"  # latest follow-up (12 months) is worse
    assert "before-after (12 months" in d.loc[("D", "pain"), "basis"]
    assert d.loc[("D", "relapse"), "basis"] == "reported direction"
    vote = res.narrative.vote("primary")
    # D has one harm and one benefit in the domain: mixed (70% rule), left out of the vote
    assert res.narrative.direction("D", "primary") == "mixed"
    assert (vote.benefit, vote.harm, vote.excluded) == (3, 0, 1)


def test_pooled_characteristics_total_n():
    res = compute(PROTOCOL, _values())
    total = res.characteristics[0]
    assert total.total_n == np.sum([42, 81, 30, 12])
