"""Every route in-process (Starlette TestClient over the ASGI app), on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re

from webhelpers import current_ref, login, token

from metasift.store.models import Event


def _decide(client, stage, ref, decision, reason="", note=""):
    return client.post(
        f"/screen/{stage}/decide",
        data={
            "csrf_token": token(client, f"/screen/{stage}"),
            "reference_id": ref,
            "decision": decision,
            "reason": reason,
            "note": note,
        },
        follow_redirects=False,
    )


def test_login_page_and_redirect_when_signed_out(web):
    from starlette.testclient import TestClient

    _, app, _ = web
    with TestClient(app) as c:
        r = c.get("/", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        page = c.get("/login")
        assert page.status_code == 200 and 'name="password"' in page.text
        assert "Content-Security-Policy" in page.headers
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        r = c.get("/screen/title_abstract", follow_redirects=False)
        assert r.status_code == 303


def test_login_wrong_password_then_right(web):
    from starlette.testclient import TestClient

    review, app, _ = web
    with TestClient(app) as c:
        r = login(c, "bob", "not-his-password")
        assert r.status_code == 401 and "wrong name or password" in r.text
        r = login(c, "bob")
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert "bob (reviewer)" in c.get("/").text
    actions = [(e.actor, e.action) for e in review.audit_log()]
    assert ("bob", "user.login_failed") in actions and ("bob", "user.login") in actions


def test_login_next_is_same_site_only(web):
    from starlette.testclient import TestClient
    from webhelpers import PASSWORDS, csrf_of

    _, app, _ = web
    with TestClient(app) as c:
        tok = csrf_of(c.get("/login").text)
        r = c.post(
            "/login",
            data={
                "name": "bob",
                "password": PASSWORDS["bob"],
                "csrf_token": tok,
                "next": "//evil.example/x",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/"


def test_logout(clients, web):
    review, _, _ = web
    c = clients["bob"]
    r = c.post("/logout", data={"csrf_token": token(c)}, follow_redirects=False)
    assert r.status_code == 303
    assert c.get("/", follow_redirects=False).status_code == 303
    assert "user.logout" in [e.action for e in review.audit_log()]


def test_dashboard_counts(clients, web):
    review, _, ids = web
    page = clients["victor"].get("/")
    assert page.status_code == 200
    assert re.search(r'data-count="references">8<', page.text)
    review.decide(ids[0], "title_abstract", "alice", "include")
    review.decide(ids[0], "title_abstract", "bob", "exclude")
    review.decide(ids[1], "title_abstract", "alice", "include")
    review.decide(ids[1], "title_abstract", "bob", "include")
    page = clients["victor"].get("/").text
    ta = page.split('data-stage="title_abstract"')[1].split("</tr>")[0]
    assert 'data-count="conflicts">1<' in ta and 'data-count="included">1<' in ta
    assert "alice" in page and "bob" in page  # progress per reviewer, agreement row


def test_dashboard_shows_stop_check(clients, web):
    from metasift.workflow.screening_stage import stop_check

    review, _, ids = web
    for i in ids[:4]:
        review.decide(i, "title_abstract", "alice", "exclude")
        review.decide(i, "title_abstract", "bob", "exclude")
    est = stop_check(review, "title_abstract", actor="alice")
    page = clients["alice"].get("/").text
    assert "Stopping rule" in page and f"{est.n_screened} / {est.n_total}" in page


def test_screen_decide_and_undo(clients, web):
    review, _, ids = web
    c = clients["bob"]
    page = c.get("/screen/title_abstract")
    assert page.status_code == 200
    ref = current_ref(page.text)
    assert ref in ids
    r = _decide(c, "title_abstract", ref, "exclude", "wrong population", "n1")
    assert r.status_code == 303, r.text
    assert r.status_code == 303
    st = review.stage_states("title_abstract")[ref]
    assert st.decisions["bob"].decision == "exclude"
    assert st.decisions["bob"].reason == "wrong population"
    nxt = c.get("/screen/title_abstract").text
    assert current_ref(nxt) != ref and f"#{ref}: exclude" in nxt
    assert 'data-decided="1"' in nxt
    r = c.post(
        "/screen/title_abstract/undo",
        data={"csrf_token": token(c, "/screen/title_abstract")},
        follow_redirects=True,
    )
    assert r.status_code == 200 and f"undid your exclude on #{ref}" in r.text
    st = review.stage_states("title_abstract").get(ref)
    assert st is None or "bob" not in st.decisions
    events = [(e.actor, e.action) for e in review.audit_log()]
    assert ("bob", "screen.decide") in events and ("bob", "screen.undo") in events


def test_a_decision_waits_for_a_long_writer_and_is_recorded(clients, web, monkeypatch):
    """A decision made while another writer holds the store's write lock (an import, say) is
    recorded once the lock is free: on PostgreSQL the event loop's short wait runs out and the
    decision goes to a thread that waits (the page that asked first: blocking nothing else)."""
    import threading
    import time

    from metasift.web import app as web_app

    review, _, ids = web
    c = clients["bob"]
    ref = current_ref(c.get("/screen/title_abstract").text)
    held, release = threading.Event(), threading.Event()

    def long_writer():
        from sqlalchemy import text

        with review.store.write() as s:
            s.execute(text("SELECT 1"))  # SQLite: BEGIN IMMEDIATE is sent with the first statement
            held.set()
            release.wait(30)

    monkeypatch.setattr(web_app, "INLINE_LOCK_WAIT", 0.02)
    writer = threading.Thread(target=long_writer)
    writer.start()
    assert held.wait(30)
    threading.Timer(0.5, release.set).start()
    t0 = time.monotonic()
    r = _decide(c, "title_abstract", ref, "include")
    waited = time.monotonic() - t0
    writer.join(30)
    assert r.status_code == 303, r.text
    assert waited >= 0.4  # it did wait for the writer
    assert review.stage_states("title_abstract")[ref].decisions["bob"].decision == "include"
    assert len(review.audit_log(action="screen.decide")) == 1


def test_screen_maybe_and_note(clients, web):
    review, _, _ = web
    c = clients["alice"]
    ref = current_ref(c.get("/screen/title_abstract").text)
    assert _decide(c, "title_abstract", ref, "maybe", note="check the design").status_code == 303
    d = review.stage_states("title_abstract")[ref].decisions["alice"]
    assert (d.decision, d.note) == ("maybe", "check the design")


def test_screen_bad_decision_is_a_clean_400(clients, web):
    _, _, ids = web
    c = clients["bob"]
    r = _decide(c, "title_abstract", ids[0], "exclude", reason="not in the protocol")
    assert r.status_code == 400 and "not an exclusion reason" in r.text
    r = _decide(c, "title_abstract", ids[0], "explode")
    assert r.status_code == 400
    r = _decide(c, "title_abstract", 999999, "include")
    assert r.status_code == 400 and "no reference" in r.text
    assert c.get("/screen/no_such_stage").status_code == 404


def test_keywords_highlighted(tmp_path, db_url, make_refs, fast_hash):
    from starlette.testclient import TestClient

    from metasift.protocol import TEMPLATE
    from metasift.review import Review
    from metasift.web import create_app, users

    text = TEMPLATE.replace("keywords_include: []", "keywords_include: [exercise]").replace(
        "keywords_exclude: []", "keywords_exclude: [rats]"
    )
    review = Review.create(
        tmp_path / "kw",
        db=None if db_url.startswith("sqlite") else db_url,
        protocol_text=text,
        actor="t",
    )
    try:
        make_refs(review, ["Exercise for rats & <mice>"])
        users.add_user(review.store, "bob", "reviewer", "bob-password", actor="t")
        with TestClient(create_app(review, secret_key="k")) as c:
            login(c, "bob")
            page = c.get("/screen/title_abstract").text
        assert '<mark class="kw-inc">Exercise</mark>' in page
        assert '<mark class="kw-exc">rats</mark>' in page
        assert "&amp; &lt;mice&gt;" in page
    finally:
        review.close()


def test_full_text_screen_link_and_not_retrieved(clients, web):
    review, _, ids = web
    for name in ("alice", "bob"):
        review.decide(ids[0], "title_abstract", name, "include")
    c = clients["bob"]
    page = c.get("/screen/full_text").text
    assert current_ref(page) == ids[0] and "Not retrieved" in page
    r = c.post(
        "/screen/full_text/link",
        data={"csrf_token": token(c), "reference_id": ids[0], "location": "pdfs/smith2020.pdf"},
        follow_redirects=True,
    )
    assert r.status_code == 200 and "pdfs/smith2020.pdf" in r.text
    r = c.post(
        "/screen/full_text/link",
        data={"csrf_token": token(c), "reference_id": ids[0], "location": "javascript:alert(1)"},
    )
    assert r.status_code == 400
    r = c.post(
        "/screen/full_text/link",
        data={"csrf_token": token(c), "reference_id": ids[3], "location": "x.pdf"},
    )
    assert r.status_code == 400 and "not at the full-text stage" in r.text
    assert _decide(c, "full_text", ids[0], "not_retrieved").status_code == 303
    assert review.stage_states("full_text")[ids[0]].status == "not_retrieved"
    assert "fulltext.link" in [e.action for e in review.audit_log()]


def test_full_text_exclusion_needs_reason(clients, web):
    review, _, ids = web
    for name in ("alice", "bob"):
        review.decide(ids[0], "title_abstract", name, "include")
    r = _decide(clients["bob"], "full_text", ids[0], "exclude")
    assert r.status_code == 400 and "needs a reason" in r.text
    r = _decide(clients["bob"], "full_text", ids[0], "exclude", "wrong outcomes")
    assert r.status_code == 303


def test_reference_page(clients, web):
    review, _, ids = web
    page = clients["victor"].get(f"/reference/title_abstract/{ids[2]}")
    assert page.status_code == 200 and "Exercise therapy trial 2" in page.text
    assert clients["victor"].get("/reference/title_abstract/999999").status_code == 400


def test_conflicts_and_resolve(clients, web):
    review, _, ids = web
    review.decide(ids[0], "title_abstract", "alice", "include", note="looks fine")
    review.decide(ids[0], "title_abstract", "bob", "exclude", reason="wrong design")
    c = clients["carol"]
    page = c.get("/conflicts?stage=title_abstract").text
    assert f'data-ref="{ids[0]}"' in page
    assert "wrong design" in page and "looks fine" in page  # side by side
    r = c.post(
        "/conflicts/resolve",
        data={
            "csrf_token": token(c, "/conflicts"),
            "stage": "title_abstract",
            "reference_id": ids[0],
            "decision": "exclude",
            "reason": "wrong design",
            "note": "agreed at meeting",
        },
        follow_redirects=True,
    )
    assert r.status_code == 200 and 'id="no-conflicts"' in r.text
    st = review.stage_states("title_abstract")[ids[0]]
    assert st.status == "excluded" and st.resolution.reviewer == "carol"
    assert ("carol", "screen.resolve") in [(e.actor, e.action) for e in review.audit_log()]
    # resolving a non-conflict is a clean error
    r = c.post(
        "/conflicts/resolve",
        data={
            "csrf_token": token(c, "/conflicts"),
            "stage": "title_abstract",
            "reference_id": ids[1],
            "decision": "include",
        },
    )
    assert r.status_code == 400


RIS = (
    "TY  - JOUR\nTI  - Walking for knee pain\nAU  - Smith, J\nPY  - 2019\nER  - \n\n"
    "TY  - JOUR\nTI  - Yoga for <b>back</b> pain\nAU  - Jones, K\nPY  - 2021\nER  - \n"
)


def test_import_page_and_upload(clients, web):
    review, _, _ = web
    c = clients["alice"]
    page = c.get("/import")
    assert page.status_code == 200
    r = c.post(
        "/import",
        data={"csrf_token": token(c, "/import"), "database": "MEDLINE", "lenient": "true"},
        files={"file": ("medline export.ris", io.BytesIO(RIS.encode()), "text/plain")},
    )
    assert r.status_code == 200, r.text
    assert 'data-count="imported">2<' in r.text
    assert review.status().records == 10
    stored = list((review.path / "searches").glob("*.ris"))
    assert [p.name for p in stored] == ["medline_export.ris"]
    assert not any((review.path / "searches" / ".incoming").iterdir())
    # the same file again is skipped, with a message
    r = c.post(
        "/import",
        data={"csrf_token": token(c, "/import"), "database": "MEDLINE"},
        files={"file": ("again.ris", io.BytesIO(RIS.encode()), "text/plain")},
    )
    assert "already imported" in r.text
    # imported references are screenable at once (the queue is rebuilt)
    screened = {current_ref(clients["bob"].get("/screen/title_abstract").text)}
    assert screened


BAD_RIS = (
    "TY  - JOUR\nTI  - ok\nPY  - 2001\nER  - \n"
    "TY  - JOUR\nPY  - 2002\nER  - \n"  # no title (record 2, line 5)
    "TY  - JOUR\nTI  - x\nPY  - someday\nER  - \n"  # no year (record 3, line 10)
)


def test_import_problems_are_listed(clients, web):
    review, _, _ = web
    c = clients["alice"]
    r = c.post(
        "/import",
        data={"csrf_token": token(c, "/import"), "database": "X", "lenient": "true"},
        files={"file": ("bad.ris", io.BytesIO(BAD_RIS.encode()), "text/plain")},
    )
    assert r.status_code == 200
    rows = re.findall(r"<tr><td>(\d+)</td><td>(\d+)</td><td>(\w+)</td>", r.text)
    assert rows == [("5", "2", "TI"), ("10", "3", "PY")]
    # strict: the file is refused with where it went wrong, nothing imported
    r = c.post(
        "/import",
        data={"csrf_token": token(c, "/import"), "database": "Y"},
        files={"file": ("bad2.ris", io.BytesIO(BAD_RIS.encode() + b"\n"), "text/plain")},
    )
    assert r.status_code == 400 and "line 5" in r.text
    assert review.status().records == 8 + 3


def test_import_refuses_wrong_type_and_size(web, clients):
    from starlette.testclient import TestClient

    from metasift.web import create_app

    review, _, _ = web
    c = clients["alice"]
    r = c.post(
        "/import",
        data={"csrf_token": token(c, "/import"), "database": "X"},
        files={"file": ("evil.html", io.BytesIO(b"<script>1</script>"), "text/html")},
    )
    assert r.status_code == 400 and "not a search export" in r.text
    small = create_app(review, secret_key="test-secret", max_upload_bytes=1000)
    with TestClient(small) as c2:
        login(c2, "alice")
        r = c2.post(
            "/import",
            data={"csrf_token": token(c2, "/import"), "database": "X"},
            files={"file": ("big.ris", io.BytesIO(b"x" * 200_000), "text/plain")},
        )
        assert r.status_code == 413
    assert review.status().records == 8
    assert not list((review.path / "searches").glob("*.html"))


def test_static_files_served_and_uploads_not(clients, web):
    c = clients["bob"]
    assert c.get("/static/app.js").status_code == 200
    assert c.get("/static/app.css").status_code == 200
    assert c.get("/searches/").status_code == 404
    assert c.get("/static/../review.db").status_code == 404


def test_every_write_is_audited_with_the_user(clients, web):
    review, _, ids = web
    _decide(clients["alice"], "title_abstract", ids[0], "include")
    _decide(clients["bob"], "title_abstract", ids[0], "exclude")
    actors = {(e.actor, e.action) for e in review.audit_log()}
    assert {("alice", "screen.decide"), ("bob", "screen.decide")} <= actors
    assert isinstance(review.audit_log()[-1], Event)
