"""Hypothesis: write -> read round trips (RIS, CSV, BibTeX) give back the same normalised records
and annotations; fuzzed bytes and text into every reader raise only ImportFormatError."""

from __future__ import annotations

import dataclasses
import io
import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metasift import plugins, sources
from metasift.errors import ImportFormatError
from metasift.records import Author, RecordData
from metasift.sources import normalise as nz
from metasift.sources.writers import to_string

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_counter = itertools.count()

# Text the writers must carry unchanged: letters (with precomposed accents), digits and ordinary
# punctuation, single-spaced. Characters with a syntax meaning in one of the formats that the
# readers deliberately interpret (HTML '<' '&', LaTeX '\\' '{' '}' '~' '$' '%' '#' '_' '^') are
# left out: a title "a &amp; b" reads back as "a & b" by design.
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZÅ"
LOWER = "abcdefghijklmnopqrstuvwxyzàéöüçñ"
DIGITS = "0123456789"
ALNUM = UPPER + LOWER + DIGITS
# from_regex is slow to generate; these are built from plain alphabets instead.
WORD = st.builds(
    lambda a, b: a + b,
    st.sampled_from(ALNUM),
    st.text(ALNUM + "'.:()/?!,;-", max_size=10),
)
SENTENCE = st.lists(WORD, min_size=1, max_size=12).map(" ".join)
CAP = st.builds(lambda a, b: a + b, st.sampled_from(UPPER), st.text(LOWER, min_size=1, max_size=8))
FAMILY = st.builds(
    lambda p, a, b: p + a + b,
    st.sampled_from(["", "", "van ", "de "]),
    CAP,
    st.one_of(st.just(""), CAP.map(lambda c: "-" + c)),
)
GIVEN = st.one_of(
    st.just(""),
    st.sampled_from(UPPER),
    st.sampled_from(UPPER).map(lambda c: c + "."),
    CAP,
    st.builds(lambda a, b: f"{a} {b}.", CAP, st.sampled_from(UPPER)),
)
KEYWORD = st.lists(st.text(ALNUM, min_size=1, max_size=8), min_size=1, max_size=3).map(" ".join)
DIGITS_ = st.text(DIGITS, min_size=1, max_size=4)
DOI = st.builds(
    lambda reg, a, mid, b: f"10.{reg}/{a}{mid}{b}",
    st.text(DIGITS, min_size=4, max_size=5),
    st.sampled_from("abcdefghij0123456789"),
    st.text("abcdefghij0123456789.()-", max_size=10),
    st.sampled_from("abcdefghij0123456789"),
)


def _opt(strategy):
    return st.one_of(st.just(""), strategy)


@st.composite
def records(draw):
    return RecordData(
        title=draw(SENTENCE),
        abstract=draw(st.one_of(st.just(""), st.lists(WORD, max_size=40).map(" ".join))),
        authors=draw(st.lists(st.builds(Author, FAMILY, GIVEN), max_size=5)),
        year=draw(st.one_of(st.none(), st.integers(1800, 2100))),
        journal=nz.journal(draw(st.one_of(st.just(""), SENTENCE))),
        volume=draw(_opt(DIGITS_)),
        issue=draw(_opt(DIGITS_)),
        pages=draw(
            _opt(
                st.one_of(
                    DIGITS_,
                    st.builds(lambda a, b: f"{a}-{b}", DIGITS_, DIGITS_),
                    DIGITS_.map(lambda d: "e" + d),
                )
            )
        ),
        doi=draw(_opt(DOI)),
        pmid=draw(_opt(st.integers(1, 10**9 - 1).map(str))),
        keywords=draw(st.lists(KEYWORD, max_size=6)),
        language=draw(st.sampled_from(["", "English", "eng", "French"])),
        publication_type=draw(st.sampled_from(["Article", "Review", "Journal Article"])),
        source_database=draw(st.sampled_from(["", "Embase", "Scopus", "PubMed"])),
        accession_number=draw(_opt(st.text(UPPER[:26] + DIGITS, min_size=3, max_size=10))),
        issn=draw(
            _opt(
                st.builds(
                    lambda a, b, c: f"{a}-{b}{c}",
                    st.text(DIGITS, min_size=4, max_size=4),
                    st.text(DIGITS, min_size=3, max_size=3),
                    st.sampled_from(DIGITS + "X"),
                )
            )
        ),
        url=draw(
            _opt(
                st.text("abcdefghij", min_size=1, max_size=10).map(
                    lambda x: "https://example.org/" + x
                )
            )
        ),
    )


ANNOTATION = st.fixed_dictionaries(
    {
        "decision": st.sampled_from(["include", "exclude", "maybe"]),
        "stage": st.sampled_from(["title_abstract", "full_text"]),
    },
    optional={
        "reason": SENTENCE,
        "labels": st.lists(
            st.builds(
                lambda a, b: a + b,
                st.sampled_from(LOWER),
                st.text(LOWER + DIGITS + "_-", max_size=10),
            ),
            min_size=1,
            max_size=3,
        ),
        "notes": SENTENCE,
    },
)
COMPARED = [
    f.name for f in dataclasses.fields(RecordData) if f.name not in ("raw", "line", "label")
]
SUFFIX = {"ris": ".ris", "csv": ".csv", "bibtex": ".bib"}


def _view(r: RecordData) -> dict:
    d = {k: getattr(r, k) for k in COMPARED}
    d["keywords"] = [k for k in r.keywords if not k.startswith("metasift:")]
    return d


def _roundtrip(tmp_dir, recs, fmt, annotations=None):
    path = tmp_dir / f"rt{next(_counter)}{SUFFIX[fmt]}"
    sources.write(recs, fmt, path, annotations=annotations)
    return sources.read(path)


@pytest.mark.parametrize("fmt", ["ris", "csv", "bibtex"])
def test_round_trip_is_identity_on_normalised_records(tmp_path_factory, fmt):
    tmp_dir = tmp_path_factory.mktemp(fmt)

    @SETTINGS
    @given(st.lists(records(), min_size=1, max_size=5))
    def check(recs):
        res = _roundtrip(tmp_dir, recs, fmt)
        assert res.format == ("bibtex" if fmt == "bibtex" else fmt)
        assert res.problems == []
        assert [_view(r) for r in res.records] == [_view(r) for r in recs]

    check()


@pytest.mark.parametrize("fmt", ["ris", "csv", "bibtex"])
def test_round_trip_keeps_annotations(tmp_path_factory, fmt):
    tmp_dir = tmp_path_factory.mktemp(fmt + "ann")

    @SETTINGS
    @given(st.lists(st.tuples(records(), st.one_of(st.none(), ANNOTATION)), min_size=1, max_size=4))
    def check(pairs):
        recs = [p[0] for p in pairs]
        anns = [p[1] for p in pairs]
        res = _roundtrip(tmp_dir, recs, fmt, anns)
        assert [_view(r) for r in res.records] == [_view(r) for r in recs]
        assert [sources.annotation_of(r) for r in res.records] == [a or None for a in anns]
        if fmt != "csv":  # decisions and labels become tags that Zotero/EndNote keep
            for r, a in zip(res.records, anns, strict=True):
                tags = {k for k in r.keywords if k.startswith("metasift:")}
                want = set()
                if a:
                    want = {f"metasift:{a['decision']}"} | {
                        f"metasift:label:{x}" for x in a.get("labels", [])
                    }
                assert tags == want

    check()


def test_round_trip_of_the_corpus_through_every_writer(shared_dir, tmp_path):
    """Real records (accents, long abstracts, many authors) survive RIS, CSV and BibTeX."""
    base = shared_dir / "corpus" / "imports"
    recs = []
    for rel in (
        "ris/embase_elsevier.ris",
        "nbib/pubmed_synthesisr.txt",
        "csv/scopus.csv",
        "bibtex/zotero.bib",
    ):
        recs += sources.read(base / rel).records[:5]
    for fmt in ("ris", "csv", "bibtex"):
        back = _roundtrip(tmp_path, recs, fmt).records
        assert [_view(r) for r in back] == [_view(r) for r in recs], fmt


def test_write_to_an_open_file_and_bad_parameters():
    r = RecordData(title="A title", authors=[Author("Smith", "J")], year=2020)
    text = to_string([r], "ris")
    assert text.startswith("TY  - JOUR\n") and "AU  - Smith, J\n" in text and "PY  - 2020\n" in text
    buf = io.StringIO()
    assert sources.write([r], "bibtex", buf) == 1
    assert "author = {Smith, J}" in buf.getvalue()
    with pytest.raises(ValueError, match="'fmt' parameter"):
        sources.write([r], "docx", io.StringIO())
    with pytest.raises(ValueError, match="annotations"):
        sources.write([r], "ris", io.StringIO(), annotations=[None, None])


# ---------------------------------------------------------------- fuzzing


READERS = plugins.names("readers")


def _read_only_typed_errors(path, **kw):
    try:
        res = sources.read(path, **kw)
    except ImportFormatError as e:
        assert e.reason
        return None
    assert all(isinstance(r, RecordData) for r in res.records)
    return res


@pytest.mark.parametrize("fmt", READERS)
def test_fuzzed_bytes_raise_only_import_format_error(tmp_path_factory, fmt):
    tmp_dir = tmp_path_factory.mktemp("fuzz" + fmt)

    @settings(max_examples=40, deadline=None)
    @given(st.binary(max_size=400), st.booleans())
    def check(data, lenient):
        path = tmp_dir / f"f{next(_counter)}.dat"
        path.write_bytes(data)
        _read_only_typed_errors(path, format=fmt, lenient=lenient)
        _read_only_typed_errors(path, lenient=lenient)  # sniffed

    check()


# Text built from the syntax of every format, so the fuzzer gets past the sniffers.
TOKENS = st.sampled_from(
    [
        "TY  - JOUR\n",
        "ER  - \n",
        "AU  - Smith, J\n",
        "PY  - 20x9\n",
        "TI  - ",
        "PMID- 123\n",
        "AB  - text\n",
        "      wrapped\n",
        "FN Clarivate Analytics Web of Science\n",
        "PT J\n",
        "ER\n",
        "EF\n",
        "   cont\n",
        "@article{k,\n",
        "title = {",
        "}",
        "{",
        '"',
        ",\n",
        "@string{a = ",
        " # ",
        "<xml><records><record>",
        "<titles><title>",
        "</title></titles>",
        "</record>",
        "<PubmedArticleSet><PubmedArticle>",
        "</PubmedArticle>",
        "<ArticleTitle>",
        "&amp;",
        "&#0;",
        "title,authors,year\n",
        "a;b;c\n",
        '"x,\n',
        "\t",
        "\r\n",
        "\ufeff",
        "é",
        "\x00",
        "1.\n",
        "Record #1 of 2\n",
        "\\'{e}",
        "\n",
        " ",
    ]
)


@pytest.mark.parametrize("fmt", READERS)
def test_fuzzed_format_like_text_raises_only_import_format_error(tmp_path_factory, fmt):
    tmp_dir = tmp_path_factory.mktemp("fuzzt" + fmt)

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(st.one_of(TOKENS, st.text(max_size=8)), max_size=40),
        st.booleans(),
        st.sampled_from(["utf-8", "cp1252"]),
    )
    def check(parts, lenient, enc):
        path = tmp_dir / f"t{next(_counter)}.txt"
        path.write_bytes("".join(parts).encode(enc, errors="replace"))
        _read_only_typed_errors(path, format=fmt, lenient=lenient)
        _read_only_typed_errors(path, lenient=lenient)

    check()


@pytest.mark.parametrize(
    "rel",
    [
        "ris/embase_elsevier.ris",
        "nbib/pubmed_synthesisr.txt",
        "wos_plaintext/wos_synthesisr.ciw",
        "bibtex/scopus_synthesisr.bib",
        "endnote_xml/zotero_endnote.xml",
        "pubmed_xml/pubmed_result.xml",
        "csv/cochrane_central.csv",
    ],
)
def test_mutated_real_files_raise_only_import_format_error(shared_dir, tmp_path, rel):
    """Cut, splice and flip bytes of real exports (seeded, 40 mutants per file)."""
    data = (shared_dir / "corpus" / "imports" / rel).read_bytes()[:20000]
    rng = random.Random(rel)
    for i in range(40):
        b = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            op = rng.randrange(3)
            pos = rng.randrange(len(b)) if b else 0
            if op == 0:
                del b[pos : pos + rng.randint(1, 200)]
            elif op == 1:
                b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            elif b:
                b[pos] = rng.randrange(256)
        path = tmp_path / f"m{i}{(shared_dir / rel).suffix}"
        path.write_bytes(bytes(b))
        for lenient in (False, True):
            _read_only_typed_errors(path, lenient=lenient)
