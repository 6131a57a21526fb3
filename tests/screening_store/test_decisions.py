"""Screening decisions in the store: append-only, blinded, dual, conflicts, resolution, full text."""

from __future__ import annotations

import pytest

from metasift.errors import BlindingError, MetasiftError, ParameterError

TA, FT = "title_abstract", "full_text"


@pytest.fixture
def refs(project, make_refs):
    return make_refs(project, [f"Trial {i}" for i in range(6)])


def test_decisions_are_append_only_and_the_newest_stands(project, refs):
    project.decide(refs[0], TA, "alice", "include")
    project.decide(refs[0], TA, "alice", "exclude", reason="wrong design")
    st = project.stage_states(TA)[refs[0]]
    assert st.decisions["alice"].decision == "exclude"
    ev = project.audit_log(action="screen.decide")[-1]
    assert ev.before["decision"] == "include" and ev.after["decision"] == "exclude"
    from sqlalchemy import func, select

    from metasift.store.models import Decision

    with project.store.read() as s:
        assert s.scalar(select(func.count(Decision.id))) == 2  # nothing overwritten


def test_a_reference_merged_away_while_deciding_is_refused(project, refs, monkeypatch):
    """decide reads first and takes the write lock for its insert alone. A merge that holds the
    lock while decide waits for it, and commits, must not leave a decision on an inactive
    reference: the insert checks the reference after the lock is granted (PostgreSQL: in a
    statement of its own, whose snapshot comes after the lock)."""
    import threading
    import time

    from sqlalchemy import text, update

    from metasift.store.models import Reference

    store = project.store
    entry = "write_one" if store.dialect == "postgresql" else "write"
    real = getattr(store, entry)
    reached = threading.Event()

    def locked_write(*args, **kwargs):
        reached.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(store, entry, locked_write)
    outcome: dict = {}

    def deciding():
        try:
            outcome["row"] = project.decide(refs[2], TA, "alice", "include")
        except Exception as exc:  # noqa: BLE001 - checked below
            outcome["error"] = exc

    with store.write() as s:  # the merge: holds the write lock from here to its commit
        s.execute(update(Reference).where(Reference.id == refs[2]).values(active=False))
        worker = threading.Thread(target=deciding)
        worker.start()
        assert reached.wait(30), "decide never reached its write"
        if store.dialect == "postgresql":  # wait until it is queued on the advisory lock
            deadline = time.monotonic() + 30
            with store.engine.connect() as probe:
                while not probe.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    )
                ).scalar():
                    assert time.monotonic() < deadline, "decide never waited for the lock"
                    time.sleep(0.01)
        else:
            time.sleep(0.3)  # BEGIN IMMEDIATE waits on the busy timeout
    worker.join(30)
    monkeypatch.undo()
    assert isinstance(outcome.get("error"), MetasiftError), outcome
    assert f"no reference #{refs[2]}" in str(outcome["error"])
    assert refs[2] not in project.stage_states(TA)
    assert project.audit_log(action="screen.decide") == []


def test_undo_restores_the_previous_decision(project, refs):
    project.decide(refs[0], TA, "alice", "include")
    project.decide(refs[1], TA, "alice", "exclude")
    project.decide(refs[1], TA, "alice", "maybe")
    undone = project.undo(TA, "alice")
    assert undone.reference_id == refs[1] and undone.decision == "maybe"
    assert project.stage_states(TA)[refs[1]].decisions["alice"].decision == "exclude"
    project.undo(TA, "alice")
    assert refs[1] not in project.stage_states(TA)  # no standing decision left on it
    assert project.stage_states(TA)[refs[0]].decisions["alice"].decision == "include"
    assert project.audit_log(action="screen.undo")[-1].actor == "alice"


def test_blinding_is_enforced_in_the_library(project, refs):
    project.decide(refs[0], TA, "alice", "include")
    with pytest.raises(BlindingError):
        project.visible_decisions(refs[0], TA, "bob")  # bob has not decided
    with pytest.raises(BlindingError):
        project.visible_decisions(refs[0], TA, "carol")  # resolver: only one of two decided
    assert set(project.visible_decisions(refs[0], TA, "alice")) == {"alice"}
    project.decide(refs[0], TA, "bob", "exclude")
    assert set(project.visible_decisions(refs[0], TA, "bob")) == {"alice", "bob"}
    assert set(project.visible_decisions(refs[0], TA, "carol")) == {"alice", "bob"}


@pytest.mark.parametrize(
    ("a", "b", "status"),
    [
        ("include", "include", "included"),
        ("include", "maybe", "included"),
        ("maybe", "maybe", "included"),
        ("exclude", "exclude", "excluded"),
        ("include", "exclude", "conflict"),
        ("maybe", "exclude", "conflict"),
    ],
)
def test_dual_screening_outcomes_at_title_abstract(project, refs, a, b, status):
    project.decide(refs[0], TA, "alice", a)
    assert project.stage_states(TA)[refs[0]].status == "pending"
    project.decide(refs[0], TA, "bob", b)
    assert project.stage_states(TA)[refs[0]].status == status


def test_conflicts_are_resolved_by_a_resolver_and_recorded(project, refs):
    project.decide(refs[0], TA, "alice", "include")
    project.decide(refs[0], TA, "bob", "exclude", reason="wrong population")
    assert [c.reference_id for c in project.conflicts(TA)] == [refs[0]]
    with pytest.raises(MetasiftError, match="not a protocol reviewer with role resolver"):
        project.resolve(refs[0], TA, "bob", "include")
    with pytest.raises(MetasiftError, match="has no conflict"):
        project.resolve(refs[1], TA, "carol", "include")
    project.resolve(refs[0], TA, "carol", "include", note="population fits on reading")
    st = project.stage_states(TA)[refs[0]]
    assert st.status == "included" and st.resolution.reviewer == "carol"
    assert project.conflicts(TA) == []
    ev = project.audit_log(action="screen.resolve")[-1]
    assert ev.actor == "carol" and set(ev.before) == {"alice", "bob"}


def test_the_newest_resolution_decides_whoever_made_it(project, refs):
    """Two resolvers (carol; alice as owner) in turn: the last resolution stands, and undoing it
    brings back the one before."""
    project.decide(refs[0], TA, "alice", "include")
    project.decide(refs[0], TA, "bob", "exclude", reason="wrong population")
    project.resolve(refs[0], TA, "carol", "include")
    project.resolve(refs[0], TA, "alice", "exclude", reason="wrong population")
    st = project.stage_states(TA)[refs[0]]
    assert (st.status, st.resolution.reviewer) == ("excluded", "alice")
    project.resolve(refs[0], TA, "carol", "include", note="on reflection")
    st = project.stage_states(TA)[refs[0]]
    assert (st.status, st.resolution.reviewer, st.resolution.note) == (
        "included",
        "carol",
        "on reflection",
    )


def test_reasons_come_from_the_protocol_and_are_required_at_full_text(project, refs):
    with pytest.raises(MetasiftError, match="not an exclusion reason"):
        project.decide(refs[0], TA, "alice", "exclude", reason="boring")
    with pytest.raises(MetasiftError, match="only with 'exclude'"):
        project.decide(refs[0], TA, "alice", "include", reason="wrong design")
    with pytest.raises(ParameterError, match="'decision' parameter of decide must be one of"):
        project.decide(refs[0], TA, "alice", "not_retrieved")
    with pytest.raises(MetasiftError, match="not a protocol reviewer"):
        project.decide(refs[0], TA, "mallory", "include")
    project.decide(refs[0], TA, "alice", "include")
    project.decide(refs[0], TA, "bob", "include")
    with pytest.raises(MetasiftError, match="needs a reason"):
        project.decide(refs[0], FT, "alice", "exclude")


def test_full_text_takes_only_title_abstract_includes_and_counts_reasons(project, refs):
    for r in refs[:4]:
        project.decide(r, TA, "alice", "include")
        project.decide(r, TA, "bob", "include")
    with pytest.raises(MetasiftError, match="not included at title/abstract"):
        project.decide(refs[5], FT, "alice", "include")
    project.decide(refs[0], FT, "alice", "exclude", reason="wrong outcomes")
    project.decide(refs[0], FT, "bob", "exclude", reason="wrong outcomes")
    project.decide(refs[1], FT, "alice", "exclude", reason="wrong outcomes")
    project.decide(refs[1], FT, "bob", "exclude", reason="wrong design")  # reasons differ
    project.decide(refs[2], FT, "alice", "not_retrieved")
    project.decide(refs[3], FT, "alice", "include")
    project.decide(refs[3], FT, "bob", "include")
    st = project.stage_states(FT)
    assert st[refs[0]].status == "excluded" and st[refs[0]].reason == "wrong outcomes"
    assert st[refs[1]].status == "conflict"
    assert st[refs[2]].status == "not_retrieved"
    assert st[refs[3]].status == "included"
    counts = project.status().stages[FT]
    assert counts["eligible"] == 4 and counts["excluded"] == 1 and counts["not_retrieved"] == 1


def test_a_bounded_wait_for_the_write_lock_records_nothing_when_it_runs_out(project, refs):
    """decide(lock_wait=...): while another writer holds the store's write lock (PostgreSQL:
    lock_timeout; SQLite: the busy timeout), the decision gives up after that long with StoreBusy
    and nothing is written (the web app then retries in a thread, waiting as long as it takes)."""
    import time

    from sqlalchemy import text

    from metasift.errors import StoreBusy

    with project.store.write() as s:  # another writer holds the lock
        s.execute(text("SELECT 1"))  # SQLite: BEGIN IMMEDIATE goes with the first statement
        t0 = time.monotonic()
        with pytest.raises(StoreBusy):
            project.decide(refs[0], TA, "alice", "include", lock_wait=0.05)
        assert time.monotonic() - t0 < 5
    assert project.stage_states(TA) == {}
    assert project.audit_log(action="screen.decide") == []
    row = project.decide(refs[0], TA, "alice", "include", lock_wait=0.05)  # lock free: recorded
    assert project.stage_states(TA)[refs[0]].decisions["alice"].id == row.id
    ev = project.audit_log(action="screen.decide")[-1]
    assert ev.after["id"] == row.id and ev.after["decision"] == "include" and ev.before is None
