"""RoB 2 algorithms, rule by rule and path by path.

Guidance cited: RoB 2 full guidance and cribsheet, version of 22 August 2019 (riskofbias.info),
the decision algorithm ("flowchart") of each domain; Sterne et al. BMJ 2019;366:l4898, Table 2
(overall); criteria for judgements as reproduced in Syst Rev 2021;10:171 Table 2; Cochrane
Handbook v6 ch. 8, Table 8.5.a. Rule ids are those of /work/shared/reference/rob2.md.

Two kinds of test: (1) one hand-picked case per rule, with the sentence of the guidance it
follows; (2) every combination of answers of a domain checked against an independent
transcription of the flowchart written as nested if/else (``flow_*`` below), and every rule
shown to fire on some path.
"""

from __future__ import annotations

import itertools

import pytest

from metasift.appraisal import TOOLS, apply_override, assess
from metasift.appraisal.model import evaluate_rules
from metasift.appraisal.rob2 import (
    D1_RULES,
    D2A_PART1,
    D2A_PART2,
    D2B_RULES,
    D3_RULES,
    D4_RULES,
    D5_RULES,
)

L, S, H = "Low", "Some concerns", "High"
YPY, NPN = ("Y", "PY"), ("N", "PN")
ANS = ("Y", "PY", "PN", "N", "NI")


def judge(domain, answers, effect="assignment"):
    return assess("rob2", answers, effect=effect).domain(domain)


# ---- (1) one case per rule ----------------------------------------------------------------
RULE_CASES = [
    # Domain 1 flowchart: starts at 1.2 (concealment).
    ("D1", {"1.2": "N"}, H, "D1-1"),  # "not adequately concealed" -> High
    ("D1", {"1.2": "Y", "1.1": "PN"}, S, "D1-2"),  # concealed AND not random -> Some concerns
    (
        "D1",
        {"1.2": "PY", "1.1": "NI", "1.3": "NI"},
        L,
        "D1-3",
    ),  # concealed, random/NI, no imbalance
    ("D1", {"1.2": "Y", "1.1": "Y", "1.3": "PY"}, S, "D1-4"),  # baseline differences -> SC
    ("D1", {"1.2": "NI", "1.3": "N"}, S, "D1-5"),  # NI concealment, chance-compatible baseline
    ("D1", {"1.2": "NI", "1.3": "Y"}, H, "D1-6"),  # NI concealment AND baseline problem -> High
    # Domain 2, effect of assignment: Part 1 (2.1-2.5) and Part 2 (2.6-2.7), worse of the two.
    ("D2", {"2.1": "N", "2.2": "PN", "2.6": "Y"}, L, "P1-1 + P2-1"),
    ("D2", {"2.1": "Y", "2.2": "N", "2.3": "PN", "2.6": "PY"}, L, "P1-2 + P2-1"),
    ("D2", {"2.1": "NI", "2.2": "N", "2.3": "NI", "2.6": "Y"}, S, "P1-3 + P2-1"),
    ("D2", {"2.1": "Y", "2.2": "Y", "2.3": "Y", "2.4": "N", "2.6": "Y"}, S, "P1-4 + P2-1"),
    (
        "D2",
        {"2.1": "Y", "2.2": "Y", "2.3": "Y", "2.4": "NI", "2.5": "PY", "2.6": "Y"},
        S,
        "P1-5 + P2-1",
    ),
    ("D2", {"2.1": "Y", "2.2": "Y", "2.3": "PY", "2.4": "Y", "2.5": "NI"}, H, "P1-6"),
    ("D2", {"2.1": "N", "2.2": "N", "2.6": "N", "2.7": "PN"}, S, "P1-1 + P2-2"),
    ("D2", {"2.1": "N", "2.2": "N", "2.6": "NI", "2.7": "NI"}, H, "P1-1 + P2-3"),
    # Domain 3 flowchart.
    ("D3", {"3.1": "PY"}, L, "D3-1"),
    ("D3", {"3.1": "N", "3.2": "Y"}, L, "D3-2"),
    ("D3", {"3.1": "NI", "3.2": "PN", "3.3": "N"}, L, "D3-3"),
    ("D3", {"3.1": "N", "3.2": "N", "3.3": "NI", "3.4": "PN"}, S, "D3-4"),
    ("D3", {"3.1": "PN", "3.2": "N", "3.3": "Y", "3.4": "NI"}, H, "D3-5"),
    # Domain 4 flowchart (4.2 = NI turns every Low into Some concerns: D4-7..D4-10).
    ("D4", {"4.1": "PY"}, H, "D4-1"),
    ("D4", {"4.1": "N", "4.2": "Y"}, H, "D4-2"),
    ("D4", {"4.1": "N", "4.2": "N", "4.3": "N"}, L, "D4-3"),
    ("D4", {"4.1": "NI", "4.2": "PN", "4.3": "Y", "4.4": "PN"}, L, "D4-4"),
    ("D4", {"4.1": "N", "4.2": "N", "4.3": "Y", "4.4": "NI", "4.5": "N"}, S, "D4-5"),
    ("D4", {"4.1": "N", "4.2": "N", "4.3": "Y", "4.4": "Y", "4.5": "PY"}, H, "D4-6"),
    ("D4", {"4.1": "N", "4.2": "NI", "4.3": "PN"}, S, "D4-7"),
    ("D4", {"4.1": "N", "4.2": "NI", "4.3": "NI", "4.4": "N"}, S, "D4-8"),
    ("D4", {"4.1": "N", "4.2": "NI", "4.3": "Y", "4.4": "Y", "4.5": "N"}, S, "D4-9"),
    ("D4", {"4.1": "N", "4.2": "NI", "4.3": "Y", "4.4": "Y", "4.5": "Y"}, H, "D4-10"),
    # Domain 5 flowchart.
    ("D5", {"5.2": "N", "5.3": "PY"}, H, "D5-1"),
    ("D5", {"5.1": "Y", "5.2": "N", "5.3": "PN"}, L, "D5-2"),
    ("D5", {"5.1": "NI", "5.2": "N", "5.3": "N"}, S, "D5-3"),
    ("D5", {"5.2": "NI", "5.3": "N"}, S, "D5-4"),
]


@pytest.mark.parametrize(("domain", "answers", "expected", "rule"), RULE_CASES)
def test_rob2_rule_by_rule(domain, answers, expected, rule):
    j = judge(domain, answers)
    assert (j.suggested, j.rule, j.missing) == (expected, rule, ())
    assert j.judgement == expected and not j.overridden


ADHERING_CASES = [
    # Domain 2, effect of adhering (per-protocol): "no problem" -> Low, else 2.6 decides.
    ({"2.1": "N", "2.2": "N", "2.4": "N", "2.5": "NA"}, L, "D2B-1a"),
    ({"2.1": "Y", "2.2": "N", "2.3": "PY", "2.4": "NA", "2.5": "PN"}, L, "D2B-1b"),
    ({"2.1": "Y", "2.2": "Y", "2.3": "NA", "2.4": "N", "2.5": "N"}, L, "D2B-1b"),
    ({"2.1": "Y", "2.2": "Y", "2.3": "N", "2.6": "Y"}, S, "D2B-2"),
    ({"2.1": "N", "2.2": "N", "2.4": "Y", "2.5": "N", "2.6": "PY"}, S, "D2B-2"),
    ({"2.1": "Y", "2.2": "Y", "2.3": "NI", "2.6": "NI"}, H, "D2B-3"),
    ({"2.1": "N", "2.2": "N", "2.4": "N", "2.5": "NI", "2.6": "N"}, H, "D2B-3"),
]


@pytest.mark.parametrize(("answers", "expected", "rule"), ADHERING_CASES)
def test_rob2_domain2_adhering_rule_by_rule(answers, expected, rule):
    j = judge("D2", answers, effect="adhering")
    assert (j.suggested, j.rule) == (expected, rule)


# ---- (2) every combination against the flowcharts written as if/else ---------------------


def flow_d1(a):
    q11, q12, q13 = a["1.1"], a["1.2"], a["1.3"]
    if q12 in NPN:
        return H
    if q12 in YPY:
        if q11 in NPN:
            return S
        return S if q13 in YPY else L
    # 1.2 = NI
    return H if q13 in YPY else S


def flow_d2a_part1(a):
    if a["2.1"] in NPN and a["2.2"] in NPN:
        return L
    if a["2.3"] in NPN:
        return L
    if a["2.3"] == "NI":
        return S
    if a["2.4"] in NPN:
        return S
    return S if a["2.5"] in YPY else H


def flow_d2a_part2(a):
    if a["2.6"] in YPY:
        return L
    return S if a["2.7"] in NPN else H


def flow_d2b(a):
    aware = not (a["2.1"] in NPN and a["2.2"] in NPN)
    problem = (
        (aware and a["2.3"] in ("N", "PN", "NI"))
        or a["2.4"] in ("Y", "PY", "NI")
        or a["2.5"] in ("Y", "PY", "NI")
    )
    if not problem:
        return L
    return S if a["2.6"] in YPY else H


def flow_d3(a):
    if a["3.1"] in YPY:
        return L
    if a["3.2"] in YPY:
        return L
    if a["3.3"] in NPN:
        return L
    return S if a["3.4"] in NPN else H


def flow_d4(a):
    if a["4.1"] in YPY or a["4.2"] in YPY:
        return H
    if a["4.3"] in NPN or a["4.4"] in NPN:
        chain = L
    else:
        chain = S if a["4.5"] in NPN else H
    if a["4.2"] == "NI" and chain == L:
        return S
    return chain


def flow_d5(a):
    if a["5.2"] in YPY or a["5.3"] in YPY:
        return H
    if a["5.2"] == "NI" or a["5.3"] == "NI":
        return S
    return L if a["5.1"] in YPY else S


def _judge_parts(parts, answers):
    fired = []
    for rules in parts:
        rule, missing = evaluate_rules(rules, answers)
        assert rule is not None, (answers, missing)
        fired.append(rule)
    order = [L, S, H]
    return max((r.judgement for r in fired), key=order.index), [r.id for r in fired]


EXHAUSTIVE = [
    ("D1", ("1.1", "1.2", "1.3"), (D1_RULES,), flow_d1),
    ("D2A-part1", ("2.1", "2.2", "2.3", "2.4", "2.5"), (D2A_PART1,), flow_d2a_part1),
    ("D2A-part2", ("2.6", "2.7"), (D2A_PART2,), flow_d2a_part2),
    ("D2B", ("2.1", "2.2", "2.3", "2.4", "2.5", "2.6"), (D2B_RULES,), flow_d2b),
    ("D3", ("3.1", "3.2", "3.3", "3.4"), (D3_RULES,), flow_d3),
    ("D4", ("4.1", "4.2", "4.3", "4.4", "4.5"), (D4_RULES,), flow_d4),
    ("D5", ("5.1", "5.2", "5.3"), (D5_RULES,), flow_d5),
]


@pytest.mark.parametrize(
    ("name", "qids", "parts", "flow"), EXHAUSTIVE, ids=[e[0] for e in EXHAUSTIVE]
)
def test_rob2_every_path_matches_the_flowchart(name, qids, parts, flow):
    fired_ids = set()
    reached = set()
    for combo in itertools.product(ANS, repeat=len(qids)):
        answers = dict(zip(qids, combo, strict=True))
        got, ids = _judge_parts(parts, answers)
        assert got == flow(answers), (name, answers, ids)
        fired_ids.update(ids)
        reached.add(got)
    every_rule = {r.id for rules in parts for r in rules}
    assert fired_ids == every_rule, every_rule - fired_ids  # every path is reachable
    assert reached == {L, S, H}


# One answer set per Part-1 / Part-2 outcome, to check "Domain 2 = worse of the two parts".
PART1 = {
    L: {"2.1": "N", "2.2": "N"},
    S: {"2.1": "Y", "2.2": "Y", "2.3": "NI"},
    H: {"2.1": "Y", "2.2": "Y", "2.3": "Y", "2.4": "Y", "2.5": "N"},
}
PART2 = {L: {"2.6": "Y"}, S: {"2.6": "N", "2.7": "N"}, H: {"2.6": "N", "2.7": "Y"}}


@pytest.mark.parametrize("p1", [L, S, H])
@pytest.mark.parametrize("p2", [L, S, H])
def test_rob2_domain2_assignment_is_the_worse_of_its_two_parts(p1, p2):
    order = [L, S, H]
    j = judge("D2", PART1[p1] | PART2[p2])
    assert j.suggested == max(p1, p2, key=order.index)


def test_rob2_stops_where_the_flowchart_needs_an_answer():
    # 1.2 = Y leads to 1.1; without 1.1 the domain cannot be judged, and only 1.1 is asked for.
    j = judge("D1", {"1.2": "Y", "1.3": "N"})
    assert (j.suggested, j.missing) == (None, ("1.1",))
    # 1.2 = N decides the domain: 1.1 and 1.3 are not needed.
    assert judge("D1", {"1.2": "N"}).missing == ()
    # Part 2 High decides Domain 2 even with Part 1 unanswered (worst of the two parts).
    j = judge("D2", {"2.6": "N", "2.7": "Y"})
    assert (j.suggested, j.rule, j.missing) == (H, "P2-3", ())
    # Part 2 Low with Part 1 unanswered: Part 1 is needed.
    j = judge("D2", {"2.6": "Y"})
    assert j.suggested is None and j.missing == ("2.1", "2.2")


def test_rob2_na_on_a_question_the_path_needs_counts_as_missing():
    # 3.2 is asked when 3.1 is N/PN/NI; answering it NA there leaves the domain undecided.
    j = judge("D3", {"3.1": "N", "3.2": "NA"})
    assert j.suggested is None and j.missing == ("3.2",)
    # NA is fine where the flowchart does not go.
    assert judge("D3", {"3.1": "Y", "3.2": "NA", "3.3": "NA", "3.4": "NA"}).suggested == L


def test_rob2_3_2_no_information_is_read_as_no():
    # The tool offers no NI for 3.2; an NI entered is treated as N/PN (not evidence of no bias).
    ni = judge("D3", {"3.1": "N", "3.2": "NI", "3.3": "Y", "3.4": "Y"})
    no = judge("D3", {"3.1": "N", "3.2": "N", "3.3": "Y", "3.4": "Y"})
    assert ni.suggested == no.suggested == H


def _all_low(effect="assignment"):
    a = {"1.1": "Y", "1.2": "Y", "1.3": "N", "3.1": "Y", "4.1": "N", "4.2": "N", "4.3": "N"}
    a |= {"5.1": "Y", "5.2": "N", "5.3": "N"}
    a |= (
        {"2.1": "N", "2.2": "N", "2.6": "Y"}
        if effect == "assignment"
        else {"2.1": "N", "2.2": "N", "2.4": "N", "2.5": "N"}
    )
    return a


@pytest.mark.parametrize("effect", ["assignment", "adhering"])
def test_rob2_overall_low_only_if_all_domains_low(effect):
    # Sterne 2019 Table 2: "Low risk of bias for all domains for this result".
    a = assess("rob2", _all_low(effect), effect=effect)
    assert (a.overall.suggested, a.overall.rule[:5], a.complete) == (L, "O-Low", True)
    assert a.flags == () and a.effect == effect


def test_rob2_overall_some_concerns_and_high_and_flag():
    # One domain Some concerns, none High -> Some concerns, no flag.
    a = assess("rob2", _all_low() | {"1.1": "N"}, effect="assignment")
    assert (a.overall.suggested, a.flags) == (S, ())
    # Two domains Some concerns -> Some concerns, flagged for the reviewer (never escalated).
    a = assess("rob2", _all_low() | {"1.1": "N", "5.1": "NI"}, effect="assignment")
    assert a.overall.suggested == S and len(a.flags) == 1 and "may judge" in a.flags[0]
    # High in one domain -> High, even with another domain unanswered.
    ans = _all_low() | {"4.1": "Y"}
    del ans["3.1"]
    a = assess("rob2", ans, effect="assignment")
    assert (a.overall.suggested, a.missing) == (H, ("3.1",))
    # Nothing decisive and one domain incomplete -> no overall suggestion.
    ans = _all_low()
    del ans["3.1"]
    a = assess("rob2", ans, effect="assignment")
    assert a.overall.suggested is None and not a.complete


def test_rob2_override_with_justification_keeps_the_suggestion():
    a = assess("rob2", _all_low() | {"1.1": "N", "5.1": "NI"}, effect="assignment")
    b = apply_override(a, None, H, "two Some-concerns domains both favour IVIG", reviewer="LC")
    assert (b.overall.suggested, b.overall.judgement, b.overall.overridden) == (S, H, True)
    assert b.overall.reviewer == "LC" and a.overall.judgement == S  # a is unchanged
    # A later domain override re-derives the suggestion; the overall override stays.
    c = apply_override(b, "D4", H, "unblinded assessors of a subjective outcome")
    assert (c.domain("D4").suggested, c.domain("D4").judgement) == (L, H)
    assert (c.overall.suggested, c.overall.judgement) == (H, H)


def test_rob2_tool_data_is_consistent():
    tool = TOOLS["rob2"]
    for effect in tool.effects:
        qs = tool.questions(effect)
        ids = [q.id for q in qs]
        assert len(ids) == len(set(ids))
        opts = {q.id: set(q.options) for q in qs}
        for d in tool.domains:
            dq, parts = d.for_effect(effect if d.variants else None)
            own = {q.id for q in dq}
            for rules in parts:
                for r in rules:
                    assert r.judgement in tool.judgement_names
                    for c in r.clauses:
                        assert set(c.questions) <= own, (d.id, r.id)
                        for q in c.questions:  # rules only test answers the question allows
                            assert c.answers <= opts[q] | {"NA"}, (r.id, q)
        # Conditional questions allow NA, unconditional ones do not.
        for q in qs:
            assert ("NA" in q.options) == q.conditional, q.id
