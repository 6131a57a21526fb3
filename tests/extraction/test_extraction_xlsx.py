"""The XLSX round trip on both back ends, with the worked example's protocol (IVIG in SSc):
template -> filled by the test with openpyxl -> load -> the store holds the values; a malformed
sheet gives every located problem and loads nothing."""

from __future__ import annotations

import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from sqlalchemy import select

from metasift.errors import SheetError
from metasift.extraction import (
    Cell,
    ExtractionError,
    add_study,
    load_workbook,
    studies,
    validate_value,
    write_template,
)
from metasift.extraction.forms import form_field, unit_of
from metasift.extraction.sheets import OUTCOME_KEYS
from metasift.protocol import Reviewer
from metasift.store.models import Study, Value

LABELS = ["Takehara2013", "Poelman2015", "Agostini2021"]


@pytest.fixture
def ivig_studies(ivig, included):
    refs = included(ivig, ["Takehara 2013", "Poelman 2015", "Agostini 2021"])
    designs = ["RCT", "retrospective cohort", "retrospective cohort"]
    for ref, label, design in zip(refs, LABELS, designs, strict=True):
        add_study(ivig.store, label, design, [ref], "ana", protocol=ivig.protocol)
    with ivig.store.read() as s:
        return ivig, studies(s)


def columns(ws) -> dict[str, int]:
    return {c.value: c.column for c in ws[1] if c.value is not None}


def put(ws, row: int, values: dict):
    cols = columns(ws)
    for name, v in values.items():
        ws.cell(row=row, column=cols[name], value=v)


def list_values(wb, formula: str) -> list[str]:
    """The values behind a list data validation such as 'lists'!$B$2:$B$19."""
    sheet, rng = formula.split("!")
    ws = wb[sheet.strip("'")]
    return [c.value for row in ws[rng.replace("$", "")] for c in row]


def test_template_has_a_sheet_per_level_dropdowns_and_a_readme(ivig_studies, tmp_path):
    review, infos = ivig_studies
    p = review.protocol
    path = write_template(p, tmp_path / "form.xlsx", studies=infos)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["README", "study", "outcomes", "lists"]
    assert wb["lists"].sheet_state == "hidden"
    ws_s, ws_o = wb["study"], wb["outcomes"]
    assert [c.value for c in ws_s[1]] == ["study"] + [f.name for f in p.extraction.study_fields]
    assert [c.value for c in ws_o[1]] == list(OUTCOME_KEYS) + [
        f.name for f in p.extraction.outcome_fields
    ]
    assert [ws_s.cell(row=r, column=1).value for r in (2, 3, 4)] == sorted(LABELS)

    def dropdown(ws, column: str) -> list[str]:
        for dv in ws.data_validations.dataValidation:
            if dv.type == "list" and any(str(r).startswith(f"{column}2:") for r in dv.sqref.ranges):
                return list_values(wb, dv.formula1)
        raise AssertionError(f"no drop-down on column {column} of {ws.title}")

    s_cols, o_cols = columns(ws_s), columns(ws_o)
    design = next(f for f in p.extraction.study_fields if f.name == "design")
    assert dropdown(ws_s, get_column_letter(s_cols["design"])) == design.allowed
    assert dropdown(ws_s, "A") == sorted(LABELS)
    assert dropdown(ws_o, get_column_letter(o_cols["outcome"])) == [o.name for _, o in p.outcomes()]
    direction = next(f for f in p.extraction.outcome_fields if f.name == "direction")
    assert dropdown(ws_o, get_column_letter(o_cols["direction"])) == direction.allowed
    # numeric fields carry Excel's whole/decimal checks with the protocol's range
    kinds = {
        (str(dv.sqref).split(":")[0], dv.type, dv.formula1, dv.formula2)
        for dv in ws_s.data_validations.dataValidation
    }
    assert (f"{get_column_letter(s_cols['pct_female'])}2", "decimal", "0", "100") in kinds
    assert (f"{get_column_letter(s_cols['n_total'])}2", "whole", "1", None) in kinds

    readme = [c for row in wb["README"].iter_rows(values_only=True) for c in row if c]
    for f in p.extraction.study_fields + p.extraction.outcome_fields:
        assert f.name in readme
    for _, o in p.outcomes():
        assert o.name in readme
    assert "a number from 0 to 100 (unit: %)" in readme


STUDY_ROWS = {
    "Takehara2013": {"design": "rct", "country": "Japan", "n_total": 63, "n_ivig": "31",
                     "n_dcSSc": 63, "n_lcSSc": 0, "follow_up_months": 13.8},
    "Poelman2015": {"design": "Retrospective cohort", "n_total": 30, "n_female": 24,
                    "pct_female": "80,0", "age_mean": 46.6, "age_sd": 12.3,
                    "ivig_dose_regimen": "2 g/kg/month, adjunctive"},
}  # fmt: skip
OUTCOME_ROWS = [
    {"study": "Takehara2013", "arm": "ivig", "outcome": "mRSS", "timepoint": "12 weeks",
     "n": 31, "mean": -3.3, "sd": 4.2, "p_value": "0.3257"},
    {"study": "Takehara2013", "arm": "placebo", "outcome": "mRSS", "timepoint": "12 weeks",
     "n": 31, "mean": "-4.2", "sd": 4.6},
    {"study": "Poelman2015", "arm": "ivig", "outcome": "withdrawal due to adverse events",
     "timepoint": "end of treatment", "n": 30, "events": 2, "direction": "Harm"},
]  # fmt: skip


def fill(path, study_rows=STUDY_ROWS, outcome_rows=OUTCOME_ROWS):
    wb = openpyxl.load_workbook(path)
    ws = wb["study"]
    rows = {ws.cell(row=r, column=1).value: r for r in range(2, ws.max_row + 1)}
    for label, vals in study_rows.items():
        put(ws, rows[label], vals)
    for i, vals in enumerate(outcome_rows, start=2):
        put(wb["outcomes"], i, vals)
    wb.save(path)


def stored(review) -> set[tuple]:
    with review.store.read() as s:
        labels = dict(s.execute(select(Study.id, Study.label)).all())
        return {
            (labels[v.study_id], v.level, v.field, v.arm, v.outcome, v.timepoint, v.value, v.unit)
            for v in s.scalars(select(Value).where(Value.kind == "extract"))
        }


def test_round_trip_template_fill_load(ivig_studies, tmp_path):
    review, infos = ivig_studies
    p = review.protocol
    path = write_template(p, tmp_path / "form.xlsx", studies=infos)
    fill(path)
    report = load_workbook(review.store, p, path, "ana")

    expected = set()
    for label, vals in STUDY_ROWS.items():
        for name, raw in vals.items():
            cell = Cell(name)
            f = form_field(p, cell)
            expected.add(
                (label, "study", name, "", "", "", validate_value(f, raw), unit_of(p, cell, f))
            )
    for row in OUTCOME_ROWS:
        for name, raw in row.items():
            if name in OUTCOME_KEYS:
                continue
            cell = Cell(name, row["arm"], row["outcome"], row["timepoint"])
            f = form_field(p, cell)
            keys = (row["study"], "outcome", name, row["arm"], row["outcome"], row["timepoint"])
            expected.add(keys + (validate_value(f, raw), unit_of(p, cell, f)))
    assert stored(review) == expected
    n = sum(len(v) for v in STUDY_ROWS.values()) + sum(len(r) - 4 for r in OUTCOME_ROWS)
    assert (report.values, report.written, report.unchanged) == (n, n, 0)
    assert set(report.studies) == {"Takehara2013", "Poelman2015"}
    # normalisation and units as the conventions say
    got = {(r[0], r[2], r[3]): (r[6], r[7]) for r in stored(review)}
    assert got[("Takehara2013", "design", "")] == ("RCT", "")
    assert got[("Poelman2015", "pct_female", "")] == ("80.0", "%")
    assert got[("Poelman2015", "age_mean", "")] == ("46.6", "years")
    assert got[("Takehara2013", "mean", "placebo")] == ("-4.2", "points (0-51)")
    assert got[("Takehara2013", "n", "ivig")] == ("31", "")
    assert got[("Poelman2015", "direction", "ivig")] == ("harm", "")

    again = load_workbook(review.store, p, path, "ana")
    assert (again.written, again.unchanged) == (0, n)
    assert len(stored(review)) == n
    ev = review.audit_log(action="extract.load")
    assert [e.actor for e in ev] == ["ana", "ana"] and ev[0].after["written"] == n
    assert len(review.audit_log(action="extract.value")) == n

    # a second extractor may load the same form; a third is refused on every row, located
    load_workbook(review.store, p, path, "ben")
    dan = p.model_copy(update={"reviewers": [*p.reviewers, Reviewer(name="dan")]})
    with pytest.raises(SheetError) as info:
        load_workbook(review.store, dan, path, "dan")
    study_rows = {"Agostini2021": 2, "Poelman2015": 3, "Takehara2013": 4}
    assert {(s, r, c) for s, r, c, _ in info.value.problems} == {
        ("study", study_rows[label], "A") for label in STUDY_ROWS
    } | {("outcomes", r, "A") for r in range(2, 2 + len(OUTCOME_ROWS))}
    assert "already has 2 extractor(s) (ana, ben)" in info.value.problems[0][3]
    with review.store.read() as s:
        who = [v.reviewer for v in s.scalars(select(Value))]
    assert sorted(set(who)) == ["ana", "ben"] and len(who) == 2 * n


def test_malformed_sheet_gives_every_located_problem_and_loads_nothing(ivig_studies, tmp_path):
    review, infos = ivig_studies
    p = review.protocol
    path = write_template(p, tmp_path / "bad.xlsx", studies=infos)
    wb = openpyxl.load_workbook(path)
    ws, wo = wb["study"], wb["outcomes"]
    sc, oc = columns(ws), columns(wo)
    col = {n: get_column_letter(j) for n, j in sc.items()}
    ocol = {n: get_column_letter(j) for n, j in oc.items()}
    # study sheet: rows 2-4 are Agostini2021, Poelman2015, Takehara2013 (by label)
    put(ws, 2, {"country": "Italy"})  # values, but the required design and n_total are missing
    put(ws, 3, {"design": "pilot", "n_total": 30, "pct_female": 180})
    put(ws, 4, {"design": "RCT", "n_total": "sixty-three"})
    put(ws, 5, {"study": "Unknown2000", "design": "RCT", "n_total": 5})
    put(ws, 6, {"study": "Poelman2015", "country": "USA"})  # a second row for one study
    put(ws, 7, {"study": "Takehara2013"})  # a label alone is no data: skipped, no problem
    good = {"study": "Takehara2013", "arm": "ivig", "outcome": "mRSS", "timepoint": "12 weeks"}
    put(wo, 2, good | {"n": 31, "mean": -3.3})  # valid, but must not be loaded either
    put(wo, 3, good | {"outcome": "skin score", "n": 31})
    put(wo, 4, good | {"arm": None, "n": 31})
    put(wo, 5, good | {"arm": "placebo", "sd": -1, "direction": "better"})
    put(wo, 6, good | {"sd": 4.2})  # the same study x arm x outcome x time point as row 2
    extra = wo.max_column + 1
    wo.cell(row=1, column=extra, value="comments")
    wb.save(path)

    with pytest.raises(SheetError) as info:
        load_workbook(review.store, p, path, "ana")
    err = info.value
    located = {(s, r, c) for s, r, c, _ in err.problems}
    assert located == {
        ("study", 2, col["design"]),
        ("study", 2, col["n_total"]),
        ("study", 3, col["design"]),
        ("study", 3, col["pct_female"]),
        ("study", 4, col["n_total"]),
        ("study", 5, "A"),
        ("study", 6, "A"),
        ("outcomes", 1, get_column_letter(extra)),
        ("outcomes", 3, ocol["outcome"]),
        ("outcomes", 4, ocol["arm"]),
        ("outcomes", 5, ocol["sd"]),
        ("outcomes", 5, ocol["direction"]),
        ("outcomes", 6, ocol["outcome"]),
    }
    assert len(err.problems) == len(located)
    why = {(s, r, c): w for s, r, c, w in err.problems}
    assert "a whole number >= 1" in why[("study", 4, col["n_total"])]
    assert "'sixty-three'" in why[("study", 4, col["n_total"])]
    assert "a number from 0 to 100" in why[("study", 3, col["pct_female"])]
    assert "one of: RCT, non-randomised controlled" in why[("study", 3, col["design"])]
    assert "required" in why[("study", 2, col["design"])]
    assert "Unknown2000" in why[("study", 5, "A")]
    assert "row 3" in why[("study", 6, "A")]
    assert "an outcome of the protocol" in why[("outcomes", 3, ocol["outcome"])]
    assert "also on row 2" in why[("outcomes", 6, ocol["outcome"])]
    assert "comments" in why[("outcomes", 1, get_column_letter(extra))]
    assert str(err).startswith(str(path)) and "13 problem(s)" in str(err)

    assert stored(review) == set()
    assert review.audit_log(action="extract.value") == []
    assert review.audit_log(action="extract.load") == []


def test_not_a_workbook_missing_sheets_and_wrong_reviewer(ivig_studies, tmp_path):
    review, infos = ivig_studies
    p = review.protocol
    junk = tmp_path / "junk.xlsx"
    junk.write_text("study,n_total\nTakehara2013,63\n")
    with pytest.raises(SheetError, match="an .xlsx workbook"):
        load_workbook(review.store, p, junk, "ana")
    with pytest.raises(SheetError, match="an existing .xlsx file"):
        load_workbook(review.store, p, tmp_path / "nowhere.xlsx", "ana")

    path = write_template(p, tmp_path / "form.xlsx", studies=infos)
    wb = openpyxl.load_workbook(path)
    del wb["outcomes"]
    wb["study"].title = "Studies"
    wb.save(path)
    with pytest.raises(SheetError) as info:
        load_workbook(review.store, p, path, "ana")
    assert {(s, r) for s, r, _, _ in info.value.problems} == {("study", 0), ("outcomes", 0)}

    with pytest.raises(ExtractionError, match="not a protocol reviewer"):
        load_workbook(review.store, p, path, "carmen")  # a resolver does not extract
    assert stored(review) == set()
