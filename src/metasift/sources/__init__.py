"""Importers and exporters of bibliographic records.

Readers are registered by format name under the ``metasift.readers`` entry points and loaded with
:func:`metasift.plugins.load`; the format of a file is chosen by sniffing its content (each
reader's ``sniff(head, filename)`` returns a confidence), not only its name.

    from metasift import sources
    res = sources.read("embase.ris")                      # strict: the first problem raises
    res.format, len(res.records), res.problems, res.warnings
    stream = sources.iter_records("big.ris", lenient=True)  # streams; .sniffed known at once
    for rec in stream: ...                                 # .problems/.warnings fill as it goes
    sources.write(records, "ris", "out.ris", annotations=[{"decision": "include"}, None])

Formats: RIS (``ris``), PubMed MEDLINE/nbib (``medline``), PubMed XML (``pubmed_xml``), BibTeX
(``bibtex``), EndNote XML (``endnote_xml``), CSV/TSV (``csv``), XLSX (``xlsx``), Web of Science
plain text (``wos``). Shared normalisation is in :mod:`metasift.sources.normalise`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from metasift import plugins
from metasift.errors import ImportFormatError, check_param
from metasift.records import RecordData
from metasift.sources._base import HEAD_BYTES, ReadContext, Sniffed, detect_encoding
from metasift.sources.writers import annotation_of, write

__all__ = [
    "IMPORT_SUFFIXES",
    "ReadResult",
    "ReadStream",
    "Sniffed",
    "annotation_of",
    "file_checksum",
    "iter_records",
    "read",
    "sniff",
    "write",
]

_TEXT_SUFFIXES = {
    ".ris",
    ".nbib",
    ".txt",
    ".bib",
    ".csv",
    ".tsv",
    ".ciw",
    ".isi",
    ".medline",
    ".xml",
    ".enw",
}
# the file names search exports come with (text formats, plus spreadsheets)
IMPORT_SUFFIXES = (*sorted(_TEXT_SUFFIXES), ".xlsx")
_MIN_CONFIDENCE = 0.3


@lru_cache(maxsize=1)
def _readers() -> dict[str, type]:
    return {name: plugins.load("readers", name) for name in plugins.names("readers")}


def file_checksum(path) -> str:
    """SHA-256 of the file's bytes (hex), read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _open_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(HEAD_BYTES)
    except FileNotFoundError:
        raise ImportFormatError(path, reason="file not found") from None
    except IsADirectoryError:
        raise ImportFormatError(path, reason="is a directory, not a file") from None
    except OSError as e:
        raise ImportFormatError(path, reason=f"cannot read the file: {e.strerror or e}") from None


def sniff(path, *, format: str | None = None) -> Sniffed:
    """Find out a file's format, encoding, BOM, delimiter and line endings.

    Raises :class:`ImportFormatError` for an empty file, a binary file that no reader claims, a
    workbook saved under a text extension, or content that no reader recognises."""
    path = Path(path)
    head = _open_head(path)
    if not head.strip():
        raise ImportFormatError(
            path, reason="the file is empty" if not head else "the file is blank"
        )
    readers = _readers()
    if format is not None:
        check_param(format, sorted(readers), "format", "metasift.sources.sniff")
        best = format
    else:
        scores = {name: float(cls.sniff(head, path.name)) for name, cls in readers.items()}
        best = max(scores, key=lambda k: scores[k])
        if scores[best] < _MIN_CONFIDENCE:
            if b"\x00" in head[:4096]:
                raise ImportFormatError(
                    path, reason="binary file: no reader recognises its content"
                )
            raise ImportFormatError(
                path,
                line=1,
                reason="unknown format: not RIS, MEDLINE/nbib, PubMed XML, BibTeX, EndNote XML, "
                "CSV/TSV, XLSX or Web of Science plain text",
            )
        if readers[best].binary and best == "xlsx" and path.suffix.lower() in _TEXT_SUFFIXES:
            raise ImportFormatError(
                path,
                reason=f"this is an Excel workbook (XLSX, a ZIP container) saved with a "
                f"{path.suffix} extension; rename it to .xlsx or pass format='xlsx'",
                sniffed={"format": "xlsx"},
            )
    cls = readers[best]
    if best == "xlsx":
        return Sniffed(format=best, encoding=None)
    if cls.binary:  # XML: the declaration says the encoding; lxml decodes
        from metasift.sources._xml import declared_encoding

        return Sniffed(
            format=best,
            encoding=declared_encoding(head),
            bom=head.startswith(b"\xef\xbb\xbf"),
            newline=_newline(head),
        )
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportFormatError(
            path, reason="binary file (contains NUL bytes)", sniffed={"format": best}
        )
    encoding, bom, warning = detect_encoding(path, head)
    delimiter = cls.delimiter(head, path.name) if hasattr(cls, "delimiter") else None
    return Sniffed(
        format=best,
        encoding=encoding,
        bom=bom,
        delimiter=delimiter,
        newline=_newline(head),
        assumed_encoding_warning=warning,
    )


def _newline(head: bytes) -> str:
    if b"\r\n" in head:
        return "\r\n"
    if b"\r" in head:
        return "\r"
    return "\n"


class ReadStream:
    """An iterable of :class:`RecordData` that reads the file as it is iterated (bounded memory).

    ``sniffed`` is known before iterating; ``problems`` (``{line, record, field, reason}``) and
    ``warnings`` fill while iterating. Each iteration re-reads the file and starts a new list of
    problems."""

    def __init__(
        self,
        path,
        *,
        format: str | None = None,
        lenient: bool = False,
        sniffed: Sniffed | None = None,
    ):
        self.path = Path(path)
        self.lenient = bool(lenient)
        # ``sniffed``: what an earlier sniff(path) found, so as not to sniff the file twice
        self.sniffed = sniffed if sniffed is not None else sniff(self.path, format=format)
        self.problems: list[dict] = []
        self.warnings: list[str] = []
        self.count = 0
        self._warn()

    def _warn(self):
        self.warnings = (
            [self.sniffed.assumed_encoding_warning] if self.sniffed.assumed_encoding_warning else []
        )

    def __iter__(self) -> Iterator[RecordData]:
        ctx = ReadContext(self.path, self.sniffed, lenient=self.lenient)
        self._warn()
        self.problems = ctx.problems
        ctx.warnings = self.warnings
        self.count = 0
        reader = plugins.load("readers", self.sniffed.format)()
        try:
            for rec in reader.read(ctx):
                self.count += 1
                yield rec
        except ImportFormatError as e:
            if not self.lenient or self.count == 0:
                raise
            # lenient: a fatal error after some records ends the file; the problem is recorded
            if e.as_problem() not in self.problems:
                self.problems.append(e.as_problem())
        except (UnicodeError, ValueError, IndexError, KeyError, RecursionError, OverflowError) as e:
            # a reader bug must not escape as a bare exception: say where we were
            raise ImportFormatError(
                self.path,
                record=self.count + 1,
                reason=f"unreadable content ({type(e).__name__}: {e})",
                sniffed=self.sniffed.to_dict(),
            ) from e


def iter_records(
    path, *, format: str | None = None, lenient: bool = False, sniffed: Sniffed | None = None
) -> ReadStream:
    """Stream the records of one export file (see :class:`ReadStream`); ``sniffed`` (the result
    of :func:`sniff` on the same file) saves sniffing it again."""
    return ReadStream(path, format=format, lenient=lenient, sniffed=sniffed)


@dataclass(frozen=True)
class ReadResult:
    """All records of one file, what was sniffed, the problems (lenient) and the checksum."""

    path: str
    format: str
    sniffed: Sniffed
    records: list[RecordData] = field(repr=False)
    problems: list[dict]
    warnings: list[str]
    checksum: str

    def summary(self) -> str:
        lines = [
            f"{self.path}: {len(self.records)} record(s), format {self.format}",
            f"  sniffed: {self.sniffed.summary()}",
            f"  sha256: {self.checksum}",
        ]
        lines += [f"  warning: {w}" for w in self.warnings]
        for p in self.problems:
            lines.append(
                f"  problem: line {p['line']}, record {p['record']}, field {p['field']}: {p['reason']}"
            )
        return "\n".join(lines)

    def to_frame(self):
        """One row per record (authors and keywords joined with ``; ``), a pandas DataFrame."""
        import pandas as pd

        rows = []
        for r in self.records:
            d = r.to_dict()
            d["authors"] = "; ".join(str(a) for a in r.authors)
            d["keywords"] = "; ".join(r.keywords)
            d.pop("raw")
            rows.append(d)
        return pd.DataFrame(rows)


def read(path, *, format: str | None = None, lenient: bool = False) -> ReadResult:
    """Read a whole file into memory (use :func:`iter_records` for very large files)."""
    stream = iter_records(path, format=format, lenient=lenient)
    records = list(stream)
    return ReadResult(
        path=str(path),
        format=stream.sniffed.format,
        sniffed=stream.sniffed,
        records=records,
        problems=list(stream.problems),
        warnings=list(stream.warnings),
        checksum=file_checksum(path),
    )
