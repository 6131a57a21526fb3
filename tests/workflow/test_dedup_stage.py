"""The dedup stage on a project: merges keep every record, undo restores, a re-run after a new
import links new records and never changes decisions already made."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from metasift.errors import MetasiftError
from metasift.store.models import Record, Reference

CORPUS = "corpus/imports/endnote_xml"


def _snapshot(review):
    with review.store.read() as s:
        recs = {r.id: r.reference_id for r in s.scalars(select(Record))}
        active = {r.id for r in s.scalars(select(Reference).where(Reference.active))}
    return recs, active


def test_merge_keeps_records_and_undo_restores_exactly(project, shared_dir):
    project.import_file(shared_dir / CORPUS / "zotero_endnote.xml", database="Zotero")
    project.import_file(shared_dir / CORPUS / "mendeley_endnote.xml", database="Mendeley")
    before = _snapshot(project)
    rep = project.dedup(actor="ann")
    assert rep.merged_records > 0
    st = project.status()
    assert st.records == 100 and st.references == 100 - rep.merged_records
    assert st.duplicates_removed == rep.merged_records
    after = _snapshot(project)
    assert set(after[0]) == set(before[0])  # no record lost
    merge = project.audit_log(action="dedup.merge")[0]
    target = int(merge.entity_id)
    moved = project.dedup_undo(target, actor="ann")
    assert moved
    recs, active = _snapshot(project)
    for rid in moved:
        assert recs[rid] == before[0][rid]  # back to its own reference
        assert before[0][rid] in active
    # the reviewer's undo is remembered: a re-run does not merge them again
    project.dedup(actor="ann")
    recs2, _ = _snapshot(project)
    assert all(recs2[rid] == before[0][rid] for rid in moved)
    with pytest.raises(MetasiftError):
        project.dedup_undo(before[0][moved[0]], actor="ann")


def test_rerun_after_new_import_never_changes_decisions(project, shared_dir):
    project.import_file(shared_dir / CORPUS / "zotero_endnote.xml", database="Zotero")
    project.dedup(actor="ann")
    refs = [r.id for r in project.references()][:5]
    for r in refs:
        project.decide(r, "title_abstract", "alice", "include")
        project.decide(r, "title_abstract", "bob", "exclude")
    states_before = {r: st.status for r, st in project.stage_states("title_abstract").items()}
    recs_before, _ = _snapshot(project)
    project.import_file(shared_dir / CORPUS / "mendeley_endnote.xml", database="Mendeley")
    rep = project.dedup(actor="ann")
    assert rep.new_records == 50 and rep.merged_records > 0
    recs_after, active = _snapshot(project)
    for rid, ref in recs_before.items():  # old records stay where they were
        assert recs_after[rid] == ref
    assert {
        r: st.status for r, st in project.stage_states("title_abstract").items()
    } == states_before
    assert all(r in active for r in refs)
