"""The incremental decision index answers exactly as a replay of every decision row would.

``stage_states`` keeps a per-process index of the standing decisions and only reads rows newer
than it has seen. These tests compare it, after random batches of decisions, undos and
resolutions, with a replay of the whole table (the rule the index must keep), on SQLite and
PostgreSQL, from one store and from a second store over the same database (another process's
writes), and check that a write transaction's uncommitted rows never reach the shared index.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from sqlalchemy import select

from metasift.review import Review
from metasift.screening.decisions import (
    RefState,
    _derive,
    stage_snapshot,
    stage_states,
    standing_count,
)
from metasift.store.models import Decision

TA, FT = "title_abstract", "full_text"
REVIEWERS = ("alice", "bob", "dave")
RESOLVERS = ("carol", "erin")


def replay(session, protocol, stage) -> dict[int, RefState]:
    """The rule, as a replay of every row in id order (what stage_states did before the index)."""
    rows = list(
        session.scalars(select(Decision).where(Decision.stage == stage).order_by(Decision.id))
    )
    stacks = defaultdict(list)
    for d in rows:
        key = (d.reference_id, d.stage, d.reviewer, d.kind)
        if d.decision == "undo":
            if stacks[key]:
                stacks[key].pop()
        else:
            stacks[key].append(d)
    required = protocol.screening.stage(stage).reviewers_per_record
    states: dict[int, RefState] = {}
    for (ref, st, reviewer, kind), v in stacks.items():
        if not v:
            continue
        s = states.setdefault(ref, RefState(ref, st))
        if kind == "resolution":  # the newest standing resolution, whoever made it
            if s.resolution is None or v[-1].id > s.resolution.id:
                s.resolution = v[-1]
        else:
            s.decisions[reviewer] = v[-1]
    for s in states.values():
        _derive(s, required)
    return states


def flat(states) -> list:
    """Everything a caller can see, in order, with decisions by row id."""
    return [
        (
            ref,
            st.status,
            st.reason,
            [(r, d.id, d.decision, d.reason) for r, d in st.decisions.items()],
            st.resolution.id if st.resolution is not None else None,
        )
        for ref, st in states.items()
    ]


def random_rows(rng, refs, stage, n) -> list[dict]:
    choices = {
        TA: ("include", "exclude", "maybe"),
        FT: ("include", "exclude", "maybe", "not_retrieved"),
    }[stage]
    out = []
    for _ in range(n):
        ref = int(rng.choice(refs))
        u = rng.random()
        if u < 0.15:
            out.append(dict(reviewer=str(rng.choice(REVIEWERS)), kind="screen", decision="undo"))
        elif u < 0.25:
            out.append(
                dict(
                    reviewer=str(rng.choice(RESOLVERS)),
                    kind="resolution",
                    decision=str(rng.choice(("include", "exclude"))),
                )
            )
        else:
            out.append(
                dict(
                    reviewer=str(rng.choice(REVIEWERS)),
                    kind="screen",
                    decision=str(rng.choice(choices)),
                )
            )
        d = out[-1]
        d.update(reference_id=ref, stage=stage)
        if d["decision"] == "exclude":
            d["reason"] = str(rng.choice(("wrong population", "wrong design")))
    return out


def write_rows(review, rows) -> None:
    with review.store.write() as s:
        for r in rows:
            s.add(Decision(**r))


def check(review, stage) -> None:
    with review.store.read() as s:
        want = flat(replay(s, review.protocol, stage))
    with review.store.read() as s:
        got = stage_states(s, review.protocol, stage)
        snap = stage_snapshot(s, review.protocol, stage)
        counts = {r: standing_count(s, review.protocol, stage, r) for r in REVIEWERS}
    assert flat(got) == want
    assert flat(snap) == want
    for r in REVIEWERS:
        assert counts[r] == sum(1 for st in got.values() if r in st.decisions), r


@pytest.mark.parametrize("seed", [0, 1])
def test_index_matches_a_full_replay_after_every_batch(project, make_refs, seed):
    refs = make_refs(project, [f"Trial {i}" for i in range(12)])
    other = Review.open(project.path, db=project.store.url, actor="other")  # another process
    try:
        rng = np.random.default_rng(seed)
        for batch in range(12):
            stage = TA if batch % 4 else FT
            writer = project if rng.random() < 0.5 else other
            write_rows(writer, random_rows(rng, refs, stage, int(rng.integers(1, 25))))
            for review in (project, other):
                check(review, stage)
    finally:
        other.close()


def test_protocol_rule_change_derives_every_reference_again(project, make_refs):
    refs = make_refs(project, [f"Trial {i}" for i in range(3)])
    write_rows(
        project,
        [dict(reference_id=refs[0], stage=TA, reviewer="alice", kind="screen", decision="include")],
    )
    assert project.stage_states(TA)[refs[0]].status == "pending"  # two reviewers per record
    screening = project.protocol.screening
    one = project.protocol.model_copy(
        update={
            "screening": screening.model_copy(
                update={
                    "title_abstract": screening.title_abstract.model_copy(
                        update={"reviewers_per_record": 1}
                    )
                }
            )
        }
    )
    assert one.screening.stage(TA).reviewers_per_record == 1
    with project.store.read() as s:
        assert stage_states(s, one, TA)[refs[0]].status == "included"
    assert project.stage_states(TA)[refs[0]].status == "pending"


def test_uncommitted_rows_stay_out_of_the_shared_index(project, make_refs):
    refs = make_refs(project, [f"Trial {i}" for i in range(3)])
    project.decide(refs[0], TA, "alice", "include")
    assert set(project.stage_states(TA)) == {refs[0]}

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        with project.store.write() as s:
            s.add(Decision(reference_id=refs[1], stage=TA, reviewer="bob", decision="include"))
            s.flush()
            inside = stage_states(s, project.protocol, TA)  # this transaction sees its own row
            assert set(inside) == {refs[0], refs[1]}
            raise Abort
    assert set(project.stage_states(TA)) == {refs[0]}  # rolled back: not in the index
    project.decide(refs[2], TA, "bob", "exclude", reason="")
    check(project, TA)
    assert set(project.stage_states(TA)) == {refs[0], refs[2]}


def test_undo_uses_the_newest_standing_decision(project, make_refs):
    refs = make_refs(project, [f"Trial {i}" for i in range(4)])
    for r in refs:
        project.decide(r, TA, "alice", "include")
    project.decide(refs[1], TA, "alice", "exclude", reason="")  # newest: on refs[1]
    assert project.undo(TA, "alice").reference_id == refs[1]
    assert project.stage_states(TA)[refs[1]].decisions["alice"].decision == "include"
    assert project.undo(TA, "alice").reference_id == refs[3]
    assert project.undo(TA, "alice").reference_id == refs[2]
    check(project, TA)
    assert project.undo(TA, "bob") is None
