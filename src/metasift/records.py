"""The one normalised bibliographic record that every reader produces and every later stage reads.

Core layer: no I/O, no store. Readers (``metasift.sources``) fill it; dedup and the store consume it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Author:
    family: str
    given: str = ""

    def __str__(self) -> str:
        return f"{self.family}, {self.given}" if self.given else self.family


@dataclass
class RecordData:
    """One imported citation, normalised. ``raw`` keeps the source fields verbatim
    (tag or column name -> list of string values, in file order)."""

    title: str = ""
    abstract: str = ""
    authors: list[Author] = field(default_factory=list)
    year: int | None = None
    journal: str = ""
    volume: str = ""
    issue: str = ""
    pages: str = ""
    doi: str = ""
    pmid: str = ""
    keywords: list[str] = field(default_factory=list)
    language: str = ""
    publication_type: str = ""
    source_database: str = ""
    accession_number: str = ""
    issn: str = ""
    url: str = ""
    label: str | None = None  # an inclusion label carried by the file (e.g. ASReview's `included`)
    raw: dict[str, list[str]] = field(default_factory=dict)
    line: int | None = None  # first line of the record in its file (1-based), when known

    def to_dict(self) -> dict:
        d = asdict(self)
        d["authors"] = [[a.family, a.given] for a in self.authors]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RecordData:
        d = dict(d)
        d["authors"] = [
            Author(*a) if not isinstance(a, Author) else a for a in d.get("authors") or []
        ]
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def first_author(self) -> str:
        return self.authors[0].family if self.authors else ""
