"""CSV / TSV and XLSX readers with the column names of Scopus, Embase, Cochrane CENTRAL, Zotero,
PubMed (legacy and current CSV), ASReview and metasift's own export.

The delimiter is sniffed from the header line (``,`` ``;`` TAB ``|``, counted outside quotes);
rows are streamed with the ``csv`` module (quoted newlines handled) or openpyxl's read-only mode.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from metasift.records import RecordData
from metasift.sources import normalise as nz
from metasift.sources._base import ReadContext, Reader, head_text

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # Scopus "References" cells are huge

DELIMITERS = (",", ";", "\t", "|")
_HEADER_SEARCH_ROWS = 30

# canonical field -> column names (lower case) in order of preference
COLUMNS: dict[str, tuple[str, ...]] = {
    "title": ("title", "article title", "document title", "primary_title", "ti", "primary title"),
    "abstract": ("abstract", "abstract note", "notes_abstract", "ab"),
    "authors": (
        "author full names",
        "authors",
        "author",
        "author names",
        "author(s)",
        "af",
        "au",
        "first_authors",
    ),
    "year": ("year", "publication year", "publication_year", "py", "year_published", "date"),
    "journal": (
        "source title",
        "publication title",
        "journal",
        "journal/book",
        "secondary_title",
        "journal title",
        "so",
        "source",
    ),
    "volume": ("volume", "vl"),
    "issue": ("issue", "number", "is"),
    "pages": ("pages", "page", "pg"),
    "doi": ("doi", "do", "di"),
    "pmid": ("pubmed id", "pmid", "pubmed_id", "entrezuid", "pm"),
    "language": ("language of original document", "language", "la"),
    "publication_type": (
        "document type",
        "publication type",
        "item type",
        "type_of_reference",
        "dt",
        "publication_type",
    ),
    "source_database": ("database name", "database", "archive", "source_database"),
    "accession_number": ("accession number", "eid", "central id", "key", "accession_number", "ut"),
    "issn": ("issn", "sn"),
    "url": ("link", "url", "open url link"),
    "label": ("label_included", "included", "final_included", "label", "inclusion", "decision"),
}
KEYWORD_COLUMNS = (
    "author keywords",
    "index keywords",
    "keywords",
    "manual tags",
    "automatic tags",
    "emtree medical index terms",
    "emtree drug index terms",
    "mesh terms",
    "de",  # Web of Science tab-delimited: author keywords
)
_EMBASE_SOURCE = re.compile(r"^(.*?)\s*\((\d{4})\)\s*([^:\s(]*)(?::([^\s(]*))?\s*(?:\(([^)]*)\))?")
_AUTHOR_ID = re.compile(r"\s*\(\d+\)\s*$")
_INCLUDE = {"1", "1.0", "true", "yes", "y", "include", "included"}
_EXCLUDE = {"0", "0.0", "false", "no", "n", "exclude", "excluded"}
_KNOWN = {c for cols in COLUMNS.values() for c in cols} | set(KEYWORD_COLUMNS)


def sniff_delimiter(line: str) -> str:
    """The delimiter of a header line: the most frequent of , ; TAB | outside quotes."""
    counts = dict.fromkeys(DELIMITERS, 0)
    inq = False
    for c in line:
        if c == '"':
            inq = not inq
        elif not inq and c in counts:
            counts[c] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


class Layout:
    """Which column holds which field, worked out once from the header."""

    def __init__(self, header: list[str]):
        low = [(h or "").strip().lstrip("\ufeff").strip().lower() for h in header]
        self.header = [(h or "").strip().lstrip("\ufeff") for h in header]
        self.index: dict[str, int] = {}
        pos = {name: i for i, name in reversed(list(enumerate(low))) if name}
        scopus = "source title" in pos
        pubmed_legacy = "entrezuid" in pos and "description" in pos
        for fld, names in COLUMNS.items():
            for name in names:
                if name == "source" and scopus:  # Scopus: "Source" is "Scopus", not the journal
                    continue
                if name in pos:
                    self.index[fld] = pos[name]
                    break
        if scopus and "source" in pos:
            self.index["source_database"] = pos["source"]
        if pubmed_legacy:
            self.index["authors"] = pos["description"]
            self.index["pubmed_details"] = pos["details"] if "details" in pos else -1
            self.index["pubmed_short"] = pos.get("shortdetails", -1)
            self.index.pop("journal", None)
        self.embase_source = "source" in pos and "author names" in pos
        self.page_start = pos.get("page start", pos.get("start_page", pos.get("bp")))
        self.page_end = pos.get("page end", pos.get("end_page", pos.get("ep")))
        self.art_no = pos.get("art. no.")
        self.keywords = [pos[k] for k in KEYWORD_COLUMNS if k in pos]

    def record(self, row: list, line: int | None) -> RecordData:
        n = len(row)

        def get(fld: str) -> str:
            i = self.index.get(fld)
            if i is None or i < 0 or i >= n:
                return ""
            v = row[i]
            return "" if v is None else str(v).strip()

        authors_cell = get("authors")
        names = [_AUTHOR_ID.sub("", a) for a in nz.split_authors(authors_cell)]
        title = get("title")
        journal = get("journal")
        year_cell: object = get("year")
        i = self.index.get("year")
        if i is not None and i < n and not isinstance(row[i], str) and row[i] is not None:
            year_cell = row[i]  # a number or date from a spreadsheet
        volume, issue = get("volume"), get("issue")
        pages = get("pages")
        if not pages and self.page_start is not None:
            ps = _cell(row, self.page_start)
            pages = nz.pages(ps, _cell(row, self.page_end))
        if not pages and self.art_no is not None:
            pages = _cell(row, self.art_no)
        doi = nz.doi(get("doi"))
        if not doi:
            url = get("url")
            if "doi" in url.lower():  # Embase's "Open URL Link" carries the DOI
                doi = nz.doi(url)
        if self.embase_source and journal:
            m = _EMBASE_SOURCE.match(journal)
            if m:
                journal = m.group(1)
                year_cell = year_cell or m.group(2)
                volume = volume or m.group(3) or ""
                issue = issue or m.group(4) or ""
                pages = pages or (m.group(5) or "")
        if "pubmed_details" in self.index:
            details = get("pubmed_details")
            short = get("pubmed_short")
            if not doi and "doi:" in details:
                doi = nz.doi(details[details.index("doi:") :])
            if short:
                y = nz.year(short)
                year_cell = year_cell or (str(y) if y else "")
                journal = re.sub(r"\s+\d{4}\s*$", "", short).strip()
        kws: list[str] = []
        for k in self.keywords:
            cell = _cell(row, k)
            if cell:
                kws.extend(_split_keywords(cell))
        label = get("label")
        low = label.lower()
        label = "include" if low in _INCLUDE else "exclude" if low in _EXCLUDE else (label or None)
        pmid_cell = get("pmid")
        raw = {
            h: [str(row[i]) if row[i] is not None else ""]
            for i, h in enumerate(self.header)
            if i < n and h
        }
        return RecordData(
            title=nz.text(title),
            abstract=nz.text(get("abstract")),
            authors=nz.authors(names),
            year=nz.year(year_cell) if year_cell not in ("", None) else None,
            journal=nz.journal(journal),
            volume=volume,
            issue=issue,
            pages=nz.pages(pages),
            doi=doi,
            pmid=nz.pmid(pmid_cell),
            keywords=kws,
            language=get("language"),
            publication_type=get("publication_type"),
            source_database=get("source_database"),
            accession_number=get("accession_number"),
            issn=nz.issn(get("issn")),
            url=get("url"),
            label=label,
            raw=raw,
            line=line,
        )

    def year_column(self) -> str:
        i = self.index.get("year")
        return self.header[i] if i is not None else "year"

    def title_column(self) -> str:
        i = self.index.get("title")
        return self.header[i] if i is not None else "title"


def _cell(row, i) -> str:
    if i is None or i >= len(row) or row[i] is None:
        return ""
    return str(row[i]).strip()


def _split_keywords(cell: str) -> list[str]:
    if cell.startswith("[") and cell.endswith("]"):
        return nz.split_authors(cell)  # a Python list written as text (ASReview)
    sep = ";" if ";" in cell else ","
    return [k.strip() for k in cell.split(sep) if k.strip()]


def _rows_to_records(ctx: ReadContext, rows: Iterator[tuple[int, list]]) -> Iterator[RecordData]:
    """The header is the first row with a title column among the first rows (Embase's XLSX puts
    the search query above it); every later non-empty row is one record."""
    layout = None
    first_header = None
    n = 0
    width = 0
    for line, row in rows:
        if not any((c is not None and str(c).strip()) for c in row):
            continue
        if layout is None:
            cand = Layout(row)
            if first_header is None:
                first_header = (line, cand.header)
            if "title" in cand.index:
                layout, width = cand, len(row)
            elif line - first_header[0] >= _HEADER_SEARCH_ROWS:
                break
            continue
        n += 1
        extra = [c for c in row[width:] if c is not None and str(c).strip()]
        if extra:
            ctx.problem(line, n, None, f"row has {len(row)} cells but the header has {width}")
        r = layout.record(row, line)
        if not r.title or r.year is None:
            ctx.check_record(r, n, layout.title_column(), layout.year_column())
        yield r
    if layout is None:
        if first_header is None:
            raise ctx.fail(None, None, None, "no header row")
        cols = ", ".join(repr(h) for h in first_header[1][:12])
        raise ctx.fail(
            first_header[0], None, None, f"no title column in the header (columns: {cols})"
        )


class DelimitedReader(Reader):
    format = "csv"
    extensions = (".csv", ".tsv", ".tab")

    @classmethod
    def sniff(cls, head: bytes, filename: str | None = None) -> float:
        text = head_text(head)
        first = text.split("\n", 1)[0].strip("\r")
        if not first:
            return 0.0
        d = sniff_delimiter(first)
        cells = [c.strip().strip('"').strip().lower() for c in first.split(d)]
        known = sum(1 for c in cells if c in _KNOWN)
        score = 0.0
        if len(cells) >= 2 and known >= 2 and ("title" in cells or known >= 3):
            score = 0.75
        elif len(cells) >= 2 and cls.ext_bonus(filename):
            score = 0.4
        return score + cls.ext_bonus(filename) if score else 0.0

    @staticmethod
    def delimiter(head: bytes, filename: str | None = None) -> str:
        if filename and Path(str(filename)).suffix.lower() in (".tsv", ".tab"):
            return "\t"
        text = head_text(head)
        return sniff_delimiter(text.split("\n", 1)[0])

    def read(self, ctx: ReadContext) -> Iterator[RecordData]:
        def rows():
            enc = ctx.sniffed.encoding or "utf-8"
            if enc == "utf-8" and ctx.sniffed.bom:
                enc = "utf-8-sig"
            with open(ctx.path, encoding=enc, newline="", errors="replace") as fh:
                reader = csv.reader(fh, delimiter=ctx.sniffed.delimiter or ",")
                prev = 0
                try:
                    for row in reader:
                        yield prev + 1, row
                        prev = reader.line_num
                except csv.Error as e:
                    raise ctx.fail(prev + 1, None, None, f"CSV syntax error: {e}") from None

        yield from _rows_to_records(ctx, rows())


class XLSXReader(Reader):
    format = "xlsx"
    extensions = (".xlsx", ".xlsm")
    binary = True

    @classmethod
    def sniff(cls, head: bytes, filename: str | None = None) -> float:
        if head.startswith(b"PK\x03\x04"):
            if b"xl/" in head or b"[Content_Types].xml" in head:
                return 0.9 + cls.ext_bonus(filename)
            return 0.3 + cls.ext_bonus(filename)
        return 0.0

    def read(self, ctx: ReadContext) -> Iterator[RecordData]:
        import openpyxl

        fh = open(ctx.path, "rb")  # a file object: openpyxl would refuse a .ris name
        try:
            wb = openpyxl.load_workbook(fh, read_only=True, data_only=True)
        except Exception as e:  # openpyxl/zipfile raise many types for a damaged workbook
            fh.close()
            raise ctx.fail(
                None, None, None, f"cannot open the workbook: {type(e).__name__}: {e}"
            ) from None
        try:
            ws = wb.worksheets[0]

            def rows():
                try:
                    for i, row in enumerate(ws.iter_rows(values_only=True), 1):
                        yield i, list(row)
                except Exception as e:  # a damaged sheet part inside the ZIP
                    raise ctx.fail(
                        None, None, None, f"cannot read the sheet: {type(e).__name__}: {e}"
                    ) from None

            yield from _rows_to_records(ctx, rows())
        finally:
            wb.close()
            fh.close()
