"""Security: escaping, CSRF, blinding through every route, roles, SQL injection, login throttling."""

from __future__ import annotations

import io
import re
import time

from starlette.testclient import TestClient
from webhelpers import PASSWORDS, csrf_of, login, token

SCRIPT = "<script>alert('x')</script>"
INJECTIONS = [
    "'; DROP TABLE reference; --",
    '" OR 1=1 --',
    "1); DELETE FROM decision WHERE (1=1",
    "Robert'); DROP TABLE app_user;--",
]


# file downloads (report files, uploaded PDFs, plots, exports): covered in test_web_pages.py
FILE_ROUTES = ("/out/", "/fulltext/file/", "/rob/plot/", "/export/")


def _get_routes(app, stage, ref, study=None):
    """Every GET page of the app, path parameters filled in (``study``: a study id)."""
    out = []
    for route in app.routes:
        methods = getattr(route, "methods", None) or set()
        if "GET" not in methods or route.path.startswith(("/static", "/login", *FILE_ROUTES)):
            continue
        if "{study_id}" in route.path and study is None:
            continue
        out.append(route.path.format(stage=stage, reference_id=ref, study_id=study))
    out += [f"/conflicts?stage={stage}", f"/screen/{stage}"]
    return sorted(set(out))


def _study(review, ref, label):
    """A study holding ``ref`` (made without the protocol's full-text check)."""
    from metasift.extraction import add_study

    return add_study(review.store, label, "RCT", [ref], "tester").id


def test_script_in_records_renders_inert(clients, web, make_refs):
    review, app, ids = web
    ris = f"TY  - JOUR\nTI  - Trial {SCRIPT} of walking\nAB  - Abstract {SCRIPT} <img src=x onerror=alert(1)>\nPY  - 2020\nER  - \n"
    c = clients["alice"]
    r = c.post(
        "/import",
        data={"csrf_token": token(c, "/import"), "database": f"DB {SCRIPT}", "query": SCRIPT},
        files={"file": ("x.ris", io.BytesIO(ris.encode()), "text/plain")},
    )
    assert r.status_code == 200
    # readers strip tags; text that reaches the store some other way must still be inert
    (new,) = make_refs(review, [f"Trial {SCRIPT} of running"])
    from metasift.store.models import Reference

    with review.store.write() as s:
        s.get(Reference, new).abstract = f"Abstract {SCRIPT} <img src=x onerror=alert(1)>"
    for other in [*ids, new - 1]:  # make the new reference the only one left to screen
        review.decide(other, "title_abstract", "alice", "exclude")
        review.decide(other, "title_abstract", "bob", "exclude")
    review.decide(new, "title_abstract", "alice", "include", note=SCRIPT)
    review.decide(new, "title_abstract", "bob", "exclude", note=SCRIPT)
    study = _study(review, new, f"Study {SCRIPT}")
    pages = [r.text]
    for path in _get_routes(app, "title_abstract", new, study):
        resp = c.get(path)
        assert resp.status_code == 200, path
        pages.append(resp.text)
    pages.append(clients["carol"].get("/conflicts").text)
    body = "\n".join(pages)
    assert "Trial &lt;script&gt;" in body and "Abstract &lt;script&gt;" in body
    assert "Study &lt;script&gt;" in body and f"/extraction/{study}" in "".join(
        _get_routes(app, "title_abstract", new, study)
    )
    assert "<script>alert" not in body and "<img src=x" not in body
    # the only scripts are the app's own file (CSP forbids inline script anyway)
    assert set(re.findall(r"<script[^>]*>", body)) == {'<script src="/static/app.js" defer>'}


def test_post_without_csrf_is_refused(clients, web):
    review, app, ids = web
    bob, alice, carol = clients["bob"], clients["alice"], clients["carol"]
    posts = [
        (bob, "/screen/title_abstract/decide", {"reference_id": ids[0], "decision": "include"}),
        (bob, "/screen/title_abstract/undo", {}),
        (bob, "/screen/full_text/link", {"reference_id": ids[0], "location": "a.pdf"}),
        (
            carol,
            "/conflicts/resolve",
            {"stage": "title_abstract", "reference_id": ids[0], "decision": "include"},
        ),
        (bob, "/logout", {}),
    ]
    other_session = token(alice)
    for client, path, data in posts:
        assert client.post(path, data=data).status_code == 403, path
        bad = client.post(path, data={**data, "csrf_token": "forged"})
        assert bad.status_code == 403, path
        stolen = client.post(path, data={**data, "csrf_token": other_session})
        assert stolen.status_code == 403, path
    r = alice.post(
        "/import",
        data={"database": "X"},
        files={"file": ("x.ris", io.BytesIO(b"TY  - JOUR\nTI  - t\nER  - \n"), "text/plain")},
    )
    assert r.status_code == 403
    with TestClient(app) as anon:
        anon.get("/login")
        r = anon.post("/login", data={"name": "bob", "password": PASSWORDS["bob"]})
        assert r.status_code == 403
    assert review.stage_states("title_abstract") == {}
    assert review.status().records == 8
    assert bob.get("/", follow_redirects=False).status_code == 200  # still signed in


def test_blinding_through_every_route(clients, web):
    review, app, ids = web
    ref = ids[0]
    review.decide(ref, "title_abstract", "bob", "exclude", reason="wrong design", note="BOB-SECRET")
    study = _study(review, ref, "Blinded2020")
    for viewer in ("alice", "carol", "victor"):
        c = clients[viewer]
        for fmt in ("ris", "csv"):  # exports carry every decision: refused while blinded
            for what in ("references", "records"):
                resp = c.get(f"/export/{fmt}?what={what}")
                assert resp.status_code in (400, 403) and "BOB-SECRET" not in resp.text
        for path in _get_routes(app, "title_abstract", ref, study):
            resp = c.get(path)
            assert "BOB-SECRET" not in resp.text and "wrong design</td>" not in resp.text, (
                viewer,
                path,
            )
    page = clients["alice"].get(f"/reference/title_abstract/{ref}").text
    assert "hidden until you" in page
    # once alice has decided, both can see both decisions
    review.decide(ref, "title_abstract", "alice", "include")
    assert "BOB-SECRET" in clients["alice"].get(f"/reference/title_abstract/{ref}").text
    assert "BOB-SECRET" in clients["carol"].get("/conflicts").text
    # bob's own decision is his to see
    assert "BOB-SECRET" in clients["bob"].get(f"/reference/title_abstract/{ref}").text


def test_viewer_and_other_roles_cannot_write(clients, web):
    review, _, ids = web
    v = clients["victor"]
    tok = token(v)
    attempts = [
        ("/screen/title_abstract/decide", {"reference_id": ids[0], "decision": "include"}),
        ("/screen/title_abstract/undo", {}),
        ("/screen/full_text/link", {"reference_id": ids[0], "location": "a.pdf"}),
        (
            "/conflicts/resolve",
            {"stage": "title_abstract", "reference_id": ids[0], "decision": "include"},
        ),
    ]
    for path, data in attempts:
        assert v.post(path, data={**data, "csrf_token": tok}).status_code == 403, path
    r = v.post(
        "/import",
        data={"csrf_token": tok, "database": "X"},
        files={"file": ("x.ris", io.BytesIO(b"TY  - JOUR\nTI  - t\nER  - \n"), "text/plain")},
    )
    assert r.status_code == 403
    for path in ("/screen/title_abstract", "/conflicts", "/import"):
        assert v.get(path).status_code == 403
    # a reviewer cannot resolve or import; a resolver cannot screen
    assert clients["bob"].get("/conflicts").status_code == 403
    assert clients["bob"].get("/import").status_code == 403
    assert clients["carol"].get("/screen/title_abstract").status_code == 403
    c = clients["carol"]
    r = c.post(
        "/screen/title_abstract/decide",
        data={"csrf_token": token(c), "reference_id": ids[0], "decision": "include"},
    )
    assert r.status_code == 403
    assert review.stage_states("title_abstract") == {}
    assert review.status().records == 8


def test_a_role_change_takes_effect_on_the_next_request(clients, web, monkeypatch):
    """The server keeps who-has-which-role in memory for at most USER_TTL seconds: a change made
    through the users module in this process is seen at once, one made elsewhere (the CLI,
    another worker; here: the table changed directly) once USER_TTL has passed."""
    from sqlalchemy import update

    from metasift.store.models import User
    from metasift.web import users

    review, _, ids = web
    bob = clients["bob"]
    assert bob.get("/screen/title_abstract").status_code == 200
    users.set_role(review.store, "bob", "viewer", actor="alice")
    assert bob.get("/screen/title_abstract").status_code == 403  # at once
    users.set_role(review.store, "bob", "reviewer", actor="alice")
    assert bob.get("/screen/title_abstract").status_code == 200
    monkeypatch.setattr(users, "USER_TTL", 0.3)
    with review.store.write() as s:  # as another process would: the module does not know
        s.execute(update(User).where(User.name == "bob").values(active=False))
    deadline = time.monotonic() + 10
    while bob.get("/screen/title_abstract", follow_redirects=False).status_code != 303:
        assert time.monotonic() < deadline, "a deactivated user was still served"  # login page
        time.sleep(0.05)
    r = bob.post(
        "/screen/title_abstract/decide",
        data={"csrf_token": token(bob), "reference_id": ids[0], "decision": "include"},
    )
    assert r.status_code in (401, 403)
    assert review.stage_states("title_abstract") == {}


def test_tampered_session_cookie_is_not_signed_in(web):
    _, app, _ = web
    with TestClient(app) as c:
        login(c, "victor")
        cookie = c.cookies.get("metasift_session")
        c.cookies.set(
            "metasift_session", cookie[:-4] + ("AAAA" if not cookie.endswith("AAAA") else "BBBB")
        )
        assert c.get("/", follow_redirects=False).status_code == 303


def test_sql_injection_strings_do_no_harm(clients, web):
    """Every text input of every form gets each injection string (one reference pair per string)."""
    review, app, ids = web
    a, b, carol = clients["alice"], clients["bob"], clients["carol"]
    for client in (a, b, carol):
        client.follow_redirects = False
    for k, evil in enumerate(INJECTIONS):
        _inject(review, app, a, b, carol, ids[2 * k], ids[2 * k + 1], evil, k)
    # the store is intact and every string was stored verbatim, as data
    from metasift.web import users

    assert len(review.references()) == 8 + len(INJECTIONS)
    assert {u.name for u in users.list_users(review.store)} == set(PASSWORDS)
    assert {s["database"] for s in review.status().sources} >= set(INJECTIONS)


def _inject(review, app, a, b, carol, ref0, ref1, evil, k):
    # screening text inputs (note; reason is checked against the protocol list)
    r = a.post(
        "/screen/title_abstract/decide",
        data={"csrf_token": token(a), "reference_id": ref0, "decision": "include", "note": evil},
    )
    assert r.status_code == 303
    r = b.post(
        "/screen/title_abstract/decide",
        data={
            "csrf_token": token(b),
            "reference_id": ref0,
            "decision": "exclude",
            "reason": evil,
        },
    )
    assert r.status_code == 400
    r = b.post(
        "/screen/title_abstract/decide",
        data={"csrf_token": token(b), "reference_id": ref0, "decision": "exclude", "note": evil},
    )
    assert r.status_code == 303
    r = carol.post(
        "/conflicts/resolve",
        data={
            "csrf_token": token(carol),
            "stage": "title_abstract",
            "reference_id": ref0,
            "decision": "include",
            "note": evil,
        },
    )
    assert r.status_code == 303
    for name in ("alice", "bob"):
        review.decide(ref1, "title_abstract", name, "include")
    r = b.post(
        "/screen/full_text/link",
        data={"csrf_token": token(b), "reference_id": ref1, "location": evil},
    )
    assert r.status_code == 303
    # non-integer ids and unknown stages are refused cleanly
    r = b.post(
        "/screen/title_abstract/decide",
        data={"csrf_token": token(b), "reference_id": evil, "decision": "include"},
    )
    assert r.status_code == 422
    assert b.get(f"/screen/{evil}").status_code == 404
    assert b.get(f"/reference/title_abstract/{evil}").status_code == 422
    # import text fields
    r = a.post(
        "/import",
        data={"csrf_token": token(a, "/import"), "database": evil, "searched": evil, "query": evil},
        files={
            "file": (
                "s.ris",
                io.BytesIO(f"TY  - JOUR\nTI  - t{k}\nPY  - 2020\nER  - \n".encode()),
                "text/plain",
            )
        },
    )
    assert r.status_code == 200
    # sign-in fields
    with TestClient(app) as anon:
        assert login(anon, "bob", evil).status_code == 401
        tok = csrf_of(anon.get("/login").text)
        r = anon.post("/login", data={"csrf_token": tok, "name": evil, "password": evil})
        assert r.status_code == 401
    # the store is intact and the strings were stored verbatim, as data
    st = review.stage_states("title_abstract")[ref0]
    assert st.decisions["alice"].note == evil and st.resolution.note == evil
    assert any(s["database"] == evil for s in review.status().sources)
    assert evil in b.get(f"/reference/full_text/{ref1}").text.replace("&#34;", '"').replace(
        "&#39;", "'"
    )


def test_ten_wrong_passwords_throttle(web):
    from metasift.web import create_app
    from metasift.web.security import LoginThrottle

    review, _, _ = web
    now = [1000.0]
    app = create_app(review, secret_key="k", throttle=LoginThrottle(clock=lambda: now[0]))
    with TestClient(app) as c:
        for _ in range(9):
            assert login(c, "bob", "wrong-password").status_code == 401
        assert login(c, "bob").status_code == 303  # a success resets the count
        c.cookies.clear()
        for _ in range(10):
            assert login(c, "bob", "wrong-password").status_code == 401
        r = login(c, "bob")  # the right password, but throttled
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        assert login(c, "BOB ", "wrong-password").status_code == 429  # same name, other spelling
        assert login(c, "alice").status_code == 303  # other users are not affected
        c.cookies.clear()
        now[0] += 301
        assert login(c, "bob").status_code == 303
    failed = [e for e in review.audit_log(action="user.login_failed") if e.actor == "bob"]
    assert len(failed) == 19
