"""Writers: records (with their review decisions, labels and notes) to RIS, CSV and BibTeX.

Every output reads back through our own readers to the same normalised records. Annotations
(one dict per record: ``decision``, ``stage``, ``reason``, ``labels``, ``notes``) go where
reference managers keep them:

* RIS: ``KW`` tags ``metasift:include`` / ``metasift:label:<label>`` (Zotero tags, EndNote
  keywords) and one ``N1`` note ``metasift: {json}`` with the whole annotation;
* CSV: columns ``decision``, ``stage``, ``reason``, ``labels`` (``; ``-joined), ``notes``;
* BibTeX: ``keywords`` as for RIS, a readable ``note``, and ``metasift-decision`` ...
  ``metasift-notes`` fields (Zotero keeps unknown fields in "Extra").

:func:`annotation_of` gets the annotation back from a record read from any of the three.
"""

from __future__ import annotations

import csv
import io
import json
import re
from contextlib import contextmanager
from pathlib import Path

from metasift.errors import ParameterError, check_param
from metasift.records import RecordData

FORMATS = ("ris", "csv", "bibtex")
ANNOTATION_KEYS = ("decision", "stage", "reason", "labels", "notes")
CSV_COLUMNS = (
    "title",
    "abstract",
    "authors",
    "year",
    "journal",
    "volume",
    "issue",
    "pages",
    "doi",
    "pmid",
    "keywords",
    "language",
    "publication_type",
    "source_database",
    "accession_number",
    "issn",
    "url",
)
_N1_PREFIX = "metasift: "


def _one_line(s) -> str:
    return " ".join(str(s).split()) if s is not None else ""


def _tags(ann: dict | None) -> list[str]:
    if not ann:
        return []
    out = []
    if ann.get("decision"):
        out.append(f"metasift:{_one_line(ann['decision'])}")
    out += [f"metasift:label:{_one_line(lb)}" for lb in ann.get("labels") or []]
    return out


def _clean_annotation(ann: dict | None) -> dict | None:
    if not ann:
        return None
    out = {}
    for k in ANNOTATION_KEYS:
        v = ann.get(k)
        if v is None or v == "" or v == []:
            continue
        out[k] = [str(x) for x in v] if k == "labels" else str(v)
    return out or None


@contextmanager
def _sink(fp_or_path, newline: str | None = None):
    if isinstance(fp_or_path, (str, Path)):
        with open(fp_or_path, "w", encoding="utf-8", newline=newline) as fh:
            yield fh
    else:
        yield fp_or_path


def write(records, fmt: str, fp_or_path, *, annotations=None) -> int:
    """Write ``records`` (an iterable of :class:`RecordData`) as ``fmt`` ("ris", "csv" or
    "bibtex") to a path or an open text file; ``annotations`` is an optional list parallel to
    the records (a dict or None each). Returns the number of records written."""
    check_param(fmt, FORMATS, "fmt", "metasift.sources.write")
    records = list(records)
    if annotations is None:
        annotations = [None] * len(records)
    annotations = list(annotations)
    if len(annotations) != len(records):
        raise ParameterError(
            "annotations",
            "metasift.sources.write",
            None,
            f"{len(annotations)} for {len(records)} records",
        )
    anns = [_clean_annotation(a) for a in annotations]
    if fmt == "csv":
        with _sink(fp_or_path, newline="") as fh:
            _write_csv(records, anns, fh)
    else:
        with _sink(fp_or_path) as fh:
            (_write_ris if fmt == "ris" else _write_bibtex)(records, anns, fh)
    return len(records)


def _write_ris(records, anns, fh) -> None:
    out = []
    for r, ann in zip(records, anns, strict=True):
        lines = ["TY  - JOUR"]

        def put(tag, value, lines=lines):
            v = _one_line(value)
            if v:
                lines.append(f"{tag}  - {v}")

        put("TI", r.title)
        for a in r.authors:
            if a.given:
                put("AU", f"{a.family}, {a.given}")
            else:
                put("AU", f"{a.family},")
        put("PY", r.year if r.year is not None else "")
        put("T2", r.journal)
        put("VL", r.volume)
        put("IS", r.issue)
        put("SP", r.pages)
        put("DO", r.doi)
        if r.pmid:
            put("C3", f"PMID: {r.pmid}")
        put("AN", r.accession_number)
        put("AB", r.abstract)
        for k in r.keywords:
            put("KW", k)
        for k in _tags(ann):
            put("KW", k)
        put("LA", r.language)
        put("M3", r.publication_type)
        put("DB", r.source_database)
        put("SN", r.issn)
        put("UR", r.url)
        if ann:
            put("N1", _N1_PREFIX + json.dumps(ann, ensure_ascii=False, sort_keys=True))
        lines.append("ER  - ")
        out.append("\n".join(lines) + "\n\n")
    fh.write("".join(out))


def _write_csv(records, anns, fh) -> None:
    with_ann = any(anns)
    cols = list(CSV_COLUMNS) + (list(ANNOTATION_KEYS) if with_ann else [])
    w = csv.writer(fh, lineterminator="\r\n")
    w.writerow(cols)
    for r, ann in zip(records, anns, strict=True):
        row = [
            r.title,
            r.abstract,
            "; ".join(f"{a.family}, {a.given}" if a.given else f"{a.family}," for a in r.authors),
            r.year if r.year is not None else "",
            r.journal,
            r.volume,
            r.issue,
            r.pages,
            r.doi,
            r.pmid,
            "; ".join(r.keywords),
            r.language,
            r.publication_type,
            r.source_database,
            r.accession_number,
            r.issn,
            r.url,
        ]
        if with_ann:
            a = ann or {}
            row += [
                a.get("decision", ""),
                a.get("stage", ""),
                a.get("reason", ""),
                "; ".join(a.get("labels") or []),
                a.get("notes", ""),
            ]
        w.writerow(["" if v is None else _one_line(v) for v in row])


_BIB_ESC = re.compile(r"([\\{}])")
_DOUBLE_DASH = re.compile(r"-(?=-)")


def _bib(s) -> str:
    """A value safe inside ``{...}``: braces and backslashes escaped, ``--`` kept literal."""
    s = _one_line(s)
    s = _BIB_ESC.sub(lambda m: "\\" + m.group(1) if m.group(1) != "\\" else "\\textbackslash{}", s)
    if "--" in s:
        s = _DOUBLE_DASH.sub("-{}", s)
    return s


def _bibkey(r: RecordData, i: int, used: set) -> str:
    fam = re.sub(r"[^A-Za-z0-9]", "", r.authors[0].family if r.authors else "") or "ref"
    key = f"{fam}{r.year or ''}_{i + 1}"
    while key in used:
        key += "x"
    used.add(key)
    return key


def _write_bibtex(records, anns, fh) -> None:
    used: set = set()
    out = []
    for i, (r, ann) in enumerate(zip(records, anns, strict=True)):
        fields = []

        def put(name, value, fields=fields):
            v = _bib(value)
            if v:
                fields.append(f"  {name} = {{{v}}}")

        put("title", r.title)
        if r.authors:
            names = " and ".join(
                f"{_bib(a.family)}, {_bib(a.given)}" if a.given else f"{{{_bib(a.family)}}}"
                for a in r.authors
            )
            fields.append(f"  author = {{{names}}}")
        put("year", r.year if r.year is not None else "")
        put("journal", r.journal)
        put("volume", r.volume)
        put("number", r.issue)
        put("pages", r.pages)
        put("doi", r.doi)
        put("pmid", r.pmid)
        put("abstract", r.abstract)
        kws = list(r.keywords) + _tags(ann)
        put("keywords", "; ".join(kws))
        put("language", r.language)
        put("type", r.publication_type)
        put("source", r.source_database)
        put("accession", r.accession_number)
        put("issn", r.issn)
        put("url", r.url)
        if ann:
            note = f"metasift {ann.get('stage', '')} decision: {ann.get('decision', '')}".replace(
                "  ", " "
            )
            if ann.get("reason"):
                note += f"; reason: {ann['reason']}"
            put("note", note)
            for k in ANNOTATION_KEYS:
                if k in ann:
                    put(f"metasift-{k}", "; ".join(ann[k]) if k == "labels" else ann[k])
        out.append(f"@article{{{_bibkey(r, i, used)},\n" + ",\n".join(fields) + "\n}\n\n")
    fh.write("".join(out))


def annotation_of(record: RecordData) -> dict | None:
    """The metasift annotation (decision, stage, reason, labels, notes) carried by a record that
    was read back from a file written by :func:`write`, or None."""
    raw = record.raw
    for v in raw.get("N1", ()):
        if v.startswith(_N1_PREFIX.strip()):
            try:
                ann = json.loads(v[len(_N1_PREFIX.strip()) :].strip())
            except ValueError:
                continue
            if isinstance(ann, dict):
                return ann
    if "metasift-decision" in raw or any(f"metasift-{k}" in raw for k in ANNOTATION_KEYS):
        from metasift.sources.normalise import latex_to_text

        ann = {}
        for k in ANNOTATION_KEYS:
            v = raw.get(f"metasift-{k}")
            if v:
                val = latex_to_text(v[0].strip()[1:-1] if v[0].strip().startswith("{") else v[0])
                ann[k] = [x.strip() for x in val.split(";") if x.strip()] if k == "labels" else val
        return ann or None
    if "decision" in raw and "stage" in raw:
        ann = {}
        for k in ANNOTATION_KEYS:
            v = (raw.get(k) or [""])[0]
            if v:
                ann[k] = [x.strip() for x in v.split(";") if x.strip()] if k == "labels" else v
        return ann or None
    return None


def to_string(records, fmt: str, *, annotations=None) -> str:
    """``write`` into a string."""
    buf = io.StringIO(newline="") if fmt == "csv" else io.StringIO()
    write(records, fmt, buf, annotations=annotations)
    return buf.getvalue()
