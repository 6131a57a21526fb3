"""The analyses and report, extraction, risk-of-bias and full-text pages, in-process on SQLite and
PostgreSQL: role checks, CSRF, safe downloads and uploads, dual extraction with reconciliation,
suggested and overridden risk-of-bias judgements."""

from __future__ import annotations

import re

import pytest
from webhelpers import token

from metasift.store.models import Event

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
ARMS = {"exercise": (20, 3.1, 1.2), "placebo": (20, 4.0, 1.3)}
OUTCOME, TP = "main outcome", "12 weeks"


def _rob2_low():
    a = {"1.1": "Y", "1.2": "Y", "1.3": "N", "3.1": "Y", "4.1": "N", "4.2": "N", "4.3": "N"}
    a |= {"5.1": "Y", "5.2": "N", "5.3": "N", "2.1": "N", "2.2": "N", "2.6": "Y"}
    return a


@pytest.fixture
def included(web):
    """Four references included at both stages by alice and bob."""
    review, _, ids = web
    for stage in ("title_abstract", "full_text"):
        for r in ids[:4]:
            for who in ("alice", "bob"):
                review.decide(r, stage, who, "include")
    return ids[:4]


@pytest.fixture
def at_fulltext(web):
    """Three references included at title/abstract, undecided at full text."""
    review, _, ids = web
    for r in ids[4:7]:
        for who in ("alice", "bob"):
            review.decide(r, "title_abstract", who, "include")
    return ids[4:7]


def _post(client, path, data, page=None, **kw):
    data = {"csrf_token": token(client, page or "/"), **data}
    return client.post(path, data=data, follow_redirects=False, **kw)


def _add_study(client, label, refs, design="RCT"):
    r = _post(
        client,
        "/extraction/studies",
        {"label": label, "design": design, "reference_id": [str(x) for x in refs]},
        page="/extraction",
    )
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def _outcome_form(study_fields: dict, arms: dict) -> dict:
    """Form fields of the extraction page: study-level and one new row per arm."""
    data = {f"s__{k}": str(v) for k, v in study_fields.items()}
    for i, (arm, (n, mean, sd)) in enumerate(arms.items()):
        p = f"o{i}__"
        data |= {
            p + "outcome": OUTCOME,
            p + "arm": arm,
            p + "timepoint": TP,
            p + "n": str(n),
            p + "mean": str(mean),
            p + "sd": str(sd),
        }
    data["rows"] = str(len(arms))
    return data


def _extract(client, sid, study_fields, arms=ARMS):
    return _post(client, f"/extraction/{sid}", _outcome_form(study_fields, arms))


def _events(review, action):
    with review.store.read() as s:
        return [(e.actor, e.action) for e in s.query(Event).filter(Event.action == action)]


# -- every page renders for every role -----------------------------------------------------------
def test_pages_render_for_every_role(clients, web, included):
    for name, c in clients.items():
        for path in ("/analyses", "/extraction", "/rob", "/fulltext"):
            r = c.get(path)
            assert r.status_code == 200, (name, path, r.text)
            assert 'href="/extraction"' in r.text and 'href="/analyses"' in r.text
    # only the owner sees the run button; the viewer sees no write forms
    assert 'id="run-analyses"' in clients["alice"].get("/analyses").text
    assert 'id="run-analyses"' not in clients["bob"].get("/analyses").text
    assert 'action="/fulltext/upload"' not in clients["victor"].get("/fulltext").text
    assert 'id="new-study"' not in clients["victor"].get("/extraction").text


def test_signed_out_is_sent_to_login(web):
    from starlette.testclient import TestClient

    _, app, _ = web
    with TestClient(app) as c:
        for path in ("/analyses", "/extraction", "/rob", "/fulltext", "/out/report.html"):
            r = c.get(path, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_viewer_cannot_write(clients, web, included):
    review, _, _ = web
    sid = _add_study(clients["alice"], "Alpha2020", included[:1])
    v = clients["victor"]
    posts = [
        ("/analyses/run", {}),
        ("/extraction/studies", {"label": "X", "design": "RCT", "reference_id": str(included[1])}),
        (f"/extraction/{sid}", _outcome_form({"n_total": 40}, ARMS)),
        (f"/extraction/{sid}/reconcile", {"field": "n_total", "value": "4", "note": "x"}),
        (f"/rob/{sid}", {"action": "save", "effect": "assignment"}),
        ("/fulltext/link", {"reference_id": included[1], "location": "https://example.org/a.pdf"}),
        ("/fulltext/decide", {"reference_id": included[1], "decision": "not_retrieved"}),
    ]
    for path, data in posts:
        r = _post(v, path, data, page="/")
        assert r.status_code == 403, (path, r.text)
    r = v.post(
        "/fulltext/upload",
        data={"csrf_token": token(v), "reference_id": included[1]},
        files={"file": ("a.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert r.status_code == 403
    # a reviewer cannot run the analyses nor reconcile; a resolver cannot extract
    assert _post(clients["bob"], "/analyses/run", {}, page="/").status_code == 403
    r = _post(clients["bob"], f"/extraction/{sid}/reconcile", {"field": "n_total"}, page="/")
    assert r.status_code == 403
    r = _post(clients["carol"], f"/extraction/{sid}", _outcome_form({"n_total": 4}, {}), page="/")
    assert r.status_code == 403
    with review.store.read() as s:
        from metasift.extraction import studies

        assert [st.label for st in studies(s)] == ["Alpha2020"]
    assert _events(review, "extract.value") == []


def test_post_without_csrf_is_refused(clients, web, included):
    review, _, _ = web
    sid = _add_study(clients["alice"], "Alpha2020", included[:1])
    a = clients["alice"]
    for path, data in [
        ("/analyses/run", {}),
        ("/extraction/studies", {"label": "X", "design": "RCT", "reference_id": str(included[1])}),
        (f"/extraction/{sid}", _outcome_form({"n_total": 40}, ARMS)),
        (
            f"/rob/{sid}",
            {"action": "save", "effect": "assignment"}
            | {f"q__{k}": v for k, v in _rob2_low().items()},
        ),
        ("/fulltext/decide", {"reference_id": included[1], "decision": "not_retrieved"}),
    ]:
        for bad in ({}, {"csrf_token": "forged"}):
            r = a.post(path, data=data | bad, follow_redirects=False)
            assert r.status_code == 403 and "CSRF" in r.text, path
    assert _events(review, "extract.value") == []
    assert _events(review, "appraise.assessment") == []


# -- analyses and report -------------------------------------------------------------------------
def _two_studies(a, b, included, pooled: bool):
    """Alpha2020 (two-arm data) and Beta2021 (two-arm data when ``pooled``, else study-level
    values only: one study with arm data gives a narrative analysis by direction)."""
    for label, refs, shift in (("Alpha2020", included[:2], 0.0), ("Beta2021", included[2:], 0.5)):
        sid = _add_study(a, label, refs)
        # different effects (identical ones give Hartung-Knapp a zero SE)
        arms = dict(ARMS, exercise=(20, 3.1 + shift, 1.2)) if pooled or not shift else {}
        for c in (a, b):
            r = _extract(c, sid, {"design": "RCT", "n_total": 40}, arms)
            assert r.status_code == 303, r.text


def test_analyses_run_report_and_downloads(clients, web, included):
    review, _, _ = web
    a, b = clients["alice"], clients["bob"]
    r = a.get("/analyses")
    assert 'id="no-analyses"' in r.text and "not been built" in r.text
    _two_studies(a, b, included, pooled=False)
    r = _post(a, "/analyses/run", {}, page="/analyses")
    assert r.status_code == 303 and r.headers["location"] == "/analyses", r.text[-800:]
    page = a.get("/analyses").text
    assert "Stored analyses" in page and "narrative" in page and "benefit" in page
    assert 'src="/out/figures/effect_direction.png"' in page
    assert 'href="/out/report.html"' in page and 'href="/out/report.docx"' in page
    assert 'href="/out/prisma.svg"' in page and 'href="/out/prisma.png"' in page
    assert ("alice", "analyses.run") in _events(review, "analyses.run")
    assert ("alice", "report.build") in _events(review, "report.build")
    v = clients["victor"]  # downloads are for every signed-in user
    r = v.get("/out/report.html")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "sandbox" in r.headers["content-security-policy"]
    r = v.get("/out/report.docx")
    assert r.status_code == 200 and r.content[:2] == b"PK"
    assert "attachment" in r.headers["content-disposition"]
    assert v.get("/out/prisma.svg").headers["content-type"].startswith("image/svg")
    assert v.get("/out/prisma.png").content[:4] == b"\x89PNG"
    assert v.get("/out/figures/effect_direction.png").content[:4] == b"\x89PNG"
    csvs = re.findall(r'href="/out/(tables/[^"]+\.csv)"', page)
    assert "tables/syntheses.csv" in csvs
    r = v.get("/out/tables/syntheses.csv")
    assert r.status_code == 200 and "Outcome" in r.text
    assert v.get("/out/report.html").text.count("<img") >= 2
    # exports hold every reviewer's decisions: owners only, and not while blinding hides any
    assert v.get("/export/ris").status_code == 403 and b.get("/export/ris").status_code == 403
    ris = a.get("/export/ris?what=references")
    assert ris.status_code == 200 and "TY  -" in ris.text
    assert "attachment" in ris.headers["content-disposition"]
    csv = a.get("/export/csv?what=records")
    assert csv.status_code == 200 and "Exercise therapy trial" in csv.text
    assert a.get("/export/bibtex").status_code == 404
    assert a.get("/export/ris?what=users").status_code == 404
    _, _, ids = web
    review.decide(ids[5], "title_abstract", "bob", "exclude", reason="wrong design", note="B-ONLY")
    r = a.get("/export/csv?what=references")
    assert r.status_code == 400 and "B-ONLY" not in r.text and "cannot see" in r.text
    review.decide(ids[5], "title_abstract", "alice", "exclude", reason="wrong design")
    assert "B-ONLY" in a.get("/export/csv?what=references").text


def test_pooled_analysis_report_has_a_forest_plot(clients, web, included):
    a, b = clients["alice"], clients["bob"]
    _two_studies(a, b, included, pooled=True)
    r = _post(a, "/analyses/run", {}, page="/analyses")
    assert r.status_code == 303, r.text
    page = a.get("/analyses").text
    assert "rma" in page and 'src="/out/figures/forest_1.png"' in page


def test_analyses_without_values_is_a_clean_error(clients, web):
    r = _post(clients["alice"], "/analyses/run", {}, page="/analyses")
    assert r.status_code == 400 and "no agreed extracted values" in r.text


@pytest.mark.parametrize(
    "path",
    [
        "/out/%2e%2e/protocol.yaml",
        "/out/..%2fprotocol.yaml",
        "/out/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/out/tables/%2e%2e/%2e%2e/protocol.yaml",
        "/out/%2fetc%2fpasswd",
        "/out/..%5cprotocol.yaml",
        "/out/.metasift-web-secret",
        "/out/secret.yaml",
        "/out/outside.csv",
        "/fulltext/file/%2e%2e%2fprotocol.yaml",
        "/fulltext/file/..%2f..%2fprotocol.yaml",
        "/fulltext/file/outside.pdf",
    ],
)
def test_download_path_traversal_is_refused(clients, web, path):
    review, _, _ = web
    out = review.path / "out"
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "secret.yaml").write_text("no: 1")  # a suffix that is never served
    outside = review.path / "outside.csv"
    outside.write_text("secret,1")
    (out / "outside.csv").symlink_to(outside)  # a link out of out/ is not followed
    (review.path / "fulltext").mkdir(exist_ok=True)
    (review.path / "other.pdf").write_bytes(PDF)
    (review.path / "fulltext" / "outside.pdf").symlink_to(review.path / "other.pdf")
    r = clients["alice"].get(path)
    assert r.status_code == 404, r.text
    assert "secret" not in r.text.replace("secret.yaml", "").replace("web-secret", "")
    assert "title:" not in r.text  # nothing of protocol.yaml


# -- extraction ----------------------------------------------------------------------------------
def test_extraction_two_extractors_difference_reconciled(clients, web, included):
    review, _, _ = web
    a, b, carol = clients["alice"], clients["bob"], clients["carol"]
    r = a.get("/extraction")
    assert all(f"#{i} " in r.text for i in included)
    sid = _add_study(a, "Alpha2020", included[:2])
    assert ("alice", "extract.add_study") in _events(review, "extract.add_study")
    # not included at full text: refused by the library, nothing created
    r = _post(
        a,
        "/extraction/studies",
        {"label": "Nope", "design": "RCT", "reference_id": "99999"},
        page="/extraction",
    )
    assert r.status_code == 400 and "no reference #99999" in r.text
    page = a.get(f"/extraction/{sid}").text
    assert 'name="s__n_total"' in page and 'name="o0__outcome"' in page
    assert OUTCOME in page and "a whole number &gt;= 1" in page

    # an invalid value: inline messages, nothing written
    r = _extract(a, sid, {"design": "RCT", "n_total": "forty"} | {})
    assert r.status_code == 400
    assert re.search(r'data-field="s__n_total">field &#39;n_total&#39;: expected a whole', r.text)
    assert 'value="forty"' in r.text  # what was typed is kept
    bad_sd = dict(ARMS, placebo=(20, 4.0, -1))
    r = _extract(a, sid, {"design": "RCT", "n_total": 40}, bad_sd)
    assert r.status_code == 400 and 'data-field="o1__sd"' in r.text
    assert _events(review, "extract.value") == []

    # two extractors, one difference (n_total 40 vs 41)
    assert _extract(a, sid, {"design": "RCT", "n_total": 40}).status_code == 303
    assert _extract(b, sid, {"design": "RCT", "n_total": 41}).status_code == 303
    page = a.get(f"/extraction/{sid}").text  # alice (owner) sees her own values in the form
    assert 'name="s__n_total" value="40"' in page
    assert re.search(r"<td>exercise<input type=\"hidden\" name=\"o\d__arm\"", page)
    page = b.get(f"/extraction/{sid}").text
    assert 'name="s__n_total" value="41"' in page
    assert 'id="compare"' not in page  # a reviewer does not see the other extractor's values

    page = carol.get(f"/extraction/{sid}").text
    assert 'id="extract-form"' not in page
    row = re.search(r'<tr class="status-conflict" data-cell="n_total">(.*?)</tr>', page, re.S)
    assert row, page
    assert '<td class="value">40</td><td class="value">41</td>' in row.group(1)
    assert re.search(
        r'class="status-agreed" data-cell="main outcome / exercise / 12 weeks / n"', page
    )

    # reconcile: a note is required
    cell = {"field": "n_total", "arm": "", "outcome": "", "timepoint": ""}
    r = _post(carol, f"/extraction/{sid}/reconcile", cell | {"value": "41", "note": ""}, page="/")
    assert r.status_code == 400 and "say why" in r.text
    r = _post(
        carol,
        f"/extraction/{sid}/reconcile",
        cell | {"value": "41", "note": "table 1 of the primary report"},
        page=f"/extraction/{sid}",
    )
    assert r.status_code == 303
    page = carol.get(f"/extraction/{sid}").text
    row = re.search(r'<tr class="status-reconciled" data-cell="n_total">(.*?)</tr>', page, re.S)
    assert row and '<strong class="reconciled">41</strong>' in row.group(1)
    assert '<span class="decided-by">carol</span>' in row.group(1)
    assert "table 1 of the primary report" in row.group(1)
    assert ("carol", "extract.reconcile") in _events(review, "extract.reconcile")
    from metasift.extraction import final_values

    with review.store.read() as s:
        fv = final_values(s, review.protocol)
    assert fv[(fv.field == "n_total")].value.tolist() == ["41"]
    assert "0" in a.get("/extraction").text  # no open differences left


def test_extraction_blank_clears_and_limits(clients, web, included):
    review, _, _ = web
    a = clients["alice"]
    sid = _add_study(a, "Alpha2020", included[:1])
    assert _extract(a, sid, {"design": "RCT", "n_total": 40}).status_code == 303
    r = _post(a, f"/extraction/{sid}", {"s__design": "RCT", "s__n_total": "", "rows": "0"})
    assert r.status_code == 303
    assert 'name="s__n_total" value=""' in a.get(f"/extraction/{sid}").text
    # a row without an outcome or arm is named inline
    r = _post(a, f"/extraction/{sid}", {"rows": "1", "o0__n": "12", "o0__outcome": OUTCOME})
    assert r.status_code == 400 and "give the outcome and the arm" in r.text
    assert a.get("/extraction/999999").status_code == 404


# -- risk of bias --------------------------------------------------------------------------------
def test_rob_suggestion_override_and_plot(clients, web, included):
    review, _, _ = web
    a, b = clients["alice"], clients["bob"]
    sid = _add_study(a, "Alpha2020", included[:1])
    page = b.get(f"/rob/{sid}").text
    assert (
        "1.1" in page and 'name="q__2.6"' in page and "Bias arising from the randomization" in page
    )
    answers = {f"q__{k}": v for k, v in _rob2_low().items()}
    base = {"effect": "assignment", "outcome": ""} | answers
    r = _post(b, f"/rob/{sid}", base | {"action": "suggest"})
    assert r.status_code == 200
    assert re.search(r'class="suggested" data-domain="D1">Low<', r.text)
    assert re.search(r'class="suggested" data-domain="overall">Low<', r.text)
    assert _events(review, "appraise.assessment") == []  # a suggestion writes nothing

    # overriding D1 without a justification is refused, nothing stored
    r = _post(b, f"/rob/{sid}", base | {"action": "save", "j__D1": "High", "w__D1": ""})
    assert r.status_code == 400 and "needs a written justification" in r.text
    assert 'id="rob-error"' in r.text and 'value="High" selected' in r.text
    assert _events(review, "appraise.assessment") == []

    just = "allocation concealment unclear in the trial registry"
    r = _post(b, f"/rob/{sid}", base | {"action": "save", "j__D1": "High", "w__D1": just})
    assert r.status_code == 303, r.text
    from metasift.appraisal.stored import current_judgements

    with review.store.read() as s:
        (stored,) = current_judgements(s)
    d1 = stored.domains[0]
    assert (d1.suggested, d1.judgement, d1.source, d1.justification) == (
        "Low",
        "High",
        "override",
        just,
    )
    assert stored.overall.judgement == "High" and stored.overall.reviewer == "bob"
    assert ("bob", "appraise.assessment") in _events(review, "appraise.assessment")
    page = b.get(f"/rob/{sid}").text
    assert "Stored by bob" in page and just in page and 'value="High" selected' in page
    assert re.search(r'class="suggested" data-domain="D1">Low<', page)

    png = clients["victor"].get("/rob/plot/rob2.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:4] == b"\x89PNG"
    assert clients["victor"].get("/rob/plot/nos_cohort.png").status_code == 404
    assert clients["victor"].get("/rob/plot/nope.png").status_code == 400
    lst = clients["victor"].get("/rob").text
    assert 'src="/rob/plot/rob2.png"' in lst and "study: High" in lst
    # an incomplete assessment is refused by the library
    r = _post(a, f"/rob/{sid}", {"effect": "assignment", "action": "save", "q__1.1": "Y"})
    assert r.status_code == 400 and "incomplete" in r.text


# -- full text -----------------------------------------------------------------------------------
def test_fulltext_link_upload_not_retrieved_exclude(clients, web, at_fulltext):
    review, _, _ = web
    b = clients["bob"]
    ref1, ref2, ref3 = at_fulltext
    page = b.get("/fulltext").text
    assert all(f'id="ref-{r}"' in page for r in at_fulltext)
    r = _post(b, "/fulltext/link", {"reference_id": ref1, "location": "https://example.org/t.pdf"})
    assert r.status_code == 303
    r = _post(b, "/fulltext/link", {"reference_id": ref1, "location": "javascript:alert(1)"})
    assert r.status_code == 400

    def upload(name, content, ref=ref2):
        return b.post(
            "/fulltext/upload",
            data={"csrf_token": token(b, "/fulltext"), "reference_id": ref},
            files={"file": (name, content, "application/pdf")},
            follow_redirects=False,
        )

    r = upload("fake.pdf", b"<html><script>alert(1)</script></html>")  # a PDF by name only
    assert r.status_code == 400 and "not a PDF" in r.text
    assert (
        not list((review.path / "fulltext").glob("*"))
        if (review.path / "fulltext").exists()
        else True
    )
    r = upload("../../evil name.pdf", PDF)
    assert r.status_code == 303
    stored = list((review.path / "fulltext").glob("*.pdf"))
    assert len(stored) == 1 and stored[0].name.startswith(f"ref{ref2}-")
    assert stored[0].read_bytes() == PDF
    page = b.get("/fulltext").text
    link = re.search(rf'href="(/fulltext/file/ref{ref2}-[0-9a-f]+\.pdf)"', page)
    assert link and 'href="https://example.org/t.pdf"' in page
    got = clients["victor"].get(link.group(1))
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert "attachment" in got.headers["content-disposition"]
    # not a reference at full text: refused, and the file is not left behind
    r = upload("x.pdf", PDF, ref=999999)
    assert r.status_code == 400
    assert len(list((review.path / "fulltext").glob("*.pdf"))) == 1

    r = _post(b, "/fulltext/decide", {"reference_id": ref3, "decision": "not_retrieved"})
    assert r.status_code == 303
    r = _post(b, "/fulltext/decide", {"reference_id": ref1, "decision": "exclude", "reason": ""})
    assert r.status_code == 400  # the protocol requires a reason at full text
    r = _post(
        b,
        "/fulltext/decide",
        {"reference_id": ref1, "decision": "exclude", "reason": "wrong outcomes"},
    )
    assert r.status_code == 303
    r = _post(b, "/fulltext/decide", {"reference_id": ref1, "decision": "maybe"})
    assert r.status_code == 400
    states = review.stage_states("full_text")
    assert states[ref3].decisions["bob"].decision == "not_retrieved"
    assert states[ref1].decisions["bob"].reason == "wrong outcomes"
    page = b.get("/fulltext").text
    assert re.search(rf'id="ref-{ref3}".*?class="my-decision">not_retrieved<', page, re.S)
    # blinding: alice's decisions are not on bob's page
    assert "alice" not in page.replace("alice (owner)", "")
    actions = {e for e in _events(review, "fulltext.link")}
    assert ("bob", "fulltext.link") in actions


def test_fulltext_screening_page_links_the_pdf_and_the_fulltext_page(clients, web, at_fulltext):
    b = clients["bob"]
    r = b.post(
        "/fulltext/upload",
        data={"csrf_token": token(b, "/fulltext"), "reference_id": at_fulltext[0]},
        files={"file": ("t.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    ref = None
    for _ in at_fulltext:  # the queue's order is the model's: find the reference with the PDF
        page = b.get("/screen/full_text").text
        ref = int(re.search(r'name="reference_id" value="(\d+)"', page).group(1))
        assert f'href="/fulltext#ref-{ref}"' in page
        if ref == at_fulltext[0]:
            break
        assert "No PDF linked." in page
        _post(b, "/screen/full_text/decide", {"reference_id": ref, "decision": "include"})
    assert ref == at_fulltext[0]
    link = re.search(rf'<a href="(/fulltext/file/ref{ref}-[0-9a-f]+\.pdf)">fulltext/', page)
    assert link, page
    assert b.get(link.group(1)).content == PDF


def test_rob_reviewer_judgement_where_the_tool_has_no_algorithm(clients, web, included):
    # ROBINS-I (2016) publishes no domain algorithm: the reviewer's judgement is the judgement
    review, _, _ = web
    a = clients["alice"]
    sid = _add_study(a, "Cohort2019", included[:1], design="cohort")
    page = a.get(f"/rob/{sid}").text
    assert "ROBINS-I" in page and "none (reviewer judgement)" in page
    from metasift.appraisal import get_tool

    tool = get_tool("robins_i")
    data = {"effect": "assignment", "action": "save"}
    data |= {f"j__{d}": "Moderate" for d in tool.domain_ids}
    data["w__D1"] = "confounding by severity only partly adjusted"
    r = _post(a, f"/rob/{sid}", data)
    assert r.status_code == 303, r.text
    from metasift.appraisal.stored import current_judgements

    with review.store.read() as s:
        (stored,) = current_judgements(s)
    assert stored.tool == "robins_i" and stored.overall.judgement == "Moderate"
    assert {j.source for j in stored.domains} == {"reviewer"}
    assert stored.domains[0].justification.startswith("confounding")
    assert a.get("/rob/plot/robins_i.png").content[:4] == b"\x89PNG"
