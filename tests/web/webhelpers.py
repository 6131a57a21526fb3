"""Shared helpers for the web tests (imported by path: tests run with --import-mode=importlib)."""

from __future__ import annotations

import re

PASSWORDS = {
    "alice": "alice-password",
    "bob": "bob-password",
    "carol": "carol-password",
    "victor": "victor-password",
}
ROLES = {"alice": "owner", "bob": "reviewer", "carol": "resolver", "victor": "viewer"}

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(client, name: str, password: str | None = None):
    page = client.get("/login")
    return client.post(
        "/login",
        data={
            "name": name,
            "password": PASSWORDS[name] if password is None else password,
            "csrf_token": csrf_of(page.text),
            "next": "/",
        },
        follow_redirects=False,
    )


def token(client, path: str = "/") -> str:
    return csrf_of(client.get(path).text)


def current_ref(html: str) -> int | None:
    m = re.search(r'data-ref="(\d+)"', html)
    return int(m.group(1)) if m else None
