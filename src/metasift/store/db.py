"""Opening the review store: SQLite (embedded default) or PostgreSQL (a team server).

One writer at a time: on SQLite every write transaction starts with ``BEGIN IMMEDIATE`` (WAL mode,
so readers go on concurrently); on PostgreSQL every write transaction first takes a transaction-level
advisory lock, which gives the same guarantee across processes. Read-then-write logic in the stages
(e.g. "is this the reviewer's first decision?") is therefore race-free on both back ends.
Schema changes go through the Alembic migrations in ``migrations/``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, insert, inspect, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from metasift.errors import StoreBusy, StoreError
from metasift.store.models import Event, utcnow

MIGRATIONS = Path(__file__).with_name("migrations")
WRITE_LOCK_KEY = 0x6D657461  # "meta": the advisory lock id of the one-writer rule on PostgreSQL


def _jsonable(obj):
    """Make a value JSON-safe for the audit log (dates as ISO strings, sets as sorted lists)."""
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        seq = sorted(obj, key=str) if isinstance(obj, set | frozenset) else obj
        return [_jsonable(v) for v in seq]
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


_AUDIT_INSERT = insert(Event.__table__)  # built once: its compiled form is reused
_WRITE_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_WRITE_LOCK_SQL = "SELECT pg_advisory_xact_lock(%s)"
_LOCK_TIMEOUT = text("SELECT set_config('lock_timeout', :t, true)")  # this transaction only
_LOCK_TIMEOUT_SQL = "SELECT set_config('lock_timeout', %s, true)"


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _lock_refused(orig) -> bool:
    """Did the driver refuse because the write lock stayed busy (SQLite's busy timeout,
    PostgreSQL's lock_timeout)?"""
    code = getattr(orig, "sqlstate", None)
    return code == "55P03" or "database is locked" in str(orig)


class Store:
    """The review store. Use :meth:`write` for every change and :meth:`read` for queries."""

    def __init__(self, url: str, *, echo: bool = False):
        self.url = normalise_url(url)
        try:
            parsed = make_url(self.url)
        except ArgumentError as exc:
            raise StoreError(f"not a database URL: {url!r}") from exc
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"unsupported database {self.dialect!r}: use SQLite or PostgreSQL")
        kwargs: dict = {"echo": echo}
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"timeout": 60}
        self.engine: Engine = create_engine(self.url, **kwargs)
        self._read_engine: Engine = self.engine
        self._compiled: dict = {}  # id -> (statement, compiled): write_one's, compiled once
        if self.dialect == "sqlite":
            self._sqlite_setup(self.engine)
        else:
            self._ping_when_idle(self.engine)
            # Reads on PostgreSQL run without a transaction block (same pool): under READ
            # COMMITTED every statement takes its own snapshot inside a transaction too, so a
            # read sees exactly what it would in one, minus the BEGIN and ROLLBACK round trips
            # (two of the three a one-query read made). SQLite keeps its read transaction: there
            # it is what gives the statements of one read a single snapshot.
            self._read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    # -- connection set-up -------------------------------------------------------------------
    @staticmethod
    def _sqlite_setup(engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _rec):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (pysqlite's is deferred)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

    #: a pooled server connection unused for longer than this is checked before it is handed out
    IDLE_PING_SECONDS = 5.0

    @classmethod
    def _ping_when_idle(cls, engine: Engine) -> None:
        """Check a pooled connection only when it has been idle (SQLAlchemy's pessimistic
        disconnect handling, done on checkout, but not for a connection used moments ago).

        ``pool_pre_ping`` pings on every checkout: a round trip that cost a web request a third
        of its database CPU. A server restart or an idle timeout shows on connections that sat
        unused; one used in the last seconds is alive (if the server died meanwhile, the
        statement fails, SQLAlchemy sees the disconnect and renews the whole pool)."""

        @event.listens_for(engine, "checkin")
        def _on_checkin(_dbapi_conn, record):
            record.info["metasift_idle_since"] = time.monotonic()

        @event.listens_for(engine, "checkout")
        def _on_checkout(dbapi_conn, record, _proxy):
            since = record.info.get("metasift_idle_since")
            if since is None or time.monotonic() - since < cls.IDLE_PING_SECONDS:
                return
            try:
                engine.dialect.do_ping(dbapi_conn)
            except Exception as exc:  # the pool discards it and hands out a fresh one
                raise DisconnectionError(str(exc)) from exc

    @classmethod
    def for_project(cls, folder: Path, db: str | None = None) -> Store:
        url = (
            db
            or os.environ.get("METASIFT_DB")
            or f"sqlite:///{Path(folder).resolve() / 'review.db'}"
        )
        return cls(url)

    # -- schema --------------------------------------------------------------------------------
    def _alembic_config(self, conn):
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        return cfg

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        from alembic import command

        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})
                command.upgrade(self._alembic_config(conn), "head")
        except OperationalError as exc:
            raise StoreError(f"cannot open the store at {self.safe_url}: {exc.orig}") from exc

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def is_initialised(self) -> bool:
        try:
            return self.revision() is not None
        except OperationalError:
            return False

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    # -- sessions --------------------------------------------------------------------------------
    @contextmanager
    def write(self, *, lock_wait: float | None = None) -> Iterator[Session]:
        """One write transaction: all or nothing, one writer at a time across processes.

        ``lock_wait``: wait at most this many seconds for the write lock, then raise
        :class:`StoreBusy` having written nothing (default: as long as it takes; SQLite: its
        60 s busy timeout)."""
        try:
            with self.engine.connect() as conn:
                if self.dialect == "sqlite":
                    conn.execution_options(sqlite_begin="IMMEDIATE")
                    if (
                        lock_wait is not None
                    ):  # the busy timeout is the lock wait; BEGIN not sent yet
                        conn.connection.dbapi_connection.execute(
                            f"PRAGMA busy_timeout={_ms(lock_wait)}"
                        )
                try:
                    with Session(bind=conn, expire_on_commit=False) as session:
                        with session.begin():
                            if self.dialect == "postgresql":
                                if lock_wait is not None:
                                    session.execute(_LOCK_TIMEOUT, {"t": f"{_ms(lock_wait)}ms"})
                                session.execute(_WRITE_LOCK, {"k": WRITE_LOCK_KEY})
                            yield session
                finally:
                    if self.dialect == "sqlite" and lock_wait is not None:
                        conn.connection.dbapi_connection.execute("PRAGMA busy_timeout=60000")
        except OperationalError as exc:
            if lock_wait is not None and _lock_refused(exc.orig):
                raise StoreBusy(f"the store's write lock was busy for {lock_wait} s") from exc
            raise StoreError(f"the store refused a write ({self.safe_url}): {exc.orig}") from exc

    def write_one(
        self,
        stmt,
        params: dict,
        *,
        lock_wait: float | None = None,
        then: tuple | None = None,
    ) -> list | tuple[list, list]:
        """One write statement in a transaction of its own, under the write lock, committed;
        returns the statement's rows (for ``RETURNING``). PostgreSQL only (SQLite: use
        :meth:`write`).

        BEGIN, the lock, the statement and COMMIT go to the server together (psycopg's pipeline
        mode) and run there back to back, so the store-wide lock is held only while the server
        works, never across a round trip to this process: under load its threads can wait
        milliseconds for the GIL between two statements, and every writer would wait with them.
        They stay separate statements, so the statement's snapshot is taken after the lock is
        granted and sees every write committed before it (a merge, say).

        ``lock_wait``: wait at most this many seconds for the lock, then raise
        :class:`StoreBusy` having written nothing (default: wait as long as it takes).

        ``then``: ``(read statement, params)`` sent in the same round trip after the COMMIT
        (outside the transaction, so its snapshot holds the write and every write committed
        before it); the result is then ``(the write's rows, the read's rows as dicts)``."""
        import psycopg
        from psycopg import errors as pg_errors

        if self.dialect != "postgresql":
            raise StoreError("write_one is for PostgreSQL; use Store.write")
        sql, args = self._pg_sql(stmt, params)
        after = self._pg_sql(*then) if then is not None else None
        try:
            with self.engine.connect() as conn:
                pg = conn.connection.driver_connection
                try:
                    with pg.pipeline():
                        if lock_wait is not None:
                            pg.execute(_LOCK_TIMEOUT_SQL, (f"{_ms(lock_wait)}ms",))
                        pg.execute(_WRITE_LOCK_SQL, (WRITE_LOCK_KEY,))
                        cur = pg.execute(sql, args)
                        if after is not None:
                            read = pg.execute(*after)
                        pg.commit()
                    rows = cur.fetchall()
                    if after is None:
                        return rows
                    names = [c.name for c in read.description]
                    return rows, [dict(zip(names, r, strict=True)) for r in read.fetchall()]
                except BaseException:
                    pg.rollback()
                    raise
        except pg_errors.LockNotAvailable as exc:
            raise StoreBusy(f"the store's write lock was busy for {lock_wait} s") from exc
        except psycopg.Error as exc:
            raise StoreError(f"the store refused a write ({self.safe_url}): {exc}") from exc
        except OperationalError as exc:
            raise StoreError(f"the store refused a write ({self.safe_url}): {exc.orig}") from exc

    def _pg_sql(self, stmt, params: dict) -> tuple[str, dict]:
        """``stmt`` compiled for psycopg (once per statement object) and its parameters."""
        held = self._compiled.get(id(stmt))
        if held is None or held[0] is not stmt:
            held = self._compiled[id(stmt)] = (stmt, stmt.compile(dialect=self.engine.dialect))
        return held[1].string, held[1].construct_params(params)

    def read_rows(self, stmt, params: dict) -> list:
        """The rows of one read statement (a SQLAlchemy Core select), as named tuples, outside
        any ORM session: for a request path that reads one statement. On PostgreSQL the
        statement goes to psycopg as compiled once (as :meth:`write_one`), without a
        transaction block (as :meth:`read`)."""
        if self.dialect != "postgresql":
            with self.engine.connect() as conn:
                return list(conn.execute(stmt, params))
        from psycopg.rows import namedtuple_row

        sql, args = self._pg_sql(stmt, params)
        try:
            with self._read_engine.connect() as conn:
                pg = conn.connection.driver_connection
                with pg.cursor(row_factory=namedtuple_row) as cur:
                    return cur.execute(sql, args).fetchall()
        except Exception as exc:  # noqa: BLE001 - psycopg's errors, named as the store's
            import psycopg

            if isinstance(exc, psycopg.Error):
                raise StoreError(f"the store refused a read ({self.safe_url}): {exc}") from exc
            raise

    @property
    def read_bind(self) -> Engine:
        """The engine :meth:`read` sessions are bound to (per-process caches of what reads see,
        such as the decision index, are kept per this object)."""
        return self._read_engine

    @contextmanager
    def read(self) -> Iterator[Session]:
        # close() (not rollback()) ends the transaction without expiring the loaded objects,
        # so callers can use what they read after the block.
        with Session(self._read_engine, expire_on_commit=False) as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    # -- audit ---------------------------------------------------------------------------------
    @staticmethod
    def audit(
        session: Session,
        actor: str,
        action: str,
        entity: str = "",
        entity_id="",
        before=None,
        after=None,
    ) -> None:
        """Append one event, at once (a plain insert: no ORM object to flush later)."""
        session.execute(
            _AUDIT_INSERT,
            {
                "at": utcnow(),
                "actor": actor or "unknown",
                "action": action,
                "entity": entity,
                "entity_id": str(entity_id),
                "before": _jsonable(before),
                "after": _jsonable(after),
            },
        )

    def events(self, limit: int | None = None, action: str | None = None) -> list[Event]:
        with self.read() as s:
            q = select(Event).order_by(Event.id)
            if action:
                q = q.where(Event.action == action)
            if limit:
                q = q.limit(limit)
            return list(s.scalars(q))


__all__ = ["Store", "StoreError", "SQLAlchemyError", "normalise_url"]
