"""PubMed MEDLINE / nbib reader (``.nbib``, ``.txt``, ``.medline``).

Written by hand because no maintained library reads MEDLINE tagged text with line numbers
(rispy has no MEDLINE mode; Biopython's ``Medline`` parser would be a heavy dependency for 60
lines and silently drops continuation quirks). Tags are padded to four characters and followed
by ``- ``; continuation lines are indented by six spaces, but exports that went through an
editor use a TAB, two spaces or no indent at all: any line that is not a known tag line
continues the previous value. Records start at ``PMID-`` and are separated by blank lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from metasift.records import RecordData
from metasift.sources import normalise as nz
from metasift.sources._base import ReadContext, Reader, head_text

# The MEDLINE/PubMed tags (https://www.nlm.nih.gov/bsd/mms/medlineelements.html), so that a
# hard-wrapped line such as "DNA - binding ..." is not read as a new tag.
KNOWN_TAGS = frozenset(
    """AB AD AID AU AUID BTI CI CIN CN COIS CON CP CRDT CRF CRI CTDT CTI DA DCOM DDIN DEP DP DRDT
    ECF ECI EDAT EFR EIN ED EN FAU FED FIR FPS GN GR GS IP IR IRAD IS ISBN JID JT LA LID LR MH
    MHDA MID OAB OABL OCI OID ORI OT OTO OWN PB PG PHST PL PMC PMCR PMID PMCID PRIN PS PST PT
    PUBM RF RIN RN ROF RPF RPI SB SFM SI SO SPIN STAT TA TI TT UIN UOF VI VTI WDN""".split()
)
_TAG_RE = re.compile(r"^([A-Z][A-Z0-9]{1,3}) {0,3}- ?(.*)$")
_SNIFF_RE = re.compile(r"^PMID- ?\d", re.MULTILINE)


class MedlineReader(Reader):
    format = "medline"
    extensions = (".nbib", ".medline", ".txt")

    @classmethod
    def sniff(cls, head: bytes, filename: str | None = None) -> float:
        text = head_text(head)
        if _SNIFF_RE.search(text):
            return 0.9 + cls.ext_bonus(filename)
        return 0.0

    def read(self, ctx: ReadContext) -> Iterator[RecordData]:
        rec: dict | None = None
        start = 0
        n = 0
        last: list | None = None
        tag_lines: dict = {}
        with ctx.open_text() as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip("\n")
                if not line.strip():
                    if rec is not None:
                        yield self._finish(rec, start, n, ctx, tag_lines)
                        rec = None
                        last = None
                    continue
                tag = None
                if line[0] not in " \t":
                    m = _TAG_RE.match(line)
                    if m is not None and m.group(1) in KNOWN_TAGS:
                        tag, val = m.group(1), m.group(2).strip()
                if tag is None:
                    if last is None:
                        ctx.problem(
                            lineno, n + 1, None, "text outside a record (no 'PMID- ' before it)"
                        )
                        continue
                    s = line.strip()
                    last[-1] = f"{last[-1]} {s}" if last[-1] else s
                    continue
                if tag == "PMID" and rec is not None:
                    yield self._finish(rec, start, n, ctx, tag_lines)
                    rec = None
                if rec is None:
                    n += 1
                    start = lineno
                    rec = {}
                    tag_lines = {}
                last = rec.get(tag)
                if last is None:
                    last = rec[tag] = [val]
                    tag_lines[tag] = lineno
                else:
                    last.append(val)
            if rec is not None:
                yield self._finish(rec, start, n, ctx, tag_lines)

    @staticmethod
    def _finish(f: dict, start: int, n: int, ctx: ReadContext, tag_lines: dict) -> RecordData:
        r = record_from_medline(f, start)
        if not r.title or r.year is None:
            ctx.check_record(r, n, "TI", "DP", tag_lines)
        if not r.pmid and "PMID" not in f:
            ctx.problem(start, n, "PMID", "record has no PMID")
        return r


def _doi_from(values) -> str:
    for v in values:
        if v.endswith("[doi]"):
            d = nz.doi(v[:-5])
            if d:
                return d
    return ""


def record_from_medline(f: dict[str, list[str]], line: int | None) -> RecordData:
    get = f.get
    title = (get("TI") or get("BTI") or [""])[0]
    doi = _doi_from(get("LID", ())) or _doi_from(get("AID", ()))
    names = get("FAU") or get("AU") or []
    kws = list(get("MH", ())) + list(get("OT", ()))
    return RecordData(
        title=nz.text(title),
        abstract=nz.text(" ".join(get("AB", ()))),
        authors=nz.authors(names),
        year=nz.year((get("DP") or get("DEP") or [""])[0]),
        journal=nz.journal((get("JT") or get("TA") or [""])[0]),
        volume=(get("VI") or [""])[0],
        issue=(get("IP") or [""])[0],
        pages=nz.pages((get("PG") or [""])[0]),
        doi=doi,
        pmid=nz.pmid((get("PMID") or [""])[0]),
        keywords=kws,
        language=(get("LA") or [""])[0],
        publication_type=(get("PT") or [""])[0],
        source_database="PubMed",
        accession_number=(get("PMID") or [""])[0],
        issn=nz.issn((get("IS") or [""])[0]),
        url="",
        raw=f,
        line=line,
    )
