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


def _insert_elsewhere(project, ref, reviewer, decision):
    """A decision row written as another worker process would: not through this process's
    index (decide on PostgreSQL brings the index in step as it writes)."""
    from sqlalchemy import insert

    from metasift.store.models import Decision, utcnow

    with project.store.write() as s:
        return s.execute(
            insert(Decision)
            .values(
                reference_id=ref,
                stage=TA,
                reviewer=reviewer,
                kind="screen",
                decision=decision,
                reason="",
                note="",
                created_at=utcnow(),
            )
            .returning(Decision.id)
        ).scalar_one()


def test_a_recent_view_never_lags_the_callers_own_decision(project, refs):
    """recent_stage_view answers from the process's index only when the index holds the given
    decision and was in step with the store less than max_age seconds ago."""
    from metasift.screening.decisions import recent_stage_view, stage_view

    store, protocol = project.store, project.protocol
    row = project.decide(refs[0], TA, "alice", "include")
    view = recent_stage_view(store, protocol, TA, at_least=row.id, max_age=60)
    if store.dialect == "sqlite":
        assert view is None  # nothing has brought the index up to the write yet
        with store.read() as s:
            stage_view(s, protocol, TA)
        view = recent_stage_view(store, protocol, TA, at_least=row.id, max_age=60)
    else:  # decide's own write brought it in step
        assert view is not None
    assert view.states[refs[0]].decisions["alice"].id == row.id and view.counts["alice"] == 1
    assert recent_stage_view(store, protocol, TA, at_least=row.id, max_age=0) is None
    assert recent_stage_view(store, protocol, TA, at_least=0, max_age=60) is None
    other = _insert_elsewhere(project, refs[1], "bob", "exclude")
    assert recent_stage_view(store, protocol, TA, at_least=other, max_age=60) is None
    lagging = recent_stage_view(store, protocol, TA, at_least=row.id, max_age=60)
    assert lagging is not None and refs[1] not in lagging.states  # bounded by max_age only
    mine = project.decide(refs[2], TA, "alice", "exclude")
    with store.read() as s:
        fresh = stage_view(s, protocol, TA)
    assert fresh.states[refs[1]].decisions["bob"].id == other
    assert fresh.states[refs[2]].decisions["alice"].id == mine.id
    now = recent_stage_view(store, protocol, TA, at_least=mine.id, max_age=60)
    assert now is not None and dict(now.states) == dict(fresh.states)


def test_the_index_takes_only_rows_that_continue_it(project, refs):
    """decide's rows read after its write are applied only when they hold the index's last row
    (nothing between is missing); otherwise they are left for the next read."""
    from metasift.screening import decisions as D

    store, protocol = project.store, project.protocol
    first = project.decide(refs[0], TA, "alice", "include")
    second = project.decide(refs[1], TA, "alice", "exclude")
    with store.read() as s:
        D.stage_view(s, protocol, TA)
    idx = D._index_of(store.read_bind, TA)
    assert idx.view.last_id == second.id
    with store.read() as s:
        rows = D._rows(s, TA, 0)
    required = protocol.screening.stage(TA).reviewers_per_record
    with idx.lock:
        assert D._advance(idx, rows[2:], second.id + 1, required, 0.0) is None  # starts after
        assert (
            D._advance(idx, [r for r in rows if r.id != second.id], first.id, required, 0.0) is None
        )
        assert D._advance(idx, rows, 0, required, 0.0) is idx.view  # nothing new
    third = _insert_elsewhere(project, refs[2], "bob", "include")
    with store.read() as s:
        rows = D._rows(s, TA, second.id)
    with idx.lock:
        view = D._advance(idx, rows, second.id, required, 0.0)
    assert view.last_id == third and view.states[refs[2]].decisions["bob"].id == third
