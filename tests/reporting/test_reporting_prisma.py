"""PRISMA 2020 counts from the store, the identities between boxes, the drawn diagram."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter, defaultdict

import pytest
from sqlalchemy import select

from metasift.errors import MetasiftError, ParameterError
from metasift.reporting import (
    CHECKLIST,
    PrismaCounts,
    PrismaError,
    draw_prisma,
    prisma_checklist,
    prisma_counts,
)
from metasift.store.models import Decision, Record, Reference, Source, Study, StudyReport


def independent_counts(review) -> dict:
    """The boxes recounted straight from the rows, without metasift's screening logic: a
    reference's outcome at a stage is its resolution if any, else the two reviewers' shared
    decision (newest per reviewer)."""
    with review.store.read() as s:
        sources = list(s.scalars(select(Source)))
        recs = list(s.scalars(select(Record)))
        active = {r.id for r in s.scalars(select(Reference).where(Reference.active))}
        decisions = list(s.scalars(select(Decision).order_by(Decision.id)))
        n_studies = len(list(s.scalars(select(Study))))
        n_reports = len(list(s.scalars(select(StudyReport))))
    per_db = Counter()
    for src in sources:
        if src.kind == "database":
            per_db[src.database] += src.n_records
    registers = sum(src.n_records for src in sources if src.kind == "register")
    outcome: dict[tuple, str] = {}
    reason: dict[tuple, str] = {}
    votes: dict[tuple, dict] = defaultdict(dict)
    for d in decisions:
        key = (d.reference_id, d.stage)
        if d.kind == "resolution":
            outcome[key], reason[key] = d.decision, d.reason
        else:
            votes[key][d.reviewer] = (d.decision, d.reason)
    for key, v in votes.items():
        if key in outcome:
            continue
        kinds = {x for x, _ in v.values()}
        if "not_retrieved" in kinds:
            outcome[key] = "not_retrieved"
        elif kinds == {"exclude"}:
            outcome[key], reason[key] = "exclude", next(iter(v.values()))[1]
        elif kinds <= {"include", "maybe"}:
            outcome[key] = "include"
    ta = {r: outcome.get((r, "title_abstract")) for r in active}
    sought = [r for r in active if ta[r] == "include"]
    ft = {r: outcome.get((r, "full_text")) for r in sought}
    return {
        "databases": dict(per_db),
        "registers": registers,
        "duplicates": len([r for r in recs if r.reference_id in active]) - len(active),
        "screened": len(active),
        "excluded": sum(1 for r in active if ta[r] == "exclude"),
        "sought": len(sought),
        "not_retrieved": sum(1 for r in sought if ft[r] == "not_retrieved"),
        "reasons": dict(Counter(reason[(r, "full_text")] for r in sought if ft[r] == "exclude")),
        "included_reports": sum(1 for r in sought if ft[r] == "include"),
        "studies": n_studies,
        "reports": n_reports,
    }


def svg_text(svg: str) -> str:
    """The SVG's text, one box per line: the lines of a wrapped box joined by spaces."""
    parts = re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)
    return re.sub(r"\s+", " ", " ".join(re.sub(r"<[^>]+>", " ", p) for p in parts)).replace(
        "&amp;", "&"
    )


def counts_of(review) -> PrismaCounts:
    with review.store.read() as s:
        return prisma_counts(s, review.protocol)


def test_every_box_matches_an_independent_count(built):
    c = counts_of(built.review)
    ind = independent_counts(built.review)
    assert dict(c.databases) == ind["databases"]
    assert c.identified_registers == ind["registers"]
    assert c.duplicates == ind["duplicates"]
    assert c.excluded_automatic == 0 and c.excluded_other == 0
    assert c.records_screened == ind["screened"]
    assert c.records_excluded == ind["excluded"]
    assert c.reports_sought == ind["sought"]
    assert c.reports_not_retrieved == ind["not_retrieved"]
    assert c.reports_assessed == ind["sought"] - ind["not_retrieved"]
    assert dict(c.reports_excluded) == ind["reasons"]
    assert c.reports_included == ind["included_reports"]
    assert c.studies_included == ind["studies"]
    assert c.reports_of_included == ind["reports"]
    # and against the scenario's design
    sc = built
    assert dict(c.databases) == {"MEDLINE": sc.n_medline, "Embase": sc.n_embase}
    assert c.duplicates == sc.n_dup
    assert c.records_screened == sc.n_medline + sc.n_embase - sc.n_dup + sc.n_register
    assert c.records_awaiting == 0 and c.reports_awaiting == 0
    assert not c.other_used and not c.previous_used
    c.check()


def test_counts_are_the_package_fields(built):
    c = counts_of(built.review)
    f = c.prisma2020_fields()
    assert f["database_results"] == c.identified_databases
    assert f["records_screened"] - f["records_excluded"] == f["dbr_sought_reports"]
    parsed = dict(
        (r.rsplit(", ", 1)[0], int(r.rsplit(", ", 1)[1])) for r in f["dbr_excluded"].split("; ")
    )
    assert parsed == dict(c.reports_excluded)


@pytest.mark.parametrize(
    ("field", "box"),
    [
        ("records_screened", "Records screened"),
        ("duplicates", "Duplicate records removed"),
        ("records_excluded", "Records excluded"),
        ("reports_not_retrieved", "Reports not retrieved"),
        ("reports_of_included", "Reports of included studies"),
    ],
)
def test_check_names_the_boxes_of_a_broken_count(built, field, box):
    c = counts_of(built.review)
    broken = dataclasses.replace(c, **{field: getattr(c, field) + 1})
    with pytest.raises(PrismaError) as err:
        broken.check()
    assert box in err.value.boxes
    assert isinstance(err.value, MetasiftError)
    assert box in str(err.value)


def test_check_catches_a_broken_reason_and_negative_counts(built):
    c = counts_of(built.review)
    reasons = ((c.reports_excluded[0][0], c.reports_excluded[0][1] + 2), *c.reports_excluded[1:])
    with pytest.raises(PrismaError) as err:
        dataclasses.replace(c, reports_excluded=reasons).check()
    assert "Reports excluded" in err.value.boxes
    with pytest.raises(PrismaError) as err:
        dataclasses.replace(c, excluded_other=-1, duplicates=c.duplicates + 1).check()
    assert "Records removed for other reasons" in err.value.boxes
    assert any(p[0] == "A10" for p in err.value.problems)


def test_draw_refuses_a_broken_flow(built, tmp_path):
    c = counts_of(built.review)
    broken = dataclasses.replace(c, studies_included=c.reports_of_included + 1)
    with pytest.raises(PrismaError, match="Studies included in review"):
        draw_prisma(broken, tmp_path / "prisma")
    assert not list(tmp_path.glob("prisma.*"))


def test_svg_png_pdf_hold_every_number(built, tmp_path):
    c = counts_of(built.review)
    paths = draw_prisma(c, tmp_path / "flow.svg")
    assert set(paths) == {"svg", "png", "pdf"}
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["pdf"].read_bytes()[:5] == b"%PDF-"
    svg = paths["svg"].read_text(encoding="utf-8")
    assert "<text" in svg  # text kept as text, not paths
    numbers = [
        ("Databases", c.identified_databases),
        ("Registers", c.identified_registers),
        ("Duplicate records removed", c.duplicates),
        ("Records screened", c.records_screened),
        ("Records excluded**", c.records_excluded),
        ("Reports sought for retrieval", c.reports_sought),
        ("Reports not retrieved", c.reports_not_retrieved),
        ("Reports assessed for eligibility", c.reports_assessed),
        ("Studies included in review", c.studies_included),
        ("Reports of included studies", c.reports_of_included),
        *[(lbl, n) for lbl, n in c.databases],
        *[(r, n) for r, n in c.reports_excluded],
    ]
    flat = svg_text(svg)
    for label, n in numbers:
        assert f"{label} (n = {n:,})" in flat, label
    for phase in ("Identification", "Screening", "Included"):
        assert phase in svg
    assert "Identification of studies via databases and registers" in svg
    assert "via other methods" not in svg


def test_records_awaiting_a_decision_keep_the_flow_consistent(project, make_refs):
    refs = make_refs(project, ["one", "two", "three"], "PubMed")
    for who in ("alice", "bob"):
        project.decide(refs[0], "title_abstract", who, "exclude", reason="wrong design")
    project.decide(refs[1], "title_abstract", "alice", "include")
    c = counts_of(project)
    assert (c.records_screened, c.records_excluded, c.records_awaiting) == (3, 1, 2)
    assert c.reports_sought == 0
    assert any("await" in n for n in c.notes)
    c.check()


def test_other_methods_and_previous_studies_arms(tmp_path):
    c = PrismaCounts(
        databases=(("MEDLINE", 120), ("Embase", 80)),
        registers=(("ClinicalTrials.gov", 5),),
        duplicates=60,
        excluded_automatic=0,
        excluded_other=5,
        records_screened=140,
        records_excluded=120,
        records_awaiting=0,
        reports_sought=20,
        reports_not_retrieved=2,
        reports_assessed=18,
        reports_excluded=(("wrong population", 6), ("wrong design", 4)),
        reports_awaiting=0,
        reports_included=8,
        studies_included=7,
        reports_of_included=10,
        other_sources=(("Citation searching", 9), ("Websites", 3)),
        other_sought=4,
        other_not_retrieved=1,
        other_assessed=3,
        other_excluded=(("not primary research", 1),),
        other_included=2,
        previous_studies=11,
        previous_reports=14,
    ).check()
    assert c.total_studies == 18 and c.total_reports == 24
    svg = draw_prisma(c, tmp_path / "p")["svg"].read_text(encoding="utf-8")
    flat = svg_text(svg)
    for s in (
        "Identification of new studies via databases and registers",
        "Identification of new studies via other methods",
        "Previous studies",
        "Citation searching (n = 9)",
        "Total studies included in review (n = 18)",
        "Reports of total included studies (n = 24)",
        "New studies included in review (n = 7)",
        "ClinicalTrials.gov (n = 5)" if len(c.registers) > 1 else "Registers (n = 5)",
    ):
        assert s in flat, s
    # the other-methods arm must add up too
    with pytest.raises(PrismaError, match="other methods"):
        dataclasses.replace(c, other_assessed=4).check()


def test_other_methods_arm_counted_from_the_store(scenario, make_refs):
    review = scenario.review
    extra = make_refs(review, ["Found by citation searching"], "Citation searching")
    with review.store.write() as s:
        src = s.scalars(select(Source).where(Source.database == "Citation searching")).one()
        src.kind = "other"
    for who in ("alice", "bob"):
        review.decide(extra[0], "title_abstract", who, "include")
    for who in ("alice", "bob"):
        review.decide(extra[0], "full_text", who, "exclude", reason="wrong outcomes")
    c = counts_of(review)
    assert dict(c.other_sources) == {"Citation searching": 1}
    assert (c.other_sought, c.other_assessed, dict(c.other_excluded)) == (
        1,
        1,
        {"wrong outcomes": 1},
    )
    # the databases-and-registers arm is unchanged by it
    assert c.records_screened == independent_counts(review)["screened"] - 1
    c.check()


def test_checklist_has_27_items_and_42_rows():
    df = prisma_checklist({"16a": "Study selection"})
    assert len(df) == len(CHECKLIST) == 42
    assert sorted({int(re.match(r"\d+", i).group()) for i in df["item"]}) == list(range(1, 28))
    assert df.set_index("item").loc["16a", "location"] == "Study selection"
    assert df.set_index("item").loc["2", "location"].startswith("not generated")
    with pytest.raises(ParameterError):
        prisma_checklist({"99": "nowhere"})
