"""Web of Science plain text reader (``.ciw``, ``.txt``, ``.isi``; "Other reference software").

Written by hand: no maintained library reads the WoS field-tagged format with line numbers
(metaknowledge is GPL and unmaintained). Layout: ``FN``/``VR`` header, records ``PT ... ER``,
two-letter tag + space + value, continuation lines indented by three spaces (one value per line
for multi-valued tags such as AU/AF/C1/CR, a wrapped value for TI/AB/SO), ``EF`` trailer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from metasift.records import RecordData
from metasift.sources import normalise as nz
from metasift.sources._base import ReadContext, Reader, head_text

_SNIFF_FN = re.compile(
    r"^FN .*(?:Web of Science|ISI|Clarivate|Thomson)", re.MULTILINE | re.IGNORECASE
)
_SNIFF_PT = re.compile(r"^PT [A-Z]\s*$", re.MULTILINE)
_SNIFF_ER = re.compile(r"^ER\s*$", re.MULTILINE)
# Tags whose continuation lines are separate values (one author / address / reference per line).
MULTI = frozenset(
    {"AU", "AF", "BA", "BF", "CA", "GP", "ED", "C1", "C3", "CR", "RI", "OI", "EM", "FU"}
)


class WoSReader(Reader):
    format = "wos"
    extensions = (".ciw", ".isi", ".txt")

    @classmethod
    def sniff(cls, head: bytes, filename: str | None = None) -> float:
        text = head_text(head)
        if _SNIFF_FN.search(text[:2000]) and _SNIFF_PT.search(text):
            return 0.95 + cls.ext_bonus(filename)
        if _SNIFF_PT.search(text) and _SNIFF_ER.search(text):
            return 0.8 + cls.ext_bonus(filename)
        return 0.0

    def read(self, ctx: ReadContext) -> Iterator[RecordData]:
        rec: dict | None = None
        start = 0
        n = 0
        tag = None
        last: list | None = None
        tag_lines: dict = {}
        with ctx.open_text() as fh:
            lineno = 0
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                if line.startswith("   ") or line[0] == "\t":
                    if last is None:
                        ctx.problem(lineno, n + 1, None, "continuation line outside a record")
                        continue
                    s = line.strip()
                    if tag in MULTI:
                        last.append(s)
                    else:
                        last[-1] = f"{last[-1]} {s}" if last[-1] else s
                    continue
                tag = line[:2]
                val = line[3:].strip() if len(line) > 2 else ""
                if tag == "ER":
                    if rec is None:
                        ctx.problem(lineno, n + 1, "ER", "'ER' without a record ('PT') before it")
                        continue
                    yield self._finish(rec, start, n, ctx, tag_lines)
                    rec = None
                    last = None
                elif tag in ("FN", "VR", "EF"):
                    last = None
                elif tag == "PT" or rec is None:
                    if rec is not None:
                        ctx.problem(
                            start, n, "ER", "record not closed by 'ER' before the next 'PT'"
                        )
                        yield self._finish(rec, start, n, ctx, tag_lines)
                    if tag != "PT":
                        ctx.problem(
                            lineno, n + 1, tag, f"record does not start with 'PT' (found {tag!r})"
                        )
                    n += 1
                    start = lineno
                    last = [val]
                    rec = {tag: last}
                    tag_lines = {tag: lineno}
                else:
                    last = rec.get(tag)
                    if last is None:
                        last = rec[tag] = [val]
                        tag_lines[tag] = lineno
                    else:
                        last.append(val)
            if rec is not None:
                ctx.problem(
                    start,
                    n,
                    "ER",
                    f"the file ends inside record {n} (no closing 'ER'): truncated file?",
                )
                yield self._finish(rec, start, n, ctx, tag_lines)

    @staticmethod
    def _finish(f: dict, start: int, n: int, ctx: ReadContext, tag_lines: dict) -> RecordData:
        r = record_from_wos(f, start)
        if not r.title or r.year is None:
            ctx.check_record(r, n, "TI", "PY", tag_lines)
        return r


def _one(f: dict, tag: str) -> str:
    v = f.get(tag)
    return v[0] if v else ""


def _split(values) -> list[str]:
    out = []
    for v in values:
        out.extend(p.strip() for p in v.split(";") if p.strip())
    return out


def record_from_wos(f: dict[str, list[str]], line: int | None) -> RecordData:
    acc = _one(f, "UT")
    yr = _one(f, "PY") or _one(f, "PD") or _one(f, "EA")
    return RecordData(
        title=nz.text(_one(f, "TI")),
        abstract=nz.text(" ".join(f.get("AB", ()))),
        authors=nz.authors(_split(f.get("AF") or f.get("AU") or f.get("CA") or ())),
        year=nz.year(yr),
        journal=nz.journal(_one(f, "SO")),
        volume=_one(f, "VL"),
        issue=_one(f, "IS"),
        pages=nz.pages(_one(f, "BP"), _one(f, "EP")) or _one(f, "AR"),
        doi=nz.doi(_one(f, "DI")),
        pmid=nz.pmid(_one(f, "PM")),
        keywords=_split(f.get("DE", ())) + _split(f.get("ID", ())),
        language=_one(f, "LA"),
        publication_type=_one(f, "DT") or _one(f, "PT"),
        source_database="Web of Science",
        accession_number=acc,
        issn=nz.issn(_one(f, "SN") or _one(f, "EI")),
        url="",
        raw=f,
        line=line,
    )
