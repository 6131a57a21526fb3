"""The review store on both back ends: schema by migration, one transaction per write, audit."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select, text

from metasift.errors import StoreError
from metasift.store import Base, Store
from metasift.store.models import Event, Meta, Source


def test_migrations_create_every_table_and_are_idempotent(db_url):
    store = Store(db_url)
    store.upgrade()
    store.upgrade()  # second run is a no-op
    with store.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert store.revision() == "0001"
    store.dispose()


def test_a_failed_write_leaves_the_store_untouched(db_url):
    store = Store(db_url)
    store.upgrade()
    with pytest.raises(RuntimeError):
        with store.write() as s:
            s.add(Source(database="X", filename="f", checksum="c" * 64, format="ris"))
            s.flush()
            Store.audit(s, "t", "import", "source", 1)
            raise RuntimeError("boom in the middle")
    with store.read() as s:
        assert s.scalars(select(Source)).all() == []
        assert s.scalars(select(Event)).all() == []
    store.dispose()


def test_audit_events_keep_before_and_after(db_url):
    store = Store(db_url)
    store.upgrade()
    with store.write() as s:
        s.add(Meta(key="k", value="v"))
        Store.audit(
            s, "ann", "meta.set", "meta", "k", before=None, after={"value": "v", "n": {1, 2}}
        )
    (ev,) = store.events()
    assert (ev.actor, ev.action, ev.entity_id) == ("ann", "meta.set", "k")
    assert ev.after == {"value": "v", "n": [1, 2]}
    store.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    store.upgrade()
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar().lower() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    store.dispose()


def test_a_bad_url_is_a_clear_error():
    with pytest.raises(StoreError, match="unsupported database"):
        Store("mysql://x@localhost/db")
    with pytest.raises(StoreError, match="not a database URL"):
        Store("::::")


def test_unreachable_postgres_is_a_store_error():
    store = Store("postgresql://nobody:pw@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(StoreError, match="cannot open the store"):
        store.upgrade()


def test_a_pooled_server_connection_killed_while_idle_is_replaced(pg_server):
    """The pool pings a connection that sat idle before handing it out (Store._ping_when_idle):
    a server restart or an idle timeout must not fail the next request."""
    import psycopg

    store = Store(pg_server)
    try:
        with store.engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for record in list(store.engine.pool._pool.queue):  # as if unused for a while
            record.info["metasift_idle_since"] -= Store.IDLE_PING_SECONDS + 1
        with store.engine.connect() as conn:
            fresh = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert fresh != pid
    finally:
        store.dispose()


def test_read_rows_and_a_read_after_a_single_write(db_url):
    """read_rows answers one Core select outside any session (named rows); on PostgreSQL
    write_one's ``then`` read, sent after the COMMIT in the same round trip, sees the write."""
    from sqlalchemy import bindparam, insert

    store = Store(db_url)
    store.upgrade()
    with store.write() as s:
        s.add(Meta(key="a", value="1"))
    by_key = select(Meta.key, Meta.value).where(Meta.key >= bindparam("k")).order_by(Meta.key)
    (row,) = store.read_rows(by_key, {"k": "a"})
    assert (row.key, row.value) == ("a", "1")
    assert store.read_rows(by_key, {"k": "b"}) == []
    if store.dialect == "postgresql":
        put = insert(Meta).values(key=bindparam("key"), value=bindparam("value"))
        put = put.returning(Meta.key)
        written, after = store.write_one(put, {"key": "b", "value": "2"}, then=(by_key, {"k": "a"}))
        assert written == [("b",)]
        assert after == [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
        with pytest.raises(StoreError, match="refused a read"):
            store.read_rows(select(text("1/0")), {})
    else:
        with pytest.raises(StoreError):
            store.write_one(by_key, {"k": "a"})
    store.dispose()
