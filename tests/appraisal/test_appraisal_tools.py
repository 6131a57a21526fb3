"""ROBINS-I overall rule, Newcastle-Ottawa, JBI, overrides and the public API's errors; the
robvis example data sets (tests/appraisal/data, origin in ORIGIN.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from metasift.appraisal import (
    TOOLS,
    AppraisalError,
    apply_override,
    assess,
    get_tool,
    overall_from_domains,
)
from metasift.errors import MetasiftError, ParameterError

DATA = Path(__file__).parent / "data"


def robvis(name):
    return pd.read_csv(DATA / name, dtype=str)


# ---- robvis data_rob2 --------------------------------------------------------------------


def test_robvis_data_rob2_overall_reproduced():
    """robvis's data_rob2 carries domain judgements only (no signalling answers), so the test
    applies the overall rule (Sterne 2019, Table 2) to its domain judgements. Study 3 has D1
    "No information", which RoB 2 does not offer as a domain judgement: the D1 algorithm is
    run with "No information" for every D1 question (criteria (iii): "no information to answer
    any of the signalling questions" -> Some concerns) and its result used instead."""
    df = robvis("robvis_data_rob2.csv")
    assert len(df) == 9
    ni_d1 = assess("rob2", {"1.1": "NI", "1.2": "NI", "1.3": "NI"}, effect="assignment")
    for _, row in df.iterrows():
        doms = {d: row[d] for d in ("D1", "D2", "D3", "D4", "D5")}
        doms = {
            d: (ni_d1.domain(d).suggested if v == "No information" else v) for d, v in doms.items()
        }
        got = overall_from_domains("rob2", doms)
        assert got.judgement == row["Overall"], row["Study"]
    assert ni_d1.domain("D1").rule == "D1-5"


# ---- ROBINS-I overall rule (Sterne et al. BMJ 2016, Table 3) ------------------------------
LOW, MOD, SER, CRIT, NI = "Low", "Moderate", "Serious", "Critical", "No information"
D7 = ("D1", "D2", "D3", "D4", "D5", "D6", "D7")


def dom(**kw):
    out = dict.fromkeys(D7, LOW)
    out.update(kw)
    return out


@pytest.mark.parametrize(
    ("domains", "key", "expected", "rule"),
    [
        (dom(), None, LOW, "R-Low"),  # "Low risk of bias in all domains"
        (dom(D1=MOD), None, MOD, "R-Moderate"),  # "low or moderate risk in all domains"
        (dom(D1=MOD, D6=SER), None, SER, "R-Serious"),  # "serious in at least one domain"
        (dom(D2=SER, D4=CRIT), None, CRIT, "R-Critical"),  # "critical in at least one domain"
        (dom(D1=NI, D3=SER), None, SER, "R-Serious"),  # Serious wins over lack of information
        (dom(D1=MOD, D2=NI), None, NI, "R-NI"),  # NI in a key domain (default: all key)
        (dom(D1=MOD, D2=NI), ("D1", "D3"), MOD, "R-Moderate"),  # NI outside key domains
        (dom(D2=NI), (), LOW, "R-Low"),
    ],
)
def test_robins_i_overall_rule(domains, key, expected, rule):
    got = overall_from_domains("robins_i", domains, key_domains=key)
    assert (got.judgement, got.rule.split(":")[0]) == (expected, rule)


def test_robvis_data_robins_i_overall_reproduced():
    """robvis's data_robins_i (domain judgements only): the ROBINS-I overall rule reproduces
    every stored overall judgement. Study 2 (D2 "No information", otherwise at most Moderate)
    is stored as Moderate, which the guidance gives only if D2 is not a *key* domain; robvis
    does not say which domains are key, so key_domains=() is passed, and the default (all
    domains key) is shown to give "No information" for that row."""
    df = robvis("robvis_data_robins_i.csv")
    assert len(df) == 10
    for _, row in df.iterrows():
        doms = {d: row[d] for d in D7}
        assert overall_from_domains("robins_i", doms, key_domains=()).judgement == row["Overall"]
    study2 = df[df.Study == "Study 2"].iloc[0]
    assert overall_from_domains("robins_i", {d: study2[d] for d in D7}).judgement == NI


def test_robins_i_domains_are_reviewer_judgements():
    a = assess("robins_i", {"1.1": "Y", "1.2": "N"}, effect="assignment")
    assert a.domain("D1").suggested is None and a.overall.judgement is None
    assert a.missing == tuple(f"D{i} (judgement)" for i in range(1, 8))
    a = assess("robins_i", {"1.1": "Y"}, effect="adhering", judgements=dom(D5=SER))
    assert (a.overall.judgement, a.complete) == (SER, True)
    assert a.domain("D5").rule.startswith("reviewer judgement")
    # A domain given later by override needs a justification, and then counts.
    a = assess("robins_i", {}, effect="assignment", judgements={d: MOD for d in D7[:-1]})
    assert a.overall.judgement is None and a.missing == ("D7 (judgement)",)
    b = apply_override(a, "D7", LOW, "protocol and SAP on record; all outcomes reported")
    assert (b.overall.judgement, b.missing, b.complete) == (MOD, (), True)
    # Effect of interest selects Domain 4 questions: 4.3 exists only for 'adhering'.
    with pytest.raises(ParameterError, match="4.3"):
        assess("robins_i", {"4.3": "Y"}, effect="assignment")
    assert assess("robins_i", {"4.3": "Y"}, effect="adhering").answers == {"4.3": "Y"}


def test_robins_i_key_domains_survive_an_override():
    a = assess("robins_i", {}, effect="assignment", judgements=dom(D2=NI, D6=SER), key_domains=())
    assert a.overall.judgement == SER
    b = apply_override(a, "D6", MOD, "outcome is all-cause mortality; assessor awareness moot")
    assert b.overall.judgement == MOD  # D2 NI is not key, so not "No information"


# ---- Newcastle-Ottawa (AHRQ-style thresholds) ---------------------------------------------
GOOD_COHORT = {
    "S1": "a",
    "S2": "a",
    "S3": "a",
    "S4": "a",
    "C1a": "yes",
    "C1b": "yes",
    "O1": "a",
    "O2": "a",
    "O3": "a",
}


@pytest.mark.parametrize(
    ("change", "stars", "cats", "overall"),
    [
        ({}, (4, 2, 3), ("Good", "Good", "Good"), "Good"),
        # Selection 3 stars still Good ("3 or 4 stars"); b options earn stars too.
        ({"S1": "b", "S3": "b", "S4": "b"}, (3, 2, 3), ("Good", "Good", "Good"), "Good"),
        # Selection 2 stars -> Fair ("Fair: 2 stars in selection").
        ({"S1": "c", "S2": "b"}, (2, 2, 3), ("Fair", "Good", "Good"), "Fair"),
        # Selection 0-1 star -> Poor.
        ({"S1": "d", "S2": "c", "S3": "c"}, (1, 2, 3), ("Poor", "Good", "Good"), "Poor"),
        # Comparability 0 stars -> Poor; 1 star is enough for Good.
        ({"C1a": "no", "C1b": "no"}, (4, 0, 3), ("Good", "Poor", "Good"), "Poor"),
        ({"C1b": "no"}, (4, 1, 3), ("Good", "Good", "Good"), "Good"),
        # Outcome 2 stars Good, 0-1 Poor.
        ({"O3": "c"}, (4, 2, 2), ("Good", "Good", "Good"), "Good"),
        ({"O1": "c", "O3": "d"}, (4, 2, 1), ("Good", "Good", "Poor"), "Poor"),
    ],
)
def test_nos_cohort_stars_and_thresholds(change, stars, cats, overall):
    a = assess("nos_cohort", GOOD_COHORT | change)
    assert tuple(j.stars for j in a.domains) == stars
    assert tuple(j.judgement for j in a.domains) == cats
    assert a.overall.judgement == overall and sum(stars) <= 9


def test_nos_case_control_and_missing_items():
    full = {
        "S1": "a",
        "S2": "a",
        "S3": "b",
        "S4": "a",
        "C1a": "yes",
        "C1b": "no",
        "E1": "c",
        "E2": "a",
        "E3": "c",
    }
    a = assess("nos_case_control", full)
    assert [d.id for d in TOOLS["nos_case_control"].domains] == [
        "Selection",
        "Comparability",
        "Exposure",
    ]
    assert tuple(j.stars for j in a.domains) == (3, 1, 1)
    assert a.overall.judgement == "Poor"  # Exposure 1 star
    del full["E2"]
    a = assess("nos_case_control", full)
    # E1 and E3 earn no star: Exposure cannot reach 2 stars whatever E2 is -> Poor, decided.
    assert (a.domain("Exposure").judgement, a.domain("Exposure").stars) == ("Poor", None)
    assert a.overall.judgement == "Poor" and a.missing == ()
    full |= {"E1": "a", "E2": "a"}
    del full["S1"]
    a = assess("nos_case_control", full)
    # Selection has 2 stars without S1: Fair or Good depending on S1 -> undecided.
    assert a.domain("Exposure").judgement == "Good"
    assert a.overall.judgement is None and a.missing == ("S1",)


# ---- JBI case series ----------------------------------------------------------------------


def test_jbi_has_no_decision_rule_and_needs_the_reviewers_decision():
    answers = {f"Q{i}": "Yes" for i in range(1, 11)} | {"Q4": "No", "Q5": "u", "Q10": "NA"}
    a = assess("jbi_case_series", answers)
    assert a.domain("Q5").judgement == "Unclear" and a.domain("Q10").judgement == "Not applicable"
    assert a.overall.suggested is None and not a.complete
    assert a.flags == ("7 of 9 applicable items answered Yes (descriptive only)",)
    b = apply_override(a, None, "Include", "criteria pre-specified: Q1-Q3 must be Yes")
    assert b.complete and b.overall.judgement == "Include" and b.overall.suggested is None
    with pytest.raises(ParameterError):
        apply_override(a, None, "Low", "not a JBI decision")


# ---- the API's contract -------------------------------------------------------------------


def test_get_tool_lists_valid_names():
    assert set(TOOLS) == {"rob2", "robins_i", "nos_cohort", "nos_case_control", "jbi_case_series"}
    with pytest.raises(ParameterError) as e:
        get_tool("rob3")
    msg = str(e.value)
    assert "'rob3'" in msg and all(repr(n) in msg for n in TOOLS)
    assert get_tool(TOOLS["rob2"]) is TOOLS["rob2"]


def test_assess_rejects_bad_input_with_typed_errors():
    with pytest.raises(ParameterError, match="effect"):
        assess("rob2", {})  # RoB 2 needs the effect of interest
    with pytest.raises(ParameterError, match="effect"):
        assess("nos_cohort", {}, effect="assignment")
    with pytest.raises(ParameterError, match="9.9"):
        assess("rob2", {"9.9": "Y"}, effect="assignment")
    with pytest.raises(ParameterError, match="answer to 1.1"):
        assess("rob2", {"1.1": "maybe"}, effect="assignment")
    with pytest.raises(ParameterError, match="answer to 1.1"):
        assess("rob2", {"1.1": "NA"}, effect="assignment")  # 1.1 is not conditional
    with pytest.raises(ParameterError, match="answer to 1.1"):
        assess("robins_i", {"1.1": "NI"}, effect="assignment")  # no NI for ROBINS-I 1.1
    with pytest.raises(AppraisalError, match="apply_override"):
        assess("rob2", {}, effect="assignment", judgements={"D1": "Low"})
    with pytest.raises(ParameterError):
        assess("robins_i", {}, effect="assignment", judgements={"D1": "High"})
    with pytest.raises(ParameterError):
        assess("robins_i", {}, effect="assignment", judgements={"D9": "Low"})
    # Labels and case are accepted and stored as codes.
    a = assess("rob2", {"1.1": "yes", "1.2": "Probably yes", "1.3": "no"}, effect="assignment")
    assert a.answers == {"1.1": "Y", "1.2": "PY", "1.3": "N"}


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_override_requires_a_written_justification(bad):
    a = assess("rob2", {"1.2": "N"}, effect="assignment")
    with pytest.raises(AppraisalError, match="justification"):
        apply_override(a, "D1", "Some concerns", bad)
    assert issubclass(AppraisalError, MetasiftError)


def test_override_validates_domain_and_level():
    a = assess("rob2", {"1.2": "N"}, effect="assignment")
    with pytest.raises(ParameterError, match="domain"):
        apply_override(a, "D9", "Low", "x")
    with pytest.raises(ParameterError, match="judgement"):
        apply_override(a, "D1", "Serious", "RoB 2 has no Serious level")
    b = apply_override(
        a, "D1", "Some concerns", "sealed envelopes, but sequential and opaque", reviewer="SG"
    )
    d1 = b.domain("D1")
    assert (d1.suggested, d1.rule, d1.judgement, d1.reviewer) == (
        "High",
        "D1-1",
        "Some concerns",
        "SG",
    )
    frame = b.to_frame()
    assert list(frame.domain) == ["D1", "D2", "D3", "D4", "D5", "Overall"]
    assert frame.loc[0, "overridden"] and "sealed" in frame.loc[0, "justification"]
    assert "overridden" in b.summary()


def test_assessment_is_frozen():
    a = assess("rob2", {"1.2": "N"}, effect="assignment")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.overall = None
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.domains[0].judgement = "Low"


def test_tools_as_data_for_spreadsheets():
    for name, tool in TOOLS.items():
        effect = tool.effects[0] if tool.effects else None
        frame = tool.to_frame(effect)
        assert list(frame.columns) == [
            "domain",
            "domain_name",
            "question",
            "text",
            "options",
            "condition",
        ]
        assert len(frame) == len(tool.questions(effect)) and name == tool.name
        assert set(frame.domain) == set(tool.domain_ids)
    assert len(TOOLS["rob2"].questions("assignment")) == 22
    assert len(TOOLS["rob2"].questions("adhering")) == 21
    assert len(TOOLS["robins_i"].questions("assignment")) == 30
    assert len(TOOLS["jbi_case_series"].questions()) == 10


def test_algorithms_as_data():
    rules = TOOLS["rob2"].rules_to_frame("assignment")
    assert list(rules.columns) == ["domain", "part", "rule", "condition", "judgement"]
    # D1 6 rules, D2 Part 1 6 + Part 2 3, D3 5, D4 10, D5 4 (reference spec rob2.md tables).
    assert rules.groupby("domain").size().to_dict() == {
        "D1": 6,
        "D2": 9,
        "D3": 5,
        "D4": 10,
        "D5": 4,
    }
    assert rules.iloc[1].condition == "1.2 in {Y, PY} AND 1.1 in {PN, N}"
    assert len(TOOLS["rob2"].rules_to_frame("adhering").query("domain == 'D2'")) == 4
    assert TOOLS["robins_i"].rules_to_frame("assignment").empty  # no published algorithm


def test_assessments_to_frame_long_table():
    from metasift.appraisal import assessments_to_frame

    a = assess("rob2", {"1.2": "N"}, effect="assignment")
    b = apply_override(a, "D1", "Some concerns", "reason", reviewer="JL")
    df = assessments_to_frame({"S1": a, "S2": b})
    assert len(df) == 12 and list(df.columns[:3]) == ["study", "tool", "effect"]
    row = df[(df.study == "S2") & (df.domain == "D1")].iloc[0]
    assert (row.suggested, row.judgement, row.reviewer, row.rule) == (
        "High",
        "Some concerns",
        "JL",
        "D1-1",
    )
    with pytest.raises(ParameterError):
        assessments_to_frame({})
    with pytest.raises(ParameterError):
        assessments_to_frame({"S1": {"D1": "Low"}})
