"""GRADE ratings in the store: record the certainty of the evidence for one outcome, read them.

:func:`record_grade` validates the ratings with :func:`metasift.certainty.grade` (every
downgrading domain rated with a reason, levels in range) and writes an
``Analysis(kind="grade", outcome=...)`` with one ``Result`` in one transaction, audited. The
report's summary-of-findings table (:func:`metasift.reporting.tables.sof_frame`) reads the newest
``grade`` analysis per outcome and prints its payload's ``level``.

Payload (JSON): ``level`` (High | Moderate | Low | Very low), ``symbol``, ``start``, ``design``,
``rob_tool``, ``downgrades`` and ``upgrades`` (domain -> ``{"level", "label", "reason"}``),
``footnotes``, ``notes``, ``comment``, ``reviewer`` and a one-line ``summary``. The analysis
keeps the inputs in ``settings`` and the studies with extracted data for the outcome in
``study_ids``; the result carries a checksum of the inputs and the metasift version.
Recording ratings equal to the current ones (same reviewer) writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from metasift import __version__
from metasift.certainty import (
    DOWNGRADE_LABELS,
    Certainty,
    CertaintyError,
    Rating,
    grade,
)
from metasift.errors import ParameterError
from metasift.protocol import Protocol
from metasift.store import Store
from metasift.store.models import Analysis, Result, Value

GRADER_ROLES = ("owner", "reviewer", "resolver")
KIND = "grade"


def aware(t: datetime | None) -> datetime | None:
    """A stored time as UTC-aware (SQLite hands back naive UTC times, PostgreSQL aware ones)."""
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


def check_grader(protocol: Protocol, reviewer: str) -> str:
    """``reviewer`` must be a protocol reviewer with role owner, reviewer or resolver."""
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise CertaintyError("say who rates the certainty (a reviewer name from the protocol)")
    if protocol.reviewers:
        allowed = {r.name for r in protocol.reviewers if set(r.roles) & set(GRADER_ROLES)}
        if reviewer not in allowed:
            raise CertaintyError(
                f"{reviewer!r} is not a protocol reviewer with role "
                f"{' or '.join(GRADER_ROLES)}; allowed: {', '.join(sorted(allowed)) or '(none)'}"
            )
    return reviewer


def _outcome(protocol: Protocol, outcome: str) -> str:
    outcome = " ".join(str(outcome or "").split())
    names = [o.name for _, o in protocol.outcomes()]
    if not names:
        if not outcome:
            raise ParameterError("outcome", "record_grade", None, outcome)
        return outcome
    match = {n.casefold(): n for n in names}.get(outcome.casefold())
    if match is None:
        raise ParameterError("outcome", "record_grade", names, outcome)
    return match


def _rating_dict(r: Rating, up: bool) -> dict:
    label = (f"+{r.level}" if r.level else "none") if up else DOWNGRADE_LABELS[r.level]
    return {"level": r.level, "label": label, "reason": r.reason}


def _one_line(c: Certainty) -> str:
    moved = [
        f"rated down {-r.level} for {r.domain.replace('_', ' ')}" for r in c.downgrades if r.level
    ]
    moved += [f"rated up {r.level} for {r.domain.replace('_', ' ')}" for r in c.upgrades if r.level]
    return f"GRADE certainty {c.level} (from {c.start}" + (
        f"; {', '.join(moved)})" if moved else "; not rated down or up)"
    )


def payload_of(c: Certainty, reviewer: str, comment: str = "") -> dict:
    """The JSON payload of a stored GRADE rating."""
    return {
        "level": c.level,
        "symbol": c.symbol,
        "start": c.start,
        "design": c.design,
        "rob_tool": c.rob_tool,
        "downgrades": {r.domain: _rating_dict(r, False) for r in c.downgrades},
        "upgrades": {r.domain: _rating_dict(r, True) for r in c.upgrades},
        "footnotes": list(c.footnotes),
        "notes": list(c.notes),
        "comment": comment,
        "reviewer": reviewer,
        "summary": _one_line(c),
    }


def _inputs(c: Certainty) -> dict:
    return {
        "outcome": c.outcome,
        "design": c.design,
        "rob_tool": c.rob_tool,
        "downgrades": {r.domain: [r.level, r.reason] for r in c.downgrades},
        "upgrades": {r.domain: [r.level, r.reason] for r in c.upgrades},
    }


def _checksum(inputs: dict, reviewer: str, comment: str) -> str:
    text = json.dumps([inputs, reviewer, comment], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class StoredGrade:
    """The current GRADE rating of one outcome, as stored (the certainty re-derived from it)."""

    analysis_id: int
    outcome: str
    certainty: Certainty
    reviewer: str
    comment: str = ""
    study_ids: tuple[int, ...] = ()
    created_at: datetime | None = None

    @property
    def level(self) -> str:
        return self.certainty.level

    def to_dict(self) -> dict:
        return {
            "analysis_id": self.analysis_id,
            "outcome": self.outcome,
            **payload_of(self.certainty, self.reviewer, self.comment),
            "study_ids": list(self.study_ids),
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }

    def summary(self) -> str:
        return (
            self.certainty.summary()
            + f"\n  rated by {self.reviewer}"
            + (f"; {self.comment}" if self.comment else "")
        )


def _from_rows(a: Analysis, r: Result) -> StoredGrade:
    st = a.settings or {}
    ups = st.get("upgrades") or {}
    c = grade(
        a.outcome,
        st["design"],
        {d: tuple(v) for d, v in (st.get("downgrades") or {}).items()},
        {d: tuple(v) for d, v in ups.items()} or None,
        rob_tool=st.get("rob_tool"),
    )
    p = r.payload or {}
    return StoredGrade(
        analysis_id=a.id,
        outcome=a.outcome,
        certainty=c,
        reviewer=p.get("reviewer", ""),
        comment=p.get("comment", ""),
        study_ids=tuple(a.study_ids or ()),
        created_at=aware(r.created_at),
    )


def _newest(session: Session) -> dict[str, tuple[Analysis, Result]]:
    """Newest grade analysis per outcome with its newest result (what the report reads)."""
    out: dict[str, tuple[Analysis, Result]] = {}
    for a in session.scalars(select(Analysis).where(Analysis.kind == KIND).order_by(Analysis.id)):
        r = session.scalars(
            select(Result).where(Result.analysis_id == a.id).order_by(Result.id.desc())
        ).first()
        if r is not None:
            out[a.outcome] = (a, r)
    return out


def current_grades(session: Session, protocol: Protocol | None = None) -> list[StoredGrade]:
    """The current GRADE rating of every rated outcome (protocol order when ``protocol`` is
    given, else by outcome name)."""
    newest = _newest(session)
    order = {o.name: i for i, (_, o) in enumerate(protocol.outcomes())} if protocol else {}
    keys = sorted(newest, key=lambda o: (order.get(o, len(order)), o))
    return [_from_rows(*newest[o]) for o in keys]


def record_grade(
    store: Store,
    protocol: Protocol,
    outcome: str,
    *,
    design: str,
    downgrades: Mapping[str, tuple[int, str]],
    upgrades: Mapping[str, tuple[int, str]] | None = None,
    rob_tool: str | None = None,
    reviewer: str,
    comment: str = "",
) -> StoredGrade:
    """Record ``reviewer``'s GRADE rating of the evidence for ``outcome`` (a protocol outcome).

    Arguments as :func:`metasift.certainty.grade`: ``design`` "rct" or "nrs"; ``downgrades``
    rates all five domains (``risk_of_bias``, ``inconsistency``, ``indirectness``,
    ``imprecision``, ``publication_bias``) as ``(0 | -1 | -2, reason)``; ``upgrades`` may rate
    ``large_effect`` (0/+1/+2), ``dose_response`` and ``plausible_confounding`` (0/+1), each with
    a reason; ``rob_tool`` "robins_i" starts non-randomised evidence at High. Validated first;
    nothing is written on any problem. One transaction, audited (``grade.set``)."""
    check_grader(protocol, reviewer)
    outcome = _outcome(protocol, outcome)
    c = grade(outcome, design, dict(downgrades or {}), dict(upgrades or {}), rob_tool=rob_tool)
    comment = " ".join(str(comment or "").split())
    inputs = _inputs(c)
    checksum = _checksum(inputs, reviewer, comment)
    payload = payload_of(c, reviewer, comment)
    with store.write() as s:
        before = _newest(s).get(outcome)
        if before is not None and before[1].input_checksum == checksum:
            return _from_rows(*before)
        study_ids = sorted(
            set(s.scalars(select(Value.study_id).where(Value.outcome == outcome).distinct()))
        )
        a = Analysis(
            outcome=outcome,
            kind=KIND,
            settings={k: v for k, v in inputs.items() if k != "outcome"},
            study_ids=study_ids,
        )
        s.add(a)
        s.flush()
        r = Result(
            analysis_id=a.id,
            payload=payload,
            input_checksum=checksum,
            metasift_version=__version__,
        )
        s.add(r)
        s.flush()
        Store.audit(
            s,
            reviewer,
            "grade.set",
            "analysis",
            a.id,
            before=before[1].payload if before is not None else None,
            after={"outcome": outcome, **payload},
        )
        return _from_rows(a, r)


__all__ = ["GRADER_ROLES", "StoredGrade", "check_grader", "current_grades", "record_grade"]
