"""Studies, dual extraction, differences, reconciliation and final values, on both back ends.

The project fixture's protocol is the commented template: study fields design (choice, required)
and n_total (integer >= 1, required); outcome fields n, mean, sd, events; one outcome "main
outcome"; reviewers alice (owner, reviewer), bob (reviewer), carol (resolver); two extractors.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from metasift.extraction import (
    FINAL_COLUMNS,
    Cell,
    ExtractionError,
    InvalidValueError,
    add_study,
    differences,
    final_values,
    reconcile,
    record_values,
    studies,
)
from metasift.protocol import Reviewer
from metasift.store.models import Value

OUT = "main outcome"


def rows_of(values: dict[Cell, object]) -> list[dict]:
    return [
        {"field": c.field, "arm": c.arm, "outcome": c.outcome, "timepoint": c.timepoint, "value": v}
        for c, v in values.items()
    ]


def value_rows(review) -> list[Value]:
    with review.store.read() as s:
        return list(s.scalars(select(Value).order_by(Value.id)))


def test_add_study_groups_included_reports(project, included, make_refs):
    refs = included(project, ["Trial main report", "Trial extension", "Cohort"])
    p = project.protocol
    info = add_study(project.store, "Smith2020", "rct", refs[:2], "alice", protocol=p)
    assert (info.label, info.design, info.reference_ids) == ("Smith2020", "RCT", tuple(refs[:2]))
    add_study(project.store, "Jones2021", "cohort", [refs[2]], "alice", protocol=p)
    with project.store.read() as s:
        listed = studies(s)
    assert [(x.label, x.reference_ids) for x in listed] == [
        ("Jones2021", (refs[2],)),
        ("Smith2020", tuple(refs[:2])),
    ]
    ev = project.audit_log(action="extract.add_study")
    assert [e.after["label"] for e in ev] == ["Smith2020", "Jones2021"]
    assert ev[0].actor == "alice" and ev[0].after["reference_ids"] == refs[:2]

    not_screened = make_refs(project, ["Never screened"])
    with pytest.raises(ExtractionError, match="not included at full text"):
        add_study(project.store, "X", "RCT", not_screened, "alice", protocol=p)
    with pytest.raises(ExtractionError, match="exists already"):
        add_study(project.store, "Smith2020", "RCT", [refs[0]], "alice", protocol=p)
    with pytest.raises(ExtractionError, match="not a design of the protocol"):
        add_study(project.store, "Y", "pilot", [refs[0]], "alice", protocol=p)
    with pytest.raises(ExtractionError, match="no reference #999999"):
        add_study(project.store, "Z", "RCT", [999999], "alice", protocol=p)
    with pytest.raises(ExtractionError, match="at least one reference"):
        add_study(project.store, "Z", "RCT", [], "alice", protocol=p)
    with project.store.read() as s:
        assert len(studies(s)) == 2  # nothing half-made


@pytest.fixture
def two_studies(project, included):
    refs = included(project, ["Trial", "Cohort"])
    add_study(project.store, "S1", "RCT", [refs[0]], "alice", protocol=project.protocol)
    add_study(project.store, "S2", "cohort", [refs[1]], "alice", protocol=project.protocol)
    return project


def test_record_values_validates_everything_first_and_follows_the_convention(two_studies):
    review, p = two_studies, two_studies.protocol
    good = {Cell("n_total"): 60, Cell("mean", "ivig", OUT, "12 months"): "5.0"}
    with pytest.raises(InvalidValueError, match="n_total"):
        record_values(review.store, p, "S1", "alice", rows_of(good | {Cell("n_total"): 0}))
    with pytest.raises(ExtractionError, match="not an outcome of the protocol"):
        record_values(review.store, p, "S1", "alice", rows_of({Cell("n", "a", "FEV1", "1y"): 3}))
    with pytest.raises(ExtractionError, match="not a study-level field"):
        record_values(review.store, p, "S1", "alice", rows_of({Cell("colour"): "red"}))
    with pytest.raises(ExtractionError, match="need an arm"):
        record_values(review.store, p, "S1", "alice", rows_of({Cell("n", "", OUT, "1y"): 3}))
    with pytest.raises(ExtractionError, match="role reviewer or owner"):
        record_values(review.store, p, "S1", "carol", rows_of(good))  # a resolver only
    with pytest.raises(ExtractionError, match="no study 'S9'"):
        record_values(review.store, p, "S9", "alice", rows_of(good))
    assert value_rows(review) == []  # every failure above wrote nothing

    written = record_values(review.store, p, "S1", "alice", rows_of(good))
    assert len(written) == 2
    got = {
        (v.level, v.field, v.arm, v.outcome, v.timepoint, v.value, v.unit, v.kind)
        for v in value_rows(review)
    }
    assert got == {
        ("study", "n_total", "", "", "", "60", "", "extract"),
        ("outcome", "mean", "ivig", OUT, "12 months", "5.0", "", "extract"),
    }
    # the same values again write nothing; a change writes one row; None clears
    assert record_values(review.store, p, "S1", "alice", rows_of(good)) == []
    assert len(record_values(review.store, p, "S1", "alice", rows_of({Cell("n_total"): 61}))) == 1
    record_values(review.store, p, "S1", "alice", rows_of({Cell("n_total"): None}))
    assert [v.value for v in value_rows(review) if v.field == "n_total"] == ["60", "61", ""]
    ev = review.audit_log(action="extract.value")
    assert len(ev) == 4
    assert ev[2].before["value"] == "60" and ev[2].after["value"] == "61"
    assert ev[2].actor == "alice"

    # two extractors per study: a third is refused
    record_values(review.store, p, "S1", "bob", rows_of(good))
    dan = p.model_copy(update={"reviewers": [*p.reviewers, Reviewer(name="dan")]})
    with pytest.raises(ExtractionError, match="already has 2 extractor"):
        record_values(review.store, dan, "S1", "dan", rows_of(good))


def test_two_extractors_disagree_on_three_values(two_studies):
    review, p = two_studies, two_studies.protocol
    t12, t6 = "12 months", "6 months"
    alice = {
        Cell("design"): "RCT",
        Cell("n_total"): 60,
        Cell("n", "ivig", OUT, t12): 30,
        Cell("mean", "ivig", OUT, t12): 5.0,
        Cell("sd", "ivig", OUT, t12): 1.2,
        Cell("n", "placebo", OUT, t12): 30,
        Cell("mean", "placebo", OUT, t12): 6.5,
        Cell("sd", "placebo", OUT, t12): 1.4,
    }
    alice2 = {Cell("design"): "cohort", Cell("n_total"): 40, Cell("events", "all", OUT, t6): 11}
    bob, bob2 = dict(alice), dict(alice2)
    disagree = {  # the three cells bob read differently
        ("S1", Cell("n_total")): 61,
        ("S1", Cell("mean", "ivig", OUT, t12)): 5.1,
        ("S2", Cell("events", "all", OUT, t6)): 12,
    }
    for (study, cell), v in disagree.items():
        (bob if study == "S1" else bob2)[cell] = v
    only_alice = Cell("sd", "placebo", OUT, "24 months")  # bob has not filled this one yet
    alice[only_alice] = 1.5

    record_values(review.store, p, "S1", "alice", rows_of(alice))
    record_values(review.store, p, "S2", "alice", rows_of(alice2))
    # bob first typed a wrong n, then corrected it: only the latest value counts
    record_values(review.store, p, "S1", "bob", rows_of({Cell("n", "ivig", OUT, t12): 31}))
    record_values(review.store, p, "S1", "bob", rows_of(bob))
    record_values(review.store, p, "S2", "bob", rows_of(bob2))

    with review.store.read() as s:
        diffs = differences(s, p)
    conflicts = [d for d in diffs if d.kind == "conflict"]
    incomplete = [d for d in diffs if d.kind == "incomplete"]
    assert {(d.study, d.cell) for d in conflicts} == set(disagree)
    assert len(conflicts) == 3
    norm = {"S1": (alice, bob), "S2": (alice2, bob2)}
    for d in conflicts:
        a, b = norm[d.study]
        assert d.values == {"alice": str(a[d.cell]), "bob": str(b[d.cell])}
    assert [(d.study, d.cell, d.values) for d in incomplete] == [
        ("S1", only_alice, {"alice": "1.5"})
    ]
    assert diffs[:3] == conflicts  # conflicts first, kept apart from incomplete cells

    decided = {
        ("S1", Cell("n_total")): ("60", "60 randomised (CONSORT flow); 61 screened"),
        ("S1", Cell("mean", "ivig", OUT, t12)): ("5.1", "Table 2, not the abstract"),
        ("S2", Cell("events", "all", OUT, t6)): ("12", "one event in the supplement"),
    }
    for (study, cell), (value, why) in decided.items():
        reconcile(review.store, p, study, cell, value, "carol", why)

    with review.store.read() as s:
        left = differences(s, p)
        resolved = differences(s, p, include_resolved=True)
        final = final_values(s, p)
    assert [d.kind for d in left] == ["incomplete"]
    shown = {(d.study, d.cell): (d.reconciled, d.decided_by, d.note) for d in resolved}
    for key, (value, why) in decided.items():
        assert shown[key] == (validate(p, key[1], value), "carol", why)

    ev = review.audit_log(action="extract.reconcile")
    assert len(ev) == 3
    for e in ev:
        assert e.actor == "carol"
        assert e.after["note"] and e.after["kind"] == "reconciled"
        assert set(e.before["values"]) == {"alice", "bob"}
    rec = [v for v in value_rows(review) if v.kind == "reconciled"]
    assert {(v.reviewer, v.note) for v in rec} == {("carol", why) for _, why in decided.values()}

    # final values: agreed cells, the reconciled ones, and not the cell only alice filled
    assert list(final.columns) == FINAL_COLUMNS
    expected = {}
    for study, vals in (("S1", alice), ("S2", alice2)):
        for cell, v in vals.items():
            if cell != only_alice:
                expected[(study, cell)] = validate(p, cell, v)
    for key, (value, _) in decided.items():
        expected[key] = validate(p, key[1], value)
    got = {
        (r.study, Cell(r.field, r.arm, r.outcome, r.timepoint)): r.value for r in final.itertuples()
    }
    assert got == expected
    assert set(final["design"]) == {"RCT", "cohort"}
    assert set(zip(final["study"], final["level"], strict=True)) == {
        ("S1", "study"),
        ("S1", "outcome"),
        ("S2", "study"),
        ("S2", "outcome"),
    }


def validate(p, cell, value):
    from metasift.extraction.forms import form_field, validate_value

    return validate_value(form_field(p, cell), value)


def test_reconcile_needs_who_why_and_an_extracted_cell(two_studies):
    review, p = two_studies, two_studies.protocol
    record_values(review.store, p, "S1", "alice", rows_of({Cell("n_total"): 60}))
    with pytest.raises(ExtractionError, match="say why"):
        reconcile(review.store, p, "S1", Cell("n_total"), 60, "carol", "  ")
    with pytest.raises(ExtractionError, match="not a protocol reviewer"):
        reconcile(review.store, p, "S1", Cell("n_total"), 60, "mallory", "because")
    with pytest.raises(ExtractionError, match="nothing was extracted"):
        reconcile(review.store, p, "S2", Cell("n_total"), 60, "carol", "because")
    with pytest.raises(InvalidValueError):
        reconcile(review.store, p, "S1", Cell("n_total"), "sixty", "carol", "because")
    assert [v.kind for v in value_rows(review)] == ["extract"]


def test_final_values_with_one_extractor_per_study(two_studies):
    review, p = two_studies, two_studies.protocol
    one = p.model_copy(
        update={"extraction": p.extraction.model_copy(update={"extractors_per_study": 1})}
    )
    record_values(review.store, one, "S1", "alice", rows_of({Cell("n_total"): 60}))
    with review.store.read() as s:
        assert differences(s, one) == []
        single = final_values(s, one)
        dual = final_values(s, p)
    assert single[["study", "field", "value"]].values.tolist() == [["S1", "n_total", "60"]]
    assert dual.empty  # the same value is only half-extracted under the two-extractor protocol
    with pytest.raises(ExtractionError, match="already has 1 extractor"):
        record_values(review.store, one, "S1", "bob", rows_of({Cell("n_total"): 60}))
