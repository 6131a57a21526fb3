"""The review store's tables (SQLAlchemy 2). The store is the one place that knows SQL.

Entities follow ARCHITECTURE.md: Source -> Record -> Reference -> Decision -> Study -> Value ->
Judgement -> Analysis -> Result, plus the append-only audit Event. Nothing here is ever deleted by
the workflow: merges are undone by moving records back, decisions are superseded by newer ones.
JSON columns hold lists and dicts (raw fields, authors, signalling answers, settings).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON, list: JSON}


class Meta(Base):
    """Key/value facts about the project (created, metasift version that created it)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")


class ProtocolVersion(Base):
    __tablename__ = "protocol_version"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    checksum: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="")


class Source(Base):
    """One database search: what was searched, when, how, and the file it gave."""

    __tablename__ = "source"
    id: Mapped[int] = mapped_column(primary_key=True)
    database: Mapped[str] = mapped_column(String(200))
    searched_on: Mapped[str] = mapped_column(String(40), default="")
    query: Mapped[str] = mapped_column(Text, default="")
    filename: Mapped[str] = mapped_column(String(500))
    stored_path: Mapped[str] = mapped_column(String(1000), default="")
    checksum: Mapped[str] = mapped_column(String(64), unique=True)
    format: Mapped[str] = mapped_column(String(40))
    encoding: Mapped[str] = mapped_column(String(40), default="")
    n_records: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(20), default="database")  # database | register | other
    problems: Mapped[list] = mapped_column(JSON, default=list)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(200), default="")

    records: Mapped[list[Record]] = relationship(back_populates="source")


class Reference(Base):
    """A deduplicated cluster of records (one bibliographic item). Shows the best field of its records."""

    __tablename__ = "reference"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(Text, default="")
    abstract: Mapped[str] = mapped_column(Text, default="")
    authors: Mapped[list] = mapped_column(JSON, default=list)
    year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    journal: Mapped[str] = mapped_column(Text, default="")
    doi: Mapped[str] = mapped_column(String(300), default="")
    pmid: Mapped[str] = mapped_column(String(20), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # False once all records moved away
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    records: Mapped[list[Record]] = relationship(back_populates="reference")


class Record(Base):
    """One imported citation, normalised, with its raw fields kept verbatim."""

    __tablename__ = "record"
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 0-based order in its file
    line: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reference_id: Mapped[int | None] = mapped_column(
        ForeignKey("reference.id"), nullable=True, index=True
    )
    title: Mapped[str] = mapped_column(Text, default="")
    abstract: Mapped[str] = mapped_column(Text, default="")
    authors: Mapped[list] = mapped_column(JSON, default=list)
    year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    journal: Mapped[str] = mapped_column(Text, default="")
    volume: Mapped[str] = mapped_column(String(100), default="")
    issue: Mapped[str] = mapped_column(String(100), default="")
    pages: Mapped[str] = mapped_column(String(100), default="")
    doi: Mapped[str] = mapped_column(String(300), default="", index=True)
    pmid: Mapped[str] = mapped_column(String(20), default="")
    keywords: Mapped[list] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(String(100), default="")
    publication_type: Mapped[str] = mapped_column(Text, default="")
    source_database: Mapped[str] = mapped_column(String(200), default="")
    accession_number: Mapped[str] = mapped_column(String(200), default="")
    issn: Mapped[str] = mapped_column(String(200), default="")
    url: Mapped[str] = mapped_column(Text, default="")
    label: Mapped[str | None] = mapped_column(String(40), nullable=True)
    raw: Mapped[dict] = mapped_column(JSON, default=dict)

    source: Mapped[Source] = relationship(back_populates="records")
    reference: Mapped[Reference | None] = relationship(back_populates="records")
    __table_args__ = (UniqueConstraint("source_id", "position"),)

    @property
    def raw_fields(self) -> dict[str, list[str]]:
        """The source fields verbatim. ``raw`` holds them as the import wrote them, where a
        field whose one value is the normalised abstract or title is the string ``"abstract"``
        or ``"title"`` (see ``metasift.workflow.importing.pack_raw``); this puts the text back."""
        raw = self.raw or {}
        title, abstract = [self.title], [self.abstract]
        return {
            k: abstract if v == "abstract" else title if v == "title" else v for k, v in raw.items()
        }

    def to_data(self):
        """The normalised citation as a :class:`metasift.records.RecordData` (no raw fields)."""
        from metasift.records import Author, RecordData

        return RecordData(
            title=self.title,
            abstract=self.abstract,
            authors=[Author(*a) for a in (self.authors or [])],
            year=self.year,
            journal=self.journal,
            volume=self.volume,
            issue=self.issue,
            pages=self.pages,
            doi=self.doi,
            pmid=self.pmid,
            keywords=list(self.keywords or []),
            language=self.language,
            publication_type=self.publication_type,
            source_database=self.source_database,
            accession_number=self.accession_number,
            issn=self.issn,
            url=self.url,
        )


class DedupLink(Base):
    """A candidate duplicate pair and what became of it: merged (auto or by a reviewer), queued, apart."""

    __tablename__ = "dedup_link"
    id: Mapped[int] = mapped_column(primary_key=True)
    run: Mapped[int] = mapped_column(Integer, index=True)
    record_a: Mapped[int] = mapped_column(ForeignKey("record.id"), index=True)
    record_b: Mapped[int] = mapped_column(ForeignKey("record.id"), index=True)
    score: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(20))  # merged | queued | apart
    decided_by: Mapped[str] = mapped_column(String(200), default="auto")
    evidence: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Decision(Base):
    """A screening decision. Append-only: the current decision of a reviewer is the newest row."""

    __tablename__ = "decision"
    id: Mapped[int] = mapped_column(primary_key=True)
    reference_id: Mapped[int] = mapped_column(ForeignKey("reference.id"), index=True)
    stage: Mapped[str] = mapped_column(String(20))  # title_abstract | full_text
    reviewer: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="screen")  # screen | resolution
    decision: Mapped[str] = mapped_column(
        String(20)
    )  # include | exclude | maybe | not_retrieved | undo
    reason: Mapped[str] = mapped_column(Text, default="")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_decision_ref_stage", "reference_id", "stage"),)


class FullTextLink(Base):
    """A PDF path or URL attached to a reference for the full-text stage (newest wins)."""

    __tablename__ = "fulltext_link"
    id: Mapped[int] = mapped_column(primary_key=True)
    reference_id: Mapped[int] = mapped_column(ForeignKey("reference.id"), index=True)
    location: Mapped[str] = mapped_column(Text)
    added_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Study(Base):
    """An included study, with one or more reports (references)."""

    __tablename__ = "study"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(200), unique=True)
    design: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reports: Mapped[list[StudyReport]] = relationship(back_populates="study")


class StudyReport(Base):
    __tablename__ = "study_report"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    reference_id: Mapped[int] = mapped_column(ForeignKey("reference.id"), index=True)
    primary: Mapped[bool] = mapped_column(Boolean, default=True)
    study: Mapped[Study] = relationship(back_populates="reports")
    __table_args__ = (UniqueConstraint("study_id", "reference_id"),)


class Value(Base):
    """One extracted value. Append-only per (study, field, arm, outcome, timepoint, reviewer)."""

    __tablename__ = "value"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    level: Mapped[str] = mapped_column(String(20), default="study")  # study | outcome
    field: Mapped[str] = mapped_column(String(200))
    arm: Mapped[str] = mapped_column(String(200), default="")
    outcome: Mapped[str] = mapped_column(String(300), default="")
    timepoint: Mapped[str] = mapped_column(String(100), default="")
    value: Mapped[str] = mapped_column(Text, default="")
    unit: Mapped[str] = mapped_column(String(100), default="")
    reviewer: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="extract")  # extract | reconciled
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Judgement(Base):
    """A risk-of-bias judgement of one domain (or 'overall') of one study, with its signalling answers,
    the algorithm's suggestion and the judge's final call (override needs a justification)."""

    __tablename__ = "judgement"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    tool: Mapped[str] = mapped_column(String(50))
    outcome: Mapped[str] = mapped_column(String(300), default="")
    domain: Mapped[str] = mapped_column(String(100))
    answers: Mapped[dict] = mapped_column(JSON, default=dict)
    suggested: Mapped[str] = mapped_column(String(50), default="")
    judgement: Mapped[str] = mapped_column(String(50), default="")
    justification: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Analysis(Base):
    __tablename__ = "analysis"
    id: Mapped[int] = mapped_column(primary_key=True)
    outcome: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(30))  # rma | narrative | descriptives | grade
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    study_ids: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    results: Mapped[list[Result]] = relationship(back_populates="analysis")


class Result(Base):
    __tablename__ = "result"
    id: Mapped[int] = mapped_column(primary_key=True)
    analysis_id: Mapped[int] = mapped_column(ForeignKey("analysis.id"), index=True)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    input_checksum: Mapped[str] = mapped_column(String(64), default="")
    metasift_version: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    analysis: Mapped[Analysis] = relationship(back_populates="results")


class Setting(Base):
    """Named JSON settings stored in the project (e.g. the screening setup, so rankings replay)."""

    __tablename__ = "setting"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    """A web-app user: owner | reviewer | resolver | viewer. The password is stored as an argon2 hash."""

    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Event(Base):
    """The append-only audit log: who did what, when, to what, with the state before and after."""

    __tablename__ = "event"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    entity: Mapped[str] = mapped_column(String(50), default="")
    entity_id: Mapped[str] = mapped_column(String(100), default="")
    before: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict | None] = mapped_column(JSON, nullable=True)
