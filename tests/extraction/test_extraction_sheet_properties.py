"""Property: whatever valid values a team types into the template, reading the workbook back gives
each value normalised exactly as :func:`validate_value` does, in the cell it was typed in.
(Store-free: :func:`parse_workbook` is the validation half of ``load_workbook``.)

Numbers are drawn as reported in papers (at most 4 decimals): a spreadsheet keeps 15 significant
digits, so a float typed with 17 (1.6557734566161777) comes back as 1.655773456616178 — Excel's
limit, not the form's."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metasift.extraction import Cell, parse_workbook, validate_value, write_template
from metasift.extraction.forms import form_field
from metasift.protocol import parse_protocol

PROTOCOL = parse_protocol(
    """
title: properties
question: {population: p, intervention: i}
outcome_domains:
  - name: d
    outcomes: [{name: pain}, {name: "function, hand"}]
extraction:
  extractors_per_study: 1
  study_fields:
    - {name: design, type: choice, allowed: [RCT, cohort study]}
    - {name: n_total, type: integer, min: 1}
    - {name: pct_female, type: number, min: 0, max: 100, unit: "%"}
    - {name: blinded, type: boolean}
    - {name: published, type: date}
    - {name: country, type: text}
  outcome_fields:
    - {name: n, type: integer, min: 0}
    - {name: mean, type: number}
reviewers: [{name: ana}]
"""
)
STUDIES = ["S1", "S2", "S3"]
SAFE_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
    min_size=1,
    max_size=30,
).filter(lambda s: s.strip() and not s.strip().startswith("="))

STUDY_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "design": st.sampled_from(["RCT", "rct", "Cohort  Study", "cohort study"]),
        "n_total": st.integers(1, 10**9) | st.integers(1, 10**6).map(str),
        "pct_female": st.decimals(0, 100, places=3).map(float) | st.integers(0, 100),
        "blinded": st.booleans() | st.sampled_from(["yes", "No", "TRUE"]),
        "published": st.dates(date(1950, 1, 1), date(2030, 12, 31)),
        "country": SAFE_TEXT,
    },
)
OUTCOME_ROW = st.fixed_dictionaries(
    {
        "arm": st.sampled_from(["ivig", "placebo", "all"]),
        "outcome": st.sampled_from(["pain", "function, hand"]),
        "timepoint": st.sampled_from(["", "6 months", "12 months"]),
    },
    optional={
        "n": st.integers(0, 10**6),
        "mean": st.decimals(-1e6, 1e6, places=4).map(float),
    },
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    studies=st.dictionaries(st.sampled_from(STUDIES), STUDY_VALUES, max_size=3),
    outcomes=st.lists(OUTCOME_ROW, max_size=6),
    study_of=st.lists(st.sampled_from(STUDIES), min_size=6, max_size=6),
)
def test_typed_values_come_back_normalised_in_their_cells(studies, outcomes, study_of):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_template(PROTOCOL, Path(tmp) / "f.xlsx", studies=STUDIES)
        wb = openpyxl.load_workbook(path)
        ws, wo = wb["study"], wb["outcomes"]
        scol = {c.value: c.column for c in ws[1]}
        ocol = {c.value: c.column for c in wo[1]}
        expected: dict[tuple[str, Cell], str] = {}
        for r, label in enumerate(STUDIES, start=2):
            for name, raw in studies.get(label, {}).items():
                ws.cell(row=r, column=scol[name], value=raw)
                cell = Cell(name)
                expected[(label, cell)] = validate_value(form_field(PROTOCOL, cell), raw)
        seen = set()
        r = 2
        for row, label in zip(outcomes, study_of, strict=False):
            key = (label, row["arm"], row["outcome"], row["timepoint"])
            if key in seen:
                continue  # one row per key (a repeated key is a located error, tested elsewhere)
            seen.add(key)
            wo.cell(row=r, column=ocol["study"], value=label)
            for name, raw in row.items():
                wo.cell(row=r, column=ocol[name], value=raw if raw != "" else None)
                if name in ("n", "mean"):
                    cell = Cell(name, row["arm"], row["outcome"], row["timepoint"])
                    expected[(label, cell)] = validate_value(form_field(PROTOCOL, cell), raw)
            r += 1
        wb.save(path)
        per_study, _ = parse_workbook(PROTOCOL, path, STUDIES)
    got = {(label, p.cell): p.value for label, items in per_study.items() for p in items}
    assert got == expected
