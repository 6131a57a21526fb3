"""The Review object: open or create a project folder, run a stage, read counts.

Every change goes through a Review method, and every change writes an audit Event (who, when,
what, before/after). The CLI and the web app are thin shells over this class.
"""

from __future__ import annotations

import getpass
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from metasift import __version__
from metasift.errors import ProjectError
from metasift.protocol import TEMPLATE, Protocol, checksum, load_protocol
from metasift.store import Store
from metasift.store.models import Meta, ProtocolVersion, Record, Reference, Source

PROTOCOL_FILE = "protocol.yaml"


def default_actor() -> str:
    return os.environ.get("METASIFT_USER") or getpass.getuser() or "unknown"


@dataclass(frozen=True)
class Status:
    """Counts by stage and by source, read from the store."""

    project: str
    store: str
    protocol_version: int | None
    sources: list[dict] = field(default_factory=list)
    records: int = 0
    references: int = 0
    duplicates_removed: int = 0
    stages: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "project": self.project,
            "store": self.store,
            "protocol_version": self.protocol_version,
            "sources": self.sources,
            "records": self.records,
            "references": self.references,
            "duplicates_removed": self.duplicates_removed,
            "stages": self.stages,
        }


class Review:
    """One systematic review project (a folder + a store)."""

    def __init__(self, path: Path, store: Store, protocol: Protocol):
        self.path = Path(path)
        self.store = store
        self.protocol = protocol

    # -- open / create -----------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        db: str | None = None,
        protocol_text: str | None = None,
        actor: str | None = None,
    ) -> Review:
        path = Path(path)
        if (path / PROTOCOL_FILE).exists():
            raise ProjectError(f"{path}: already a metasift project ({PROTOCOL_FILE} exists)")
        path.mkdir(parents=True, exist_ok=True)
        (path / "searches").mkdir(exist_ok=True)
        text = protocol_text if protocol_text is not None else TEMPLATE
        from metasift.protocol import parse_protocol

        parse_protocol(text, path / PROTOCOL_FILE)  # refuse to create a project with a bad protocol
        (path / PROTOCOL_FILE).write_text(text, encoding="utf-8")
        store = Store.for_project(path, db)
        store.upgrade()
        actor = actor or default_actor()
        with store.write() as s:
            if s.get(Meta, "created") is None:
                s.add(Meta(key="created", value=__version__))
                store.audit(s, actor, "project.create", "project", str(path.name))
        review = cls(path, store, load_protocol(path / PROTOCOL_FILE))
        review.sync_protocol(actor)
        return review

    @classmethod
    def open(cls, path: str | Path, *, db: str | None = None, actor: str | None = None) -> Review:
        path = Path(path)
        if not (path / PROTOCOL_FILE).is_file():
            raise ProjectError(
                f"{path}: not a metasift project (no {PROTOCOL_FILE}); create one with "
                f"`metasift init {path}`"
            )
        protocol = load_protocol(path / PROTOCOL_FILE)
        store = Store.for_project(path, db)
        store.upgrade()
        review = cls(path, store, protocol)
        review.sync_protocol(actor or default_actor())
        return review

    def close(self) -> None:
        self.store.dispose()

    def __enter__(self) -> Review:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- protocol ------------------------------------------------------------------------------
    def sync_protocol(self, actor: str | None = None) -> int:
        """Store protocol.yaml as a new version when it changed; return the current version."""
        text = (self.path / PROTOCOL_FILE).read_text(encoding="utf-8-sig")
        digest = checksum(text)
        with self.store.write() as s:
            last = s.scalars(
                select(ProtocolVersion).order_by(ProtocolVersion.version.desc())
            ).first()
            if last is not None and last.checksum == digest:
                return last.version
            version = (last.version + 1) if last else 1
            s.add(
                ProtocolVersion(
                    version=version,
                    checksum=digest,
                    text=text,
                    created_by=actor or default_actor(),
                )
            )
            self.store.audit(
                s,
                actor or default_actor(),
                "protocol.version",
                "protocol",
                version,
                before={"version": last.version, "checksum": last.checksum} if last else None,
                after={"version": version, "checksum": digest},
            )
            return version

    def protocol_version(self) -> int | None:
        with self.store.read() as s:
            return s.scalar(select(func.max(ProtocolVersion.version)))

    # -- import --------------------------------------------------------------------------------
    def import_file(
        self,
        path,
        *,
        database: str,
        searched: str = "",
        query: str = "",
        lenient: bool = False,
        format: str | None = None,
        kind: str = "database",
        actor: str | None = None,
        progress=None,
    ):
        from metasift.workflow.importing import import_file

        return import_file(
            self.store,
            self.path,
            path,
            database=database,
            searched=searched,
            query=query,
            lenient=lenient,
            format=format,
            kind=kind,
            actor=actor or default_actor(),
            progress=progress,
        )

    def sources(self) -> list[Source]:
        with self.store.read() as s:
            return list(s.scalars(select(Source).order_by(Source.id)))

    # -- counts --------------------------------------------------------------------------------
    def status(self) -> Status:
        with self.store.read() as s:
            per_source = s.execute(
                select(
                    Source.id,
                    Source.database,
                    Source.filename,
                    Source.searched_on,
                    Source.n_records,
                ).order_by(Source.id)
            ).all()
            n_records = s.scalar(select(func.count(Record.id))) or 0
            n_refs = (
                s.scalar(
                    select(func.count(func.distinct(Record.reference_id))).where(
                        Record.reference_id.is_not(None)
                    )
                )
                or 0
            )
            stages = {
                stage: self._stage_counts(s, stage) for stage in ("title_abstract", "full_text")
            }
        return Status(
            project=str(self.path),
            store=self.store.safe_url,
            protocol_version=self.protocol_version(),
            sources=[
                {"id": i, "database": d, "file": f, "searched": w, "records": n}
                for i, d, f, w, n in per_source
            ],
            records=n_records,
            references=n_refs,
            duplicates_removed=n_records - n_refs,
            stages=stages,
        )

    def _stage_counts(self, s, stage: str) -> dict:
        from metasift.screening.decisions import eligible_references, stage_states

        states = stage_states(s, self.protocol, stage)
        eligible = eligible_references(s, self.protocol, stage)
        counts = Counter(st.status for st in states.values())
        return {
            "eligible": len(eligible),
            "screened": sum(1 for r in eligible if r in states and states[r].status != "pending"),
            "included": counts["included"],
            "excluded": counts["excluded"],
            "conflicts": counts["conflict"],
            "not_retrieved": counts["not_retrieved"],
            "pending": len(eligible)
            - sum(1 for r in eligible if r in states and states[r].status != "pending"),
        }

    # -- dedup ---------------------------------------------------------------------------------
    def dedup(
        self,
        *,
        actor: str | None = None,
        auto_threshold: float | None = None,
        review_threshold: float | None = None,
    ):
        from metasift.workflow import dedup_stage

        return dedup_stage.run(
            self.store,
            actor=actor or default_actor(),
            auto_threshold=auto_threshold,
            review_threshold=review_threshold,
        )

    def dedup_queue(self):
        from metasift.workflow import dedup_stage

        return dedup_stage.queue(self.store)

    def dedup_decide(
        self, link_id: int, decision: str, reviewer: str | None = None, note: str = ""
    ):
        from metasift.workflow import dedup_stage

        return dedup_stage.decide_pair(
            self.store, link_id, decision, reviewer or default_actor(), note
        )

    def dedup_undo(self, reference_id: int, actor: str | None = None):
        from metasift.workflow import dedup_stage

        return dedup_stage.undo(self.store, reference_id, actor or default_actor())

    # -- screening -----------------------------------------------------------------------------
    def decide(
        self,
        reference_id: int,
        stage: str,
        reviewer: str,
        decision: str,
        *,
        reason: str = "",
        note: str = "",
        lock_wait: float | None = None,
    ):
        from metasift.screening.decisions import decide

        return decide(
            self.store,
            self.protocol,
            reference_id,
            stage,
            reviewer,
            decision,
            reason=reason,
            note=note,
            lock_wait=lock_wait,
        )

    def undo(self, stage: str, reviewer: str):
        from metasift.screening.decisions import undo_last

        return undo_last(self.store, self.protocol, stage, reviewer)

    def resolve(
        self,
        reference_id: int,
        stage: str,
        resolver: str,
        decision: str,
        *,
        reason: str = "",
        note: str = "",
    ):
        from metasift.screening.decisions import resolve

        return resolve(
            self.store,
            self.protocol,
            reference_id,
            stage,
            resolver,
            decision,
            reason=reason,
            note=note,
        )

    def stage_states(self, stage: str):
        from metasift.screening.decisions import stage_states

        with self.store.read() as s:
            return stage_states(s, self.protocol, stage)

    def conflicts(self, stage: str):
        return [st for st in self.stage_states(stage).values() if st.status == "conflict"]

    def visible_decisions(self, reference_id: int, stage: str, requester: str):
        from metasift.screening.decisions import visible_decisions

        with self.store.read() as s:
            return visible_decisions(s, self.protocol, reference_id, stage, requester)

    def audit_log(self, limit: int | None = None, action: str | None = None):
        return self.store.events(limit=limit, action=action)

    def references(self) -> list[Reference]:
        with self.store.read() as s:
            return list(s.scalars(select(Reference).where(Reference.active).order_by(Reference.id)))
