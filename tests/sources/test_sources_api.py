"""The public API of metasift.sources: sniffing, streaming, strict/lenient, encodings, the reader
registry, and the normalisation helpers."""

from __future__ import annotations

import dataclasses
import tracemalloc

import openpyxl
import pytest

from metasift import plugins, sources
from metasift.errors import ImportFormatError
from metasift.records import Author, RecordData
from metasift.sources import normalise as nz
from metasift.sources._base import Reader

RIS_RECORD = (
    "TY  - JOUR\nTI  - Trial {i} of &amp; <i>things</i>\nAU  - Smith, John\nAU  - Doe J\n"
    "PY  - 2019///\nDO  - https://doi.org/10.1000/ABC.{i}\nKW  - alpha\nER  - \n\n"
)


def _ris(path, n, newline="\n"):
    text = "".join(RIS_RECORD.format(i=i) for i in range(n))
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


# ---------------------------------------------------------------- registry


def test_every_registered_reader_loads_and_has_sniff_and_read():
    names = plugins.names("readers")
    assert set(names) == {
        "ris",
        "medline",
        "pubmed_xml",
        "bibtex",
        "endnote_xml",
        "csv",
        "xlsx",
        "wos",
    }
    for name in names:
        cls = plugins.load("readers", name)
        assert issubclass(cls, Reader) and cls.format == name
        assert 0.0 <= cls.sniff(b"no format at all", "x.dat") < 0.3
        assert callable(cls().read)


def test_unknown_reader_name_lists_the_valid_ones(tmp_path):
    path = _ris(tmp_path / "a.ris", 1)
    with pytest.raises(ValueError, match="must be one of"):
        sources.read(path, format="endnote")


# ---------------------------------------------------------------- sniffing


def test_format_is_sniffed_from_content_not_name(tmp_path, shared_dir):
    ris_as_txt = _ris(tmp_path / "export.txt", 2)
    assert sources.sniff(ris_as_txt).format == "ris"
    nbib = (shared_dir / "corpus/imports/nbib/pubmed_synthesisr.txt").read_bytes()
    (tmp_path / "pubmed.ris").write_bytes(nbib)
    assert sources.sniff(tmp_path / "pubmed.ris").format == "medline"


def test_sniffed_is_frozen_and_says_encoding_bom_newline_delimiter(tmp_path):
    crlf = _ris(tmp_path / "crlf.ris", 3, newline="\r\n")
    s = sources.sniff(crlf)
    assert (s.format, s.encoding, s.bom, s.newline, s.delimiter) == (
        "ris",
        "utf-8",
        False,
        "\r\n",
        None,
    )
    assert s.assumed_encoding_warning is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.format = "csv"
    assert len(sources.read(crlf).records) == 3
    tsv = tmp_path / "refs.tsv"
    tsv.write_text("Title\tAuthors\tYear\nA study\tSmith, J; Doe, K\t2020\n", encoding="utf-8")
    st = sources.sniff(tsv)
    assert (st.format, st.delimiter) == ("csv", "\t")
    rec = sources.read(tsv).records[0]
    assert (rec.title, [a.family for a in rec.authors], rec.year) == (
        "A study",
        ["Smith", "Doe"],
        2020,
    )


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (b"   \n\n", "blank"),
        (b"Dear colleague,\nplease find the results attached.\n", "unknown format"),
        (b"\x00\x01\x02\x03binary\x00\x00", "binary"),
    ],
)
def test_unreadable_files_raise_import_format_error(tmp_path, content, match):
    path = tmp_path / "x.ris"
    path.write_bytes(content)
    with pytest.raises(ImportFormatError, match=match):
        sources.read(path)
    with pytest.raises(ImportFormatError, match=match):
        sources.iter_records(path, lenient=True)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImportFormatError, match="not found"):
        sources.read(tmp_path / "nope.ris")
    with pytest.raises(ImportFormatError, match="directory"):
        sources.read(tmp_path)


def test_cp1252_and_latin1_fallbacks_warn_what_was_assumed(tmp_path):
    text = (
        "TY  - JOUR\nTI  - Caf\u00e9 \u201cquoted\u201d\nAU  - M\u00fcller, J\nPY  - 2001\nER  - \n"
    )
    p = tmp_path / "win.ris"
    p.write_bytes(text.encode("cp1252"))
    res = sources.read(p)
    assert res.sniffed.encoding == "cp1252"
    assert (
        res.records[0].title == "Caf\u00e9 \u201cquoted\u201d"
        and res.records[0].first_author == "M\u00fcller"
    )
    assert "line 2" in res.warnings[0] and "Windows-1252" in res.warnings[0]
    # 0x81 is not defined in cp1252: Latin-1 is assumed
    p2 = tmp_path / "latin.ris"
    p2.write_bytes(text.encode("cp1252").replace(b"TY  - JOUR", b"TY  - JOUR\nN1  - \x81"))
    res2 = sources.read(p2)
    assert res2.sniffed.encoding == "latin-1" and "Latin-1" in res2.warnings[0]


def test_a_late_non_utf8_byte_is_found_before_reading(tmp_path):
    """The UTF-8 check covers the whole file, not just the head."""
    p = _ris(tmp_path / "late.ris", 2000)
    p.write_bytes(
        p.read_bytes() + "TY  - JOUR\nTI  - Na\u00efve\nPY  - 2000\nER  - \n".encode("cp1252")
    )
    res = sources.read(p)
    assert res.sniffed.encoding == "cp1252"
    assert res.records[-1].title == "Na\u00efve"


def test_utf8_bom_is_reported_and_dropped(tmp_path):
    p = tmp_path / "bom.ris"
    p.write_bytes(b"\xef\xbb\xbf" + RIS_RECORD.format(i=1).encode())
    res = sources.read(p)
    assert res.sniffed.bom and res.records[0].raw["TY"] == ["JOUR"]


# ---------------------------------------------------------------- streaming, strict, lenient


def test_iter_records_streams_with_bounded_memory(tmp_path):
    path = _ris(tmp_path / "big.ris", 3000)
    size = path.stat().st_size
    stream = sources.iter_records(path)
    assert stream.sniffed.format == "ris"  # known before iterating
    tracemalloc.start()
    try:
        n = 0
        for rec in stream:
            n += 1
            assert rec.line == 1 + 9 * (n - 1)  # 8 lines + a blank one per record
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == 3000 and stream.count == 3000
    assert peak < size / 4, (peak, size)  # holding the records would take several times the file


def test_normalised_fields_of_a_record(tmp_path):
    r = sources.read(_ris(tmp_path / "one.ris", 1)).records[0]
    assert r.title == "Trial 0 of & things"  # entity decoded, tag removed
    assert r.authors == [Author("Smith", "John"), Author("Doe", "J")]
    assert r.year == 2019 and r.doi == "10.1000/abc.0"
    assert r.raw["DO"] == ["https://doi.org/10.1000/ABC.0"]  # verbatim
    assert r.line == 1


def test_strict_raises_on_first_problem_lenient_collects_all(tmp_path):
    p = tmp_path / "bad.ris"
    p.write_text(
        "TY  - JOUR\nTI  - ok\nPY  - 2001\nER  - \n"
        "TY  - JOUR\nPY  - 2002\nER  - \n"  # no title (record 2, line 5)
        "TY  - JOUR\nTI  - x\nPY  - someday\nER  - \n"  # no year (record 3, line 10)
        "TY  - JOUR\nTI  - unterminated\n",  # no ER (record 4, line 12)
        encoding="utf-8",
    )
    with pytest.raises(ImportFormatError) as info:
        sources.read(p)
    assert (info.value.line, info.value.record, info.value.field) == (5, 2, "TI")
    assert info.value.sniffed["format"] == "ris" and info.value.sniffed["newline"] == "LF"
    res = sources.read(p, lenient=True)
    assert len(res.records) == 4
    assert [(q["line"], q["record"], q["field"]) for q in res.problems] == [
        (5, 2, "TI"),
        (10, 3, "PY"),
        (12, 4, "ER"),
    ]
    assert (
        "2 problem" not in res.summary() and "problem: line 10, record 3, field PY" in res.summary()
    )
    frame = res.to_frame()
    assert list(frame["title"]) == ["ok", "", "x", "unterminated"] and "raw" not in frame


def test_stream_can_be_iterated_again(tmp_path):
    stream = sources.iter_records(_ris(tmp_path / "r.ris", 3))
    assert [r.title for r in stream] == [r.title for r in stream]


def test_read_result_checksum_and_summary(tmp_path):
    p = _ris(tmp_path / "r.ris", 2)
    res = sources.read(p)
    assert res.checksum == sources.file_checksum(p)
    import hashlib

    assert res.checksum == hashlib.sha256(p.read_bytes()).hexdigest()
    assert "2 record(s), format ris" in res.summary()
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.format = "x"


def test_xlsx_reader(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Title", "Authors", "Year", "DOI", "PubMed ID"])
    ws.append(["First study", "Smith J.; Doe K.", 2018, "doi:10.1000/XYZ", 12345])
    ws.append([None, None, None, None, None])
    ws.append(["Second study", "Roe, Ann", "2019-05-01", None, None])
    p = tmp_path / "refs.xlsx"
    wb.save(p)
    res = sources.read(p)
    assert res.format == "xlsx"
    assert [(r.title, r.first_author, r.year) for r in res.records] == [
        ("First study", "Smith", 2018),
        ("Second study", "Roe", 2019),
    ]
    assert res.records[0].doi == "10.1000/xyz" and res.records[0].pmid == "12345"
    assert res.records[0].line == 2 and res.records[1].line == 4


def test_csv_without_title_column_is_a_located_error(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("Name,Count,Title-ish\na,1,b\n", encoding="utf-8")
    with pytest.raises(ImportFormatError, match="no title column"):
        sources.read(p, format="csv")


def test_ovid_trailer_lines_become_a_warning(shared_dir):
    res = sources.read(shared_dir / "corpus/imports/ris/ovid_psycinfo.ris")
    assert res.problems == [] and "outside records ignored" in res.warnings[0]


# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("10.1000/ABC", "10.1000/abc"),
        ("https://doi.org/10.1000/abc", "10.1000/abc"),
        ("http://dx.doi.org/10.1002/cpp.2398", "10.1002/cpp.2398"),
        ("doi:10.1000/abc.", "10.1000/abc"),
        ("DOI: 10.1000/abc", "10.1000/abc"),
        ("https://x.org/?id=doi:10.4103%2F2303-9027.138783&atitle=Dup", "10.4103/2303-9027.138783"),
        ("10.1111/pai.13110. [Epub ahead of print]", "10.1111/pai.13110"),
        ("not a doi", ""),
        ("10.12/short", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_doi(raw, want):
    assert nz.doi(raw) == want


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("2019", 2019),
        ("2019//", 2019),
        ("2016 Jan 15", 2016),
        ("2014-08-29", 2014),
        ("15/01/2016", 2016),
        ("Spring 1999", 1999),
        (2019.0, 2019),
        (2019, 2019),
        ("In press", None),
        ("n.d.", None),
        ("", None),
        (None, None),
        ("12345", None),
    ],
)
def test_year(raw, want):
    assert nz.year(raw) == want


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("Smith, John", Author("Smith", "John")),
        ("Smith J", Author("Smith", "J")),
        ("Liu R.", Author("Liu", "R.")),
        ("Wilson L.N.", Author("Wilson", "L.N.")),
        ("Costa de Beauregard O.", Author("Costa de Beauregard", "O.")),
        ("John Smith", Author("Smith", "John")),
        ("Ludwig van Beethoven", Author("van Beethoven", "Ludwig")),
        ("World Health Organization,", Author("World Health Organization", "")),
        ("M&uuml;ller, J", Author("Müller", "J")),
        ("Cochrane", Author("Cochrane", "")),
        ("  ", None),
    ],
)
def test_author(raw, want):
    assert nz.author(raw) == want


@pytest.mark.parametrize(
    ("cell", "want"),
    [
        ("Bywater, T; Hutchings, J", ["Bywater, T", "Hutchings, J"]),
        ("Liu R., Adler D.G.", ["Liu R.", "Adler D.G."]),
        ("Nilsson C, Berthold M, Sjölander S.", ["Nilsson C", "Berthold M", "Sjölander S."]),
        ("Smith, John", ["Smith, John"]),
        ("['Marx, Karl', 'Lindgren, Astrid']", ["Marx, Karl", "Lindgren, Astrid"]),
        ("", []),
    ],
)
def test_split_authors(cell, want):
    assert nz.split_authors(cell) == want


def test_text_journal_pmid_issn_pages_latex():
    assert nz.text("  A <i>b</i>&nbsp;c &lt;3 p < 0.05\n d ") == "A b c <3 p < 0.05 d"
    assert nz.text("Cafe\u0301") == "Caf\u00e9"  # NFC
    assert nz.journal("JOURNAL OF APPLIED RESEARCH IN MEMORY AND COGNITION") == (
        "Journal of Applied Research in Memory and Cognition"
    )
    assert nz.journal("Pediatr Allergy Immunol.") == "Pediatr Allergy Immunol"
    assert nz.journal("BMJ") == "BMJ"  # short acronyms kept
    assert [nz.pmid(x) for x in ("PMID: 123", "PUBMED 21314913", "456", 789.0, "abc")] == [
        "123",
        "21314913",
        "456",
        "789",
        "",
    ]
    assert nz.issn("20964129 (ISSN)") == "2096-4129" and nz.issn("1879-102x") == "1879-102X"
    assert nz.pages("152", "160") == "152-160" and nz.pages("134--137") == "134-137"
    assert nz.latex_to_text(
        r"M{\"u}ller and \'{E}tienne {Cocker} 10.1007/9\_3 \textit{x} 1--2"
    ) == ("Müller and Étienne Cocker 10.1007/9_3 x 1–2")
    assert nz.latex_to_text(r"G{\o}rgen \ss{} \c{c}a \{x\}") == "Gørgen ß ça {x}"


def test_record_round_trip_through_to_dict():
    r = RecordData(title="t", authors=[Author("A", "B")], year=2000)
    assert RecordData.from_dict(r.to_dict()) == r


def test_pubmed_current_csv_and_wos_tab_delimited_columns(tmp_path):
    """Column layouts with no sample in the corpus, written here from the vendors' headers."""
    pm = tmp_path / "csv-pubmed.csv"
    pm.write_text(
        "PMID,Title,Authors,Citation,First Author,Journal/Book,Publication Year,Create Date,"
        "PMCID,NIHMS ID,DOI\n"
        '31301691,Allergen components.,"Nilsson C, Berthold M, Orme M.",'
        "Pediatr Allergy Immunol. 2019.,Nilsson C,Pediatr Allergy Immunol,2019,2019/07/14,,,"
        "10.1111/pai.13110\n",
        encoding="utf-8",
    )
    r = sources.read(pm).records[0]
    assert (r.pmid, r.first_author, len(r.authors), r.year, r.doi, r.journal) == (
        "31301691",
        "Nilsson",
        3,
        2019,
        "10.1111/pai.13110",
        "Pediatr Allergy Immunol",
    )
    wos = tmp_path / "savedrecs.txt"
    wos.write_text(
        "PT\tAU\tAF\tTI\tSO\tDE\tID\tAB\tSN\tPY\tVL\tIS\tBP\tEP\tDI\tPM\tUT\n"
        "J\tLi, W; Dou, Z\tLi, Wei; Dou, Zhiguo\tSoil fauna diversity\tECOSYSTEM HEALTH\t"
        "reed; wetland\tX\tAn abstract.\t2096-4129\t2020\t6\t1\t10\t20\t10.1080/2096.1\t123\t"
        "WOS:000513914900001\n",
        encoding="utf-8",
    )
    res = sources.read(wos)
    assert (res.format, res.sniffed.delimiter) == ("csv", "\t")
    r = res.records[0]
    assert [str(a) for a in r.authors] == ["Li, Wei", "Dou, Zhiguo"]
    assert (r.title, r.journal, r.year, r.pages, r.doi, r.pmid) == (
        "Soil fauna diversity",
        "Ecosystem Health",
        2020,
        "10-20",
        "10.1080/2096.1",
        "123",
    )
    assert r.keywords == ["reed", "wetland"] and r.accession_number == "WOS:000513914900001"


def test_endnote_written_xml_with_style_wrappers(tmp_path):
    """EndNote itself wraps every value in <style> runs (no such file in the corpus)."""
    sty = '<style face="normal" font="default" size="100%">{}</style>'
    xml = (
        '<?xml version="1.0" encoding="UTF-8" ?><xml><records><record>'
        '<source-app name="EndNote" version="20.0">EndNote</source-app>'
        '<ref-type name="Journal Article">17</ref-type>'
        f"<contributors><authors><author>{sty.format('Smith, John')}</author>"
        f"<author>{sty.format('Doe, K.')}</author></authors></contributors>"
        f"<titles><title>{sty.format('A ')}"
        '<style face="italic" font="default" size="100%">randomised</style>'
        f"{sty.format(' trial')}</title></titles>"
        f"<periodical><full-title>{sty.format('BMJ')}</full-title></periodical>"
        f"<dates><year>{sty.format('2020')}</year></dates>"
        f"<electronic-resource-num>{sty.format('10.1136/BMJ.M1')}</electronic-resource-num>"
        f"<remote-database-name>{sty.format('MEDLINE')}</remote-database-name>"
        f"<accession-num>{sty.format('32000000')}</accession-num>"
        "</record></records></xml>"
    )
    p = tmp_path / "endnote.xml"
    p.write_text(xml, encoding="utf-8")
    r = sources.read(p).records[0]
    assert (r.title, r.first_author, r.year, r.doi, r.pmid, r.journal) == (
        "A randomised trial",
        "Smith",
        2020,
        "10.1136/bmj.m1",
        "32000000",
        "BMJ",
    )
    assert r.source_database == "MEDLINE" and r.publication_type == "Journal Article"
