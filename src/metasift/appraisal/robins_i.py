"""ROBINS-I (2016) for non-randomised studies of interventions: questions as data, overall rule.

Sources: Sterne JAC et al. BMJ 2016;355:i4919 (Table 2 questions; Table 3 judgements);
ROBINS-I detailed guidance (12 Oct 2016). The 2016 tool publishes **no algorithm** from
signalling answers to domain judgements: the reviewer judges each domain (the answers inform,
not decide). The overall judgement *is* rule-based and implemented here. ROBINS-I V2 (draft,
2024-2025) is not implemented: see ``SOURCES.md``.
"""

from __future__ import annotations

from metasift.appraisal.model import Domain, Level, Question, Tool

LOW, MODERATE, SERIOUS, CRITICAL, NO_INFO = (
    "Low",
    "Moderate",
    "Serious",
    "Critical",
    "No information",
)
ASSIGNMENT, ADHERING = "assignment", "adhering"

OPT = ("Y", "PY", "PN", "N", "NI")
OPT_NA = ("NA", *OPT)

LEVELS = (
    Level(LOW, 0, "#02C100", "+"),
    Level(MODERATE, 1, "#E2DF07", "-"),
    Level(SERIOUS, 2, "#BF0000", "X"),
    Level(CRITICAL, 3, "#820000", "!"),
    Level(NO_INFO, -1, "#4EA1F7", "?"),
)


def _q(id, text, options=OPT, condition=None):
    return Question(id, text, tuple(options), condition)


D1_Q = (
    # 1.1 has no NI option in the published tool (as transcribed; see SOURCES.md).
    _q(
        "1.1",
        "Is there potential for confounding of the effect of intervention in this study?",
        ("Y", "PY", "PN", "N"),
    ),
    _q(
        "1.2",
        "Was the analysis based on splitting participants' follow up time according to "
        "intervention received?",
        OPT_NA,
        "If Y/PY to 1.1",
    ),
    _q(
        "1.3",
        "Were intervention discontinuations or switches likely to be related to factors "
        "that are prognostic for the outcome?",
        OPT_NA,
        "If Y/PY to 1.2",
    ),
    _q(
        "1.4",
        "Did the authors use an appropriate analysis method that controlled for all the "
        "important confounding domains?",
        OPT_NA,
        "If N/PN to 1.2, or N/PN to 1.3",
    ),
    _q(
        "1.5",
        "Were confounding domains that were controlled for measured validly and reliably "
        "by the variables available in this study?",
        OPT_NA,
        "If Y/PY to 1.4",
    ),
    _q(
        "1.6",
        "Did the authors control for any post-intervention variables that could have been "
        "affected by the intervention?",
        OPT_NA,
        "If N/PN to 1.2, or N/PN to 1.3",
    ),
    _q(
        "1.7",
        "Did the authors use an appropriate analysis method that controlled for all the "
        "important confounding domains and for time-varying confounding?",
        OPT_NA,
        "If Y/PY to 1.3",
    ),
    _q(
        "1.8",
        "Were confounding domains that were controlled for measured validly and reliably "
        "by the variables available in this study?",
        OPT_NA,
        "If Y/PY to 1.7",
    ),
)
D2_Q = (
    _q(
        "2.1",
        "Was selection of participants into the study (or into the analysis) based on "
        "participant characteristics observed after the start of intervention?",
    ),
    _q(
        "2.2",
        "Were the post-intervention variables that influenced selection likely to be "
        "associated with intervention?",
        OPT_NA,
        "If Y/PY to 2.1",
    ),
    _q(
        "2.3",
        "Were the post-intervention variables that influenced selection likely to be "
        "influenced by the outcome or a cause of the outcome?",
        OPT_NA,
        "If Y/PY to 2.2",
    ),
    _q("2.4", "Do start of follow-up and start of intervention coincide for most participants?"),
    _q(
        "2.5",
        "Were adjustment techniques used that are likely to correct for the presence of "
        "selection biases?",
        OPT_NA,
        "If Y/PY to 2.2 and 2.3, or N/PN to 2.4",
    ),
)
D3_Q = (
    _q("3.1", "Were intervention groups clearly defined?"),
    _q(
        "3.2",
        "Was the information used to define intervention groups recorded at the start of "
        "the intervention?",
    ),
    _q(
        "3.3",
        "Could classification of intervention status have been affected by knowledge of "
        "the outcome or risk of the outcome?",
    ),
)
D4_Q_ASSIGN = (
    _q(
        "4.1",
        "Were there deviations from the intended intervention beyond what would be "
        "expected in usual practice?",
    ),
    _q(
        "4.2",
        "Were these deviations from intended intervention unbalanced between groups and "
        "likely to have affected the outcome?",
        OPT_NA,
        "If Y/PY to 4.1",
    ),
)
D4_Q_ADHERE = (
    _q("4.3", "Were important co-interventions balanced across intervention groups?"),
    _q("4.4", "Was the intervention implemented successfully for most participants?"),
    _q("4.5", "Did study participants adhere to the assigned intervention regimen?"),
    _q(
        "4.6",
        "Was an appropriate analysis used to estimate the effect of starting and adhering "
        "to the intervention?",
        OPT_NA,
        "If N/PN to 4.3, 4.4 or 4.5",
    ),
)
D5_Q = (
    _q("5.1", "Were outcome data available for all, or nearly all, participants?"),
    _q("5.2", "Were participants excluded due to missing data on intervention status?"),
    _q(
        "5.3",
        "Were participants excluded due to missing data on other variables needed for the "
        "analysis?",
    ),
    _q(
        "5.4",
        "Are the proportion of participants and reasons for missing data similar across "
        "interventions?",
        OPT_NA,
        "If PN/N to 5.1, or Y/PY to 5.2 or 5.3",
    ),
    _q(
        "5.5",
        "Is there evidence that results were robust to the presence of missing data?",
        OPT_NA,
        "If PN/N to 5.1, or Y/PY to 5.2 or 5.3",
    ),
)
D6_Q = (
    _q(
        "6.1",
        "Could the outcome measure have been influenced by knowledge of the intervention received?",
    ),
    _q("6.2", "Were outcome assessors aware of the intervention received by study participants?"),
    _q("6.3", "Were the methods of outcome assessment comparable across intervention groups?"),
    _q(
        "6.4",
        "Were any systematic errors in measurement of the outcome related to intervention "
        "received?",
    ),
)
D7_Q = (
    _q(
        "7.1",
        "Is the reported effect estimate likely to be selected, on the basis of the "
        "results, from multiple outcome measurements within the outcome domain?",
    ),
    _q(
        "7.2",
        "Is the reported effect estimate likely to be selected, on the basis of the "
        "results, from multiple analyses of the intervention-outcome relationship?",
    ),
    _q(
        "7.3",
        "Is the reported effect estimate likely to be selected, on the basis of the "
        "results, from different subgroups?",
    ),
)


def overall(judgements, key_domains=None, **_):
    """Sterne et al. 2016, Table 3 (overall judgement), applied in order:

    R-Critical: Critical in at least one domain. R-Serious: Serious in at least one domain
    (and Critical in none). R-NI: no Serious/Critical, but No information in at least one
    *key* domain (``key_domains``; the guidance leaves which domains are key to the reviewer;
    ``None`` = every domain is key, the cautious default). R-Moderate: Low or Moderate in all
    (key) domains, Moderate in one. R-Low: Low in all domains. No information in a domain that is
    not key does not change the overall judgement."""
    keys = set(judgements) if key_domains is None else set(key_domains)
    vals = list(judgements.values())
    if CRITICAL in vals:
        return CRITICAL, "R-Critical: Critical in at least one domain", ()
    if SERIOUS in vals:
        return SERIOUS, "R-Serious: Serious in at least one domain, Critical in none", ()
    if any(v is None for v in vals):
        return None, "incomplete: a domain has no judgement", ()
    if any(v == NO_INFO for d, v in judgements.items() if d in keys):
        return NO_INFO, "R-NI: no Serious or Critical, No information in a key domain", ()
    if MODERATE in vals:
        return MODERATE, "R-Moderate: Low or Moderate in all domains", ()
    return LOW, "R-Low: Low in all domains", ()


TOOL = Tool(
    name="robins_i",
    label="ROBINS-I (2016), non-randomised studies of interventions",
    domains=(
        Domain("D1", "Bias due to confounding", D1_Q, short="Confounding"),
        Domain(
            "D2",
            "Bias in selection of participants into the study",
            D2_Q,
            short="Selection of participants",
        ),
        Domain(
            "D3",
            "Bias in classification of interventions",
            D3_Q,
            short="Classification of interventions",
        ),
        Domain(
            "D4",
            "Bias due to deviations from intended interventions",
            variants={ASSIGNMENT: (D4_Q_ASSIGN, ()), ADHERING: (D4_Q_ADHERE, ())},
            short="Deviations from intended interventions",
        ),
        Domain("D5", "Bias due to missing data", D5_Q, short="Missing data"),
        Domain("D6", "Bias in measurement of outcomes", D6_Q, short="Measurement of outcomes"),
        Domain(
            "D7",
            "Bias in selection of the reported result",
            D7_Q,
            short="Selection of the reported result",
        ),
    ),
    levels=LEVELS,
    overall=overall,
    effects=(ASSIGNMENT, ADHERING),
    source="Sterne et al. BMJ 2016;355:i4919; ROBINS-I detailed guidance (12 Oct 2016)",
    notes="No published algorithm maps signalling answers to domain judgements (2016); the "
    "reviewer gives each domain judgement.",
)
