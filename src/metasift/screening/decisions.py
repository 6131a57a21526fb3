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

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from metasift.errors import BlindingError, MetasiftError, check_param
from metasift.protocol import STAGES, Protocol
from metasift.store import Store
from metasift.store.models import Decision, Reference

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
    """The derived state of every reference that has any decision at ``stage``."""
    check_param(stage, STAGES, "stage", "stage_states")
    rows = list(
        session.scalars(select(Decision).where(Decision.stage == stage).order_by(Decision.id))
    )
    required = protocol.screening.stage(stage).reviewers_per_record
    states: dict[int, RefState] = {}
    for (ref, st, reviewer, kind), d in _standing(rows).items():
        s = states.setdefault(ref, RefState(ref, st))
        if kind == "resolution":
            s.resolution = d
        else:
            s.decisions[reviewer] = d
    for s in states.values():
        _derive(s, required)
    return states


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
) -> Decision:
    """Record one reviewer's decision (a new row; an earlier one of theirs is superseded)."""
    _validate(protocol, stage, decision, reason, "screen")
    _check_reviewer(protocol, reviewer, ("reviewer", "owner"))
    with store.write() as s:
        ref = s.get(Reference, reference_id)
        if ref is None or not ref.active:
            raise MetasiftError(f"no reference #{reference_id} to screen")
        if stage == "full_text" and reference_id not in set(
            eligible_references(s, protocol, "full_text")
        ):
            raise MetasiftError(
                f"reference #{reference_id} was not included at title/abstract; it cannot be "
                "screened at full text"
            )
        prior = _standing(
            list(
                s.scalars(
                    select(Decision)
                    .where(
                        Decision.reference_id == reference_id,
                        Decision.stage == stage,
                        Decision.reviewer == reviewer,
                        Decision.kind == "screen",
                    )
                    .order_by(Decision.id)
                )
            )
        )
        before = next(iter(prior.values()), None)
        row = Decision(
            reference_id=reference_id,
            stage=stage,
            reviewer=reviewer,
            kind="screen",
            decision=decision,
            reason=reason or "",
            note=note or "",
        )
        s.add(row)
        s.flush()
        Store.audit(
            s,
            reviewer,
            "screen.decide",
            "reference",
            reference_id,
            before=_as_dict(before),
            after=_as_dict(row),
        )
        return row


def undo_last(store: Store, protocol: Protocol, stage: str, reviewer: str) -> Decision | None:
    """Cancel the reviewer's newest standing decision at ``stage`` (a new ``undo`` row)."""
    check_param(stage, STAGES, "stage", "undo_last")
    with store.write() as s:
        rows = list(
            s.scalars(
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
        if not standing:
            return None
        last = max(standing.values(), key=lambda d: d.id)
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
