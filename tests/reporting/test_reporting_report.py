"""build_report: HTML, DOCX and CSV from the store; tables checked against the rows entered."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
from sqlalchemy import select

from metasift.reporting import build_report, prisma_counts, store_checksum
from metasift.screening.agreement import agreement
from metasift.store.models import Analysis, Decision, Judgement, Result, Study, StudyReport


@pytest.fixture(scope="module")
def report(built, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    return built, build_report(built.review, out)


def csv(paths, key) -> pd.DataFrame:
    return pd.read_csv(paths.tables[key], keep_default_na=False)


def test_html_is_self_contained_and_holds_the_tables(report):
    sc, paths = report
    html = paths.html.read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert "<style>" in html and "stylesheet" not in html
    for src in re.findall(r'<img src="([^"]+)"', html):
        assert (paths.out_dir / src).is_file(), src
    assert 'src="prisma.svg"' in html
    for key in (
        "prisma",
        "excluded_reports",
        "characteristics",
        "pooled_characteristics",
        "outcomes_by_domain",
        "outcome_data",
        "risk_of_bias",
        "adverse_events",
        "summary_of_findings",
        "prisma_checklist",
        "provenance",
    ):
        assert f'data-table="{key}"' in html, key
        assert paths.tables[key].is_file()
    with sc.review.store.read() as s:
        counts = prisma_counts(s, sc.review.protocol)
        checksum = store_checksum(s)
    assert paths.store_checksum == checksum
    assert checksum in html
    # the PRISMA table in the report is the store's count, box by box
    df = csv(paths, "prisma")
    assert list(df["n"]) == list(counts.to_frame()["n"])
    assert (
        f'<td>Records screened</td><td></td><td class="num">{counts.records_screened}</td>' in html
    )


def test_docx_holds_the_same_tables(report):
    from docx import Document

    sc, paths = report
    doc = Document(str(paths.docx))
    tables = {}
    for t in doc.tables:
        header = tuple(c.text for c in t.rows[0].cells)
        tables[header] = [[c.text for c in r.cells] for r in t.rows[1:]]
    chars = next(
        rows for h, rows in tables.items() if h[:2] == ("Study", "Design") and "n_total" in h
    )
    assert {r[0] for r in chars} == set(sc.values)
    rob = next(rows for h, rows in tables.items() if h[:3] == ("Study", "Design", "Tool"))
    assert any(r[0] == "Beta 2021" and r[-1] == "not assessed" for r in rob)
    assert any(h[0] == "Outcomes" for h in tables)  # summary of findings
    assert any(h == ("section", "item", "topic", "location") for h in tables)
    assert len(doc.inline_shapes) >= 1  # the PRISMA diagram
    # the 8-column summary-of-findings table sits on a landscape page, the text on portrait ones
    assert any(sec.page_width > sec.page_height for sec in doc.sections)
    assert doc.sections[0].page_width < doc.sections[0].page_height


def test_pooled_characteristics_match_a_hand_computation(report):
    sc, paths = report
    v = sc.values
    n = [x["n_total"] for x in v.values()]
    women = 100 * sum(x["n_female"] for x in v.values()) / sum(n)
    m = [x["age_mean"] for x in v.values()]
    sd = [x["age_sd"] for x in v.values()]
    mean = (n[0] * m[0] + n[1] * m[1]) / (n[0] + n[1])
    # Cochrane Handbook Table 6.5.a: combining two groups
    sd_pooled = math.sqrt(
        (
            (n[0] - 1) * sd[0] ** 2
            + (n[1] - 1) * sd[1] ** 2
            + n[0] * n[1] / (n[0] + n[1]) * (m[0] - m[1]) ** 2
        )
        / (n[0] + n[1] - 1)
    )
    df = csv(paths, "pooled_characteristics").set_index("Characteristic")
    assert df.loc["participants", "Value"] == f"{sum(n):g}"
    assert df.loc["women (%)", "Value"] == f"{women:.1f}"
    assert df.loc["age, mean (years)", "Value"] == f"{mean:.1f} (SD {sd_pooled:.1f})"


def test_outcomes_adverse_events_and_risk_of_bias(report):
    sc, paths = report
    out = csv(paths, "outcomes_by_domain").set_index("Outcome")
    assert out.loc["main outcome", "Studies"] == 2
    assert (out.loc["main outcome", "Benefit"], out.loc["main outcome", "No change"]) == (1, 1)
    assert out.loc["main outcome", "Domain"] == "primary"
    od = csv(paths, "outcome_data")
    assert set(zip(od["Study"], od["direction"], strict=True)) == {
        ("Alpha 2019", "benefit"),
        ("Beta 2021", "no change"),
    }
    assert set(od["Domain"]) == {"primary"}  # adverse events have their own table
    ae = csv(paths, "adverse_events")
    got = {(r.Study, r.Outcome, str(r.events)) for r in ae.itertuples()}
    assert got == {
        ("Alpha 2019", "adverse events", "7"),
        ("Beta 2021", "withdrawal due to adverse events", "2"),
    }
    rob = csv(paths, "risk_of_bias")
    assert set(rob["Overall"]) == {"not assessed"}
    sof = csv(paths, "summary_of_findings")
    assert set(sof["Certainty of the evidence (GRADE)"]) == {"not assessed"}
    chk = csv(paths, "prisma_checklist")
    assert len(chk) == 42
    assert chk.set_index("item").loc["16a", "location"].startswith("Study selection")


def test_methods_paragraph_and_kappa_come_from_the_decisions(report):
    sc, paths = report
    html = paths.html.read_text(encoding="utf-8")
    assert "MEDLINE" in html and "Embase" in html and "ClinicalTrials.gov" in html
    assert "resolved by carol" in html
    with sc.review.store.read() as s:
        rows = list(
            s.scalars(select(Decision).where(Decision.kind == "screen").order_by(Decision.id))
        )
    for stage, label in (("title_abstract", "title/abstract"), ("full_text", "full text")):
        last = {(d.reference_id, d.reviewer): d.decision for d in rows if d.stage == stage}
        refs = sorted({r for r, w in last if (r, "alice") in last and (r, "bob") in last})
        a = [last[(r, "alice")] for r in refs]
        b = [last[(r, "bob")] for r in refs]
        expect = agreement(a, b)
        got = csv(paths, "agreement").set_index("Stage").loc[label]
        assert got["Records"] == len(refs)
        assert got["Kappa"] == pytest.approx(round(expect.kappa, 3))


def test_store_checksum_is_stable_and_sees_every_change(project, make_refs):
    make_refs(project, ["one"], "PubMed")
    with project.store.read() as s:
        first, again = store_checksum(s), store_checksum(s)
    assert first == again
    with project.store.write() as s:
        s.add(Study(label="New 2024", design="RCT"))
    with project.store.read() as s:
        assert store_checksum(s) != first


def one_included_study(review, make_refs) -> int:
    """The smallest consistent review: one record, included at both stages, one study."""
    (ref,) = make_refs(review, ["The one trial"], "PubMed")
    for stage in ("title_abstract", "full_text"):
        for who in ("alice", "bob"):
            review.decide(ref, stage, who, "include")
    with review.store.write() as s:
        st = Study(label="Solo 2020", design="RCT")
        s.add(st)
        s.flush()
        s.add(StudyReport(study_id=st.id, reference_id=ref))
        return st.id


def test_judgements_analyses_and_audit_trail_reach_the_report(project, make_refs, tmp_path):
    """One build (each takes seconds): risk of bias, a stored pooled analysis, a stopping rule."""
    from metasift.store import Store
    from metasift.synthesis import rma

    yi, vi = [0.2, 0.5, -0.1, 0.4], [0.04, 0.09, 0.05, 0.06]

    sid = one_included_study(project, make_refs)
    given = {"D1": "Low", "D2": "Some concerns", "D3": "Low", "D4": "High", "D5": "Low"}
    with project.store.write() as s:
        for d, j in {**given, "D4": "Low"}.items():  # D4 is re-judged below: newest wins
            s.add(Judgement(study_id=sid, tool="rob2", domain=d, judgement=j, reviewer="alice"))
    with project.store.write() as s:
        s.add(Judgement(study_id=sid, tool="rob2", domain="D4", judgement="High", reviewer="alice"))
        s.add(
            Judgement(
                study_id=sid, tool="rob2", domain="overall", judgement="High", reviewer="alice"
            )
        )
        a = Analysis(
            outcome="main outcome",
            kind="rma",
            settings={"measure": "SMD", "method": "REML", "test": "knha"},
            study_ids=[1, 2, 3, 4],
        )
        s.add(a)
        s.flush()
        s.add(Result(analysis_id=a.id, payload={"yi": yi, "vi": vi, "slab": ["A", "B", "C", "D"]}))
        Store.audit(
            s, "alice", "screen.stop", "screening", "title_abstract",
            after={"rule": "random_sampling", "recall_estimate": 0.962, "recall_lb": 0.95},
        )  # fmt: skip
    paths = build_report(project, tmp_path / "out")
    rob = csv(paths, "risk_of_bias").set_index("Study")
    assert rob.loc["Solo 2020", "Tool"] == "rob2"
    assert {d: rob.loc["Solo 2020", d] for d in given} == given
    assert rob.loc["Solo 2020", "Overall"] == "High"
    for kind in ("traffic_light", "summary"):
        assert paths.figures[f"rob_{kind}_rob2"].is_file()
    html = paths.html.read_text(encoding="utf-8")
    assert "Screening stopped by random_sampling, with an estimated recall of 96.2%" in html
    assert "lower bound 95.0%" in html
    # the stored analysis: refitted from its inputs, tabulated and drawn
    fit = rma(yi=yi, vi=vi, method="REML", test="knha")
    row = csv(paths, "syntheses").iloc[0]
    b, lb, ub = float(fit.beta[0]), float(fit.ci_lb[0]), float(fit.ci_ub[0])
    assert row["Estimate (CI)"] == f"{b:.2f} ({lb:.2f} to {ub:.2f})"
    assert row["Studies"] == 4
    assert paths.figures["forest_1"].is_file()
    assert 'src="figures/forest_1.png"' in html
