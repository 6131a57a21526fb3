"""Normalisation of one record into the comparable keys dedup works on.

Everything here is a pure function of one record, so normalisation costs O(n) and the
result does not depend on input order. Choices (each seen in the labelled sets):

* titles: mojibake repaired (``KÃ¶nig`` -> ``König``), HTML/MathML tags dropped
  (``5-HT<inf>1A</inf>``), accents folded, Greek letters spelled out (``α`` -> ``alpha``),
  everything that is not a letter or digit becomes one space. A MEDLINE translated title
  ``[Effect of ...]`` loses its brackets; ``English title [Original title]`` also yields the
  part outside and the part inside the brackets as alternative titles. British spellings become
  American (``behaviour`` -> ``behavior``, ``randomised`` -> ``randomized``); a spreadsheet
  error value (``#NAME?``) is no title.
* errata, retractions and comments are flagged from the title, conference abstracts from the
  journal/volume/pages/type fields: they are *different reports* of a study, never merged with
  the article (see :mod:`metasift.dedup.scoring`).
* pages: ``221-8`` -> (221, 228); spreadsheet-mangled ``Jul-13`` -> (7, 13); ``e1234`` and
  Cochrane's ``CD006273`` kept; ``742-8; discussion 748-9`` -> (742, 749).
* journals: Embase's ``Neuroscience Bulletin.32 (1) ()(pp 92-98) 2016.Date of ...`` (also
  ``Name.250 ()(pp ...)`` and ``Name.9 (11) (no pagination) 2014.Article Number: e112066``) is
  cut to the name, and volume/issue/pages are taken from it when the own fields are empty.
* DOIs: every ``10.xxxx/...`` in the field (``S0021-...[pii];10.1016/...[doi]``), lower case,
  URL prefixes dropped, URL escapes decoded; a figure/table DOI (``...0094853.g001``) names
  its article.
* years: a year before 1900 that is also the record's issue, volume or page number is that
  field exported into the wrong column, and dropped.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, replace
from urllib.parse import unquote

from metasift.records import RecordData

_GREEK = {
    "α": "alpha",
    "β": "beta",
    "γ": "gamma",
    "δ": "delta",
    "ε": "epsilon",
    "κ": "kappa",
    "λ": "lambda",
    "μ": "mu",
    "ω": "omega",
    "θ": "theta",
    "τ": "tau",
    "σ": "sigma",
    "ψ": "psi",
    "φ": "phi",
    "χ": "chi",
    "π": "pi",
    "ζ": "zeta",
    "η": "eta",
    "ι": "iota",
    "ν": "nu",
    "ξ": "xi",
    "ο": "o",
    "ρ": "rho",
    "υ": "upsilon",
}
_GREEK_RE = re.compile("|".join(_GREEK))
_TAG_RE = re.compile(r"</?[a-zA-Z][^<>]{0,40}>")
_NON_ALNUM_RE = re.compile(r"[^0-9a-z]+")
_NON_ALPHA_RE = re.compile(r"[^a-z]+")
_BRACKET_RE = re.compile(r"\[([^\[\]]{8,})\]")
_ROMAN_ORDER = ["i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii"]
# British and American spellings of one word ("behaviour"/"behavior", "randomised"/"randomized",
# "haemorrhage"/"hemorrhage", "centre"/"center"): both sides are rewritten to the American form,
# so a title that differs only in spelling compares as equal. Applied to every title alike, the
# rewrite can only join words that are spelling variants of each other.
_SPELLING_RE = re.compile(
    r"(?<=[a-z]{3})our(?=s?\b|ed\b|ing\b|al\b|able\b|ite)"  # behaviour, colour, tumour
    r"|(?<=[a-z]{2})is(?=e\b|ed\b|es\b|ing\b|ation|er\b|ers\b)"  # randomised, organisation
    r"|(?<=[a-z]{3})ys(?=e\b|ed\b|ing\b)"  # analysed, paralysed
    r"|\bhaem|\banaem|aem(?=i)|paed|gynaec|\boedem|\boesoph|\boestr|\bfoet|\baetiol|\banaesth"
    r"|\bcaesar|\bcoeliac|\bfaec|(?<=[a-z])oea\b|\b(?:centre|fibre|theatre|litre|metre)"
    r"|\bprogramme|\bageing\b|\bsulph"
)
_SPELLING = {
    "our": "or",
    "is": "iz",
    "ys": "yz",
    "haem": "hem",
    "anaem": "anem",
    "aem": "em",
    "paed": "ped",
    "gynaec": "gynec",
    "oedem": "edem",
    "oesoph": "esoph",
    "oestr": "estr",
    "foet": "fet",
    "aetiol": "etiol",
    "anaesth": "anesth",
    "caesar": "cesar",
    "coeliac": "celiac",
    "faec": "fec",
    "oea": "ea",
    "centre": "center",
    "fibre": "fiber",
    "theatre": "theater",
    "litre": "liter",
    "metre": "meter",
    "programme": "program",
    "ageing": "aging",
    "sulph": "sulf",
}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DOI_RE = re.compile(r"10\.\d{4,9}/[^\s\[\];,]+", re.I)
_DOI_PART_RE = re.compile(r"(?<=\.\d{7})\.[gst]\d{3}$")
_EMBASE_JOURNAL_RE = re.compile(
    r"^(?P<name>.*?)\.?(?P<vol>[0-9A-Za-z\- ]*)\s*\((?P<iss>[^)]*)\)\s*\(\)\s*\(pp\s*(?P<pp>[^)]*)\)"
)
# the other Embase tails: "Name.250 ()(pp 260-269) 2013.Date ...", "Name.9 (11) (no pagination)
# 2014.Article Number: e112066.Date ...", "Name.5 JAN (no pagination) 2014.Article Number: 00025"
_EMBASE_TAIL_RE = re.compile(
    r"\.(?P<vol>[0-9A-Za-z\-]*)\s*(?:\((?P<iss>[^)]*)\)|[A-Z]{3})?\s*"
    r"(?:\(\)\s*\(pp\s*(?P<pp>[^)]*)\)|\(no pagination\)"
    r"(?:\s*\d{4}\.Article Number:\s*(?P<art>[0-9A-Za-z]+))?)"
)
_ERRATUM_RE = re.compile(
    r"^(erratum|errata|corrigendum|correction|corrections|retraction|retracted|"
    r"notice of retraction|expression of concern|withdrawn|author correction|publisher correction)\b"
    r"|\b(erratum|corrigendum)$"
)
_LANGUAGES = (
    r"(?:german|french|spanish|italian|portuguese|russian|polish|chinese|japanese|korean|"
    r"hungarian|czech|slovak|dutch|danish|swedish|norwegian|finnish|turkish|greek|hebrew|"
    r"bulgarian|romanian|serbian|croatian|ukrainian|persian|arabic|lithuanian|estonian)"
)
# notes that databases append to titles; they say nothing about the work itself
_NOTE_RE = re.compile(
    r"\[(?:review|editorial|comment|letter|abstract|english abstract|see comments?|news|proc|"
    r"proceedings|"
    r"\d+ refs?|article in [^\]]*|erratum[^\]]*|retraction[^\]]*|comment[^\]]*|"
    r"corrected[^\]]*|published erratum[^\]]*|update[^\]]*|" + _LANGUAGES + r")(?:\]|$)"
    r"|\.\s*(?:" + _LANGUAGES + r")\s*$"
    r"|\((?:structured|provisional)? ?abstract\)|\(author'?s? transl\)",
)
_COMMENT_RE = re.compile(
    r"^(comment on|comments on|reply|response to|in reply|re |letter to the editor|"
    r"authors reply|author reply)\b|\b(authors? (reply|response)|reply)$"
)
# "proceedings" alone is not a sign (Proceedings of the National Academy of Sciences)
_CONF_RE = re.compile(
    r"\b(abstracts?|meeting|meetingabstracts|congress|conference|symposium|suppl|supplement)\b"
)
_PAREN_TAIL_RE = re.compile(r"\(([^()]{20,})\)\s*\.?$")
_PAGE_NUM_RE = re.compile(r"^([a-z]{0,2})0*(\d+)")
_MONTH_FIRST_RE = re.compile(r"^([a-z]{3})-(\d{1,2})$")
_MONTH_LAST_RE = re.compile(r"^(\d{1,2})-([a-z]{3})$")
_PAGE_SPLIT_RE = re.compile(r"\s*(?:-+|–|—|to)\s*")
_PAGE_PARTS_RE = re.compile(r"^([a-z]{0,2})(\d+)$")
_DIGITS_RE = re.compile(r"\d+")
_JOURNAL_SPLIT_RE = re.compile(r"\s*=\s*|\s*:\s*\[")
_JOURNAL_NOISE_RE = re.compile(r"\([^)]*\)|\[[^\]]*\]|\b\d+(st|nd|rd|th)?\b")
_TRANSLATED_RE = re.compile(r"^\W*\[|<original>|\]\W*$|;\s*[a-z]")
_VALID_PAGE_RE = re.compile(r"^[a-z]{0,2}\d+$")  # 123, e1234, S42, CD006273 (Cochrane)
_ROMAN = set(_ROMAN_ORDER)
_ROMAN_VALUE = {r: str(i + 1) for i, r in enumerate(_ROMAN_ORDER)}
_NUM_TOKEN_RE = re.compile(r"\b(\d+|part [a-z0-9]+)\b")


def fix_mojibake(s: str) -> str:
    """Repair UTF-8 text that was decoded as Latin-1/cp1252 (``KÃ¶nig``); else unchanged."""
    if "Ã" in s or "â€" in s or "Â" in s:
        for enc in ("cp1252", "latin-1"):
            try:
                return s.encode(enc).decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                continue
    return s


def fold(s: str) -> str:
    """Lower case, accents dropped, Greek letters spelled out, tags dropped."""
    if not s:
        return ""
    if "&" in s and ";" in s:
        s = html.unescape(s)  # "&amp;", "&#946;"
    if "<" in s:
        s = _TAG_RE.sub("", s)
    if s.isascii():
        return s.lower().replace("&", " and ")
    s = fix_mojibake(s)
    s = _GREEK_RE.sub(lambda m: _GREEK[m.group(0)], s.lower())
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    return s.replace("&", " and ").replace("ß", "ss")


def norm_text(s: str) -> str:
    """Folded text with only letters/digits, single spaces."""
    return _NON_ALNUM_RE.sub(" ", fold(s)).strip()


def strip_notes(folded_title: str) -> str:
    """Drop database notes: ``[Review] [53 refs]``, ``[Erratum appears in ...]``,
    ``(Structured abstract)``."""
    if "[" not in folded_title and "(" not in folded_title and "." not in folded_title:
        return folded_title
    return _NOTE_RE.sub(" ", folded_title)


def title_variants(title: str) -> tuple[str, tuple[str, ...]]:
    """The main normalised title and alternative forms (outside / inside brackets, the
    original-language title Embase puts on a second line)."""
    alts: list[str] = []
    if "\n" in title:
        title, _, rest = title.partition("\n")
        alt = norm_text(rest)
        if len(alt) >= 10:
            alts.append(alt)
    t = strip_notes(strip_notes(fold(title)).strip()).strip()
    t = _SPELLING_RE.sub(lambda m: _SPELLING[m.group(0)], t)
    for m in _BRACKET_RE.finditer(t):
        inner = norm_text(m.group(1))
        outer = norm_text(t[: m.start()] + " " + t[m.end() :])
        # an alternative title has at least three words ("[proceedings]" is not a title)
        if len(outer) >= 15 and outer.count(" ") >= 2:
            alts.append(outer)
        if len(inner) >= 15 and inner.count(" ") >= 2:
            alts.append(inner)
    main = _NON_ALNUM_RE.sub(" ", t).strip()
    # "Original title (English title)": Embase keeps both; the parenthesised part is an alternative
    m = _PAREN_TAIL_RE.search(t)
    if m and m.start() > 20:
        alts.append(norm_text(m.group(1)))
        alts.append(norm_text(t[: m.start()]))
    return main, tuple(a for a in dict.fromkeys(alts) if a != main)


def norm_doi(s: str) -> frozenset[str]:
    """Every DOI in a field, lower case, without URL prefix or trailing punctuation."""
    if not s:
        return frozenset()
    out = set()
    if "%" in s:
        s = unquote(s)  # "10.1016/S0065-2660%2807%2900421-X" -> "...(07)00421-X"
    for m in _DOI_RE.finditer(s):
        d = m.group(0).lower().rstrip(".)")
        # a figure, table or supplement of an article ("...pone.0094853.g001") names the article
        d = _DOI_PART_RE.sub("", d)
        if len(d) > 8:
            out.add(d)
    return frozenset(out)


def norm_pmid(s: str) -> str:
    s = (s or "").strip()
    return s if s.isdigit() and 1 <= len(s) <= 9 and int(s) > 0 else ""


def _page_num(p: str) -> str:
    p = p.strip().lower()
    m = _PAGE_NUM_RE.match(p)
    if m:
        return m.group(1) + m.group(2)
    return p


def norm_pages(s: str) -> tuple[str, str]:
    """(first page, last page) as strings; '' when absent. ``221-8`` -> ('221', '228')."""
    s = fold(s).strip()
    if not s or s in {"n/a", "na", "unknown", "-"}:
        return "", ""
    # spreadsheet damage: "7-13" stored as the date "Jul-13", "13-Jul" or "2013-07-13"
    m = _MONTH_FIRST_RE.match(s)
    if m and m.group(1) in _MONTHS:
        s = f"{_MONTHS[m.group(1)]}-{m.group(2)}"
    m = _MONTH_LAST_RE.match(s)
    if m and m.group(2) in _MONTHS:
        s = f"{m.group(1)}-{_MONTHS[m.group(2)]}"
    s, _, extra = s.partition(";")
    parts = [p for p in _PAGE_SPLIT_RE.split(s, maxsplit=1) if p]
    if not parts:
        return "", ""
    first = _page_num(parts[0])
    last = _page_num(parts[1]) if len(parts) > 1 else ""
    mf = _PAGE_PARTS_RE.match(first)
    ml = _PAGE_PARTS_RE.match(last)
    if mf and ml:
        pre, d1 = mf.groups()
        d2 = ml.group(2)
        if len(d2) < len(d1):
            d2 = d1[: len(d1) - len(d2)] + d2  # 221-8 -> 228, H1380-6 -> H1386
        last = (ml.group(1) or pre) + d2
        # "742-8; discussion 748-9": the discussion that follows the article ends its range
        extra = extra.strip()
        if extra.startswith("discussion") and not ml.group(1):
            d_first, d_last = norm_pages(extra[len("discussion") :])
            if d_first.isdigit() and d_last.isdigit() and 0 <= int(d_first) - int(d2) <= 1:
                last = d_last
    return first, last


def norm_volume(s: str) -> str:
    s = fold(s).strip()
    m = _DIGITS_RE.search(s)
    return m.group(0).lstrip("0") or "0" if m else ""


def split_embase_journal(journal: str) -> tuple[str, str, str, str]:
    """``Name.32 (1) ()(pp 92-98) 2016.Date of ...`` -> (name, volume, issue, pages)."""
    m = _EMBASE_JOURNAL_RE.match(journal)
    if m:
        return m.group("name").strip(" ."), m.group("vol").strip(), m.group("iss"), m.group("pp")
    if "(no pagination)" in journal or "()(pp" in journal:
        m = _EMBASE_TAIL_RE.search(journal)
        if m:
            pp = m.group("pp") or m.group("art") or ""
            return journal[: m.start()].strip(" ."), m.group("vol"), m.group("iss") or "", pp
    return journal, "", "", ""


def norm_journal(s: str) -> str:
    """Journal name as lower-case words (abbreviation dots become word breaks)."""
    s = fold(s)
    s = _JOURNAL_SPLIT_RE.split(s)[0]  # "Zhonghua ... = Chinese journal of ..." -> first
    # "(1985)", "[Electronic Resource]", "(Munich, Germany : 1983)", years and edition numbers
    s = _JOURNAL_NOISE_RE.sub(" ", s)
    # "Harvard women's health watch" / "Harv Womens Health Watch": the apostrophe joins
    return _NON_ALNUM_RE.sub(" ", s.replace("'", "").replace("\u2019", "")).strip()


_JOURNAL_STOP = {"of", "the", "and", "for", "in", "on", "de", "la", "und", "der", "des", "et"}


def journal_tokens(j: str) -> tuple[str, ...]:
    return tuple(t for t in j.split() if t not in _JOURNAL_STOP)


def _abbreviates(abbr: str, word: str) -> bool:
    """``natl`` abbreviates ``national``: same first letter, letters in order."""
    if abbr == word:
        return True
    if not abbr or not word or abbr[0] != word[0] or len(abbr) > len(word):
        return False
    it = iter(word)
    return all(c in it for c in abbr)


def journals_match(a: tuple[str, ...], b: tuple[str, ...]) -> bool | None:
    """True if the same journal (equal, or one abbreviates the other token by token, in order,
    allowing dropped words: ``proc natl acad sci`` / ``proceedings national academy sciences``),
    False if clearly different, None if unknown."""
    if not a or not b:
        return None
    if a == b or "".join(a) == "".join(b):  # "ScientificWorldJournal" / "Scientific World ..."
        return True
    short, long_ = (a, b) if sum(map(len, a)) <= sum(map(len, b)) else (b, a)
    j = 0
    for tok in short:
        while j < len(long_) and not _abbreviates(tok, long_[j]):
            j += 1
        if j == len(long_):
            return False
        j += 1
    return True


def family_key(family: str) -> str:
    """Letters only, lower case, accents folded: ``Vázquez-Martínez`` -> ``vazquezmartinez``."""
    return _NON_ALPHA_RE.sub("", fold(family))


@dataclass(slots=True)
class Norm:
    """The comparable form of one record (internal)."""

    title: str
    title_alts: tuple[str, ...]
    title_key: str  # title without spaces, for exact blocking
    title_numbers: frozenset[str]  # numbers / part labels in the title (Part I vs Part II)
    year: int | None
    fam1: str
    name1_tokens: frozenset[str]  # every word of the first author's full name (family + given)
    fams: tuple[str, ...]
    authors_key: str
    journal: tuple[str, ...]
    volume: str
    issue: str
    page1: str
    page2: str
    dois: frozenset[str]
    pmid: str
    abstract: str
    erratum: bool
    translated: bool  # MEDLINE's "[Translated title]" or a bilingual title
    comment: bool
    conference: bool
    sort_key: tuple  # content-only key: ties broken by content, never by input position


# spreadsheet error values exported in place of a title ("#NAME?" for a title that began with
# "="): they say nothing about the work
_SHEET_ERROR_RE = re.compile(r"^#(?:name\?|value!|ref!|n/a|div/0!|num!|null!)$", re.I)


def normalize(r: RecordData) -> Norm:
    if r.title and _SHEET_ERROR_RE.match(r.title.strip()):
        r = replace(r, title="")
    title, alts = title_variants(r.title or "")
    ftitle = _NON_ALNUM_RE.sub(" ", strip_notes(fold(r.title or ""))).strip()
    erratum = bool(_ERRATUM_RE.search(ftitle))
    comment = bool(_COMMENT_RE.search(ftitle))
    words = title.split()
    # roman numerals count as their value ("Part II" = "Part 2")
    nums = frozenset(_DIGITS_RE.findall(title)) | frozenset(
        _ROMAN_VALUE[w] for w in words if w in _ROMAN and len(words) > 3 and w != "i"
    )
    journal_raw, jvol, jiss, jpp = split_embase_journal(r.journal or "")
    volume = norm_volume(r.volume or jvol)
    issue = norm_volume(r.issue or jiss)
    page1, page2 = norm_pages(r.pages or jpp)
    if (r.year and page1 == str(r.year)) or not _VALID_PAGE_RE.match(page1):
        # the year or a month exported into the pages field: use Embase's "(pp ...)" if any
        page1, page2 = norm_pages(jpp) if jpp else ("", "")
    journal = journal_tokens(norm_journal(journal_raw))
    year = r.year
    if year and year < 1900:
        # an issue or page number exported into the year field ("373 (1754)" -> year 1754)
        fields = " ".join((r.volume or "", r.issue or "", r.pages or "", jvol, jiss, jpp))
        if str(year) in _DIGITS_RE.findall(fields):
            year = None
    fams = tuple(k for k in (family_key(a.family) for a in r.authors[:12]) if k)
    conf_text = " ".join(
        [
            " ".join(journal),
            norm_text(r.volume or ""),
            norm_text(r.issue or ""),
            (r.publication_type or "").lower(),
        ]
    )
    conference = bool(
        _CONF_RE.search(conf_text)
        or (r.publication_type or "").lower() in {"inproceedings", "conference", "conf", "abst"}
        or page1[:1] == "s"
        and page1[1:2].isdigit()
    )
    abstract = norm_text(r.abstract[:400]) if r.abstract else ""
    norm = Norm(
        title=title,
        title_alts=alts,
        title_key=title.replace(" ", ""),
        title_numbers=nums,
        year=year,
        fam1=fams[0] if fams else "",
        name1_tokens=frozenset(
            k
            for w in (f"{r.authors[0].family} {r.authors[0].given}" if r.authors else "").split()
            if len(k := family_key(w)) >= 3
        ),
        fams=fams,
        authors_key="".join(fams),
        journal=journal,
        volume=volume,
        issue=issue,
        page1=page1,
        page2=page2,
        dois=norm_doi(r.doi or ""),
        pmid=norm_pmid(r.pmid or ""),
        abstract=abstract,
        erratum=erratum,
        translated=bool(_TRANSLATED_RE.search(fold(r.title or ""))),
        comment=comment,
        conference=conference,
        sort_key=(),
    )
    norm.sort_key = (
        title,
        year or 0,
        norm.authors_key,
        " ".join(journal),
        volume,
        issue,
        page1,
        page2,
        tuple(sorted(norm.dois)),
        norm.pmid,
        abstract,
        r.title or "",
        r.journal or "",
        "|".join(f"{a.family},{a.given}" for a in r.authors),
        r.doi or "",
        r.pages or "",
    )
    return norm
