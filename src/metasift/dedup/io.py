"""Reader for the labelled benchmark CSVs (``../shared/benchmarks/dedup/README.md``)."""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections import defaultdict
from pathlib import Path

from metasift.errors import ImportFormatError
from metasift.records import Author, RecordData

BENCHMARK_COLUMNS = ("record_id", "title", "authors", "year", "dup_group")

# "Adeli K.Lewis G. F." / "KodydkovaJ.VavrovaL." / "San Mauro D." / "Rud'koO.I."
_ASYSD_AUTHOR_RE = re.compile(
    r"\s*(?P<fam>[^.,;]+?)\s?(?P<giv>(?:(?:[A-Z][a-z]?|[A-Z]h)\.\s?-?)+|$)",
)
_CAMEL_RE = re.compile(r"(?<=[a-z\u00e0-\u024f])(?=[A-Z\u00c0-\u00de])")
# full names run together ("Ho JefferyChan HungWong Sunny H."): a given name (a second word)
# followed directly by the next family name
_FULL_NAMES_JOIN_RE = re.compile(r"(?<=\s[A-Z][a-z])([a-z]*)(?=[A-Z][a-z'])")
# family names and initials run together without dots ("Robertson JDOrrenius SZhivotovsky B")
_INITIALS_AUTHOR_RE = re.compile(
    r"\s*([A-Z][\w'\-]+(?: [A-Z][\w'\-]+)*?) ([A-Z]{1,4})(?=[A-Z][a-z]|\s*$)"
)


def _split_family_given(s: str) -> Author:
    s = s.strip().strip(",;").strip()
    if "," in s:
        fam, giv = s.split(",", 1)
        return Author(fam.strip(), giv.strip())
    parts = s.split()
    if len(parts) > 1 and all(len(p.strip(".")) <= 2 for p in parts[1:]):
        return Author(parts[0], " ".join(parts[1:]))
    return Author(s)


def parse_authors(s: str) -> list[Author]:
    """Parse an author field in one of the formats the benchmark sets use.

    * ``Last, I and Last, I`` (BibTeX / Rathbone sets), also ``;``-separated lists;
    * ``Last I.Last I. F.`` with no separator (ASySD sets), also with the space dropped
      (``KodydkovaJ.VavrovaL.``);
    * ``Last FirstLast First`` (full given names, no separator): split at a lower->upper case
      boundary, family name first.
    * ``Last IILast I`` (initials without dots, no separator: ``Robertson JDOrrenius S``);
    * full names and initials mixed, run together (``Ho JefferyChan HungWong Sunny H.``): split
      where a given name runs into the next family name.
    """
    s = (s or "").strip()
    if not s:
        return []
    if " and " in s or ";" in s or "\n" in s:
        parts = [p.strip() for p in re.split(r"\s+and\s+|;|\n", s) if p.strip()]
        out: list[Author] = []
        for p in parts:
            # "Hu PingzhaoWang Xinchen" inside a ";"-list: several authors run together
            out.extend(
                parse_authors(p) if "," not in p and "." not in p else [_split_family_given(p)]
            )
        return out
    if s.count(",") == 1:
        return [_split_family_given(s)]
    if "." not in s:
        found = list(_INITIALS_AUTHOR_RE.finditer(s))
        if len(found) > 1 and sum(len(m.group(0)) for m in found) == len(s):
            return [Author(m.group(1), m.group(2)) for m in found]
        chunks = _CAMEL_RE.split(s)
        # "...BashardoustMacDermid Joy": a chunk without a space is part of a name (Mac|Dermid)
        merged: list[str] = []
        pending = ""
        for c in chunks:
            if " " not in c.strip():
                pending += c
            else:
                merged.append(pending + c)
                pending = ""
        if pending:
            merged.append(pending)
        chunks = merged
        if len(chunks) > 1 and all(" " in c.strip() for c in chunks):
            out = []
            for c in chunks:
                fam, _, giv = c.strip().partition(" ")
                out.append(Author(fam, giv))
            return out
        return [_split_family_given(s)]
    if _FULL_NAMES_JOIN_RE.search(s):
        pieces = _FULL_NAMES_JOIN_RE.sub("\\1\x00", s).split("\x00")
        return [a for piece in pieces for a in _parse_initials_list(piece, full_names=True)]
    return _parse_initials_list(s)


def _parse_initials_list(s: str, full_names: bool = False) -> list[Author]:
    """``Last I.Last I. F.`` (ASySD); with ``full_names``, a name without initials is
    ``Family Given`` (``Ho Jeffery``)."""
    out = []
    pos = 0
    while pos < len(s):
        m = _ASYSD_AUTHOR_RE.match(s, pos)
        if not m or m.end() == pos:
            rest = s[pos:].strip()
            if rest:
                out.append(Author(rest))
            break
        fam = m.group("fam").strip()
        giv = m.group("giv").strip()
        if " " in fam and full_names:
            # "McArdle Patrick F." / "Rovers Maroeska": family name first, then the given names
            fam, _, given = fam.partition(" ")
            giv = f"{given} {giv}".strip()
        elif " " in fam and giv:
            # "Ludwig David S." -> family "Ludwig", given "David S."
            head, _, tail = fam.rpartition(" ")
            if tail[:1].isupper() and tail[1:].islower() and len(tail) > 2 and head.istitle():
                fam, giv = head, f"{tail} {giv}"
        if fam:
            out.append(Author(fam, giv))
        pos = m.end()
    return out


def _open_text(path: Path):
    raw = path.read_bytes()
    if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8-sig", errors="replace")
    return io.StringIO(text, newline="")


def load_benchmark_csv(path) -> tuple[list[RecordData], list[str]]:
    """Read a labelled set in the shared schema (plain or ``.gz``).

    Returns the records (``raw["record_id"]`` keeps the id) and the truth labels
    (``dup_group`` per record, in file order). Raises :class:`ImportFormatError` if the file is
    missing or lacks a required column.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(path, reason="file not found")
    try:
        reader = csv.DictReader(_open_text(path))
        header = reader.fieldnames or []
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise ImportFormatError(path, reason=f"cannot read: {e}") from e
    missing = [c for c in BENCHMARK_COLUMNS if c not in header]
    if missing:
        raise ImportFormatError(
            path,
            line=1,
            field=missing[0],
            reason=f"missing column(s) {missing}; header is {header}",
            sniffed={"format": "csv", "encoding": "utf-8"},
        )
    records: list[RecordData] = []
    truth: list[str] = []
    for i, row in enumerate(reader):
        row = {k: (v or "").strip() for k, v in row.items() if k}
        g = defaultdict(str, row).__getitem__
        y = g("year")
        m = re.search(r"\d{4}", y)
        journal = g("journal") or g("booktitle")
        records.append(
            RecordData(
                title=g("title"),
                abstract=g("abstract"),
                authors=parse_authors(g("authors")),
                year=int(m.group(0)) if m else None,
                journal=journal,
                volume=g("volume"),
                issue=g("issue"),
                pages=g("pages"),
                doi=g("doi"),
                pmid=g("pmid"),
                issn=g("isbn"),
                publication_type=g("entry_type"),
                raw={k: [v] for k, v in row.items() if v},
                line=i + 2,
            )
        )
        truth.append(g("dup_group") or g("record_id"))
    return records, truth
