"""Studies and extracted values in the store: dual extraction, differences, reconciliation.

Rules (enforced here, so no interface can bypass them):

* A study groups one or more references (its reports) that were included at full text.
* Values are append-only ``Value`` rows. An extractor's current value in a cell is their newest
  row (``kind="extract"``); recording ``None`` clears it (a new row with an empty value). A
  reconciled value is a ``kind="reconciled"`` row by the person who decided, with the reason in
  ``note``; the newest one decides the cell.
* At most ``extraction.extractors_per_study`` people extract one study.
* A cell is *agreed* when it is reconciled, or when every extractor who filled it gave the same
  value and as many extractors as the protocol requires filled it. ``differences`` lists the
  rest, kept apart: ``kind="conflict"`` (extractors' values differ) and ``kind="incomplete"``
  (only one of two required extractors filled it).

Value rows follow one convention (the report stage codes against it): study-level values have
``level="study"``, ``field=<study field>``, ``arm=outcome=timepoint=""``; outcome values have
``level="outcome"``, ``field=<outcome field>``, ``arm``, ``outcome=<protocol outcome>``,
``timepoint=<label>``. ``value`` is the normalised text (see :mod:`metasift.extraction.forms`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from metasift.extraction.forms import Cell, ExtractionError, form_field, unit_of, validate_value
from metasift.protocol import Protocol
from metasift.store import Store
from metasift.store.models import Reference, Study, StudyReport, Value

FINAL_COLUMNS = [
    "study_id",
    "study",
    "design",
    "level",
    "field",
    "arm",
    "outcome",
    "timepoint",
    "value",
    "unit",
]
EXTRACTOR_ROLES = ("reviewer", "owner")
RECONCILER_ROLES = ("owner", "resolver", "reviewer")


# -- studies ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudyInfo:
    """One included study and the references (reports) that describe it."""

    id: int
    label: str
    design: str
    reference_ids: tuple[int, ...]
    created_at: datetime | None = None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "label": self.label,
            "design": self.design,
            "reference_ids": list(self.reference_ids),
        }


def _check_person(protocol: Protocol, name: str, roles: tuple[str, ...], what: str) -> None:
    if not name or not name.strip():
        raise ExtractionError(f"say who is {what} (a reviewer name from the protocol)")
    if protocol.reviewers:
        allowed = {r.name for r in protocol.reviewers if set(r.roles) & set(roles)}
        if name not in allowed:
            raise ExtractionError(
                f"{name!r} is not a protocol reviewer with role {' or '.join(roles)}; "
                f"allowed: {', '.join(sorted(allowed)) or '(none)'}"
            )


def _included_at_full_text(session: Session, protocol: Protocol) -> set[int]:
    from metasift.screening.decisions import stage_states

    return {
        r
        for r, st in stage_states(session, protocol, "full_text").items()
        if st.status == "included"
    }


def add_study(
    store: Store,
    label: str,
    design: str,
    reference_ids: Iterable[int],
    actor: str,
    *,
    protocol: Protocol | None = None,
) -> StudyInfo:
    """Create a study from one or more included references (its reports; the first is primary).

    With ``protocol`` the references must be included at full text, and ``design`` must be one of
    the protocol's designs (the ``design`` choice field, or the keys of ``risk_of_bias``) when it
    names any. Without it only the references' existence is checked (for scripts and fixtures
    that build a store directly)."""
    label = (label or "").strip()
    if not label:
        raise ExtractionError("a study needs a label (e.g. 'Takehara2013')")
    if not actor:
        raise ExtractionError("say who is adding the study (actor)")
    refs = list(dict.fromkeys(int(r) for r in reference_ids))
    if not refs:
        raise ExtractionError(f"study {label!r} needs at least one reference (report)")
    design = (design or "").strip()
    if protocol is not None:
        designs = _protocol_designs(protocol)
        if designs:
            match = {d.casefold(): d for d in designs}.get(design.casefold())
            if match is None:
                raise ExtractionError(
                    f"design {design!r} of study {label!r} is not a design of the protocol; "
                    f"use one of: {', '.join(designs)}"
                )
            design = match
    with store.write() as s:
        if s.scalar(select(Study.id).where(Study.label == label)) is not None:
            raise ExtractionError(f"a study labelled {label!r} exists already")
        found = set(s.scalars(select(Reference.id).where(Reference.id.in_(refs))))
        missing = [r for r in refs if r not in found]
        if missing:
            raise ExtractionError(f"no reference #{', #'.join(map(str, missing))} in the store")
        if protocol is not None:
            included = _included_at_full_text(s, protocol)
            not_inc = [r for r in refs if r not in included]
            if not_inc:
                raise ExtractionError(
                    f"reference #{', #'.join(map(str, not_inc))} is not included at full text; "
                    "only included reports make a study"
                )
        study = Study(label=label, design=design)
        s.add(study)
        s.flush()
        for i, r in enumerate(refs):
            s.add(StudyReport(study_id=study.id, reference_id=r, primary=(i == 0)))
        info = StudyInfo(study.id, label, design, tuple(refs), study.created_at)
        Store.audit(s, actor, "extract.add_study", "study", study.id, None, info.to_dict())
        return info


def _protocol_designs(protocol: Protocol) -> list[str]:
    for f in protocol.extraction.study_fields:
        if f.name == "design" and f.type == "choice":
            return list(f.allowed)
    return list(protocol.risk_of_bias)


def studies(session: Session) -> list[StudyInfo]:
    """Every study with its reports (primary report first), by label."""
    reports: dict[int, list[StudyReport]] = defaultdict(list)
    for r in session.scalars(select(StudyReport).order_by(StudyReport.id)):
        reports[r.study_id].append(r)
    out = []
    for st in session.scalars(select(Study).order_by(Study.label)):
        reps = sorted(reports[st.id], key=lambda r: (not r.primary, r.id))
        out.append(
            StudyInfo(
                st.id, st.label, st.design, tuple(r.reference_id for r in reps), st.created_at
            )
        )
    return out


def _get_study(session: Session, study: int | str) -> Study:
    if isinstance(study, Study):
        study = study.id
    if isinstance(study, StudyInfo):
        study = study.id
    row = None
    if isinstance(study, int) or (isinstance(study, str) and study.isdigit()):
        row = session.get(Study, int(study))
    if row is None and isinstance(study, str):
        row = session.scalar(select(Study).where(Study.label == study))
    if row is None:
        raise ExtractionError(f"no study {study!r} (add it first; see `metasift extract studies`)")
    return row


# -- recording ----------------------------------------------------------------------------------
def _cell_of(row: Mapping) -> Cell:
    if "field" not in row:
        raise ExtractionError(f"a value row needs a 'field': {dict(row)!r}")
    cell = Cell(
        str(row["field"]).strip(),
        arm=str(row.get("arm") or "").strip(),
        outcome=str(row.get("outcome") or "").strip(),
        timepoint=str(row.get("timepoint") or "").strip(),
    )
    level = row.get("level")
    if level is not None and level != cell.level:
        raise ExtractionError(
            f"level {level!r} does not fit {cell.describe()!r}: outcome values name an outcome, "
            "study values do not"
        )
    return cell


@dataclass(frozen=True)
class Prepared:
    """A validated value ready to be written (normalised text or "" to clear, and its unit)."""

    cell: Cell
    value: str
    unit: str


def prepare(protocol: Protocol, rows: Iterable[Mapping]) -> list[Prepared]:
    """Validate rows ``{"field", "value", "arm", "outcome", "timepoint"}`` against the protocol's
    forms. ``value=None`` clears the cell. Raises on the first problem; a cell given twice is one."""
    out: dict[Cell, Prepared] = {}
    for row in rows:
        cell = _cell_of(row)
        f = form_field(protocol, cell)
        raw = row.get("value")
        value = "" if raw is None else validate_value(f, raw)
        if cell in out:
            raise ExtractionError(f"{cell.describe()!r} is given twice")
        out[cell] = Prepared(cell, value, unit_of(protocol, cell, f))
    return list(out.values())


def _key(v: Value) -> Cell:
    return Cell(v.field, v.arm, v.outcome, v.timepoint)


def _write(
    session: Session, protocol: Protocol, study: Study, reviewer: str, items: list[Prepared]
) -> tuple[list[Value], int]:
    """Append the prepared values of one study by one extractor; returns (new rows, unchanged)."""
    rows = list(
        session.scalars(
            select(Value)
            .where(Value.study_id == study.id, Value.kind == "extract")
            .order_by(Value.id)
        )
    )
    extractors = {v.reviewer for v in rows}
    limit = protocol.extraction.extractors_per_study
    if reviewer not in extractors and len(extractors) >= limit:
        raise ExtractionError(
            f"study {study.label!r} already has {limit} extractor(s) "
            f"({', '.join(sorted(extractors))}); the protocol allows {limit}"
        )
    current = {_key(v): v for v in rows if v.reviewer == reviewer}
    written, unchanged = [], 0
    for p in items:
        before = current.get(p.cell)
        if (before is None and p.value == "") or (before is not None and before.value == p.value):
            unchanged += 1
            continue
        row = Value(
            study_id=study.id,
            level=p.cell.level,
            field=p.cell.field,
            arm=p.cell.arm,
            outcome=p.cell.outcome,
            timepoint=p.cell.timepoint,
            value=p.value,
            unit=p.unit,
            reviewer=reviewer,
            kind="extract",
        )
        session.add(row)
        written.append(row)
    session.flush()
    for row in written:
        before = current.get(_key(row))
        Store.audit(
            session,
            reviewer,
            "extract.value",
            "study",
            study.id,
            before=_as_dict(before),
            after=_as_dict(row),
        )
    return written, unchanged


def record_values(
    store: Store, protocol: Protocol, study: int | str, reviewer: str, rows: Iterable[Mapping]
) -> list[Value]:
    """Record one extractor's values for one study (one transaction, each value audited).

    ``rows``: mappings with ``field`` and ``value`` and, for outcome data, ``arm``, ``outcome`` and
    ``timepoint``. Values are validated against the protocol's forms first; nothing is written if
    any is invalid. A value equal to the extractor's current one is not written again. Returns
    the new rows."""
    _check_person(protocol, reviewer, EXTRACTOR_ROLES, "extracting")
    items = prepare(protocol, rows)
    with store.write() as s:
        st = _get_study(s, study)
        written, _ = _write(s, protocol, st, reviewer, items)
        return written


# -- differences and reconciliation -------------------------------------------------------------
@dataclass(frozen=True)
class Difference:
    """A cell the extractors have not agreed on (yet).

    ``kind`` is ``"conflict"`` (their current values differ) or ``"incomplete"`` (only one of the
    required extractors filled it). ``values`` maps extractor -> current value. ``reconciled`` is
    the decided value when the cell has been reconciled (listed only with ``include_resolved``)."""

    study_id: int
    study: str
    cell: Cell
    kind: str
    values: dict[str, str] = field(default_factory=dict)
    unit: str = ""
    reconciled: str | None = None
    decided_by: str = ""
    note: str = ""

    @property
    def level(self) -> str:
        return self.cell.level

    def to_dict(self) -> dict:
        return {
            "study_id": self.study_id,
            "study": self.study,
            "level": self.cell.level,
            "field": self.cell.field,
            "arm": self.cell.arm,
            "outcome": self.cell.outcome,
            "timepoint": self.cell.timepoint,
            "kind": self.kind,
            "values": dict(self.values),
            "unit": self.unit,
            "reconciled": self.reconciled,
            "decided_by": self.decided_by,
            "note": self.note,
        }


@dataclass
class _CellState:
    study_id: int
    cell: Cell
    values: dict[str, Value] = field(default_factory=dict)  # extractor -> current (non-blank)
    reconciled: Value | None = None


def _cell_states(
    session: Session, study_id: int | None = None
) -> dict[tuple[int, Cell], _CellState]:
    states: dict[tuple[int, Cell], _CellState] = {}
    q = select(Value).order_by(Value.id)
    if study_id is not None:
        q = q.where(Value.study_id == study_id)
    for v in session.scalars(q):
        key = (v.study_id, _key(v))
        st = states.setdefault(key, _CellState(v.study_id, key[1]))
        if v.kind == "reconciled":
            st.reconciled = v
        elif v.value == "":
            st.values.pop(v.reviewer, None)  # cleared
        else:
            st.values[v.reviewer] = v
    return states


def _status(st: _CellState, required: int) -> str:
    """agreed | conflict | incomplete | reconciled | empty"""
    if st.reconciled is not None:
        return "reconciled"
    vals = {v.value for v in st.values.values()}
    if not vals:
        return "empty"
    if len(vals) > 1:
        return "conflict"
    return "agreed" if len(st.values) >= required else "incomplete"


def differences(
    session: Session, protocol: Protocol, *, include_resolved: bool = False
) -> list[Difference]:
    """Cells whose extractors' current values differ (``conflict``) or that only one of two
    required extractors filled (``incomplete``), conflicts first, then by study and cell.
    Reconciled cells are left out unless ``include_resolved`` (then with the decided value)."""
    required = protocol.extraction.extractors_per_study
    labels = dict(session.execute(select(Study.id, Study.label)).all())
    out = []
    for (sid, cell), st in _cell_states(session).items():
        status = _status(st, required)
        if status in ("agreed", "empty"):
            continue
        if status == "reconciled":
            if not include_resolved or not st.values:
                continue
            vals = {v.value for v in st.values.values()}
            kind = "conflict" if len(vals) > 1 else "incomplete"
            if kind == "incomplete" and len(st.values) >= required:
                continue  # the extractors agreed; a reconciliation only confirmed or corrected it
        else:
            kind = status
        any_v = next(iter(st.values.values()), None) or st.reconciled
        rec = st.reconciled
        out.append(
            Difference(
                study_id=sid,
                study=labels.get(sid, str(sid)),
                cell=cell,
                kind=kind,
                values={r: v.value for r, v in sorted(st.values.items())},
                unit=any_v.unit if any_v else "",
                reconciled=rec.value if rec else None,
                decided_by=rec.reviewer if rec else "",
                note=rec.note if rec else "",
            )
        )
    out.sort(key=lambda d: (d.kind != "conflict", d.study, d.cell.level != "study", d.cell))
    return out


def reconcile(
    store: Store,
    protocol: Protocol,
    study: int | str,
    cell: Cell,
    value,
    decided_by: str,
    note: str,
) -> Value:
    """Decide the value of a cell (a new ``kind="reconciled"`` row by ``decided_by``, with the
    reason in ``note``; audited with the extractors' values as "before"). The cell must have been
    extracted; the value is validated like an extracted one."""
    _check_person(protocol, decided_by, RECONCILER_ROLES, "deciding")
    if not (note or "").strip():
        raise ExtractionError("say why (a note) when reconciling a value")
    if not isinstance(cell, Cell):
        cell = _cell_of(cell)
    f = form_field(protocol, cell)
    norm = validate_value(f, value)
    with store.write() as s:
        st = _get_study(s, study)
        state = _cell_states(s, st.id).get((st.id, cell))
        if state is None or (not state.values and state.reconciled is None):
            raise ExtractionError(
                f"nothing was extracted for {cell.describe()!r} of study {st.label!r}; "
                "extract it first"
            )
        row = Value(
            study_id=st.id,
            level=cell.level,
            field=cell.field,
            arm=cell.arm,
            outcome=cell.outcome,
            timepoint=cell.timepoint,
            value=norm,
            unit=unit_of(protocol, cell, f),
            reviewer=decided_by,
            kind="reconciled",
            note=note.strip(),
        )
        s.add(row)
        s.flush()
        Store.audit(
            s,
            decided_by,
            "extract.reconcile",
            "study",
            st.id,
            before={
                "values": {r: v.value for r, v in state.values.items()},
                "reconciled": _as_dict(state.reconciled),
            },
            after=_as_dict(row),
        )
        return row


def final_values(session: Session, protocol: Protocol) -> pd.DataFrame:
    """The agreed value per cell: the reconciled one if any, else the extractors' common value
    when as many as the protocol requires filled it. Disagreements are left out. Columns:
    ``study_id, study, design, level, field, arm, outcome, timepoint, value, unit``."""
    required = protocol.extraction.extractors_per_study
    meta = {
        sid: (lab, des)
        for sid, lab, des in session.execute(select(Study.id, Study.label, Study.design))
    }
    rows = []
    for (sid, cell), st in _cell_states(session).items():
        status = _status(st, required)
        if status == "reconciled":
            v = st.reconciled
        elif status == "agreed":
            v = next(iter(st.values.values()))
        else:
            continue
        label, design = meta[sid]
        rows.append(
            (sid, label, design, cell.level, cell.field, cell.arm, cell.outcome)
            + (cell.timepoint, v.value, v.unit)
        )
    df = pd.DataFrame(rows, columns=FINAL_COLUMNS)
    if len(df):
        df["_lvl"] = df["level"] != "study"
        df = df.sort_values(["study", "_lvl", "outcome", "arm", "timepoint", "field"]).drop(
            columns="_lvl"
        )
    return df.reset_index(drop=True).astype({"study_id": "int64"})


def _as_dict(v: Value | None) -> dict | None:
    if v is None:
        return None
    return {
        "id": v.id,
        "study_id": v.study_id,
        "level": v.level,
        "field": v.field,
        "arm": v.arm,
        "outcome": v.outcome,
        "timepoint": v.timepoint,
        "value": v.value,
        "unit": v.unit,
        "reviewer": v.reviewer,
        "kind": v.kind,
        "note": v.note,
    }
