"""Export references (deduplicated) or records (as imported) with their current screening state.

Each exported item carries an annotation: ``decision``/``stage``/``reason`` of the furthest stage it
reached, ``labels`` (``<stage>:<status>`` per stage and ``<stage>:<reviewer>:<decision>`` per
reviewer) and ``notes`` (the reviewers' notes); the writers put it where Zotero and EndNote keep it
(RIS N1/KW), as CSV columns, or as BibTeX note/keywords, and our readers read it back.
"""

from __future__ import annotations

from sqlalchemy import select

from metasift import sources
from metasift.errors import check_param
from metasift.protocol import STAGES
from metasift.records import Author, RecordData
from metasift.store.models import Record, Reference


def _annotations(review) -> dict[int, dict]:
    states = {stage: review.stage_states(stage) for stage in STAGES}
    out: dict[int, dict] = {}
    for stage in STAGES:
        for ref, st in states[stage].items():
            ann = out.setdefault(ref, {"labels": [], "notes": []})
            ann["decision"], ann["stage"], ann["reason"] = st.status, stage, st.reason
            ann["labels"].append(f"{stage}:{st.status}")
            for reviewer, d in sorted(st.decisions.items()):
                ann["labels"].append(f"{stage}:{reviewer}:{d.decision}")
                if d.note:
                    ann["notes"].append(f"{reviewer} ({stage}): {d.note}")
            if st.resolution is not None and st.resolution.note:
                ann["notes"].append(
                    f"{st.resolution.reviewer} (resolution, {stage}): {st.resolution.note}"
                )
    for ann in out.values():
        ann["notes"] = " | ".join(ann["notes"])
    return out


def export(review, fmt: str, fp_or_path, *, what: str = "references") -> int:
    check_param(fmt, ("ris", "csv", "bibtex"), "format", "export")
    check_param(what, ("references", "records"), "what", "export")
    anns = _annotations(review)
    items: list[RecordData] = []
    annotations: list[dict | None] = []
    with review.store.read() as s:
        if what == "references":
            for ref in s.scalars(select(Reference).where(Reference.active).order_by(Reference.id)):
                first = s.scalars(
                    select(Record).where(Record.reference_id == ref.id).order_by(Record.id)
                ).first()
                items.append(
                    RecordData(
                        title=ref.title,
                        abstract=ref.abstract,
                        authors=[Author(*a) for a in ref.authors or []],
                        year=ref.year,
                        journal=ref.journal,
                        doi=ref.doi,
                        pmid=ref.pmid,
                        volume=first.volume if first else "",
                        issue=first.issue if first else "",
                        pages=first.pages if first else "",
                        keywords=list(first.keywords or []) if first else [],
                        issn=first.issn if first else "",
                        accession_number=f"metasift:{ref.id}",
                    )
                )
                annotations.append(anns.get(ref.id))
        else:
            for r in s.scalars(select(Record).order_by(Record.id)):
                items.append(r.to_data())
                annotations.append(anns.get(r.reference_id))
    sources.write(items, fmt, fp_or_path, annotations=annotations)
    return len(items)
