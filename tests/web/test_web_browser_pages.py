"""Browser test of the extraction page (headless Debian Chromium, Playwright, real server): two
extractors fill the form, a difference shows side by side, the resolver reconciles it.
Screenshots of the extraction, risk-of-bias, full-text and analyses pages go to the test's tmp dir."""

from __future__ import annotations

import pytest
from test_web_browser import ARGS, CHROMIUM, _chromium_or_skip, _login, server  # noqa: F401


@pytest.mark.browser
def test_extraction_form_filled_and_reconciled(server, tmp_path):  # noqa: F811
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    review, base = server
    refs = [r.id for r in review.references()][:2]
    for stage in ("title_abstract", "full_text"):
        for r in refs:
            for who in ("alice", "bob"):
                review.decide(r, stage, who, "include")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            alice = _login(browser.new_context(), base, "alice")
            alice.goto(f"{base}/extraction")
            form = alice.locator("#new-study")
            form.locator('input[name="label"]').fill("Alpha2020")
            form.locator('select[name="design"]').select_option("RCT")
            for r in refs:
                form.locator(f'input[name="reference_id"][value="{r}"]').check()
            form.locator('button[type="submit"]').click()
            alice.wait_for_selector("#extract-form")
            sid = int(alice.url.rstrip("/").rsplit("/", 1)[1])

            def fill(page, n_total, sd):
                f = page.locator("#extract-form")
                f.locator('select[name="s__design"]').select_option("RCT")
                f.locator('input[name="s__n_total"]').fill(str(n_total))
                if f.locator('select[name="o0__outcome"]').count():  # a new row: its labels
                    f.locator('select[name="o0__outcome"]').select_option("main outcome")
                    f.locator('input[name="o0__arm"]').fill("exercise")
                    f.locator('input[name="o0__timepoint"]').fill("12 weeks")
                else:  # the row another extractor started: labels fixed, values blank
                    assert page.locator('tr[data-row="0"]').inner_text().startswith("main outcome")
                f.locator('input[name="o0__n"]').fill("20")
                f.locator('input[name="o0__mean"]').fill("3.1")
                f.locator('input[name="o0__sd"]').fill(sd)
                f.locator('button[type="submit"]').click()

            # an invalid value is named beside its field and nothing is saved
            fill(alice, 40, "-1")
            alice.wait_for_selector('.field-error[data-field="o0__sd"]')
            assert "expected a number >= 0" in alice.inner_text('[data-field="o0__sd"]')
            fill(alice, 40, "1.2")
            alice.wait_for_selector(".flash")
            assert alice.input_value('input[name="s__n_total"]') == "40"
            alice.screenshot(path=shots / "extraction-form.png", full_page=True)

            bob = _login(browser.new_context(), base, "bob")
            bob.goto(f"{base}/extraction/{sid}")
            fill(bob, 41, "1.2")
            bob.wait_for_selector(".flash")

            carol = _login(browser.new_context(), base, "carol")
            carol.goto(f"{base}/extraction/{sid}")
            row = carol.locator('tr.status-conflict[data-cell="n_total"]')
            assert row.locator("td.value").all_inner_texts() == ["40", "41"]
            carol.screenshot(path=shots / "extraction-compare.png", full_page=True)
            row.locator('select[name="value"]').select_option("41")
            row.locator('input[name="note"]').fill("CONSORT flow diagram")
            row.locator('button[type="submit"]').click()
            done = carol.locator('tr.status-reconciled[data-cell="n_total"]')
            done.wait_for()
            assert done.locator(".reconciled").inner_text() == "41"
            assert done.locator(".decided-by").inner_text() == "carol"
            carol.screenshot(path=shots / "extraction-reconciled.png", full_page=True)

            for path, name in (
                (f"/rob/{sid}", "rob"),
                ("/fulltext", "fulltext"),
                ("/analyses", "analyses"),
            ):
                alice.goto(f"{base}{path}")
                alice.screenshot(path=shots / f"{name}.png", full_page=True)
        finally:
            browser.close()
    from metasift.extraction import final_values

    with review.store.read() as s:
        fv = final_values(s, review.protocol)
    assert fv[fv.field == "n_total"].value.tolist() == ["41"]
    assert len(list(shots.glob("*.png"))) == 6
