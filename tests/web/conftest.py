"""Fixtures for the web tests: an app over the `project` fixture (SQLite and PostgreSQL) with four
users (alice owner, bob reviewer, carol resolver, victor viewer) and cheap argon2 settings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

sys.path.insert(0, str(Path(__file__).parent))
from webhelpers import PASSWORDS, ROLES, login  # noqa: E402


@pytest.fixture
def fast_hash(monkeypatch):
    from metasift.web import users

    monkeypatch.setattr(
        users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def web(project, make_refs, fast_hash):
    """(review, app, reference ids) with users and 8 references, keywords in the protocol."""
    from metasift.web import create_app, users

    for name, role in ROLES.items():
        users.add_user(project.store, name, role, PASSWORDS[name], actor="tester")
    titles = [f"Exercise therapy trial {i} for back pain" for i in range(8)]
    ids = make_refs(project, titles)
    app = create_app(project, secret_key="test-secret")
    return project, app, ids


@pytest.fixture
def clients(web):
    """A signed-in TestClient per user."""
    from starlette.testclient import TestClient

    _, app, _ = web
    out = {}
    for name in ROLES:
        c = TestClient(app)
        r = login(c, name)
        assert r.status_code == 303, r.text
        out[name] = c
    yield out
    for c in out.values():
        c.close()
