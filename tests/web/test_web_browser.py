"""One browser test: headless Debian Chromium (Playwright) against the real server on 127.0.0.1.

Two reviewers in two browser contexts screen the same 20 records by keyboard, one conflict appears,
the resolver resolves it and the dashboard's counts change. Screenshots go to the test's tmp dir."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from webhelpers import PASSWORDS

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WORDS = (
    "exercise yoga walking massage acupuncture surgery placebo cohort trial pain knee back neck "
    "elderly adults children diet insulin sleep stress anxiety therapy education nurse physio"
).split()


def _chromium_or_skip():
    if CHROMIUM.exists():
        return
    if os.environ.get("METASIFT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path, make_refs, fast_hash):
    import uvicorn

    from metasift.review import Review
    from metasift.web import create_app, users

    review = Review.create(tmp_path / "proj", actor="tester")
    for name, role in (("alice", "owner"), ("bob", "reviewer"), ("carol", "resolver")):
        users.add_user(review.store, name, role, PASSWORDS[name], actor="tester")
    titles = [
        f"{WORDS[i]} and {WORDS[(i * 7 + 3) % len(WORDS)]} for {WORDS[(i * 5 + 1) % len(WORDS)]}"
        for i in range(20)
    ]
    make_refs(review, titles)
    port = _free_port()
    srv = uvicorn.Server(
        uvicorn.Config(
            create_app(review, secret_key="browser"),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield review, f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        review.close()


def _login(context, base, name):
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill('input[name="name"]', name)
    page.fill('input[name="password"]', PASSWORDS[name])
    page.click('button[type="submit"]')
    page.wait_for_selector("#main[data-page=dashboard]")
    return page


def _count(page, stage, what) -> int:
    cell = page.locator(f'tr[data-stage="{stage}"] td[data-count="{what}"]')
    return int(cell.inner_text())


@pytest.mark.browser
def test_two_reviewers_conflict_resolver_dashboard(server, tmp_path):
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    review, base = server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            pages = {}
            for name in ("alice", "bob"):
                ctx = browser.new_context()
                pages[name] = _login(ctx, base, name)
            alice, bob = pages["alice"], pages["bob"]
            alice.screenshot(path=shots / "dashboard-start.png")

            seen = {"alice": [], "bob": []}
            for name, page in pages.items():
                page.goto(f"{base}/screen/title_abstract")
                page.wait_for_selector('#progress[data-decided="0"]')
                if name == "alice":
                    page.screenshot(path=shots / "screen.png")
                for n in range(1, 21):
                    ref = int(page.locator("article.reference").get_attribute("data-ref"))
                    seen[name].append(ref)
                    # bob excludes his first record with reason 1; everything else is included
                    page.keyboard.press("1" if (name == "bob" and n == 1) else "i")
                    page.wait_for_selector(f'#progress[data-decided="{n}"]')
                assert "Nothing left for you" in page.inner_text("#main")
            assert sorted(seen["alice"]) == sorted(seen["bob"]) and len(set(seen["bob"])) == 20
            conflict_ref = seen["bob"][0]
            st = review.stage_states("title_abstract")
            assert st[conflict_ref].status == "conflict"
            assert st[conflict_ref].decisions["bob"].reason == "wrong population"

            bob.goto(f"{base}/")
            assert _count(bob, "title_abstract", "conflicts") == 1
            assert _count(bob, "title_abstract", "included") == 19
            assert _count(bob, "full_text", "eligible") == 19
            bob.screenshot(path=shots / "dashboard-conflict.png")

            carol = _login(browser.new_context(), base, "carol")
            carol.goto(f"{base}/conflicts")
            box = carol.locator(f'.conflict[data-ref="{conflict_ref}"]')
            assert "wrong population" in box.inner_text() and "alice" in box.inner_text()
            carol.screenshot(path=shots / "conflicts.png")
            box.locator('input[name="note"]').fill("agreed: wrong population")
            box.locator('select[name="reason"]').select_option("wrong population")
            box.locator('button[value="exclude"]').click()
            carol.wait_for_selector("#no-conflicts")

            carol.goto(f"{base}/")
            assert _count(carol, "title_abstract", "conflicts") == 0
            assert _count(carol, "title_abstract", "excluded") == 1
            assert _count(carol, "title_abstract", "included") == 19
            assert re.search(r"alice\s*·\s*bob", carol.inner_text("#main"))  # kappa row
            carol.screenshot(path=shots / "dashboard-resolved.png")
        finally:
            browser.close()
    assert review.stage_states("title_abstract")[conflict_ref].status == "excluded"
    assert len(list(shots.glob("*.png"))) == 5
