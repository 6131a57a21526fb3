"""Pairwise scoring: the evidence that two records are the same bibliographic record.

The score is a sum of evidence weights in log-odds units (Fellegi-Sunter style), one term per
field that both records carry; a field missing on either side adds nothing. The weights are
set by hand from what a field's agreement or disagreement means, then checked on the labelled
sets (``benchmarks/dedup_bench.py``); they are listed in :data:`WEIGHTS` and stored with every
result (provenance). A term and its weight are recorded as the link's ``evidence``.

Hard rules (the pair is kept apart whatever the other fields say; ``evidence["rule"]`` names
the rule that decided):

* ``different-pmid``: both records carry a valid PMID and they differ. A PMID names one
  PubMed record, so two different PMIDs are two different reports.
* ``erratum-vs-article``: exactly one of the two is an erratum/correction/retraction notice.
* ``comment-vs-article``: exactly one of the two is a comment/reply ("Reply to ...").

Soft rules that keep a pair out of the automatic merge (it can still be queued):

* ``conference-vs-article``: one is a conference abstract/proceedings and the other a journal
  article in another venue (Rathbone: the abstract and the later article are different
  records). A supplement abstract in the same journal is told apart by its pages (``S42`` vs
  ``1324``) instead: exports describe one abstract as a "conference" or not inconsistently.
  Not applied when year, volume and page range agree (a proceedings volume in a book series:
  one publication, whatever its type says).
* ``different-numbers``: the titles carry different numbers ("Part I" vs "Part II", "2015" vs
  "2016"), as in series and annual updates. Roman numerals count as their value. Not applied
  when the citation address (year, first page, and volume or journal + page range) agrees:
  then the difference is a typo ("p16"/"p6").

Evidence beyond plain field comparisons: ``locator_equal`` (year + first page + volume, or
journal + page range when a volume is missing) and ``range_equal`` (the last page too);
``doi_title_authors`` (a DOI shared by records with the same title and author list: one
article, although a DOI alone is never decisive); ``title_translated``. Pages are no evidence
when one record is ahead of print (no volume, paged from 1), nor is a volume equal to the
record's year evidence against another volume.
"""

from __future__ import annotations

import math
import re

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from metasift.dedup.normalize import Norm, journals_match

# evidence weights (log-odds units); see the module docstring
WEIGHTS: dict[str, float] = {
    "title_exact": 9.0,  # normalised titles equal
    "title_095": 7.0,  # similarity >= 0.95 (typos, punctuation, a missing word)
    "title_090": 4.5,
    "title_080": 1.5,
    "title_060": -3.0,
    "title_low": -7.0,  # below 0.6: different works unless much else agrees
    # a translated title ("[...]" in MEDLINE) against another translation or the original,
    # when year, volume, first page, journal and first author all agree (replaces the
    # title term below 0.9)
    "title_translated": 2.0,
    "title_long": 1.0,  # a matching title of 8+ words is rarely shared by two works
    "title_short": -2.0,  # a matching title of < 4 words ("Editorial introduction") says little
    "year_equal": 1.0,
    "year_off1": -0.5,  # online-first vs print year
    "year_off": -4.0,
    "author_first_equal": 1.5,
    "author_first_close": 0.5,  # transliteration / typo (Vishnevskii vs Vishnevski)
    "author_first_differ": -3.0,
    "author_order_differs": 0.0,  # first author of one is 2nd/3rd of the other, or names swapped
    "authors_all_close": 1.0,
    "volume_equal": 1.0,
    "volume_differ": -2.5,
    "page_equal": 2.5,
    "locator_equal": 3.0,  # year + volume + first page all equal: a citation's address
    "range_equal": 1.0,  # ... and the same last page of a multi-page range
    "page_differ": -4.0,
    "last_page_differ": -3.0,  # same first page, end 4+ pages apart: a recurring column
    "issue_differ": -1.5,
    "journal_equal": 0.5,
    "journal_differ": -1.0,
    "doi_equal": 2.5,  # DOIs are shared by chapters/supplements and mistyped: never decisive
    "doi_differ": -2.5,
    "doi_title_authors": 1.5,  # DOI, title (>= 0.95) and author list all agree
    "pmid_equal": 6.0,
    "abstract_equal": 2.0,
    "abstract_differ": -2.5,
    "conference_vs_article": -4.0,
    "different_numbers": -5.0,
}

# The logistic transform that maps summed evidence to the reported score in [0, 1]: the
# midpoint sits between a good title match (+7) and the corroboration an automatic merge needs.
SCORE_CENTRE = 9.0
SCORE_SCALE = 1.5


def to_score(weight: float) -> float:
    return 1.0 / (1.0 + math.exp(-(weight - SCORE_CENTRE) / SCORE_SCALE))


def title_similarity(a: Norm, b: Norm) -> float:
    """Best normalised-Levenshtein similarity over the title forms of both records."""
    if not a.title or not b.title:
        return 0.0
    # compared without spaces: "alphavbeta3" / "(alpha)v(beta)3", "co-administration" /
    # "coadministration" differ only in word breaks
    best = Levenshtein.normalized_similarity(a.title_key, b.title_key)
    if best < 0.95:
        # one title is the other plus a subtitle, or cut off by the database (200 characters)
        short, long_ = (a.title, b.title) if len(a.title) <= len(b.title) else (b.title, a.title)
        # or with a leading label dropped ("From the cover: ...", "Hyred: Hybrid job ...")
        if (
            (long_.startswith(short) or long_.endswith(short))
            and len(short) >= 20
            and short.count(" ") >= 2
        ):
            best = max(best, 0.95 if len(short) >= 40 else 0.9)
    if best >= 0.99 or not (a.title_alts or b.title_alts):
        return best
    for x in (a.title, *a.title_alts):
        for y in (b.title, *b.title_alts):
            if x is a.title and y is b.title:
                continue
            best = max(
                best, Levenshtein.normalized_similarity(x.replace(" ", ""), y.replace(" ", ""))
            )
    return best


_PAGE_RE = re.compile(r"^([a-z]{0,2})(\d+)$")


def _epub(n: Norm) -> bool:
    """Ahead of print: no volume, and no pages or the article's own pagination from page 1."""
    return not n.volume and (not n.page1 or n.page1 == "1")


def compare_pages(a: Norm, b: Norm) -> bool | None:
    """True: same first page; False: page ranges that cannot be the same article; None: no
    evidence (a page missing or unparseable, an article number against a page range, or an
    ahead-of-print record paged from 1 against the issue's pages)."""
    ma, mb = _PAGE_RE.match(a.page1), _PAGE_RE.match(b.page1)
    if not ma or not mb:
        return None
    if (_epub(a) or _epub(b)) and a.page1 != b.page1:
        return None
    if ma.group(1) != mb.group(1):
        # supplement page S42 vs 1324: different; S42 vs 42: a dropped prefix; e123 vs 45-50:
        # an article number against a page range, no evidence
        if {ma.group(1), mb.group(1)} == {"s", ""} and ma.group(2) != mb.group(2):
            return False
        return None
    if a.page1 == b.page1:
        return True
    a1, b1 = int(ma.group(2)), int(mb.group(2))
    a2 = int(a.page2) if a.page2.isdigit() else a1
    b2 = int(b.page2) if b.page2.isdigit() else b1
    if a1 <= b2 and b1 <= a2:
        return None  # overlapping ranges: a first page taken from the end, a typo
    if bool(a.page2) != bool(b.page2):
        return None  # a lone number against a range: often a page count or an article number
    return False


_PARTICLES = frozenset(
    "de da del della di do dos du des den der van von ter ten le la el al o st mc mac ben bin".split()
)


def _subsequence(short: str, long_: str) -> bool:
    it = iter(long_)
    return all(c in it for c in short)


def names_close(x: str, y: str) -> bool:
    """Family names that differ only by a particle (``vanschil``/``schil``, ``abdelaziz``/
    ``aziz``), letters lost to a bad encoding (``talalaj``/``taaaj``) or a typo."""
    short, long_ = (x, y) if len(x) <= len(y) else (y, x)
    if len(short) < 3:
        return False
    if long_.startswith(short) or long_.endswith(short):
        return True
    if len(short) >= 0.6 * len(long_) and _subsequence(short, long_):
        return True
    return Levenshtein.normalized_similarity(x, y) >= 0.8


def _same_address(a: Norm, b: Norm) -> bool:
    """Same citation address (:func:`_same_locator`) and first author."""
    return bool(
        a.fam1
        and b.fam1
        and (a.fam1 == b.fam1 or names_close(a.fam1, b.fam1))
        and _same_locator(a, b)
    )


def _last_pages_differ(a: Norm, b: Norm) -> bool:
    """Same first page, last pages more than three apart (a last page one to three off is a
    typo or a page of advertisements; "U215" is a database's page code, not a page)."""
    return a.page2.isdigit() and b.page2.isdigit() and abs(int(a.page2) - int(b.page2)) > 3


def _same_range(a: Norm, b: Norm) -> bool:
    """Same first and last page of a range of several pages (not a range from page 1: papers in
    proceedings and ahead-of-print articles are paged from 1)."""
    return bool(
        a.page1
        and a.page1 == b.page1
        and a.page2 == b.page2
        and a.page1 != "1"
        and a.page2.isdigit()
        and a.page1.isdigit()
        and int(a.page2) > int(a.page1)
    )


def _same_locator(a: Norm, b: Norm) -> bool:
    """A citation's address: same year and first page, and the same volume or, when a volume is
    missing, the same journal and page range."""
    if not (a.year and a.year == b.year and a.page1 and a.page1 == b.page1):
        return False
    if a.volume and b.volume:
        return a.volume == b.volume and journals_match(a.journal, b.journal) is not False
    return _same_range(a, b) and journals_match(a.journal, b.journal) is True


def _close(x: str, y: str) -> bool:
    return x == y or (len(x) >= 3 and len(y) >= 3 and names_close(x, y))


def _authors_close(a: Norm, b: Norm) -> bool:
    """The author lists agree: as strings (typos, initials), or name by name: position by
    position ("Pedro" / "Hernandez Pedro", a list cut after a few names), or, for lists of the
    same length, in another order ("Hong, Zheng" / "Zheng, Hong"). A short list whose names
    all appear somewhere in a longer one is not enough: another report by part of a team."""
    if fuzz.ratio(a.authors_key, b.authors_key) >= 90 or (
        fuzz.partial_ratio(a.authors_key, b.authors_key) >= 95
    ):
        return True
    fa, fb = a.fams[:5], b.fams[:5]
    if all(_close(x, y) for x, y in zip(fa, fb, strict=False)):
        return True
    return len(a.fams) == len(b.fams) and all(any(_close(x, y) for y in fb) for x in fa)


def _strong_ids(a: Norm, b: Norm) -> bool:
    return bool(
        (a.dois and a.dois & b.dois)
        or (a.pmid and a.pmid == b.pmid)
        or (a.page1 and a.page1 == b.page1)
        or (a.title_alts or b.title_alts)
    )


def compare(a: Norm, b: Norm) -> tuple[float, dict]:
    """Summed evidence weight and the evidence dict for one pair. A hard rule sets the weight
    to ``-inf`` and names itself in ``evidence["rule"]``."""
    w = WEIGHTS
    ev: dict = {}
    total = 0.0

    def add(name: str, value=None):
        nonlocal total
        total += w[name]
        ev[name] = w[name] if value is None else (w[name], value)

    # --- hard rules ------------------------------------------------------------------------
    if a.pmid and b.pmid and a.pmid != b.pmid:
        return -math.inf, {"rule": "different-pmid", "pmid": (a.pmid, b.pmid)}
    if a.erratum != b.erratum:
        return -math.inf, {"rule": "erratum-vs-article"}
    if a.comment != b.comment:
        return -math.inf, {"rule": "comment-vs-article"}

    # --- title -----------------------------------------------------------------------------
    ts = 1.0 if a.title_key == b.title_key and a.title_key else title_similarity(a, b)
    ts = round(ts, 4)
    if ts < 0.6 and a.title and b.title and not _strong_ids(a, b):
        # dissimilar titles and no shared identifier or locator: the other fields together
        # (at most +7) cannot lift title_low (-7) to the review queue; stop here (speed)
        return w["title_low"], {"title_low": (w["title_low"], ts)}
    if ts < 0.9 and (a.translated or b.translated) and _same_address(a, b):
        add("title_translated", ts)
    elif ts >= 1.0:
        add("title_exact", ts)
    elif ts >= 0.95:
        add("title_095", ts)
    elif ts >= 0.90:
        add("title_090", ts)
    elif ts >= 0.80:
        add("title_080", ts)
    elif ts >= 0.60:
        add("title_060", ts)
    elif a.title and b.title:
        add("title_low", ts)
    if ts >= 0.95:
        nwords = min(a.title.count(" "), b.title.count(" ")) + 1
        if nwords >= 8:
            add("title_long")
        elif nwords < 4:
            add("title_short")
    # "Part 1" vs "Part 2": numbers on both sides, neither set inside the other (a number lost
    # with a dropped "[3H]" or subtitle is not a difference)
    # A citation address (year, volume, first page) that agrees makes the difference a typo
    # ("p16"/"p6", "Val66Met"/"Va166Met"): series and annual updates have other addresses.
    na, nb = a.title_numbers, b.title_numbers
    if na and nb and ts < 1.0 and not (na <= nb or nb <= na) and not _same_locator(a, b):
        add("different_numbers", (sorted(a.title_numbers), sorted(b.title_numbers)))

    # --- year ------------------------------------------------------------------------------
    if a.year and b.year:
        d = abs(a.year - b.year)
        add("year_equal" if d == 0 else "year_off1" if d == 1 else "year_off", (a.year, b.year))

    # --- authors ---------------------------------------------------------------------------
    # a family name that is only a particle ("de", "o", "st") is a parsing remnant: not compared
    if a.fam1 and b.fam1 and a.fam1 not in _PARTICLES and b.fam1 not in _PARTICLES:
        if a.fam1 == b.fam1:
            add("author_first_equal")
        elif names_close(a.fam1, b.fam1):
            add("author_first_close", (a.fam1, b.fam1))
        elif (
            a.fam1 in b.fams[1:3]
            or b.fam1 in a.fams[1:3]
            # given and family swapped or run together ("Lena Lopez Anna" / "Lopez")
            or a.fam1 in b.name1_tokens
            or b.fam1 in a.name1_tokens
        ):
            add("author_order_differs", (a.fam1, b.fam1))
        else:
            add("author_first_differ", (a.fam1, b.fam1))
    if len(a.fams) > 1 and len(b.fams) > 1 and _authors_close(a, b):
        add("authors_all_close")

    # --- venue -----------------------------------------------------------------------------
    # a volume equal to the record's year is often the year exported into the volume field: it
    # does not contradict another volume number
    if (
        a.volume
        and b.volume
        and (a.volume == b.volume or (a.volume != str(a.year) and b.volume != str(b.year)))
    ):
        add("volume_equal" if a.volume == b.volume else "volume_differ", (a.volume, b.volume))
    pages = compare_pages(a, b)
    if pages is not None:
        add("page_equal" if pages else "page_differ", (a.page1, b.page1))
        if pages and _last_pages_differ(a, b):
            add("last_page_differ", (a.page2, b.page2))
        elif pages and _same_locator(a, b):
            add("locator_equal")
            if _same_range(a, b):
                add("range_equal")
    # issue numbers of 3+ digits are ignored: some exports put a database record number there
    if a.issue and b.issue and len(a.issue) <= 2 and len(b.issue) <= 2 and a.issue != b.issue:
        add("issue_differ", (a.issue, b.issue))
    jm = journals_match(a.journal, b.journal)
    # proceedings titles are not standardised ("AMCIS 2017 Proceedings" / "Americas Conference
    # on Information Systems"): between two conference records the venue is not compared
    if jm or (jm is False and not (a.conference and b.conference)):
        add("journal_equal" if jm else "journal_differ")
    # (an abstract and a later article never share year, volume and page range: a record with
    # that address is one publication however its type is exported)
    # (series and proceedings titles differ for one book: the venue name is not compared)
    if (
        a.conference != b.conference
        and jm is not True
        and not (a.year == b.year and a.volume and a.volume == b.volume and _same_range(a, b))
    ):
        add("conference_vs_article")
        ev["rule"] = "conference-vs-article"

    # --- identifiers -----------------------------------------------------------------------
    if a.dois and b.dois:
        add("doi_equal" if a.dois & b.dois else "doi_differ")
        # A DOI shared by a supplement or a book names records with other titles; one shared by
        # records with the same title and the same authors names one article, whatever its
        # year and volume say (an ahead-of-print record and its issue).
        if "doi_equal" in ev and ts >= 0.95 and "authors_all_close" in ev:
            add("doi_title_authors")
    if a.pmid and b.pmid:  # equal (different PMIDs returned above)
        add("pmid_equal")

    # --- abstract --------------------------------------------------------------------------
    if len(a.abstract) >= 100 and len(b.abstract) >= 100:
        n = min(len(a.abstract), len(b.abstract), 300)
        s = Levenshtein.normalized_similarity(a.abstract[:n], b.abstract[:n])
        if s >= 0.85:
            add("abstract_equal", round(s, 3))
        elif s < 0.5:
            add("abstract_differ", round(s, 3))

    if "different_numbers" in ev and "rule" not in ev:
        ev["rule"] = "different-numbers"
    return total, ev
