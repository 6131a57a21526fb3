"""PubMed XML reader (``PubmedArticleSet``, any DTD year) on lxml ``iterparse``."""

from __future__ import annotations

from collections.abc import Iterator

from metasift.records import Author, RecordData
from metasift.sources import normalise as nz
from metasift.sources._base import ReadContext, Reader
from metasift.sources._xml import flatten, iter_elements, text_of


class PubMedXMLReader(Reader):
    format = "pubmed_xml"
    extensions = (".xml",)
    binary = True  # XML declares its own encoding; lxml decodes

    @classmethod
    def sniff(cls, head: bytes, filename: str | None = None) -> float:
        if (
            b"<PubmedArticleSet" in head
            or b"<PubmedArticle>" in head
            or b"<PubmedBookArticle" in head
        ):
            return 0.95 + cls.ext_bonus(filename)
        return 0.0

    def read(self, ctx: ReadContext) -> Iterator[RecordData]:
        for n, el in iter_elements(ctx, ("PubmedArticle", "PubmedBookArticle"), "PubmedArticle"):
            r = record_from_pubmed(el)
            if not r.title or r.year is None:
                ctx.check_record(r, n, "ArticleTitle", "PubDate")
            yield r


def _year(art) -> int | None:
    for path in (
        ".//JournalIssue/PubDate/Year",
        ".//JournalIssue/PubDate/MedlineDate",
        ".//ArticleDate/Year",
        ".//PubDate/Year",
        ".//DateCompleted/Year",
        ".//DateCreated/Year",
    ):
        e = art.find(path)
        if e is not None and e.text:
            y = nz.year(e.text)
            if y:
                return y
    return None


def record_from_pubmed(el) -> RecordData:
    mc = el.find("MedlineCitation")
    base = mc if mc is not None else el.find("BookDocument")
    if base is None:
        base = el
    art = base.find("Article")
    if art is None:
        art = base.find("Book")
    if art is None:
        art = base
    title = (
        text_of(art.find("ArticleTitle"))
        or text_of(base.find("ArticleTitle"))
        or text_of(art.find("BookTitle"))
    )
    parts = []
    for a in base.iter("AbstractText"):
        t = text_of(a).strip()
        label = a.get("Label")
        parts.append(f"{label}: {t}" if label and t else t)
    authors = []
    for a in base.iter("Author"):
        last = a.findtext("LastName")
        if last:
            authors.append(
                Author(
                    nz.text(last), nz.text(a.findtext("ForeName") or a.findtext("Initials") or "")
                )
            )
        elif a.findtext("CollectiveName"):
            authors.append(Author(nz.text(a.findtext("CollectiveName")), ""))
    doi = ""
    for e in list(art.iter("ELocationID")) + list(el.iter("ArticleId")):
        if (e.get("EIdType") or e.get("IdType")) == "doi":
            doi = nz.doi(e.text)
            if doi:
                break
    pmid = base.findtext("PMID") or ""
    kws = [text_of(d).strip() for d in base.iter("DescriptorName")]
    kws += [text_of(k).strip() for k in base.iter("Keyword")]
    pg = art.findtext("Pagination/MedlinePgn") or ""
    if not pg:
        sp, ep = art.findtext("Pagination/StartPage"), art.findtext("Pagination/EndPage")
        pg = nz.pages(sp, ep)
    return RecordData(
        title=nz.text(title),
        abstract=nz.text(" ".join(p for p in parts if p)),
        authors=authors,
        year=_year(el),
        journal=nz.journal(
            art.findtext("Journal/Title") or art.findtext("Journal/ISOAbbreviation") or ""
        ),
        volume=art.findtext("Journal/JournalIssue/Volume") or "",
        issue=art.findtext("Journal/JournalIssue/Issue") or "",
        pages=pg,
        doi=doi,
        pmid=nz.pmid(pmid),
        keywords=[k for k in kws if k],
        language=art.findtext("Language") or "",
        publication_type=art.findtext("PublicationTypeList/PublicationType") or "",
        source_database="PubMed",
        accession_number=pmid.strip(),
        issn=nz.issn(art.findtext("Journal/ISSN") or ""),
        url="",
        raw=flatten(el),
        line=el.sourceline,
    )
