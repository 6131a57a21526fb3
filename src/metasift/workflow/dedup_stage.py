"""The dedup stage on a project: run the dedup library over the store's records, move records into
references, queue uncertain pairs for a reviewer, and undo merges. Nothing is deleted.

* Records are never removed: a merge moves a record to another Reference; a Reference whose records
  all moved away is marked inactive (kept, so undo can bring it back).
* Re-running after a new import: records seen by an earlier run stay in their groups (passed to
  :func:`metasift.dedup.dedup` as ``fixed_groups``); new records may join them, and reviewer decisions
  (``keep_apart`` / ``force_merge``) are always honoured. Decisions already made on references are
  never touched, because fixed groups are never split or merged together.
* Every merge writes an audit event holding each moved record's previous reference, which is what
  :func:`undo` restores exactly (and it records a reviewer's keep-apart so the next run does not merge
  them again).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select, update

from metasift.errors import MetasiftError, check_param
from metasift.store import Store
from metasift.store.models import DedupLink, Event, Record, Reference, Setting

SETTING_KEY = "dedup"


@dataclass(frozen=True)
class DedupRunReport:
    run: int
    records: int
    references_before: int
    references_after: int
    merged_records: int
    queued: int
    new_records: int
    summary: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def best_fields(records: list[Record]) -> dict:
    """The fields a reference shows: the most complete value across its records."""

    def most_common(values):
        vals = [v for v in values if v]
        return Counter(vals).most_common(1)[0][0] if vals else ""

    by_completeness = sorted(
        records,
        key=lambda r: (-(bool(r.title) + bool(r.abstract) + bool(r.doi) + bool(r.authors)), r.id),
    )
    best = by_completeness[0]
    years = [r.year for r in records if r.year]
    return {
        "title": best.title or most_common(r.title for r in records),
        "abstract": max((r.abstract or "" for r in records), key=len),
        "authors": max((r.authors or [] for r in records), key=len),
        "year": Counter(years).most_common(1)[0][0] if years else None,
        "journal": best.journal or most_common(r.journal for r in records),
        "doi": most_common(r.doi for r in records),
        "pmid": most_common(r.pmid for r in records),
    }


def _refresh_reference(s, ref_id: int) -> None:
    recs = list(s.scalars(select(Record).where(Record.reference_id == ref_id).order_by(Record.id)))
    ref = s.get(Reference, ref_id)
    if not recs:
        ref.active = False
        return
    ref.active = True
    for k, v in best_fields(recs).items():
        setattr(ref, k, v)


def _reviewer_pairs(s) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Reviewer decisions on record pairs (newest per pair wins): keep apart / merge."""
    rows = s.execute(
        select(DedupLink.record_a, DedupLink.record_b, DedupLink.outcome)
        .where(DedupLink.decided_by != "auto", DedupLink.outcome.in_(("merged", "apart")))
        .order_by(DedupLink.id)
    ).all()
    latest = {}
    for a, b, outcome in rows:
        latest[(min(a, b), max(a, b))] = outcome
    apart = [p for p, o in latest.items() if o == "apart"]
    merge = [p for p, o in latest.items() if o == "merged"]
    return apart, merge


def run(
    store: Store,
    *,
    actor: str,
    auto_threshold: float | None = None,
    review_threshold: float | None = None,
    progress=None,
) -> DedupRunReport:
    """Deduplicate the project's records (one write transaction)."""
    from metasift import dedup as lib

    kwargs = {}
    if auto_threshold is not None:
        kwargs["auto_threshold"] = auto_threshold
    if review_threshold is not None:
        kwargs["review_threshold"] = review_threshold
    with store.write() as s:
        setting = s.get(Setting, SETTING_KEY)
        state = dict(setting.value) if setting else {"runs": 0, "seen_max_record_id": 0}
        recs = list(s.scalars(select(Record).order_by(Record.id)))
        if not recs:
            raise MetasiftError("no records to deduplicate: import search exports first")
        index = {r.id: i for i, r in enumerate(recs)}
        seen_max = state.get("seen_max_record_id", 0)
        groups_before: dict[int, list[int]] = defaultdict(list)
        for r in recs:
            groups_before[r.reference_id].append(r.id)
        fixed = [
            [index[x] for x in ids]
            for ids in groups_before.values()
            if any(x <= seen_max for x in ids)
        ]
        apart, merge = _reviewer_pairs(s)
        result = lib.dedup(
            [r.to_data() for r in recs],
            fixed_groups=fixed,
            keep_apart=[(index[a], index[b]) for a, b in apart if a in index and b in index],
            force_merge=[(index[a], index[b]) for a, b in merge if a in index and b in index],
            **kwargs,
        )
        run_no = state.get("runs", 0) + 1
        moved = 0
        touched: set[int] = set()
        for group in result.groups:
            ids = [recs[i].id for i in group]
            refs = {recs[i].reference_id for i in group}
            if len(refs) == 1:
                continue
            # target: the reference of a group an earlier run fixed, else the oldest reference
            fixed_refs = sorted(recs[i].reference_id for i in group if recs[i].id <= seen_max)
            target = fixed_refs[0] if fixed_refs else min(refs)
            before = {
                str(recs[i].id): recs[i].reference_id
                for i in group
                if recs[i].reference_id != target
            }
            for i in group:
                if recs[i].reference_id != target:
                    touched.add(recs[i].reference_id)
                    recs[i].reference_id = target
                    moved += 1
            touched.add(target)
            Store.audit(
                s,
                actor,
                "dedup.merge",
                "reference",
                target,
                before={"records": before},
                after={"reference": target, "records": ids, "run": run_no},
            )
        s.flush()
        for ref_id in touched:
            _refresh_reference(s, ref_id)
        link_rows = [
            {
                "run": run_no,
                "record_a": recs[lk.a].id,
                "record_b": recs[lk.b].id,
                "score": float(lk.score),
                "outcome": lk.outcome,
                "decided_by": "auto",
                "evidence": _jsonable(lk.evidence),
            }
            for lk in result.links
            if lk.outcome in ("merged", "queued")
        ]
        if link_rows:
            s.execute(DedupLink.__table__.insert(), link_rows)
        state = {
            "runs": run_no,
            "seen_max_record_id": recs[-1].id,
            "settings": _jsonable(result.settings),
        }
        if setting:
            setting.value = state
        else:
            s.add(Setting(key=SETTING_KEY, value=state))
        n_refs_after = len(result.groups)
        rep = DedupRunReport(
            run=run_no,
            records=len(recs),
            references_before=len(groups_before),
            references_after=n_refs_after,
            merged_records=moved,
            queued=len(result.queued),
            new_records=sum(1 for r in recs if r.id > seen_max),
            summary=result.summary(),
        )
        Store.audit(
            s,
            actor,
            "dedup.run",
            "dedup",
            run_no,
            after=rep.to_dict() | {"settings": state["settings"]},
        )
        return rep


def _jsonable(obj):
    from metasift.store.db import _jsonable as j

    return j(obj)


@dataclass(frozen=True)
class QueuedPair:
    link_id: int
    score: float
    a: Record
    b: Record
    evidence: dict


def queue(store: Store) -> list[QueuedPair]:
    """Uncertain pairs of the newest run that no reviewer has decided and that are still apart."""
    with store.read() as s:
        runs = s.scalar(select(func.max(DedupLink.run)))
        if runs is None:
            return []
        decided = {
            (min(a, b), max(a, b))
            for a, b in s.execute(
                select(DedupLink.record_a, DedupLink.record_b).where(DedupLink.decided_by != "auto")
            )
        }
        rows = list(
            s.scalars(
                select(DedupLink)
                .where(
                    DedupLink.run == runs,
                    DedupLink.outcome == "queued",
                    DedupLink.decided_by == "auto",
                )
                .order_by(DedupLink.score.desc(), DedupLink.id)
            )
        )
        out = []
        for lk in rows:
            a, b = s.get(Record, lk.record_a), s.get(Record, lk.record_b)
            if (min(a.id, b.id), max(a.id, b.id)) in decided or a.reference_id == b.reference_id:
                continue
            out.append(QueuedPair(lk.id, lk.score, a, b, lk.evidence))
        return out


def decide_pair(store: Store, link_id: int, decision: str, reviewer: str, note: str = "") -> None:
    """A reviewer's call on a queued pair: ``merge`` or ``apart`` (audited, reversible)."""
    check_param(decision, ("merge", "apart"), "decision", "decide_pair")
    with store.write() as s:
        lk = s.get(DedupLink, link_id)
        if lk is None:
            raise MetasiftError(f"no candidate pair #{link_id}")
        a, b = s.get(Record, lk.record_a), s.get(Record, lk.record_b)
        s.add(
            DedupLink(
                run=lk.run,
                record_a=a.id,
                record_b=b.id,
                score=lk.score,
                outcome="merged" if decision == "merge" else "apart",
                decided_by=reviewer,
                evidence={"note": note, "queued_link": link_id},
            )
        )
        if decision == "apart" or a.reference_id == b.reference_id:
            Store.audit(
                s,
                reviewer,
                f"dedup.{decision}",
                "record_pair",
                f"{a.id}-{b.id}",
                after={"note": note},
            )
            return
        target, source = sorted((a.reference_id, b.reference_id))
        moving = list(s.scalars(select(Record).where(Record.reference_id == source)))
        before = {str(r.id): r.reference_id for r in moving}
        for r in moving:
            r.reference_id = target
        s.flush()
        _refresh_reference(s, target)
        _refresh_reference(s, source)
        Store.audit(
            s,
            reviewer,
            "dedup.merge",
            "reference",
            target,
            before={"records": before},
            after={"reference": target, "note": note, "records": sorted([r.id for r in moving])},
        )


def undo(store: Store, reference_id: int, actor: str) -> list[int]:
    """Undo the merges into ``reference_id``: every record moved there goes back to the reference it
    had before, those references are restored, and reviewer keep-apart rows stop a re-merge."""
    with store.write() as s:
        ref = s.get(Reference, reference_id)
        if ref is None:
            raise MetasiftError(f"no reference #{reference_id}")
        merges = list(
            s.scalars(
                select(Event)
                .where(Event.action == "dedup.merge", Event.entity_id == str(reference_id))
                .order_by(Event.id.desc())
            )
        )
        moved: dict[int, int] = {}
        for ev in merges:
            for rid, prev in (ev.before or {}).get("records", {}).items():
                moved.setdefault(int(rid), int(prev))
        current = set(s.scalars(select(Record.id).where(Record.reference_id == reference_id)))
        moved = {rid: prev for rid, prev in moved.items() if rid in current}
        if not moved:
            raise MetasiftError(f"reference #{reference_id} holds no merged records to undo")
        stay = sorted(current - set(moved))
        for rid, prev in moved.items():
            s.execute(update(Record).where(Record.id == rid).values(reference_id=prev))
        s.flush()
        for ref_id in {reference_id, *moved.values()}:
            _refresh_reference(s, ref_id)
        for rid in moved:
            for other in stay:
                s.add(
                    DedupLink(
                        run=0,
                        record_a=min(rid, other),
                        record_b=max(rid, other),
                        score=0.0,
                        outcome="apart",
                        decided_by=actor,
                        evidence={"undo_of": reference_id},
                    )
                )
        Store.audit(
            s,
            actor,
            "dedup.undo",
            "reference",
            reference_id,
            before={"records": sorted(current)},
            after={"records": {str(k): v for k, v in moved.items()}},
        )
        return sorted(moved)
