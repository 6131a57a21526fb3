"""Screening decisions in the store: append-only, blinded, dual, with conflicts and resolutions.

Rules (enforced here, in the library, so no interface can bypass them):

* A decision is a new row; the current decision of a reviewer on a reference at a stage is the newest
  row of theirs, and an ``undo`` row cancels their newest standing decision. Nothing is deleted.
* ``include`` / ``exclude`` / ``maybe`` at both stages; at full text also ``not_retrieved`` (the report
  could not be obtained; PRISMA counts it). An exclusion reason must come from the protocol's list for
  the stage; it is required at full text (configurable per stage).
* Blinding: a reviewer cannot read another reviewer's decision on a reference before they have decided
  on it themselves (:class:`~metasift.errors.BlindingError`). Resolvers read both once the required
  number of reviewers has decided.
* Outcome per reference with the protocol's reviewers-per-record ``r``: fewer than ``r`` standing
  decisions -> ``pending``; all ``exclude`` with the same reason (full text) or any reasons
  (title/abstract) -> ``excluded``; all ``include``/``maybe`` at title/abstract -> ``included`` (a
  ``maybe`` moves on, as in Covidence); any other mix -> ``conflict`` until a resolver records a
  resolution, which then decides. ``maybe`` at full text is undecided and makes a conflict.
* Only references included at title/abstract (agreed or resolved) can be screened at full text.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sqlalchemy import bindparam, event, insert, select, text
from sqlalchemy.orm import Session, make_transient_to_detached

from metasift.errors import BlindingError, MetasiftError, check_param
from metasift.protocol import STAGES, Protocol
from metasift.store import Store
from metasift.store.models import Decision, Reference, utcnow

DECISIONS = {
    "title_abstract": ("include", "exclude", "maybe"),
    "full_text": ("include", "exclude", "maybe", "not_retrieved"),
}
INCLUDE_LIKE = ("include", "maybe")


@dataclass
class RefState:
    """The derived screening state of one reference at one stage."""

    reference_id: int
    stage: str
    decisions: dict[str, Decision] = field(default_factory=dict)  # reviewer -> standing decision
    resolution: Decision | None = None
    status: str = "pending"  # pending | included | excluded | conflict | not_retrieved
    reason: str = ""

    @property
    def resolved(self) -> bool:
        return self.resolution is not None


def _standing(rows: list[Decision]) -> dict[tuple, Decision]:
    """Replay append-only rows (in id order) into the standing decision per key."""
    stacks: dict[tuple, list[Decision]] = defaultdict(list)
    for d in rows:
        key = (d.reference_id, d.stage, d.reviewer, d.kind)
        if d.decision == "undo":
            if stacks[key]:
                stacks[key].pop()
        else:
            stacks[key].append(d)
    return {k: v[-1] for k, v in stacks.items() if v}


def _derive(state: RefState, required: int) -> RefState:
    if state.resolution is not None:
        state.status = {"include": "included", "exclude": "excluded"}.get(
            state.resolution.decision, state.resolution.decision
        )
        state.reason = state.resolution.reason
        return state
    votes = list(state.decisions.values())
    if any(v.decision == "not_retrieved" for v in votes):
        state.status = "not_retrieved"
        return state
    if len(votes) < required:
        state.status = "pending"
        return state
    kinds = {v.decision for v in votes}
    if kinds == {"exclude"}:
        reasons = {v.reason for v in votes}
        if state.stage == "full_text" and len(reasons) > 1:
            state.status = "conflict"  # PRISMA needs one reason per excluded report
        else:
            state.status = "excluded"
            state.reason = sorted(reasons)[0] if len(reasons) == 1 else "; ".join(sorted(reasons))
    elif kinds <= set(INCLUDE_LIKE) and (state.stage == "title_abstract" or kinds == {"include"}):
        state.status = "included"
    else:
        state.status = "conflict"
    return state


def stage_states(session: Session, protocol: Protocol, stage: str) -> dict[int, RefState]:
    """The derived state of every reference that has any decision at ``stage``.

    Answered from a per-process index kept in step with the store (see :class:`_StageIndex`):
    only decision rows newer than those already seen are read. The states (and the decisions in
    them) are shared with other callers: read them, never change them.
    """
    check_param(stage, STAGES, "stage", "stage_states")
    return dict(_view(session, protocol, stage).states)


@dataclass(frozen=True)
class StageView:
    """One consistent, read-only snapshot of a stage: the states (as :func:`stage_states`) and,
    per reviewer, how many references they have a standing screening decision on."""

    states: Mapping[int, RefState]
    counts: Mapping[str, int]


def stage_view(session: Session, protocol: Protocol, stage: str) -> StageView:
    """As :func:`stage_states`, without copying: read-only views of the shared index (for a
    request path that only looks a few references up), with the per-reviewer counts."""
    check_param(stage, STAGES, "stage", "stage_view")
    v = _view(session, protocol, stage)
    return StageView(MappingProxyType(v.states), MappingProxyType(v.counts))


def stage_snapshot(session: Session, protocol: Protocol, stage: str) -> Mapping[int, RefState]:
    """The read-only states of :func:`stage_view`."""
    return stage_view(session, protocol, stage).states


def standing_count(session: Session, protocol: Protocol, stage: str, reviewer: str) -> int:
    """How many references ``reviewer`` has a standing screening decision on at ``stage``."""
    check_param(stage, STAGES, "stage", "standing_count")
    return _view(session, protocol, stage).counts.get(reviewer, 0)


# -- the incremental index ---------------------------------------------------------------------
@dataclass(frozen=True)
class _View:
    """One published state of a stage's index (never changed once published)."""

    last_id: int
    states: dict[int, RefState]  # in the order a full replay gives (see _StageIndex.order)
    counts: dict[str, int]  # reviewer -> references with a standing screening decision


_EMPTY_VIEW = _View(0, {}, {})
_INDEXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine -> {stage: index}
_INDEXES_LOCK = threading.Lock()
_WROTE = "metasift.decisions_written"  # session.info flag: uncommitted decision rows


class _StageIndex:
    """The standing decisions and derived states of one stage, kept in step with the store.

    Decision rows are append-only (never updated or deleted) and their ids grow in commit order
    (one writer at a time, see :mod:`metasift.store.db`), so "every row up to id N" is a complete
    description of what has been read. Each call reads the rows with ``id >= N`` in the caller's
    session: when row N is among them, the rest are applied (and only the references they touch
    are derived again); when it is not (the caller sees an older snapshot, or rows were removed by
    hand), everything is read again. A session that has itself written decision rows not yet
    committed never updates the shared index (its answer is computed for it alone), so the index
    only ever holds committed rows. Several processes each keep their own index; each checks the
    store on every call, so none serves stale states.

    The published states follow the order of a full replay (:func:`_standing` then grouping), so
    callers see exactly what the former whole-table replay gave: a reference is ordered by the
    first row of its earliest (reviewer, kind) key that is still standing, and within a
    reference the decisions are ordered the same way.
    """

    def __init__(self, stage: str):
        self.stage = stage
        self.lock = threading.Lock()
        self.view = _EMPTY_VIEW
        self.required = 0
        self._reset()

    def _reset(self) -> None:
        self.view = _EMPTY_VIEW
        self.checked_at = 0.0  # monotonic time of the read the view is known current at
        self.stacks: dict[tuple[int, str, str], list[Decision]] = {}  # (ref, reviewer, kind)
        self.first: dict[tuple[int, str, str], int] = {}  # key -> id of its first row
        self.keys_of: dict[int, list[tuple[int, str, str]]] = defaultdict(list)  # by first row
        self.order: dict[int, int] = {}  # ref -> first row of its earliest standing key
        self.tail = 0  # an upper bound of the order of the last published reference
        self.counts: dict[str, int] = defaultdict(int)

    def apply(self, rows: list[Decision], last_id: int, required: int) -> _View:
        """Apply rows (in id order, all newer than the current view) and publish a new view."""
        touched: dict[int, None] = {}
        stacks, counts = self.stacks, self.counts
        for d in rows:
            key = (d.reference_id, d.reviewer, d.kind)
            stack = stacks.get(key)
            if stack is None:
                stack = stacks[key] = []
                self.first[key] = d.id
                self.keys_of[d.reference_id].append(key)
            before = bool(stack)
            if d.decision == "undo":
                if stack:
                    stack.pop()
            else:
                stack.append(d)
            if d.kind == "screen" and before != bool(stack):
                counts[d.reviewer] += 1 if stack else -1
            touched[d.reference_id] = None
        if required != self.required:
            self.required = required
            touched = dict.fromkeys(self.keys_of)  # the rule changed: derive every reference
        states = dict(self.view.states)
        placed: list[tuple[int, int, RefState]] = []
        for ref in touched:
            keys = [k for k in self.keys_of[ref] if stacks[k]]
            if not keys:
                states.pop(ref, None)
                self.order.pop(ref, None)
                continue
            st = RefState(ref, self.stage)
            for k in keys:
                if k[2] == "resolution":  # the newest standing resolution, whoever made it
                    top = stacks[k][-1]
                    if st.resolution is None or top.id > st.resolution.id:
                        st.resolution = top
                else:
                    st.decisions[k[1]] = stacks[k][-1]
            placed.append((self.first[keys[0]], ref, _derive(st, required)))
        resort = False
        for order, ref, st in sorted(placed, key=lambda x: x[0]):
            if ref in states and self.order.get(ref) == order:
                states[ref] = st  # same place
            elif ref not in states and order > self.tail:
                states[ref] = st  # a new last reference
                self.tail = order
            else:
                states[ref] = st
                resort = True
            self.order[ref] = order
        if resort:
            states = dict(sorted(states.items(), key=lambda kv: self.order[kv[0]]))
            self.tail = max(self.order.values(), default=0)
        self.view = _View(last_id, states, {r: n for r, n in counts.items() if n})
        return self.view


def _index(session: Session, stage: str) -> _StageIndex:
    return _index_of(session.get_bind().engine, stage)


def _index_of(engine, stage: str) -> _StageIndex:
    with _INDEXES_LOCK:
        per_stage = _INDEXES.get(engine)
        if per_stage is None:
            per_stage = _INDEXES[engine] = {}
        idx = per_stage.get(stage)
        if idx is None:
            idx = per_stage[stage] = _StageIndex(stage)
        return idx


_TABLE = Decision.__table__
# The write path's statements, built once: SQLAlchemy then reuses their compiled form, where a
# statement built per call spends more CPU on construction and cache keys than on the database.
_REFS = Reference.__table__
_PRIOR_ROWS = (
    select(_REFS.c.active, _TABLE)
    .select_from(
        _REFS.outerjoin(
            _TABLE,
            (_TABLE.c.reference_id == _REFS.c.id)
            & (_TABLE.c.stage == bindparam("stage"))
            & (_TABLE.c.reviewer == bindparam("reviewer"))
            & (_TABLE.c.kind == "screen"),
        )
    )
    .where(_REFS.c.id == bindparam("ref"))
    .order_by(_TABLE.c.id)
)
_DECISION_VALUES = (
    "reference_id", "stage", "reviewer", "kind", "decision", "reason", "note", "created_at",
)  # fmt: skip
# the insert of one decision, made only if its reference is (still) active: the check and the
# write in one statement under the write lock
_INSERT_IF_ACTIVE = (
    insert(_TABLE)
    .from_select(
        _DECISION_VALUES,
        select(*(bindparam(c, type_=_TABLE.c[c].type) for c in _DECISION_VALUES)).where(
            select(_REFS.c.id)
            .where(_REFS.c.id == bindparam("reference_id"), _REFS.c.active)
            .exists()
        ),
    )
    .returning(_TABLE.c.id)
)
_AUDITED = ("reference_id", "stage", "reviewer", "kind", "decision", "reason", "note")
# PostgreSQL: the decision (if the reference is active) and its audit event in one statement; the
# event's "after" is the decision as inserted, its id included. The JSON parameters are JSON text.
_DECIDE_PG = text(
    """
    WITH d AS (
        INSERT INTO decision (reference_id, stage, reviewer, kind, decision, reason, note, created_at)
        SELECT :reference_id, :stage, :reviewer, :kind, :decision, :reason, :note, :created_at
        WHERE EXISTS (SELECT 1 FROM reference WHERE id = :reference_id AND active)
        RETURNING id
    ), e AS (
        INSERT INTO event (at, actor, action, entity, entity_id, before, after)
        SELECT :created_at, :reviewer, 'screen.decide', 'reference', :entity_id,
               CAST(:before AS JSON),
               CAST(jsonb_build_object('id', d.id) || CAST(:after AS JSONB) AS JSON)
        FROM d
    )
    SELECT id FROM d
    """
)
_ROWS_FROM = (
    select(_TABLE)
    .where(_TABLE.c.stage == bindparam("stage"), _TABLE.c.id >= bindparam("from_id"))
    .order_by(_TABLE.c.id)
)


def _rows(session: Session, stage: str, from_id: int) -> list[Decision]:
    """Decision rows of ``stage`` with ``id >= from_id``, in id order, as detached objects (not
    in the caller's session, so they can be shared). A plain table query: no ORM loading on
    the request path."""
    result = session.execute(_ROWS_FROM, {"stage": stage, "from_id": from_id})
    return _detached(result.mappings())


def _detached(rows) -> list[Decision]:
    out = []
    for row in rows:
        d = Decision(**row)
        make_transient_to_detached(d)
        out.append(d)
    return out


def _view(session: Session, protocol: Protocol, stage: str) -> _View:
    """The current view of ``stage`` as ``session`` sees the store."""
    required = protocol.screening.stage(stage).reviewers_per_record
    if session.info.get(_WROTE):  # uncommitted rows of its own: answer for this session alone
        rows = _rows(session, stage, 0)
        return _StageIndex(stage).apply(rows, rows[-1].id if rows else 0, required)
    idx = _index(session, stage)
    with idx.lock:
        return _refresh(idx, session, required)


def _refresh(idx: _StageIndex, session: Session, required: int) -> _View:
    """Bring ``idx`` in step with what ``session`` sees (``idx.lock`` held)."""
    at = time.monotonic()
    last = idx.view.last_id
    view = _advance(idx, _rows(session, idx.stage, last), last, required, at)
    if view is None:  # an older snapshot, or rows removed by hand
        idx._reset()
        view = _advance(idx, _rows(session, idx.stage, 0), 0, required, at)
    return view


def _advance(
    idx: _StageIndex, rows: list[Decision], from_id: int, required: int, at: float
) -> _View | None:
    """Apply ``rows`` (every row of the stage with ``id >= from_id`` in one snapshot, read at
    monotonic time ``at``) to ``idx`` (its lock held) and return the view; None when they do
    not continue it: they start after its last row, or do not hold that row."""
    last = idx.view.last_id
    if from_id > last:
        return None
    if last:
        i = next((k for k, d in enumerate(rows) if d.id >= last), len(rows))
        if i == len(rows) or rows[i].id != last:
            return None
        rows = rows[i + 1 :]
    if rows or required != idx.required:
        idx.apply(rows, rows[-1].id if rows else last, required)
    idx.checked_at = max(idx.checked_at, at)  # after the view: see recent_stage_view
    return idx.view


def recent_stage_view(
    store: Store, protocol: Protocol, stage: str, *, at_least: int, max_age: float
) -> StageView | None:
    """:func:`stage_view` without reading the store, when this process's index already holds
    every decision row up to id ``at_least`` and was in step with the store less than
    ``max_age`` seconds ago; else None (then read with :func:`stage_view`).

    For a page that may lag other reviewers' newest decisions by at most ``max_age`` but never
    the caller's own: ``at_least`` is the id of the caller's latest decision (see
    :func:`decide`, which brings the index in step when it writes on PostgreSQL)."""
    check_param(stage, STAGES, "stage", "recent_stage_view")
    idx = _index_of(store.read_bind, stage)
    # No lock: a view is never changed once published, and checked_at is set after the view,
    # so reading it first can only make the view look older than it is.
    checked = idx.checked_at
    view = idx.view
    required = protocol.screening.stage(stage).reviewers_per_record
    if (
        at_least <= 0
        or view.last_id < at_least
        or idx.required != required
        or time.monotonic() - checked >= max_age
    ):
        return None
    return StageView(MappingProxyType(view.states), MappingProxyType(view.counts))


@event.listens_for(Session, "before_flush")
def _note_decision_writes(session, _flush_context, _instances) -> None:
    if any(
        isinstance(o, Decision)
        for o in itertools.chain(session.new, session.dirty, session.deleted)
    ):
        session.info[_WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _note_decision_dml(state) -> None:
    if (state.is_insert or state.is_update or state.is_delete) and (
        getattr(state.statement, "table", None) is _TABLE
        or any(m.class_ is Decision for m in state.all_mappers)
    ):
        state.session.info[_WROTE] = True


@event.listens_for(Session, "after_transaction_end")
def _forget_decision_writes(session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_WROTE, None)


def eligible_references(session: Session, protocol: Protocol, stage: str) -> list[int]:
    """References that can be screened at ``stage``: every active reference at title/abstract; those
    included at title/abstract for full text."""
    check_param(stage, STAGES, "stage", "eligible_references")
    active = list(
        session.scalars(select(Reference.id).where(Reference.active).order_by(Reference.id))
    )
    if stage == "title_abstract":
        return active
    ta = stage_states(session, protocol, "title_abstract")
    return [r for r in active if r in ta and ta[r].status == "included"]


def _validate(protocol: Protocol, stage: str, decision: str, reason: str, kind: str) -> None:
    check_param(stage, STAGES, "stage", "decide")
    check_param(decision, DECISIONS[stage], "decision", "decide")
    reasons = protocol.exclusion_reasons(stage)
    if decision == "exclude":
        if not reason and protocol.screening.reason_required(stage):
            raise MetasiftError(
                f"an exclusion at {stage} needs a reason, one of: {', '.join(reasons) or '(none in protocol)'}"
            )
        if reason and reasons and reason not in reasons:
            raise MetasiftError(
                f"{reason!r} is not an exclusion reason for {stage} in the protocol; use one of: "
                + ", ".join(reasons)
            )
    elif reason:
        raise MetasiftError(
            f"a reason is given only with 'exclude' (got {decision!r} with a reason)"
        )


def _check_reviewer(protocol: Protocol, reviewer: str, roles: tuple[str, ...]) -> None:
    if not reviewer:
        raise MetasiftError("say who is deciding (reviewer name)")
    if protocol.reviewers:
        allowed = {r.name for r in protocol.reviewers if set(r.roles) & set(roles)}
        if reviewer not in allowed:
            raise MetasiftError(
                f"{reviewer!r} is not a protocol reviewer with role {' or '.join(roles)}; "
                f"allowed: {', '.join(sorted(allowed)) or '(none)'}"
            )


def decide(
    store: Store,
    protocol: Protocol,
    reference_id: int,
    stage: str,
    reviewer: str,
    decision: str,
    *,
    reason: str = "",
    note: str = "",
    lock_wait: float | None = None,
) -> Decision:
    """Record one reviewer's decision (a new row; an earlier one of theirs is superseded).

    ``lock_wait``: wait at most this many seconds for the store's write lock, else
    raise :class:`~metasift.errors.StoreBusy` having recorded nothing (default: no limit)."""
    _validate(protocol, stage, decision, reason, "screen")
    _check_reviewer(protocol, reviewer, ("reviewer", "owner"))
    # The reads come first, outside the write lock; the lock covers the inserts alone, and every
    # decision of every reviewer passes through it. A concurrent write by the same reviewer on
    # the same reference can only make the audit's "before" stale.
    # the reference (is it there and active?) and this reviewer's earlier rows on it, at once
    rows = store.read_rows(_PRIOR_ROWS, {"ref": reference_id, "stage": stage, "reviewer": reviewer})
    if not rows or not rows[0].active:
        raise MetasiftError(f"no reference #{reference_id} to screen")
    if stage == "full_text":
        with store.read() as s:
            eligible = set(eligible_references(s, protocol, "full_text"))
        if reference_id not in eligible:
            raise MetasiftError(
                f"reference #{reference_id} was not included at title/abstract; it cannot be "
                "screened at full text"
            )
    prior = _standing([r for r in rows if r.id is not None])
    before = next(iter(prior.values()), None)
    values = {
        "reference_id": reference_id,
        "stage": stage,
        "reviewer": reviewer,
        "kind": "screen",
        "decision": decision,
        "reason": reason or "",
        "note": note or "",
        "created_at": utcnow(),
    }
    # The insert is made only if the reference is still active when the lock is held, so a
    # merge in between is refused.
    if store.dialect == "postgresql":
        # the decision and its audit event in one statement, sent with the lock and the commit
        # in one round trip (Store.write_one); with them, the read that brings this process's
        # index of the stage up to the new row, so the reviewer's next page needs no read
        after = {k: values[k] for k in _AUDITED}  # the event gets the new row's id in SQL
        idx = _index_of(store.read_bind, stage)
        from_id, at = idx.view.last_id, time.monotonic()
        found, since = store.write_one(
            _DECIDE_PG,
            lock_wait=lock_wait,
            params={
                **values,
                "entity_id": str(reference_id),
                "before": json.dumps(_as_dict(before)),
                "after": json.dumps(after),
            },
            then=(_ROWS_FROM, {"stage": stage, "from_id": from_id}),
        )
        new_id = found[0][0] if found else None
        with idx.lock:  # rows that do not continue the index are left to the next read
            _advance(
                idx,
                _detached(since),
                from_id,
                protocol.screening.stage(stage).reviewers_per_record,
                at,
            )
    else:
        with store.write(lock_wait=lock_wait) as s:
            new_id = s.execute(_INSERT_IF_ACTIVE, values).scalar_one_or_none()
            if new_id is not None:
                Store.audit(
                    s,
                    reviewer,
                    "screen.decide",
                    "reference",
                    reference_id,
                    before=_as_dict(before),
                    after=_as_dict(Decision(id=new_id, **values)),
                )
    if new_id is None:  # merged away since it was read
        raise MetasiftError(f"no reference #{reference_id} to screen")
    row = Decision(id=new_id, **values)
    make_transient_to_detached(row)  # as if loaded, like the rows of stage_states
    return row


def undo_last(store: Store, protocol: Protocol, stage: str, reviewer: str) -> Decision | None:
    """Cancel the reviewer's newest standing decision at ``stage`` (a new ``undo`` row)."""
    check_param(stage, STAGES, "stage", "undo_last")
    with store.write() as s:
        last = _last_standing(s, protocol, stage, reviewer)
        if last is None:
            return None
        row = Decision(
            reference_id=last.reference_id,
            stage=stage,
            reviewer=reviewer,
            kind="screen",
            decision="undo",
        )
        s.add(row)
        s.flush()
        Store.audit(
            s,
            reviewer,
            "screen.undo",
            "reference",
            last.reference_id,
            before=_as_dict(last),
            after=None,
        )
        return last


def _last_standing(session: Session, protocol: Protocol, stage: str, reviewer: str):
    """The reviewer's newest standing screening decision at ``stage`` (None if none)."""
    if not session.info.get(_WROTE):
        idx = _index(session, stage)
        with idx.lock:
            view = _refresh(idx, session, protocol.screening.stage(stage).reviewers_per_record)
            if not view.counts.get(reviewer):
                return None
            return max(
                (
                    stack[-1]
                    for (_ref, who, kind), stack in idx.stacks.items()
                    if who == reviewer and kind == "screen" and stack
                ),
                key=lambda d: d.id,
            )
    rows = list(  # uncommitted rows of its own: replay this reviewer's rows for this session
        session.scalars(
            select(Decision)
            .where(
                Decision.stage == stage,
                Decision.reviewer == reviewer,
                Decision.kind == "screen",
            )
            .order_by(Decision.id)
        )
    )
    standing = _standing(rows)
    return max(standing.values(), key=lambda d: d.id) if standing else None


def resolve(
    store: Store,
    protocol: Protocol,
    reference_id: int,
    stage: str,
    resolver: str,
    decision: str,
    *,
    reason: str = "",
    note: str = "",
) -> Decision:
    """Resolve a conflict (third reviewer or consensus): the resolution decides the reference."""
    _validate(protocol, stage, decision, reason, "resolution")
    _check_reviewer(protocol, resolver, ("resolver", "owner"))
    with store.write() as s:
        state = stage_states(s, protocol, stage).get(reference_id)
        if state is None or (state.status != "conflict" and state.resolution is None):
            raise MetasiftError(
                f"reference #{reference_id} has no conflict at {stage} "
                f"(status: {state.status if state else 'no decisions'})"
            )
        row = Decision(
            reference_id=reference_id,
            stage=stage,
            reviewer=resolver,
            kind="resolution",
            decision=decision,
            reason=reason or "",
            note=note or "",
        )
        s.add(row)
        s.flush()
        Store.audit(
            s,
            resolver,
            "screen.resolve",
            "reference",
            reference_id,
            before={r: _as_dict(d) for r, d in state.decisions.items()},
            after=_as_dict(row),
        )
        return row


def visible_decisions(
    session: Session, protocol: Protocol, reference_id: int, stage: str, requester: str
) -> dict[str, Decision]:
    """The standing decisions on a reference that ``requester`` may see (blinding enforced).

    A screening reviewer sees others' decisions only after deciding themselves *and* once the
    required number of reviewers have decided; a resolver (not screening this reference) sees them
    once the required number have decided. Anything else raises :class:`BlindingError`.
    """
    state = stage_states(session, protocol, stage).get(reference_id) or RefState(
        reference_id, stage
    )
    required = protocol.screening.stage(stage).reviewers_per_record
    own = state.decisions.get(requester)
    others = {r: d for r, d in state.decisions.items() if r != requester}
    if not others:
        return {requester: own} if own else {}
    if len(state.decisions) < required or (own is None and requester not in _resolvers(protocol)):
        raise BlindingError(
            f"{requester!r} cannot see other reviewers' decisions on reference #{reference_id} at "
            f"{stage} until {required} reviewers (including them) have decided"
        )
    return dict(state.decisions)


def _resolvers(protocol: Protocol) -> set[str]:
    return {r.name for r in protocol.reviewers if {"resolver", "owner"} & set(r.roles)}


def _as_dict(d: Decision | None) -> dict | None:
    if d is None:
        return None
    return {
        "id": d.id,
        "reference_id": d.reference_id,
        "stage": d.stage,
        "reviewer": d.reviewer,
        "kind": d.kind,
        "decision": d.decision,
        "reason": d.reason,
        "note": d.note,
    }


def paired_labels(states: dict[int, RefState], a: str, b: str) -> tuple[list[str], list[str]]:
    """Aligned standing decisions of reviewers a and b on the references both decided."""
    la, lb = [], []
    for s in states.values():
        if a in s.decisions and b in s.decisions:
            la.append(s.decisions[a].decision)
            lb.append(s.decisions[b].decision)
    return la, lb
