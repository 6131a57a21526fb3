"""Importing search exports into the store: one file is one transaction, all or nothing.

The readers (``metasift.sources``) stream normalised records; this module writes them in chunks
inside a single write transaction, with one Source row (the search log) and one singleton Reference
per record (dedup later merges references; screening always works on references).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import insert, select

from metasift.errors import ImportFormatError, MetasiftError
from metasift.records import RecordData
from metasift.store import Store
from metasift.store.models import Record, Reference, Source

CHUNK = 2000


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

    stream = sources.iter_records(path, format=format, lenient=lenient)
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
            batch: list[RecordData] = []

            def flush_batch():
                nonlocal n
                if not batch:
                    return
                ref_ids = list(
                    s.scalars(
                        insert(Reference).returning(Reference.id, sort_by_parameter_order=True),
                        [reference_row(r) for r in batch],
                    )
                )
                s.execute(
                    insert(Record),
                    [record_row(r, src.id, n + i, ref_ids[i]) for i, r in enumerate(batch)],
                )
                n += len(batch)
                if progress:
                    progress(n)
                batch.clear()

            for rec in stream:
                if not rec.source_database:
                    rec.source_database = database
                batch.append(rec)
                if len(batch) >= CHUNK:
                    flush_batch()
            flush_batch()
            sniffed = stream.sniffed
            src.format = sniffed.format
            src.encoding = sniffed.encoding
            src.n_records = n
            src.problems = list(stream.problems)
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
                    "problems": len(stream.problems),
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
        problems=list(stream.problems),
        warnings=list(stream.warnings),
        source_id=source_id,
        database=database,
    )
