"""BibTeX reader (Scopus, Web of Science, Zotero/Better BibTeX, JabRef).

Written by hand rather than on ``bibtexparser`` 1.4: that parser reports no line numbers (strict
errors must be located), silently drops an entry whose braces do not balance together with
everything after it, and keys entries by citation key (so duplicate keys lose a record). Here
the file is cut into entries at line-initial ``@type{`` (so one damaged entry cannot swallow the
next), each entry is scanned with brace counting, and an unclosed value is cut at the end of its
line and reported (lenient) or raised (strict). Text before the first entry (Scopus's ``Scopus /
EXPORT DATE`` header) is ignored; ``@comment`` and ``@preamble`` are skipped, ``@string`` macros
are expanded. LaTeX accents and escapes become Unicode (:func:`normalise.latex_to_text`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from metasift.records import Author, RecordData
from metasift.sources import normalise as nz
from metasift.sources._base import ReadContext, Reader, head_text

_ENTRY_START = re.compile(r"^\s*@\s*([A-Za-z_-]+)\s*([{(])")
_SNIFF_RE = re.compile(r"^\s*@\s*[A-Za-z]+\s*[{(]", re.MULTILINE)
_FIELD_NAME = re.compile(r"[ \t\r\n]*([^=,{}()\"#\r\n]+?)\s*=\s*")
_NEXT_FIELD = re.compile(r"[ \t]*[A-Za-z][\w\-\xa0 ]*[ \t]*=[ \t]*[{\"0-9]")
_BARE = re.compile(r"[^\s,#{}()\"]+")
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
MONTHS = {
    m: str(i)
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}


class BibTeXReader(Reader):
    format = "bibtex"
    extensions = (".bib", ".bibtex")

    @classmethod
    def sniff(cls, head: bytes, filename: str | None = None) -> float:
        text = head_text(head)
        if _SNIFF_RE.search(text):
            return 0.85 + cls.ext_bonus(filename)
        return 0.0

    def read(self, ctx: ReadContext) -> Iterator[RecordData]:
        macros = dict(MONTHS)
        n = 0
        for start, chunk in _chunks(ctx):
            m = _ENTRY_START.match(chunk)
            typ = m.group(1).lower()
            if typ in ("comment", "preamble"):
                continue
            if typ == "string":
                p = _Parser(chunk, start, m.end(), m.group(2), ctx, n + 1, macros)
                for name, val in p.fields():
                    macros[name.lower()] = val
                continue
            n += 1
            p = _Parser(chunk, start, m.end(), m.group(2), ctx, n, macros)
            key = p.key()
            fields = dict(p.fields())
            raw = {k: [v] for k, v in p.raw.items()}
            raw["ENTRYTYPE"] = [typ]
            raw["ID"] = [key]
            r = record_from_bibtex(typ, fields, raw, start)
            if not r.title or r.year is None:
                ctx.check_record(r, n, "title", "year" if "year" in raw else "date", p.lines)
            yield r
        if n == 0:
            raise ctx.fail(None, None, None, "no BibTeX entries (@article{...}) in the file")


def _chunks(ctx: ReadContext) -> Iterator[tuple[int, str]]:
    """(first line, text) of each ``@...`` block; text before the first one is dropped."""
    buf: list[str] = []
    start = 0
    with ctx.open_text() as fh:
        for lineno, line in enumerate(fh, 1):
            if line.lstrip()[:1] == "@" and _ENTRY_START.match(line):
                if buf:
                    yield start, "".join(buf)
                buf = [line]
                start = lineno
            elif buf:
                buf.append(line)
    if buf:
        yield start, "".join(buf)


class _Parser:
    def __init__(self, s, line0, pos, opener, ctx, n, macros):
        self.s, self.line0, self.pos, self.ctx, self.n, self.macros = s, line0, pos, ctx, n, macros
        self.close = "}" if opener == "{" else ")"
        self.raw: dict[str, str] = {}
        self.lines: dict[str, int] = {}

    def line(self, pos=None) -> int:
        return self.line0 + self.s.count("\n", 0, self.pos if pos is None else pos)

    def key(self) -> str:
        s = self.s
        end = len(s)
        for ch in (",", self.close, "\n"):
            i = s.find(ch, self.pos)
            if i != -1:
                end = min(end, i)
        key = s[self.pos : end].strip()
        self.pos = end + 1 if end < len(s) and s[end] == "," else end
        return key

    def fields(self) -> Iterator[tuple[str, str]]:
        s = self.s
        while True:
            while self.pos < len(s) and s[self.pos] in " \t\r\n,":
                self.pos += 1
            if self.pos >= len(s):
                self.ctx.problem(
                    self.line(self.pos - 1), self.n, None, f"entry not closed by '{self.close}'"
                )
                return
            if s[self.pos] == self.close:
                self.pos += 1
                return
            m = _FIELD_NAME.match(s, self.pos)
            if m is None:
                eol = s.find("\n", self.pos)
                eol = len(s) if eol == -1 else eol
                self.ctx.problem(
                    self.line(),
                    self.n,
                    None,
                    f"expected 'name = value', found {s[self.pos : eol].strip()[:40]!r}",
                )
                self.pos = eol + 1
                continue
            name = "_".join(m.group(1).lower().split())
            self.pos = m.end()
            line = self.line()
            vstart = self.pos
            val = self.value(name, line)
            self.raw[name] = s[vstart : self.pos].strip().rstrip(",").strip()
            self.lines.setdefault(name, line)
            yield name, val

    def value(self, name: str, line: int) -> str:
        s = self.s
        parts = []
        while True:
            while self.pos < len(s) and s[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos >= len(s):
                break
            c = s[self.pos]
            if c in '{"':
                end = self._balanced(self.pos, c)
                if end is None:  # unclosed: cut at the end of this line and go on
                    eol = s.find("\n", self.pos)
                    eol = len(s) if eol == -1 else eol
                    self.ctx.problem(
                        line,
                        self.n,
                        name,
                        f"unbalanced braces: the value of {name!r} is not closed",
                    )
                    parts.append(s[self.pos + 1 : eol].rstrip().rstrip(",").rstrip("}"))
                    self.pos = eol
                    return "".join(parts)
                parts.append(s[self.pos + 1 : end])
                self.pos = end + 1
            else:
                m = _BARE.match(s, self.pos)
                if m is None:
                    break
                word = m.group(0)
                parts.append(self.macros.get(word.lower(), word))
                self.pos = m.end()
            while self.pos < len(s) and s[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(s) and s[self.pos] == "#":
                self.pos += 1
                continue
            break
        return "".join(parts)

    def _balanced(self, i: int, opener: str) -> int | None:
        """Index of the character closing the value opened at ``i``, or None."""
        s = self.s
        depth = 0
        j = i + 1
        n = len(s)
        if opener == "{":
            depth = 1
            while j < n:
                c = s[j]
                if c == "\\":
                    j += 2
                    continue
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                    if depth == 0:
                        return j
                elif c == "\n" and depth == 1 and _NEXT_FIELD.match(s, j + 1):
                    k = j - 1
                    while k > i and s[k] in " \t\r":
                        k -= 1
                    if s[k] == ",":  # "...,\n  journal={": the value was never closed
                        return None
                j += 1
            return None
        while j < n:
            c = s[j]
            if c == "\\":
                j += 2
                continue
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            elif c == '"' and depth == 0:
                return j
            j += 1
        return None


def _split_and(value: str) -> list[str]:
    """Split an author list at ``and`` outside braces."""
    out, depth, last = [], 0, 0
    i = 0
    while i < len(value):
        c = value[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0 and c in " \t\n":
            m = _AND.match(value, i)
            if m:
                out.append(value[last:i])
                i = last = m.end()
                continue
        i += 1
    out.append(value[last:])
    return [p.strip() for p in out if p.strip()]


def _clean(v: str | None) -> str:
    return nz.text(nz.latex_to_text(v)) if v else ""


def record_from_bibtex(typ: str, f: dict[str, str], raw: dict, line: int | None) -> RecordData:
    people = []
    for a in _split_and(f.get("author", "")):
        if a.startswith("{") and a.endswith("}") and "," not in a and a.count("{") == 1:
            people.append(Author(_clean(a), ""))  # {World Health Organization}: kept whole
        else:
            person = nz.author(_clean(a))
            if person is not None:
                people.append(person)
    kw = f.get("keywords") or f.get("keyword") or f.get("author_keywords") or ""
    sep = ";" if ";" in kw else ","
    keywords = [_clean(k) for k in kw.split(sep)] if kw else []
    pm = f.get("pmid", "")
    if not pm and f.get("eprinttype", "").lower() == "pubmed":
        pm = f.get("eprint", "")
    acc = f.get("accession") or f.get("unique-id") or f.get("eid") or ""
    source = f.get("source", "")
    if not source and acc.startswith("WOS:"):
        source = "Web of Science"
    return RecordData(
        title=_clean(f.get("title")),
        abstract=_clean(f.get("abstract")),
        authors=people,
        year=nz.year(f.get("year") or f.get("date")),
        journal=nz.journal(_clean(f.get("journal") or f.get("journaltitle") or f.get("booktitle"))),
        volume=_clean(f.get("volume")),
        issue=_clean(f.get("number") or f.get("issue")),
        pages=nz.pages(_clean(f.get("pages"))),
        doi=nz.doi(nz.latex_to_text(f.get("doi", ""))),
        pmid=nz.pmid(pm),
        keywords=[k for k in keywords if k],
        language=_clean(f.get("language")),
        publication_type=_clean(f.get("document_type") or f.get("type")) or typ,
        source_database=_clean(source),
        accession_number=_clean(acc),
        issn=nz.issn(f.get("issn", "")),
        url=nz.latex_to_text(f.get("url", "")).strip(),
        raw=raw,
        line=line,
    )
