"""RoB 2 for individually randomised, parallel-group trials: questions and algorithms as data.

Sources: Sterne JAC et al. BMJ 2019;366:l4898 (Table 2, overall judgement); Higgins JPT et al.
RoB 2 full guidance and cribsheet, version of 22 August 2019 (riskofbias.info), decision
algorithms per domain; Cochrane Handbook v6, chapter 8 (Table 8.5.a and 8.2.b). Rule ids
(D1-1 ...) follow ``/work/shared/reference/rob2.md`` so that tests, spreadsheets and the
report can cite one rule table. What was checked against which source is in ``SOURCES.md``
next to this file.
"""

from __future__ import annotations

from metasift.appraisal.model import (
    NA,
    NI,
    NPN,
    NPNNI,
    PY,
    YPY,
    YPYNI,
    Domain,
    Level,
    Question,
    Rule,
    Tool,
    Y,
    when,
)

LOW, SOME, HIGH = "Low", "Some concerns", "High"
ASSIGNMENT, ADHERING = "assignment", "adhering"

OPT = ("Y", "PY", "PN", "N", "NI")
OPT_NA = ("NA", *OPT)

LEVELS = (
    Level(LOW, 0, "#02C100", "+"),
    Level(SOME, 1, "#E2DF07", "-"),
    Level(HIGH, 2, "#BF0000", "X"),
)


def _q(id, text, options=OPT, condition=None):
    return Question(id, text, tuple(options), condition)


# --- Domain 1: randomisation process -------------------------------------------------------
D1_Q = (
    _q("1.1", "Was the allocation sequence random?"),
    _q(
        "1.2",
        "Was the allocation sequence concealed until participants were enrolled and assigned to "
        "interventions?",
    ),
    _q(
        "1.3",
        "Did baseline differences between intervention groups suggest a problem with the "
        "randomization process?",
    ),
)
D1_RULES = (
    Rule("D1-1", (when("1.2", answers=NPN),), HIGH),
    Rule("D1-2", (when("1.2", answers=YPY), when("1.1", answers=NPN)), SOME),
    Rule(
        "D1-3",
        (when("1.2", answers=YPY), when("1.1", answers=YPYNI), when("1.3", answers=NPNNI)),
        LOW,
    ),
    Rule(
        "D1-4",
        (when("1.2", answers=YPY), when("1.1", answers=YPYNI), when("1.3", answers=YPY)),
        SOME,
    ),
    Rule("D1-5", (when("1.2", answers={NI}), when("1.3", answers=NPNNI)), SOME),
    Rule("D1-6", (when("1.2", answers={NI}), when("1.3", answers=YPY)), HIGH),
)

# --- Domain 2, effect of assignment to intervention (the 'intention-to-treat' effect) ------
D2A_Q = (
    _q("2.1", "Were participants aware of their assigned intervention during the trial?"),
    _q(
        "2.2",
        "Were carers and people delivering the interventions aware of participants' assigned "
        "intervention during the trial?",
    ),
    _q(
        "2.3",
        "Were there deviations from the intended intervention that arose because of the trial "
        "context?",
        OPT_NA,
        "If Y/PY/NI to 2.1 or 2.2",
    ),
    _q(
        "2.4",
        "Were these deviations likely to have affected the outcome?",
        OPT_NA,
        "If Y/PY to 2.3",
    ),
    _q(
        "2.5",
        "Were these deviations from intended intervention balanced between groups?",
        OPT_NA,
        "If Y/PY/NI to 2.4",
    ),
    _q(
        "2.6",
        "Was an appropriate analysis used to estimate the effect of assignment to intervention?",
    ),
    _q(
        "2.7",
        "Was there potential for a substantial impact (on the result) of the failure to analyse "
        "participants in the group to which they were randomized?",
        OPT_NA,
        "If N/PN/NI to 2.6",
    ),
)
_AWARE = when("2.1", "2.2", answers=YPYNI, quantifier="any")
D2A_PART1 = (
    Rule("P1-1", (when("2.1", "2.2", answers=NPN),), LOW),
    Rule("P1-2", (_AWARE, when("2.3", answers=NPN)), LOW),
    Rule("P1-3", (_AWARE, when("2.3", answers={NI})), SOME),
    Rule("P1-4", (_AWARE, when("2.3", answers=YPY), when("2.4", answers=NPN)), SOME),
    Rule(
        "P1-5",
        (
            _AWARE,
            when("2.3", answers=YPY),
            when("2.4", answers=YPYNI),
            when("2.5", answers=YPY),
        ),
        SOME,
    ),
    Rule(
        "P1-6",
        (
            _AWARE,
            when("2.3", answers=YPY),
            when("2.4", answers=YPYNI),
            when("2.5", answers=NPNNI),
        ),
        HIGH,
    ),
)
D2A_PART2 = (
    Rule("P2-1", (when("2.6", answers=YPY),), LOW),
    Rule("P2-2", (when("2.6", answers=NPNNI), when("2.7", answers=NPN)), SOME),
    Rule("P2-3", (when("2.6", answers=NPNNI), when("2.7", answers=YPYNI)), HIGH),
)

# --- Domain 2, effect of adhering to intervention (the 'per-protocol' effect) ---------------
D2B_Q = (
    D2A_Q[0],
    D2A_Q[1],
    _q(
        "2.3",
        "[If applicable:] Were important non-protocol interventions balanced across intervention "
        "groups?",
        OPT_NA,
        "If Y/PY/NI to 2.1 or 2.2",
    ),
    _q(
        "2.4",
        "[If applicable:] Were there failures in implementing the intervention that could have "
        "affected the outcome?",
        OPT_NA,
        "If applicable",
    ),
    _q(
        "2.5",
        "[If applicable:] Was there non-adherence to the assigned intervention regimen that could "
        "have affected participants' outcomes?",
        OPT_NA,
        "If applicable",
    ),
    _q(
        "2.6",
        "Was an appropriate analysis used to estimate the effect of adhering to the intervention?",
        OPT_NA,
        "If N/PN/NI to 2.3, or Y/PY/NI to 2.4 or 2.5",
    ),
)
_NO_PROBLEM_IMPL = (when("2.4", answers=NPN | {NA}), when("2.5", answers=NPN | {NA}))
D2B_RULES = (
    # "no problem": nobody aware, or co-interventions balanced (or not applicable), and no
    # implementation failure / non-adherence that could affect the outcome (or not applicable).
    Rule("D2B-1a", (when("2.1", "2.2", answers=NPN), *_NO_PROBLEM_IMPL), LOW, "unaware"),
    Rule("D2B-1b", (_AWARE, when("2.3", answers={Y, PY, NA}), *_NO_PROBLEM_IMPL), LOW, "aware"),
    Rule("D2B-2", (when("2.6", answers=YPY),), SOME),
    Rule("D2B-3", (when("2.6", answers=NPNNI),), HIGH),
)

# --- Domain 3: missing outcome data ---------------------------------------------------------
D3_Q = (
    _q(
        "3.1",
        "Were data for this outcome available for all, or nearly all, participants randomized?",
    ),
    _q(
        "3.2",
        "Is there evidence that the result was not biased by missing outcome data?",
        ("NA", "Y", "PY", "PN", "N", "NI"),
        "If N/PN/NI to 3.1",
    ),
    _q(
        "3.3",
        "Could missingness in the outcome depend on its true value?",
        OPT_NA,
        "If N/PN to 3.2",
    ),
    _q(
        "3.4",
        "Is it likely that missingness in the outcome depended on its true value?",
        OPT_NA,
        "If Y/PY/NI to 3.3",
    ),
)
# 3.2 has no NI option in the 2019 tool; an NI entered anyway is read as N/PN (it is not
# evidence that the result was unbiased), following the reference spec.
_32_NO = when("3.2", answers=NPNNI)
D3_RULES = (
    Rule("D3-1", (when("3.1", answers=YPY),), LOW),
    Rule("D3-2", (when("3.1", answers=NPNNI), when("3.2", answers=YPY)), LOW),
    Rule("D3-3", (when("3.1", answers=NPNNI), _32_NO, when("3.3", answers=NPN)), LOW),
    Rule(
        "D3-4",
        (when("3.1", answers=NPNNI), _32_NO, when("3.3", answers=YPYNI), when("3.4", answers=NPN)),
        SOME,
    ),
    Rule(
        "D3-5",
        (
            when("3.1", answers=NPNNI),
            _32_NO,
            when("3.3", answers=YPYNI),
            when("3.4", answers=YPYNI),
        ),
        HIGH,
    ),
)

# --- Domain 4: measurement of the outcome ---------------------------------------------------
D4_Q = (
    _q("4.1", "Was the method of measuring the outcome inappropriate?"),
    _q(
        "4.2",
        "Could measurement or ascertainment of the outcome have differed between intervention "
        "groups?",
    ),
    _q(
        "4.3",
        "Were outcome assessors aware of the intervention received by study participants?",
        OPT_NA,
        "If N/PN/NI to 4.1 and 4.2",
    ),
    _q(
        "4.4",
        "Could assessment of the outcome have been influenced by knowledge of intervention "
        "received?",
        OPT_NA,
        "If Y/PY/NI to 4.3",
    ),
    _q(
        "4.5",
        "Is it likely that assessment of the outcome was influenced by knowledge of intervention "
        "received?",
        OPT_NA,
        "If Y/PY/NI to 4.4",
    ),
)
_41 = when("4.1", answers=NPNNI)


def _d4_chain(prefix_rule: int, q42, low_or_some):
    """The 4.3 -> 4.5 chain; with 4.2 = NI every 'Low' becomes 'Some concerns'."""
    n = prefix_rule
    return (
        Rule(f"D4-{n}", (_41, q42, when("4.3", answers=NPN)), low_or_some),
        Rule(
            f"D4-{n + 1}",
            (_41, q42, when("4.3", answers=YPYNI), when("4.4", answers=NPN)),
            low_or_some,
        ),
        Rule(
            f"D4-{n + 2}",
            (
                _41,
                q42,
                when("4.3", answers=YPYNI),
                when("4.4", answers=YPYNI),
                when("4.5", answers=NPN),
            ),
            SOME,
        ),
        Rule(
            f"D4-{n + 3}",
            (
                _41,
                q42,
                when("4.3", answers=YPYNI),
                when("4.4", answers=YPYNI),
                when("4.5", answers=YPYNI),
            ),
            HIGH,
        ),
    )


D4_RULES = (
    Rule("D4-1", (when("4.1", answers=YPY),), HIGH),
    Rule("D4-2", (_41, when("4.2", answers=YPY)), HIGH),
    *_d4_chain(3, when("4.2", answers=NPN), LOW),
    *_d4_chain(7, when("4.2", answers={NI}), SOME),
)

# --- Domain 5: selection of the reported result ---------------------------------------------
D5_Q = (
    _q(
        "5.1",
        "Were the data that produced this result analysed in accordance with a pre-specified "
        "analysis plan that was finalized before unblinded outcome data were available for "
        "analysis?",
    ),
    _q(
        "5.2",
        "Is the numerical result being assessed likely to have been selected, on the basis of the "
        "results, from multiple eligible outcome measurements (e.g. scales, definitions, time "
        "points) within the outcome domain?",
    ),
    _q(
        "5.3",
        "Is the numerical result being assessed likely to have been selected, on the basis of the "
        "results, from multiple eligible analyses of the data?",
    ),
)
D5_RULES = (
    Rule("D5-1", (when("5.2", "5.3", answers=YPY, quantifier="any"),), HIGH),
    Rule("D5-2", (when("5.2", "5.3", answers=NPN), when("5.1", answers=YPY)), LOW),
    Rule("D5-3", (when("5.2", "5.3", answers=NPN), when("5.1", answers=NPNNI)), SOME),
    Rule(
        "D5-4",
        (when("5.2", "5.3", answers={NI}, quantifier="any"), when("5.2", "5.3", answers=NPNNI)),
        SOME,
    ),
)


def overall(judgements, **_):
    """Sterne et al. 2019, Table 2 / Handbook Table 8.2.b: Low if all domains Low; High if any
    High; otherwise Some concerns. 'Some concerns' in several domains *may* be judged High
    overall: the guidance leaves that to the reviewer, so it is flagged, never automatic."""
    vals = list(judgements.values())
    if HIGH in vals:
        return HIGH, "O-High: High in at least one domain", ()
    if any(v is None for v in vals):
        return None, "incomplete: a domain has no judgement", ()
    n_some = sum(v == SOME for v in vals)
    if n_some:
        flags = ()
        if n_some >= 2:
            flags = (
                f"Some concerns in {n_some} domains: the reviewer may judge the overall risk of "
                "bias High (Sterne 2019, Table 2); record that decision with apply_override",
            )
        return SOME, "O-Some: Some concerns in at least one domain, High in none", flags
    return LOW, "O-Low: Low in all domains", ()


TOOL = Tool(
    name="rob2",
    label="RoB 2 (individually randomised, parallel-group trials)",
    domains=(
        Domain(
            "D1",
            "Bias arising from the randomization process",
            D1_Q,
            (D1_RULES,),
            short="Randomization process",
        ),
        Domain(
            "D2",
            "Bias due to deviations from intended interventions",
            variants={
                ASSIGNMENT: (D2A_Q, (D2A_PART1, D2A_PART2)),
                ADHERING: (D2B_Q, (D2B_RULES,)),
            },
            short="Deviations from intended interventions",
        ),
        Domain(
            "D3",
            "Bias due to missing outcome data",
            D3_Q,
            (D3_RULES,),
            short="Missing outcome data",
        ),
        Domain(
            "D4",
            "Bias in measurement of the outcome",
            D4_Q,
            (D4_RULES,),
            short="Measurement of the outcome",
        ),
        Domain(
            "D5",
            "Bias in selection of the reported result",
            D5_Q,
            (D5_RULES,),
            short="Selection of the reported result",
        ),
    ),
    levels=LEVELS,
    overall=overall,
    effects=(ASSIGNMENT, ADHERING),
    source="Sterne et al. BMJ 2019;366:l4898; RoB 2 guidance and cribsheet (22 Aug 2019)",
)

__all__ = ["TOOL", "LOW", "SOME", "HIGH", "ASSIGNMENT", "ADHERING", "Y", "PY"]
