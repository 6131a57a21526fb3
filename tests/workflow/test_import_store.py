"""Importing into the store: one transaction per file, the search log, re-import is a no-op."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from metasift.errors import ImportFormatError
from metasift.store.models import Event, Record, Reference, Source


def _count(review, model):
    with review.store.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_import_records_a_source_records_and_references(project, shared_dir):
    f = shared_dir / "corpus/imports/ris/embase_elsevier.ris"
    rep = project.import_file(f, database="Embase", searched="2024-03-01", query="ivig AND ssc")
    assert (rep.format, rep.imported, rep.problems) == ("ris", 6, [])
    (src,) = project.sources()
    assert (src.database, src.searched_on, src.query, src.n_records) == (
        "Embase",
        "2024-03-01",
        "ivig AND ssc",
        6,
    )
    assert (project.path / src.stored_path).read_bytes() == f.read_bytes()
    assert _count(project, Record) == 6 and _count(project, Reference) == 6
    ev = project.audit_log(action="import")[-1]
    assert ev.after["records"] == 6 and ev.after["file"] == f.name
    again = project.import_file(f, database="Embase")
    assert again.skipped and "already imported" in again.message
    assert _count(project, Record) == 6
    assert json.loads(again.to_json())["skipped"] is True


def test_a_strict_failure_leaves_the_store_and_the_folder_untouched(project, shared_dir):
    before_events = _count(project, Event)
    with pytest.raises(ImportFormatError) as info:
        project.import_file(shared_dir / "corpus/imports/broken/truncated_no_ER.ris", database="X")
    assert info.value.line is not None
    assert _count(project, Source) == 0 and _count(project, Record) == 0
    assert _count(project, Event) == before_events
    assert list((project.path / "searches").iterdir()) == []


def test_lenient_import_keeps_what_it_can_and_reports_lines(project, shared_dir):
    rep = project.import_file(
        shared_dir / "corpus/imports/broken/truncated_no_ER.ris", database="X", lenient=True
    )
    assert rep.imported == 10 and rep.problems and rep.problems[0]["line"]
    (src,) = project.sources()
    assert src.problems == rep.problems
