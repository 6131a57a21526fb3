"""Shared fixtures. Tests may read ../shared directly (DEVELOPERS.md); METASIFT_SHARED overrides."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for tests/refhelpers.py, shared by conftests
from refhelpers import add_references  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("METASIFT_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"the shared folder is missing: {SHARED} (set METASIFT_SHARED)")
    return SHARED


# -- store back ends: every store test runs on SQLite and on PostgreSQL ---------------------------
PG_URL = os.environ.get("METASIFT_TEST_PG", "")
REQUIRE_PG = os.environ.get("METASIFT_REQUIRE_PG") == "1" or os.environ.get("CI") == "true"


def _pg_reachable(url: str) -> str | None:
    """None when the server answers, else why not."""
    if not url:
        return "METASIFT_TEST_PG is not set (make test sets it when PostgreSQL is installed)"
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=5):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        return f"PostgreSQL at {url} unreachable: {exc}"


@pytest.fixture(scope="session")
def pg_server() -> str:
    why = _pg_reachable(PG_URL)
    if why:
        if REQUIRE_PG:
            pytest.fail(why + " (CI must run the PostgreSQL tests)")
        pytest.skip(why)
    return PG_URL


def _fresh_pg_database(server_url: str) -> tuple[str, callable]:
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    name = f"metasift_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)

    def drop():
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database URL on each back end (PostgreSQL: a new database on the server)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'review.db'}"
        return
    server = request.getfixturevalue("pg_server")
    url, drop = _fresh_pg_database(server)
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def project(tmp_path, db_url):
    """A new project folder on each back end, with the commented template protocol."""
    from metasift.review import Review

    folder = tmp_path / "proj"
    review = Review.create(
        folder, db=None if db_url.startswith("sqlite") else db_url, actor="tester"
    )
    try:
        yield review
    finally:
        review.close()


@pytest.fixture
def make_refs():
    return add_references
