"""EndNote XML reader (files written by EndNote, Zotero and Mendeley) on lxml ``iterparse``.

EndNote wraps values in ``<style>`` elements (Zotero and Mendeley do not); both are read with
``itertext``. Mendeley writes the PubMed ID into ``accession-num``; ``isbn`` holds ISSNs for
journal articles.
"""

from __future__ import annotations

from collections.abc import Iterator

from metasift.records import RecordData
from metasift.sources import normalise as nz
from metasift.sources._base import ReadContext, Reader
from metasift.sources._xml import flatten, iter_elements, text_of


class EndNoteXMLReader(Reader):
    format = "endnote_xml"
    extensions = (".xml",)
    binary = True

    @classmethod
    def sniff(cls, head: bytes, filename: str | None = None) -> float:
        if (
            b"<records>" in head
            and b"<record>" in head
            and (b"<xml>" in head or b"<ref-type" in head)
        ):
            return 0.95 + cls.ext_bonus(filename)
        if b"<xml><records>" in head:
            return 0.9
        return 0.0

    def read(self, ctx: ReadContext) -> Iterator[RecordData]:
        for n, el in iter_elements(ctx, ("record",), "record"):
            r = record_from_endnote(el)
            if not r.title or r.year is None:
                ctx.check_record(r, n, "titles/title", "dates/year")
            yield r


def _t(el, path: str) -> str:
    return text_of(el.find(path)).strip()


def record_from_endnote(el) -> RecordData:
    acc = _t(el, "accession-num")
    db = _t(el, "remote-database-name") or _t(el, "remote-database-provider")
    pmid = (
        nz.pmid(acc)
        if acc.isdigit() and (not db or "pubmed" in db.lower() or "medline" in db.lower())
        else ""
    )
    ref_type = el.find("ref-type")
    doi = nz.doi(_t(el, "electronic-resource-num"))
    if not doi:
        for u in el.iter("url"):
            doi = nz.doi(text_of(u))
            if doi:
                break
    urls = [text_of(u).strip() for u in el.iter("url")]
    return RecordData(
        title=nz.text(_t(el, "titles/title")),
        abstract=nz.text(_t(el, "abstract")),
        authors=nz.authors(text_of(a) for a in el.iterfind("contributors/authors/author")),
        year=nz.year(_t(el, "dates/year") or _t(el, "dates/pub-dates/date")),
        journal=nz.journal(
            _t(el, "periodical/full-title")
            or _t(el, "titles/secondary-title")
            or _t(el, "periodical/abbr-1")
        ),
        volume=_t(el, "volume"),
        issue=_t(el, "issue") or _t(el, "number"),
        pages=nz.pages(_t(el, "pages")),
        doi=doi,
        pmid=pmid,
        keywords=[k for k in (text_of(k).strip() for k in el.iterfind("keywords/keyword")) if k],
        language=_t(el, "language"),
        publication_type=ref_type.get("name", "") if ref_type is not None else "",
        source_database=db,
        accession_number=acc,
        issn=nz.issn(_t(el, "isbn")),
        url=urls[0] if urls else "",
        raw=flatten(el),
        line=el.sourceline,
    )
