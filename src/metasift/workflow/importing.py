"""Importing search exports into the store: one file is one transaction, all or nothing.

The readers (``metasift.sources``) stream normalised records; this module writes them in chunks
inside a single write transaction, with one Source row (the search log) and one singleton Reference
per record (dedup later merges references; screening always works on references).

The rows go in through the driver in bulk (executemany on SQLite, COPY on PostgreSQL; see "bulk
writing" below), and a big file is parsed in a second process while this one writes
(:mod:`metasift.workflow._import_reader`). Measured with ``benchmarks/import_bench.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from orjson import dumps as _orjson_dumps
from sqlalchemy import select
from sqlalchemy.orm import Session

from metasift.errors import ImportFormatError, MetasiftError
from metasift.records import RecordData
from metasift.store import Store
from metasift.store.models import Reference, Source, utcnow
from metasift.workflow import _import_reader
from metasift.workflow._import_reader import BODY_COLUMNS, CHUNK, ReaderProcess, record_batches

__all__ = ["CHUNK", "ImportReport", "import_file", "record_row", "reference_row"]


@dataclass(frozen=True)
class ImportReport:
    file: str
    format: str
    encoding: str
    records: int
    imported: int
    problems: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: bool = False
    message: str = ""
    source_id: int | None = None
    database: str = ""

    def to_json(self) -> str:
        keys = ("file", "format", "encoding", "records", "imported", "problems")
        d = {k: asdict(self)[k] for k in keys}
        if self.skipped:
            d["skipped"] = True
            d["message"] = self.message
        return json.dumps(d, ensure_ascii=False)


def record_row(rec: RecordData, source_id: int, position: int, reference_id: int) -> dict:
    """One ``record`` row for ``insert(Record)`` (the test fixtures and the web benchmark use it;
    the import itself writes the same values in bulk, see ``record_batches``)."""
    return {
        "source_id": source_id,
        "position": position,
        "line": rec.line,
        "reference_id": reference_id,
        "title": rec.title or "",
        "abstract": rec.abstract or "",
        "authors": [[a.family, a.given] for a in rec.authors],
        "year": rec.year,
        "journal": rec.journal or "",
        "volume": rec.volume or "",
        "issue": rec.issue or "",
        "pages": rec.pages or "",
        "doi": rec.doi or "",
        "pmid": rec.pmid or "",
        "keywords": list(rec.keywords),
        "language": rec.language or "",
        "publication_type": rec.publication_type or "",
        "source_database": rec.source_database or "",
        "accession_number": rec.accession_number or "",
        "issn": rec.issn or "",
        "url": rec.url or "",
        "label": rec.label,
        "raw": rec.raw,
    }


def reference_row(rec: RecordData) -> dict:
    return {
        "title": rec.title or "",
        "abstract": rec.abstract or "",
        "authors": [[a.family, a.given] for a in rec.authors],
        "year": rec.year,
        "journal": rec.journal or "",
        "doi": rec.doi or "",
        "pmid": rec.pmid or "",
    }


# -- bulk writing ------------------------------------------------------------------------------
# The records of a file go in through the DBAPI cursor of the write transaction's own connection
# (same transaction, so a failing file still leaves nothing behind). The ORM's bulk insert
# (insert(Model) with a list of dicts, RETURNING the new ids) spent about three times as long
# building parameters, running type processors and sorting RETURNING rows as SQLite spent storing
# them. Reference ids are assigned here instead of read back: the write lock (BEGIN IMMEDIATE /
# the advisory lock) keeps every other writer out, and the ids are the ones the database would
# have given (SQLite: max(id) + 1 onwards, its rule for INTEGER PRIMARY KEY without
# AUTOINCREMENT; PostgreSQL: nextval of the column's sequence). Values are what the ORM reads:
# JSON text (see ``record_batches``; the raw fields packed, see ``pack_raw``), booleans, and on
# SQLite the DateTime type's own text form. On PostgreSQL the rows go in with COPY.

REFERENCE_COLUMNS = (
    "id", "title", "abstract", "authors", "year", "journal", "doi", "pmid", "active", "created_at",
)  # fmt: skip
RECORD_COLUMNS = ("source_id", "position", "reference_id", *BODY_COLUMNS)


def _rows(bodies: list[tuple], source_id: int, position: int, ref_ids, created):
    """(reference rows, record rows) in the column orders above, from record bodies."""
    refs = [
        (rid, b[1], b[2], b[3], b[4], b[5], b[9], b[10], True, created)
        for rid, b in zip(ref_ids, bodies, strict=True)
    ]
    recs = [
        (source_id, pos, rid, *b[:-1], pack_raw(b[-1], b[1], b[2]))
        for pos, rid, b in zip(
            range(position, position + len(bodies)), ref_ids, bodies, strict=True
        )
    ]
    return refs, recs


def pack_raw(raw_json: str, title: str, abstract: str) -> str:
    """The raw fields' JSON as the store keeps it: a field whose one value is exactly the
    record's normalised abstract (or title) is written as the string ``"abstract"``
    (``"title"``) instead of the list holding that text again. Raw values are otherwise always
    lists, so the string is unambiguous; :attr:`Record.raw_fields` puts the text back. Most
    abstracts need no normalising, so this spares a sixth of a store's bytes (and of the time
    SQLite spends writing and checkpointing them).

    The fields are found in the JSON text, as orjson wrote it (``record_batches``: compact, a
    flat object of lists of strings): ``":["<text>"]`` is such a field and nothing else. The
    leading quote is unescaped, so it ends a key or starts a string; had it started a string,
    that string would be ``":["``'s ``:[``, closed by the next quote, after which JSON allows
    only ``:``, ``,`` or ``]``, so a text starting with one of those is never packed. (A
    fallback ``json.dumps`` text has spaces and is kept as it is.)"""
    for text, name in ((abstract, '":"abstract"'), (title, '":"title"')):
        if text and text[0] not in ":,]":
            raw_json = raw_json.replace(f'":[{_orjson_dumps(text).decode()}]', name)
    return raw_json


def _column_list(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


class _SQLiteWriter:
    """executemany on the sqlite3 cursor of the transaction's connection."""

    def __init__(self, session: Session):
        self.cur = session.connection().connection.driver_connection.cursor()
        self.next_ref = self.cur.execute(
            'SELECT coalesce(max(id), 0) + 1 FROM "reference"'
        ).fetchone()[0]
        self.ref_sql = (
            f'INSERT INTO "reference" ({_column_list(REFERENCE_COLUMNS)}) '
            f"VALUES ({', '.join('?' * len(REFERENCE_COLUMNS))})"
        )
        self.rec_sql = (
            f'INSERT INTO "record" ({_column_list(RECORD_COLUMNS)}) '
            f"VALUES ({', '.join('?' * len(RECORD_COLUMNS))})"
        )
        dialect = session.get_bind().dialect
        created_at = Reference.__table__.c.created_at.type.dialect_impl(dialect)
        self.to_db_time = created_at.bind_processor(dialect)  # SQLAlchemy's text form of a time

    def write(self, bodies: list[tuple], source_id: int, position: int) -> None:
        first, self.next_ref = self.next_ref, self.next_ref + len(bodies)
        refs, recs = _rows(
            bodies, source_id, position, range(first, self.next_ref), self.to_db_time(utcnow())
        )
        self.cur.executemany(self.ref_sql, refs)
        self.cur.executemany(self.rec_sql, recs)

    def close(self) -> None:
        self.cur.close()


class _PostgresWriter:
    """COPY FROM STDIN through psycopg; the ids drawn from the column's sequence in one query."""

    def __init__(self, session: Session):
        self.cur = session.connection().connection.driver_connection.cursor()
        self.ref_copy = f'COPY "reference" ({_column_list(REFERENCE_COLUMNS)}) FROM STDIN'
        self.rec_copy = f'COPY "record" ({_column_list(RECORD_COLUMNS)}) FROM STDIN'

    def write(self, bodies: list[tuple], source_id: int, position: int) -> None:
        self.cur.execute(
            "SELECT nextval(pg_get_serial_sequence('reference', 'id')) "
            "FROM generate_series(1, %s) ORDER BY 1",
            (len(bodies),),
        )
        ids = [r[0] for r in self.cur.fetchall()]
        refs, recs = _rows(bodies, source_id, position, ids, utcnow())
        for sql, rows in ((self.ref_copy, refs), (self.rec_copy, recs)):
            with self.cur.copy(sql) as cp:
                for row in rows:
                    cp.write_row(row)

    def close(self) -> None:
        self.cur.close()


def import_file(
    store: Store,
    project: Path,
    path: str | Path,
    *,
    database: str,
    searched: str = "",
    query: str = "",
    lenient: bool = False,
    format: str | None = None,
    kind: str = "database",
    actor: str = "",
    progress=None,
) -> ImportReport:
    from metasift import sources

    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(path, reason="no such file")
    if not database:
        raise MetasiftError(f"{path}: say which database the file came from (--database NAME)")
    digest = sources.file_checksum(path)
    with store.read() as s:
        prior = s.scalars(select(Source).where(Source.checksum == digest)).first()
        if prior is not None:
            return ImportReport(
                file=str(path),
                format=prior.format,
                encoding=prior.encoding,
                records=prior.n_records,
                imported=0,
                skipped=True,
                source_id=prior.id,
                database=prior.database,
                message=(
                    f"{path.name}: already imported on {prior.imported_at:%Y-%m-%d} as source "
                    f"#{prior.id} ({prior.database}, {prior.n_records} records); nothing done"
                ),
            )

    # A big file is read in a second process while this one writes (see _import_reader); it is
    # started before sniffing so that its start-up overlaps the sniff's full-file encoding check.
    reader = None
    if path.stat().st_size >= _import_reader.PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1:
        reader = ReaderProcess.spawn()
    try:
        return _import(
            store,
            project,
            path,
            digest,
            reader,
            database=database,
            searched=searched,
            query=query,
            lenient=lenient,
            format=format,
            kind=kind,
            actor=actor,
            progress=progress,
        )
    finally:
        if reader is not None:
            reader.close()


def _import(
    store: Store,
    project: Path,
    path: Path,
    digest: str,
    reader: ReaderProcess | None,
    *,
    database: str,
    searched: str,
    query: str,
    lenient: bool,
    format: str | None,
    kind: str,
    actor: str,
    progress,
) -> ImportReport:
    """The import proper: sniff, then one write transaction (see :func:`import_file`)."""
    from metasift import sources

    stream = sources.iter_records(path, format=format, lenient=lenient)  # sniffs: may raise
    sniffed = stream.sniffed
    if reader is not None:
        reader.send(path, sniffed, lenient, database)
        batches, outcome = reader, reader  # outcome: where problems and warnings are at the end
    else:
        batches, outcome = record_batches(stream, database), stream
    searches = project / "searches"
    searches.mkdir(parents=True, exist_ok=True)
    stored = searches / path.name
    if stored.exists() and sources.file_checksum(stored) != digest:
        stored = searches / f"{digest[:8]}-{path.name}"
    copied = False
    n = 0
    try:
        with store.write() as s:
            src = Source(
                database=database,
                searched_on=searched or "",
                query=query or "",
                filename=path.name,
                stored_path=str(stored.relative_to(project)),
                checksum=digest,
                format="",
                encoding="",
                kind=kind,
                imported_by=actor,
            )
            s.add(src)
            s.flush()
            writer = (_PostgresWriter if store.dialect == "postgresql" else _SQLiteWriter)(s)
            try:
                for bodies in batches:
                    writer.write(bodies, src.id, n)
                    n += len(bodies)
                    if progress:
                        progress(n)
            finally:
                writer.close()
            problems = list(outcome.problems)
            src.format = sniffed.format
            src.encoding = sniffed.encoding
            src.n_records = n
            src.problems = problems
            store.audit(
                s,
                actor,
                "import",
                "source",
                src.id,
                after={
                    "file": path.name,
                    "database": database,
                    "searched": searched,
                    "format": sniffed.format,
                    "encoding": sniffed.encoding,
                    "records": n,
                    "checksum": digest,
                    "problems": len(problems),
                    "lenient": lenient,
                },
            )
            if not stored.exists():
                shutil.copy2(path, stored)
                copied = True
            source_id = src.id
    except BaseException:
        if copied and stored.exists():
            stored.unlink()
        raise
    return ImportReport(
        file=str(path),
        format=sniffed.format,
        encoding=sniffed.encoding,
        records=n,
        imported=n,
        problems=list(problems),
        warnings=list(outcome.warnings),
        source_id=source_id,
        database=database,
    )
