"""Normalisation shared by every reader: DOI, PMID, ISSN, author names, year, journal names, and
the text of titles and abstracts (HTML entities and tags removed, whitespace collapsed, Unicode
NFC). Each helper takes what a database wrote and returns the normalised value, or ``""`` /
``None`` when nothing usable is there; none of them raises on bad input.

The helpers are on the hot path of the RIS reader (100,000s of records), so each one first
checks cheaply whether there is anything to do.
"""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import unquote

from metasift.records import Author

__all__ = [
    "DOI_RE",
    "author",
    "authors",
    "doi",
    "issn",
    "journal",
    "latex_to_text",
    "pages",
    "pmid",
    "split_authors",
    "text",
    "year",
]

DOI_RE = re.compile(r"10\.\d{4,9}(?:/|%2[Ff])[^\s&?#\"<>]+")
_DOI_FULL = re.compile(r"^10\.\d{4,9}/\S+$")
_DOI_PREFIX = re.compile(
    r"^(?:https?://)?(?:(?:dx\.)?doi\.org/|doi\.org/)|^(?:doi|DOI)\s*[:=]?\s*", re.IGNORECASE
)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")
_YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d|21\d\d)(?!\d)")
_PMID = re.compile(r"(?<!\d)(\d{1,9})(?!\d)")
_ISSN = re.compile(r"(\d{4})-?(\d{3}[\dXx])")
_INITIALS = re.compile(r"^(?:[A-Z]\.?-?){1,4}$|^(?:[A-Z][a-z]?\.\s?){1,4}$")
_PARTICLES = {"van", "von", "der", "den", "de", "del", "della", "di", "da", "du", "la", "le", "ter"}
_SMALL = {"of", "and", "the", "in", "for", "on", "to", "a", "an", "at", "by", "with", "de", "la"}


def text(s: str | None) -> str:
    """Title/abstract text: HTML tags and entities removed, whitespace collapsed, NFC."""
    if not s:
        return ""
    if "<" in s:
        s = _TAG.sub(" ", s)
    if "&" in s:
        s = html.unescape(s)
        if "<" in s:  # entity-escaped markup such as &lt;i&gt;
            s = _TAG.sub(" ", s)
    if (
        "  " in s
        or "\n" in s
        or "\t" in s
        or "\r" in s
        or s[0] == " "
        or s[-1] == " "
        or "\xa0" in s
    ):
        s = " ".join(s.split())
    if not s.isascii():
        if "\u2028" in s or "\u3000" in s or "\u2009" in s:  # other Unicode spaces
            s = " ".join(s.split())
        if not unicodedata.is_normalized("NFC", s):
            s = unicodedata.normalize("NFC", s)
    return s


def doi(s: str | None) -> str:
    """A DOI in canonical form (``10.xxxx/...``, lower case) or ``""`` if ``s`` holds none.

    Strips URL forms (``https://doi.org/``, ``http://dx.doi.org/``), ``doi:`` prefixes, URL
    escapes (``%2F``), surrounding brackets and trailing punctuation."""
    if not s:
        return ""
    s = s.strip()
    if not s.startswith("10."):
        s = _DOI_PREFIX.sub("", s, count=1).strip()
        if not s.startswith("10."):
            m = DOI_RE.search(s)
            if not m:
                return ""
            s = m.group(0)
    if "%" in s:
        s = unquote(s)
    if " " in s:
        s = s.split()[0]
    s = s.rstrip(".,;)]}>").lower()
    return s if _DOI_FULL.match(s) else ""


def pmid(s: str | None) -> str:
    """A PubMed ID as a string of digits (``"PMID: 123"``, ``"PUBMED 123"``, ``"/pubmed/123"``,
    ``123.0``) or ``""``."""
    if s is None or s == "":
        return ""
    if isinstance(s, (int, float)):
        return str(int(s)) if s > 0 else ""
    s = s.strip()
    if s.isdigit():
        return s.lstrip("0") or ""
    if s.endswith(".0") and s[:-2].isdigit():
        return s[:-2].lstrip("0")
    low = s.lower()
    if "pmid" in low or "pubmed" in low or "medline" in low:
        m = _PMID.search(s)
        if m:
            return m.group(1).lstrip("0")
    return ""


def issn(s: str | None) -> str:
    """The first ISSN in ``s`` as ``NNNN-NNNC`` or ``""``."""
    if not s:
        return ""
    m = _ISSN.search(s)
    return f"{m.group(1)}-{m.group(2).upper()}" if m else ""


def year(s) -> int | None:
    """The year in any date form: ``2019``, ``"2019//"``, ``"2016 Jan 15"``, ``"2014-08-29"``,
    ``"15/01/2016"``, ``2019.0``; ``None`` for ``"In press"``, ``"n.d."`` or nothing."""
    if s is None:
        return None
    if isinstance(s, bool):
        return None
    if isinstance(s, int):
        return s if 1500 <= s <= 2199 else None
    if isinstance(s, float):
        return int(s) if s == s and 1500 <= s <= 2199 else None
    if hasattr(s, "year"):  # date / datetime from a spreadsheet
        return int(s.year)
    s = str(s)
    if len(s) == 4 and s.isdigit():
        y = int(s)
        return y if 1500 <= y <= 2199 else None
    m = _YEAR.search(s)
    return int(m.group(1)) if m else None


def journal(s: str | None) -> str:
    """A journal name: whitespace collapsed, trailing period dropped, ALL-CAPS names (Web of
    Science) put in title case; HTML removed."""
    s = text(s)
    if not s:
        return ""
    s = s.rstrip(" .")
    if len(s) > 3 and s.isupper():  # every cased character upper case (Web of Science)
        words = s.lower().split(" ")
        s = " ".join(
            w if (i and w in _SMALL) else "-".join(p[:1].upper() + p[1:] for p in w.split("-"))
            for i, w in enumerate(words)
        )
    return s


def pages(first: str | None, last: str | None = None) -> str:
    """``"152-160"`` from a start and end page, or a page field normalised (``134--137``)."""
    first = (first or "").strip()
    last = (last or "").strip()
    if first == "No" and last == "Specified":  # Ovid's "No Specified" split over SP/EP
        return ""
    if first and last and last != first:
        return f"{first}-{last}"
    if not first:
        return last
    if "--" in first or "–" in first:
        first = first.replace("--", "-").replace("–", "-")
    return first


def author(s: str) -> Author | None:
    """One author name -> ``Author(family, given)``.

    Understands ``"Family, Given"``, ``"Family GI"`` / ``"Family G.I."`` (PubMed, Embase,
    Scopus short forms) and ``"Given Family"`` (with particles such as van/de kept in the family
    name). Corporate names without a comma or initials are kept whole as the family name."""
    if (
        "," in s
        and s.isascii()
        and "<" not in s
        and "&" not in s
        and "  " not in s
        and "\t" not in s
    ):
        # fast path for the common "Family, Given" (no markup, no odd spacing)
        fam, _, giv = s.strip(" ;").partition(",")
        fam = fam.strip()
        if fam and "," not in giv:
            return Author(fam, giv.strip(" ;,"))
    if "<" in s or "&" in s or not s.isascii():
        s = text(s)
    elif "  " in s or "\t" in s:
        s = " ".join(s.split())
    s = s.strip(" ;")
    if s.endswith(",") and "," not in s[:-1]:  # "Family," : a family name alone (as we write it)
        s = s[:-1].strip()
        return Author(s, "") if s else None
    s = s.strip(" ,")
    if not s:
        return None
    if "," in s:
        fam, _, giv = s.partition(",")
        return Author(fam.strip(), giv.strip())
    parts = s.split(" ")
    if len(parts) == 1:
        return Author(s, "")
    last = parts[-1]
    if _INITIALS.match(last) or (len(parts) > 2 and _INITIALS.match(parts[-2] + parts[-1])):
        # "Liu R." / "Nilsson C" / "Wilson L.N." / "Costa de Beauregard O."
        k = len(parts) - 1
        while k > 1 and _INITIALS.match(parts[k - 1]) and len(parts[k - 1]) <= 2:
            k -= 1
        return Author(" ".join(parts[:k]), " ".join(parts[k:]))
    # "Given [Middle] [particles] Family"
    k = len(parts) - 1
    while k > 1 and parts[k - 1].lower() in _PARTICLES:
        k -= 1
    return Author(" ".join(parts[k:]), " ".join(parts[:k]))


def authors(values) -> list[Author]:
    """Authors from a list of names (one per value); empty names dropped."""
    out = []
    for v in values:
        # inline fast path of author() for plain "Family, Given" (most names in most exports)
        if (
            "," in v
            and v.isascii()
            and "<" not in v
            and "&" not in v
            and "  " not in v
            and "\t" not in v
        ):
            fam, _, giv = v.strip(" ;").partition(",")
            fam = fam.strip()
            if fam and "," not in giv:
                out.append(Author(fam, giv.strip(" ;,")))
                continue
        a = author(v)
        if a is not None:
            out.append(a)
    return out


def split_authors(s: str) -> list[str]:
    """Split one author-list cell into names: ``;``-separated (Scopus, Cochrane, Zotero),
    BibTeX ``and``-separated, or comma-separated short forms (``"Liu R., Adler D.G."``,
    ``"Nilsson C, Berthold M."``). A single ``"Family, Given"`` stays one name."""
    s = (s or "").strip()
    if not s:
        return []
    if s.startswith("[") and s.endswith("]"):  # ASReview: a Python list written as text
        inner = s[1:-1].strip()
        if not inner:
            return []
        return [p.strip().strip("'\"") for p in re.split(r"'\s*,\s*'|\"\s*,\s*\"", inner)]
    if ";" in s:
        return [p.strip() for p in s.split(";") if p.strip()]
    if " and " in s:
        return [p.strip() for p in s.split(" and ") if p.strip()]
    if "," in s:
        parts = [p.strip() for p in s.split(",") if p.strip()]
        if len(parts) >= 2 and all(_looks_short_form(p) for p in parts):
            return parts
    return [s]


def _looks_short_form(p: str) -> bool:
    bits = p.rstrip(".").split(" ")
    return len(bits) >= 2 and bool(_INITIALS.match(bits[-1].rstrip(".") or "x"))


_ACCENTS = {
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    '"': "\u0308",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "u": "\u0306",
    "v": "\u030c",
    "H": "\u030b",
    "c": "\u0327",
    "k": "\u0328",
    "r": "\u030a",
}
_SYMBOLS = {
    "ss": "ß",
    "o": "ø",
    "O": "Ø",
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
    "aa": "å",
    "AA": "Å",
    "l": "ł",
    "L": "Ł",
    "i": "ı",
}
_LATEX_ACCENT = re.compile(
    r"\\([`'^\"~=.]|[uvHckr](?![A-Za-z]))\s*(?:\{\s*(\\?[A-Za-z])\s*\}|(\\?[A-Za-z]))"
)
_LATEX_SYMBOL = re.compile(r"\\(ss|ae|AE|oe|OE|aa|AA|o|O|l|L|i)(?![A-Za-z])\s*(?:\{\})?")
_LATEX_ESC = re.compile(r"\\([&%$#_{}])")
_ESC_HOLD = {"{": "\x01", "}": "\x02"}
_LATEX_CMD = re.compile(r"\\[A-Za-z]+\*?\s*")


def latex_to_text(s: str) -> str:
    """BibTeX/LaTeX value -> plain Unicode: accents (``{\\"u}``, ``\\'{e}``, ``\\c c``),
    symbols (``\\ss``, ``\\o``), escapes (``\\&``, ``\\_``), ``--`` dashes; other commands
    (``\\textit``) and protective braces dropped."""
    if "\\" in s:

        def _acc(m):
            base = m.group(2) or m.group(3)
            if base.startswith("\\"):
                base = _SYMBOLS.get(base[1:], base[1:])
            return base + _ACCENTS[m.group(1)]

        s = _LATEX_ACCENT.sub(_acc, s)
        s = _LATEX_SYMBOL.sub(lambda m: _SYMBOLS[m.group(1)], s)
        s = _LATEX_ESC.sub(lambda m: _ESC_HOLD.get(m.group(1), m.group(1)), s)
        s = _LATEX_CMD.sub("", s)
    if "--" in s:
        s = s.replace("---", "—").replace("--", "–")
    if "{" in s or "}" in s:
        s = s.replace("{", "").replace("}", "")
    if "\x01" in s or "\x02" in s:
        s = s.replace("\x01", "{").replace("\x02", "}")
    if "~" in s:
        s = s.replace("~", " ")
    return unicodedata.normalize("NFC", s) if not s.isascii() else s
