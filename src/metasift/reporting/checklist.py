"""The PRISMA 2020 checklist (Page et al. BMJ 2021;372:n71, Table 1): 27 items, 42 rows with the
sub-items, and where the generated report covers each one.

Item titles are the short titles of ``../shared/reference/prisma2020-flow.md`` §4 (paraphrased
there from Table 1). Items the tool cannot write (abstract, rationale, discussion, funding,
competing interests) are marked as left to the authors, so nobody mistakes them for covered.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

AUTHORS = "not generated: to be written by the authors"

CHECKLIST: tuple[tuple[str, str, str], ...] = (
    ("Title", "1", "Title: identify the report as a systematic review"),
    ("Abstract", "2", "Abstract: see the PRISMA 2020 for Abstracts checklist"),
    ("Introduction", "3", "Rationale"),
    ("Introduction", "4", "Objectives"),
    ("Methods", "5", "Eligibility criteria"),
    ("Methods", "6", "Information sources"),
    ("Methods", "7", "Search strategy"),
    ("Methods", "8", "Selection process"),
    ("Methods", "9", "Data collection process"),
    ("Methods", "10a", "Data items: outcomes"),
    ("Methods", "10b", "Data items: other variables"),
    ("Methods", "11", "Study risk of bias assessment"),
    ("Methods", "12", "Effect measures"),
    (
        "Methods",
        "13a",
        "Synthesis methods: deciding which studies were eligible for each synthesis",
    ),
    ("Methods", "13b", "Synthesis methods: preparing data for presentation or synthesis"),
    ("Methods", "13c", "Synthesis methods: tabulating or visually displaying results"),
    ("Methods", "13d", "Synthesis methods: methods used to synthesize results and rationale"),
    ("Methods", "13e", "Synthesis methods: exploring causes of heterogeneity"),
    ("Methods", "13f", "Synthesis methods: sensitivity analyses"),
    ("Methods", "14", "Reporting bias assessment"),
    ("Methods", "15", "Certainty assessment"),
    ("Results", "16a", "Study selection: results of the search and selection (flow diagram)"),
    ("Results", "16b", "Study selection: studies that seemed to meet criteria but were excluded"),
    ("Results", "17", "Study characteristics"),
    ("Results", "18", "Risk of bias in studies"),
    ("Results", "19", "Results of individual studies"),
    (
        "Results",
        "20a",
        "Results of syntheses: characteristics and risk of bias of contributing studies",
    ),
    ("Results", "20b", "Results of syntheses: results of all statistical syntheses"),
    ("Results", "20c", "Results of syntheses: investigations of heterogeneity"),
    ("Results", "20d", "Results of syntheses: sensitivity analyses"),
    ("Results", "21", "Reporting biases"),
    ("Results", "22", "Certainty of evidence"),
    ("Discussion", "23a", "General interpretation"),
    ("Discussion", "23b", "Limitations of the evidence"),
    ("Discussion", "23c", "Limitations of the review processes"),
    ("Discussion", "23d", "Implications for practice, policy and research"),
    ("Other information", "24a", "Registration"),
    ("Other information", "24b", "Protocol"),
    ("Other information", "24c", "Amendments to registration or protocol"),
    ("Other information", "25", "Support"),
    ("Other information", "26", "Competing interests"),
    ("Other information", "27", "Availability of data, code and other materials"),
)


def item_numbers() -> list[int]:
    """The distinct numbered items (1..27)."""
    return sorted({int("".join(ch for ch in i if ch.isdigit())) for _, i, _ in CHECKLIST})


def prisma_checklist(locations: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The checklist as a table ``section, item, topic, location``; ``locations`` maps an item
    ("16a") to where the report covers it; items without one are left to the authors."""
    locations = dict(locations or {})
    unknown = sorted(set(locations) - {i for _, i, _ in CHECKLIST})
    if unknown:
        from metasift.errors import ParameterError

        raise ParameterError("locations", "prisma_checklist", [i for _, i, _ in CHECKLIST], unknown)
    rows = [
        {"section": s, "item": i, "topic": t, "location": locations.get(i, AUTHORS)}
        for s, i, t in CHECKLIST
    ]
    return pd.DataFrame(rows, columns=["section", "item", "topic", "location"])
