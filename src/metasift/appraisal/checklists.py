"""Newcastle-Ottawa Scale (cohort, case-control) and the JBI checklist for case series.

NOS: Wells GA, Shea B, O'Connell D, et al. The Newcastle-Ottawa Scale (NOS) for assessing the
quality of nonrandomised studies in meta-analyses (Ottawa Hospital Research Institute). Item
response options (a, b, c, ...) and the star-earning ones are the NOS coding forms'. Stars
convert to Good / Fair / Poor by the thresholds widely reported as "AHRQ standards" (a
convention, not from the NOS authors; see ``SOURCES.md``).

JBI: Munn Z, Barker TH, Moola S, et al. JBI Evid Synth 2020;18(10):2127-2133; JBI Critical
Appraisal Checklist for Case Series. JBI prescribes no scoring or cut-off: the overall
decision (include / exclude / seek further info) is always the reviewer's.
"""

from __future__ import annotations

from metasift.appraisal.model import Domain, Level, Question, Tool

GOOD, FAIR, POOR = "Good", "Fair", "Poor"
NOS_LEVELS = (
    Level(GOOD, 0, "#02C100", "+"),
    Level(FAIR, 1, "#E2DF07", "-"),
    Level(POOR, 2, "#BF0000", "X"),
)


def _item(id, text, options: dict[str, str], stars: str):
    """A NOS item: ``options`` maps a letter to its wording, ``stars`` the star-earning letters."""
    wording = "; ".join(f"{k}) {v}" + (" *" if k in stars else "") for k, v in options.items())
    return Question(id, f"{text} — {wording}", tuple(options), None), frozenset(stars)


_YN = {"yes": "yes", "no": "no"}

NOS_COHORT_ITEMS = {
    "Selection": (
        _item(
            "S1",
            "Representativeness of the exposed cohort",
            {
                "a": "truly representative of the average [target population] in the community",
                "b": "somewhat representative of the average [target population] in the community",
                "c": "selected group of users (e.g. nurses, volunteers)",
                "d": "no description of the derivation of the cohort",
            },
            "ab",
        ),
        _item(
            "S2",
            "Selection of the non-exposed cohort",
            {
                "a": "drawn from the same community as the exposed cohort",
                "b": "drawn from a different source",
                "c": "no description of the derivation of the non-exposed cohort",
            },
            "a",
        ),
        _item(
            "S3",
            "Ascertainment of exposure",
            {
                "a": "secure record (e.g. surgical records)",
                "b": "structured interview",
                "c": "written self report",
                "d": "no description",
            },
            "ab",
        ),
        _item(
            "S4",
            "Demonstration that outcome of interest was not present at start of study",
            {"a": "yes", "b": "no"},
            "a",
        ),
    ),
    "Comparability": (
        _item(
            "C1a",
            "Comparability of cohorts on the basis of the design or analysis: study "
            "controls for the most important factor (pre-specified)",
            _YN,
            ("yes",),
        ),
        _item(
            "C1b",
            "Comparability of cohorts on the basis of the design or analysis: study "
            "controls for any additional factor",
            _YN,
            ("yes",),
        ),
    ),
    "Outcome": (
        _item(
            "O1",
            "Assessment of outcome",
            {
                "a": "independent blind assessment",
                "b": "record linkage",
                "c": "self report",
                "d": "no description",
            },
            "ab",
        ),
        _item(
            "O2",
            "Was follow-up long enough for outcomes to occur",
            {"a": "yes (adequate follow-up period pre-specified)", "b": "no"},
            "a",
        ),
        _item(
            "O3",
            "Adequacy of follow up of cohorts",
            {
                "a": "complete follow up, all subjects accounted for",
                "b": "subjects lost to follow up unlikely to introduce bias (small number lost, "
                "above the pre-specified follow-up rate, or description of those lost)",
                "c": "follow up rate below the pre-specified rate and no description of those lost",
                "d": "no statement",
            },
            "ab",
        ),
    ),
}

NOS_CASE_CONTROL_ITEMS = {
    "Selection": (
        _item(
            "S1",
            "Is the case definition adequate?",
            {
                "a": "yes, with independent validation",
                "b": "yes, e.g. record linkage or based on self reports",
                "c": "no description",
            },
            "a",
        ),
        _item(
            "S2",
            "Representativeness of the cases",
            {
                "a": "consecutive or obviously representative series of cases",
                "b": "potential for selection biases or not stated",
            },
            "a",
        ),
        _item(
            "S3",
            "Selection of controls",
            {"a": "community controls", "b": "hospital controls", "c": "no description"},
            "a",
        ),
        _item(
            "S4",
            "Definition of controls",
            {"a": "no history of disease (endpoint)", "b": "no description of source"},
            "a",
        ),
    ),
    "Comparability": (
        _item(
            "C1a",
            "Comparability of cases and controls on the basis of the design or "
            "analysis: study controls for the most important factor (pre-specified)",
            _YN,
            ("yes",),
        ),
        _item(
            "C1b",
            "Comparability of cases and controls on the basis of the design or "
            "analysis: study controls for any additional factor",
            _YN,
            ("yes",),
        ),
    ),
    "Exposure": (
        _item(
            "E1",
            "Ascertainment of exposure",
            {
                "a": "secure record (e.g. surgical records)",
                "b": "structured interview where blind to case/control status",
                "c": "interview not blinded to case/control status",
                "d": "written self report or medical record only",
                "e": "no description",
            },
            "ab",
        ),
        _item(
            "E2",
            "Same method of ascertainment for cases and controls",
            {"a": "yes", "b": "no"},
            "a",
        ),
        _item(
            "E3",
            "Non-response rate",
            {
                "a": "same rate for both groups",
                "b": "non respondents described",
                "c": "rate different and no designation",
            },
            "a",
        ),
    ),
}

# AHRQ-style thresholds per category: (min stars for Good, min stars for Fair); below Fair = Poor.
AHRQ_THRESHOLDS = {
    "Selection": (3, 2),
    "Comparability": (1, 1),
    "Outcome": (2, 2),
    "Exposure": (2, 2),
}


def _nos_scorer(items):
    stars_for = {q.id: s for cat in items.values() for q, s in cat}

    def score(domain: Domain, answers):
        missing = [q.id for q in domain.questions if answers.get(q.id) is None]
        stars = sum(answers.get(q.id) in stars_for[q.id] for q in domain.questions)
        good, fair = AHRQ_THRESHOLDS[domain.id]
        if missing:
            if stars + len(missing) < fair:  # Poor whatever the missing items would add
                return (
                    POOR,
                    f"AHRQ-{domain.id}-Poor: at most {stars + len(missing)} < {fair} stars",
                    [],
                    None,
                )
            return None, "incomplete", missing, None
        if stars >= good:
            return GOOD, f"AHRQ-{domain.id}-Good: {stars} >= {good} stars", [], stars
        if stars >= fair:
            return FAIR, f"AHRQ-{domain.id}-Fair: {stars} = {fair} stars", [], stars
        return POOR, f"AHRQ-{domain.id}-Poor: {stars} < {fair} stars", [], stars

    return score


def nos_overall(judgements, **_):
    """AHRQ-style conversion: Poor if any category is Poor (Selection 0-1 OR Comparability 0 OR
    Outcome/Exposure 0-1 stars); Good if all categories are Good (Selection 3-4 AND Comparability
    1-2 AND Outcome/Exposure 2-3); otherwise Fair (Selection 2 stars)."""
    vals = list(judgements.values())
    if POOR in vals:
        return POOR, "AHRQ-Poor: a category below its threshold", ()
    if any(v is None for v in vals):
        return None, "incomplete: a category has missing items", ()
    if all(v == GOOD for v in vals):
        return GOOD, "AHRQ-Good: every category at its Good threshold", ()
    return FAIR, "AHRQ-Fair: Selection 2 stars, other categories adequate", ()


def _nos_tool(name, label, items):
    return Tool(
        name=name,
        label=label,
        domains=tuple(
            Domain(cat, cat, tuple(q for q, _ in qs), short=cat) for cat, qs in items.items()
        ),
        levels=NOS_LEVELS,
        overall=nos_overall,
        score_domain=_nos_scorer(items),
        source="Wells et al., Newcastle-Ottawa Scale (OHRI); thresholds: 'AHRQ standards' as "
        "used in published reviews (convention)",
        notes="Stars are kept per item; Good/Fair/Poor is a convention, not part of the NOS.",
    )


NOS_COHORT = _nos_tool("nos_cohort", "Newcastle-Ottawa Scale, cohort studies", NOS_COHORT_ITEMS)
NOS_CASE_CONTROL = _nos_tool(
    "nos_case_control", "Newcastle-Ottawa Scale, case-control studies", NOS_CASE_CONTROL_ITEMS
)

# --- JBI checklist for case series ----------------------------------------------------------
JBI_YES, JBI_NO, JBI_UNCLEAR, JBI_NA = "Yes", "No", "Unclear", "Not applicable"
JBI_LEVELS = (
    Level(JBI_YES, 0, "#02C100", "+"),
    Level(JBI_UNCLEAR, 1, "#E2DF07", "?"),
    Level(JBI_NO, 2, "#BF0000", "X"),
    Level(JBI_NA, -1, "#CCCCCC", ""),
)
INCLUDE, SEEK, EXCLUDE = "Include", "Seek further info", "Exclude"
JBI_OVERALL_LEVELS = (
    Level(INCLUDE, 0, "#02C100", "+"),
    Level(SEEK, 1, "#4EA1F7", "?"),
    Level(EXCLUDE, 2, "#BF0000", "X"),
)
JBI_ITEMS = (
    "Were there clear criteria for inclusion in the case series?",
    "Was the condition measured in a standard, reliable way for all participants included in "
    "the case series?",
    "Were valid methods used for identification of the condition for all participants included "
    "in the case series?",
    "Did the case series have consecutive inclusion of participants?",
    "Did the case series have complete inclusion of participants?",
    "Was there clear reporting of the demographics of the participants in the study?",
    "Was there clear reporting of clinical information of the participants?",
    "Were the outcomes or follow up results of cases clearly reported?",
    "Was there clear reporting of the presenting site(s)/clinic(s) demographic information?",
    "Was statistical analysis appropriate?",
)
JBI_OPTIONS = (JBI_YES, JBI_NO, JBI_UNCLEAR, JBI_NA)


def _jbi_score(domain: Domain, answers):
    q = domain.questions[0]
    a = answers.get(q.id)
    if a is None:
        return None, "incomplete", [q.id], None
    return a, "JBI item answer", [], None


def jbi_overall(judgements, **_):
    """JBI prescribes no decision rule: no suggestion; the count of Yes answers among applicable
    items is reported as a descriptive note only."""
    applicable = [v for v in judgements.values() if v not in (JBI_NA, None)]
    n_yes = sum(v == JBI_YES for v in applicable)
    note = f"{n_yes} of {len(applicable)} applicable items answered Yes (descriptive only)"
    return None, "JBI: no published decision rule; the reviewer decides", (note,)


JBI_CASE_SERIES = Tool(
    name="jbi_case_series",
    label="JBI critical appraisal checklist for case series",
    domains=tuple(
        Domain(f"Q{i}", text, (Question(f"Q{i}", text, JBI_OPTIONS),), short=f"Q{i}")
        for i, text in enumerate(JBI_ITEMS, start=1)
    ),
    levels=JBI_LEVELS,
    overall_levels=JBI_OVERALL_LEVELS,
    overall=jbi_overall,
    score_domain=_jbi_score,
    source="Munn et al. JBI Evid Synth 2020;18(10):2127-2133; JBI checklist for case series",
    notes="No scoring or cut-off is prescribed by JBI; the overall decision is the reviewer's.",
)
