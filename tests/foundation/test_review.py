"""The Review object: create/open a project, protocol versions, counts, audit (both back ends)."""

from __future__ import annotations

import pytest

from metasift.errors import ProjectError, ProtocolError
from metasift.review import Review


def test_create_writes_the_folder_and_audits(project):
    assert (project.path / "protocol.yaml").is_file()
    assert (project.path / "searches").is_dir()
    actions = [e.action for e in project.audit_log()]
    assert actions[:2] == ["project.create", "protocol.version"]
    assert project.protocol_version() == 1


def test_create_refuses_an_existing_project_and_open_a_missing_one(project, tmp_path):
    with pytest.raises(ProjectError, match="already a metasift project"):
        Review.create(project.path)
    with pytest.raises(ProjectError, match="not a metasift project"):
        Review.open(tmp_path / "nowhere")


def test_create_refuses_a_bad_protocol_and_leaves_no_project(tmp_path):
    with pytest.raises(ProtocolError):
        Review.create(tmp_path / "p", protocol_text="title: x\n")
    assert not (tmp_path / "p" / "protocol.yaml").exists()


def test_a_changed_protocol_is_a_new_version(project):
    db = None if project.store.dialect == "sqlite" else project.store.url
    f = project.path / "protocol.yaml"
    f.write_text(f.read_text().replace("My systematic review", "Another title"))
    with Review.open(project.path, db=db, actor="ann") as r2:
        assert r2.protocol_version() == 2
        assert r2.protocol.title == "Another title"
        ev = r2.audit_log(action="protocol.version")[-1]
        assert ev.actor == "ann" and ev.before["version"] == 1 and ev.after["version"] == 2
    with Review.open(project.path, db=db) as r3:  # unchanged: no new version
        assert r3.protocol_version() == 2


def test_status_counts(project, make_refs):
    ids = make_refs(project, [f"Trial {i}" for i in range(5)])
    st = project.status()
    assert st.records == 5 and st.references == 5 and st.duplicates_removed == 0
    assert st.sources[0]["records"] == 5
    ta = st.stages["title_abstract"]
    assert ta["eligible"] == 5 and ta["pending"] == 5
    project.decide(ids[0], "title_abstract", "alice", "exclude")
    project.decide(ids[0], "title_abstract", "bob", "exclude")
    ta = project.status().stages["title_abstract"]
    assert ta["excluded"] == 1 and ta["screened"] == 1 and ta["pending"] == 4
