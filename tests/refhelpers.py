"""Test helpers shared by the conftest files (importable: tests/ is put on sys.path by
tests/conftest.py)."""

from __future__ import annotations


def add_references(review, titles, database="TestDB"):
    """Put records (one singleton reference each) in the store without a reader; returns reference ids."""
    import hashlib

    from sqlalchemy import insert

    from metasift.records import RecordData
    from metasift.store.models import Record, Reference, Source
    from metasift.workflow.importing import record_row, reference_row

    titles = list(titles)
    with review.store.write() as s:
        src = Source(
            database=database,
            filename="fixture",
            checksum=hashlib.sha256(repr((database, titles)).encode()).hexdigest(),
            format="fixture",
            n_records=len(titles),
        )
        s.add(src)
        s.flush()
        recs = [RecordData(title=t, year=2020) for t in titles]
        ids = list(
            s.scalars(
                insert(Reference).returning(Reference.id, sort_by_parameter_order=True),
                [reference_row(r) for r in recs],
            )
        )
        s.execute(insert(Record), [record_row(r, src.id, i, ids[i]) for i, r in enumerate(recs)])
    return ids
