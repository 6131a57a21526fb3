"""One table over every file of ../shared/corpus/imports: the record count of MANIFEST.csv and
spot-checked fields of the first record (title, first author's family name, year, DOI), read
from each file by eye (not from our reader's output)."""

from __future__ import annotations

import csv

import pytest

from metasift import sources
from metasift.errors import ImportFormatError

# path -> (format, title prefix, first author family, year, doi)  -- first record of the file
READABLE = {
    "ris/embase_elsevier.ris": (
        "ris",
        "Duplication cysts: Diagnosis, management, and the role of endoscopic ultrasound",
        "Liu",
        2014,
        "10.4103/2303-9027.138783",
    ),
    "ris/scopus.ris": (
        "ris",
        "Soil fauna diversity at different stages of reed restoration in a lakeshore wetland",
        "Li",
        2020,
        "10.1080/20964129.2020.1722034",
    ),
    "ris/wos.ris": (
        "ris",
        "Holding Yourself Captive: Perceptions of Custody During Interviews and Interrogations",
        "Alceste",
        2018,
        "10.1016/j.jarmac.2018.03.001",
    ),
    "ris/ovid_psycinfo.ris": (
        "ris",
        "The influence of self-criticism on depression symptoms among ambulatory patients",
        "Trindade",
        2019,
        "10.1002/cpp.2398",
    ),
    "ris/cochrane_central.ris": (
        "ris",
        "The Incredible Years Therapeutic Dinosaur Programme to build social and emotional",
        "Bywater",
        2011,
        "10.1186/1745-6215-12-39",
    ),
    "ris/proquest.ris": (
        "ris",
        "Predictors of posttraumatic stress symptom trajectories following the fatal 2011",
        "Jones",
        2019,
        "10.1002/jts.22387",
    ),
    "nbib/pubmed_revtools.nbib": (
        "medline",
        # TI is wrapped over two lines in the file: the continuation must be joined
        "Ecosystem services changes between 2000 and 2015 in the Loess Plateau, China: A "
        "response to ecological restoration.",
        "Wu",
        2019,
        "10.1371/journal.pone.0209483",
    ),
    "nbib/pubmed_synthesisr.txt": (
        "medline",
        "Differences in nitrate and phosphorus export between wooded and grassed riparian "
        "zones from farmland",
        "Neilen",
        2017,
        "10.1016/j.scitotenv.2017.04.075",
    ),
    "nbib/pubmed_metaknowledge.medline": (
        "medline",
        "Bioinformatic survey of ABC transporters in dermatophytes.",
        "Gadzalski",
        2016,
        "10.1016/j.gene.2015.10.064",
    ),
    "bibtex/scopus_synthesisr.bib": (
        "bibtex",
        "Soil fauna diversity at different stages of reed restoration in a lakeshore wetland",
        "Li",
        2020,
        "10.1080/20964129.2020.1722034",
    ),
    "bibtex/scopus_export_header.bib": (
        "bibtex",
        "Improving the quality of systematic reviews of neurological conditions",
        "Bui",
        2018,
        "10.1111/ene.13758",
    ),
    "bibtex/wos.bib": (
        "bibtex",
        "Inproceedings Title",
        "Writerone",
        2017,
        "10.1007/999-9-999-99999-9_3",
    ),
    "bibtex/zotero.bib": (
        "bibtex",
        # protective braces {Cocker} removed
        "Microangiography of the humeral condyle in Cocker Spaniel and non-Cocker Spaniel dogs",
        "Larsen",
        1999,
        "",
    ),
    "endnote_xml/zotero_endnote.xml": (
        "endnote_xml",
        "Myoclonus in older Cavalier King Charles Spaniels.",
        "Rotter",
        2022,
        "10.1111/jvim.16404",
    ),
    "endnote_xml/mendeley_endnote.xml": (
        "endnote_xml",
        "Myoclonus in older Cavalier King Charles Spaniels.",
        "Rotter",
        2022,
        "10.1111/jvim.16404",
    ),
    "csv/scopus.csv": (
        "csv",
        "Global latitudinal gradients and the evolution of body size in dinosaurs and mammals",
        "Wilson",
        2024,
        "10.1038/s41467-024-46843-2",
    ),
    "csv/embase.csv": (
        "csv",
        "Duplication cysts: Diagnosis, management, and the role of endoscopic ultrasound",
        "Liu",
        2014,  # from "Source": "Endoscopic Ultrasound (2014) 3:3 (152-160). ..."
        "10.4103/2303-9027.138783",  # from the "Open URL Link" (…&id=doi:10.4103%2F2303-…)
    ),
    "csv/cochrane_central.csv": (
        "csv",
        "The Incredible Years Therapeutic Dinosaur Programme to build social and emotional",
        "Bywater",
        2011,
        "10.1186/1745-6215-12-39",
    ),
    "csv/zotero.csv": (
        "csv",
        "Cellular structure of dinosaur scales reveals retention of reptile-type skin",
        "Yang",
        2024,
        "10.1038/s41467-024-48400-3",
    ),
    "csv/asreview_generic_labels.csv": ("csv", "Title of reference", "Marx", 2014, ""),
    "csv/pubmed_legacy.csv": (
        "csv",
        "Allergen components in diagnosing childhood hazelnut allergy",
        "Nilsson",
        2019,
        "10.1111/pai.13110",  # from "Details": "... 2019 Jul 13. doi: 10.1111/pai.13110. ..."
    ),
    "wos_plaintext/wos_synthesisr.ciw": (
        "wos",
        "Soil fauna diversity at different stages of reed restoration in a lakeshore wetland",
        "Li",
        2020,
        "10.1080/20964129.2020.1722034",
    ),
    "wos_plaintext/wos_revtools.ciw": (
        "wos",
        "Do magnetic phosphorus adsorbents used for lake restoration impact on zooplankton community?",
        "Alvarez-Manzaneda",
        2019,
        "10.1016/j.scitotenv.2018.11.375",
    ),
    "wos_plaintext/wos_other_ref_software.txt": (
        "wos",
        "Caregivers' views on stigmatization and discrimination of people affected by leprosy",
        "Asampong",
        2018,
        "10.1371/journal.pntd.0006219",
    ),
    "wos_plaintext/wos_savedrecs_umbrella.txt": (
        "wos",
        "Critical review of urban community resilience indicators",
        "Osei-Kyei",
        2023,
        "10.1108/sasbe-08-2022-0180",  # DI 10.1108/SASBE-08-2022-0180, lower-cased
    ),
    "wos_plaintext/wos_metaknowledge.isi": (
        "wos",
        "EXPERIMENTS IN PHENOMENOLOGICAL ELECTRODYNAMICS AND THE ELECTROMAGNETIC ENERGY-MOMENTUM",
        "BREVIK",
        1979,
        "10.1016/0370-1573(79)90074-7",
    ),
    "pubmed_xml/pubmed_result.xml": (
        "pubmed_xml",
        "Defining the process to literature searching in systematic reviews",
        "Cooper",
        2018,
        "10.1186/s12874-018-0545-3",
    ),
    "pubmed_xml/pubmed_result_2012dtd.xml": (
        "pubmed_xml",
        "Effect of switching from salmeterol/fluticasone to formoterol/ budesonide combinations",
        "Akamatsu",
        2012,
        "10.2332/allergolint.11-oa-0384",
    ),
    # broken/ files whose "failure mode" is a quirk a reader must take in its stride
    "broken/utf8_bom.nbib": (
        "medline",
        "Differences in nitrate and phosphorus export between wooded and grassed riparian",
        "Neilen",
        2017,
        "10.1016/j.scitotenv.2017.04.075",
    ),
    "broken/windows1252_accented.ris": (
        "ris",
        "\u201cLiving on the edge\u201d: The role of field margins for common vole",
        "Rodríguez-Pastor",
        2016,
        "10.1016/j.agee.2016.06.041",
    ),
    "broken/crlf_line_endings.ciw": (
        "wos",
        "Soil fauna diversity at different stages of reed restoration in a lakeshore wetland",
        "Li",
        2020,
        "10.1080/20964129.2020.1722034",
    ),
    "broken/mixed_tag_styles.ris": (
        "ris",
        "Soil fauna diversity at different stages of reed restoration in a lakeshore wetland",
        "Li",
        2020,
        "10.1080/20964129.2020.1722034",
    ),
    "broken/semicolon_delimiter.csv": (
        "csv",
        "Duplication cysts: Diagnosis, management, and the role of endoscopic ultrasound",
        "Liu",
        2014,
        "10.4103/2303-9027.138783",
    ),
    "broken/continuation_quirks.nbib": (
        "medline",
        "Differences in nitrate and phosphorus export between wooded and grassed riparian",
        "Neilen",
        2017,
        "10.1016/j.scitotenv.2017.04.075",
    ),
    "broken/duplicate_keys.bib": (
        "bibtex",
        "Improving the quality of systematic reviews of neurological conditions",
        "Bui",
        2018,
        "10.1111/ene.13758",
    ),
}

# damaged files: strict raises here (line, record, field); lenient keeps MANIFEST's count and
# reports a problem on that field.
DAMAGED = {
    # TY of record 10 is on line 408; the file ends before its ER
    "broken/truncated_no_ER.ris": (408, 10, "ER"),
    # record 3 starts on line 84 and has no T1
    "broken/missing_title.ris": (84, 3, "TI"),
    # record 2: "PY  - In press" on line 77
    "broken/non_numeric_year.ris": (77, 2, "PY"),
    # entry 2's title opens on line 30 and is never closed
    "broken/unbalanced_braces.bib": (30, 2, "title"),
    # EndNote XML cut inside record 50 (the whole file is on line 2)
    "broken/truncated.xml": (2, 50, None),
}
# unreadable in both modes
UNREADABLE = {"broken/empty.ris": "empty", "broken/binary_xlsx_named.ris": "Excel workbook"}


def _manifest(shared_dir):
    with open(
        shared_dir / "corpus" / "imports" / "MANIFEST.csv", newline="", encoding="utf-8"
    ) as fh:
        return {row["path"]: row for row in csv.DictReader(fh)}


def test_the_table_covers_every_file_of_the_corpus(shared_dir):
    base = shared_dir / "corpus" / "imports"
    on_disk = {
        str(p.relative_to(base))
        for p in base.rglob("*")
        if p.is_file() and p.name not in ("README.md", "MANIFEST.csv")
    }
    assert on_disk == set(_manifest(shared_dir))
    assert on_disk == set(READABLE) | set(DAMAGED) | set(UNREADABLE)


@pytest.mark.parametrize("rel", sorted(READABLE))
def test_reads_every_corpus_file_strictly(shared_dir, rel):
    fmt, title, family, year, doi = READABLE[rel]
    path = shared_dir / "corpus" / "imports" / rel
    res = sources.read(path)
    assert res.format == fmt
    assert len(res.records) == int(_manifest(shared_dir)[rel]["n_records"])
    assert res.problems == []
    first = res.records[0]
    assert first.title.startswith(title), first.title
    assert first.first_author == family
    assert first.year == year
    assert first.doi == doi
    assert first.line is not None and first.line >= 1
    assert first.raw  # verbatim fields kept
    assert all(r.title for r in res.records)
    assert res.checksum == sources.file_checksum(path)
    assert len(res.checksum) == 64


@pytest.mark.parametrize("rel", sorted(DAMAGED))
def test_damaged_file_strict_raises_a_located_error(shared_dir, rel):
    line, record, fld = DAMAGED[rel]
    path = shared_dir / "corpus" / "imports" / rel
    with pytest.raises(ImportFormatError) as info:
        sources.read(path)
    err = info.value
    assert (err.line, err.record, err.field) == (line, record, fld)
    assert err.path == str(path)
    assert err.sniffed["format"] == sources.sniff(path).format
    assert f"line {line}" in str(err)


@pytest.mark.parametrize("rel", sorted(DAMAGED))
def test_damaged_file_lenient_recovers_the_manifest_count(shared_dir, rel):
    line, record, fld = DAMAGED[rel]
    path = shared_dir / "corpus" / "imports" / rel
    res = sources.read(path, lenient=True)
    assert len(res.records) == int(_manifest(shared_dir)[rel]["n_records"])
    assert {"line": line, "record": record, "field": fld} == {
        k: res.problems[0][k] for k in ("line", "record", "field")
    }
    assert res.problems[0]["reason"]


@pytest.mark.parametrize("lenient", [False, True])
@pytest.mark.parametrize("rel", sorted(UNREADABLE))
def test_empty_and_binary_files_are_rejected_in_both_modes(shared_dir, rel, lenient):
    path = shared_dir / "corpus" / "imports" / rel
    with pytest.raises(ImportFormatError, match=UNREADABLE[rel]):
        sources.read(path, lenient=lenient)


def test_workbook_named_ris_reads_when_the_format_is_given(shared_dir):
    res = sources.read(shared_dir / "corpus/imports/broken/binary_xlsx_named.ris", format="xlsx")
    # Embase XLSX: a search-query block above the header row; the same 10 records as csv/zotero
    assert res.format == "xlsx"
    assert len(res.records) == 10
    assert res.records[0].title.startswith("Cellular structure of dinosaur scales")


def test_lenient_details_of_damaged_files(shared_dir):
    base = shared_dir / "corpus" / "imports"
    years = [
        r.year for r in sources.read(base / "broken/non_numeric_year.ris", lenient=True).records
    ]
    # record 2 'In press', record 5 '2019//', record 8 'n.d.'
    assert (years[1], years[4], years[7]) == (None, 2019, None)
    res = sources.read(base / "broken/missing_title.ris", lenient=True)
    assert res.records[2].title == "" and res.records[3].title  # kept, not merged
    bib = sources.read(base / "broken/unbalanced_braces.bib", lenient=True).records
    # entries 1 and 3 intact; entry 2's title cut at the end of its line
    assert bib[0].journal == "Ecosystem Health and Sustainability"
    assert bib[1].title.startswith("Impacts of land conversion") and bib[1].journal
    assert bib[2].title.startswith("Application of Digital Processing in Relic Image")
    truncated = sources.read(base / "broken/truncated_no_ER.ris", lenient=True).records
    assert truncated[-1].title  # the partial 10th record is kept and flagged


def test_quirk_details(shared_dir):
    base = shared_dir / "corpus" / "imports"
    res = sources.read(base / "broken/windows1252_accented.ris")
    assert res.sniffed.encoding == "cp1252"
    assert (
        res.warnings and "Windows-1252" in res.warnings[0] and "not valid UTF-8" in res.warnings[0]
    )
    names = [str(a) for r in res.records for a in r.authors]
    assert "Luque-Larena, Juan José" in names
    assert res.sniffed.newline == "\r\n"
    bom = sources.read(base / "broken/utf8_bom.nbib")
    assert bom.sniffed.bom and bom.records[0].pmid == "28441597"
    quirks = sources.read(base / "broken/continuation_quirks.nbib").records
    clean = sources.read(base / "nbib/pubmed_synthesisr.txt").records
    assert [r.abstract for r in quirks] == [r.abstract for r in clean]
    assert [r.title for r in quirks] == [r.title for r in clean]
    mixed = sources.read(base / "broken/mixed_tag_styles.ris").records
    plain = sources.read(base / "ris/scopus.ris").records
    assert [(r.title, r.doi, r.authors) for r in mixed] == [
        (r.title, r.doi, r.authors) for r in plain
    ]
    dup = sources.read(base / "broken/duplicate_keys.bib").records
    assert [r.raw["ID"][0] for r in dup].count("Bui20181477") == 2
    semi = sources.read(base / "broken/semicolon_delimiter.csv")
    assert semi.sniffed.delimiter == ";"
    assert [r.title for r in semi.records] == [
        r.title for r in sources.read(base / "csv/embase.csv").records
    ]


def test_same_records_from_zotero_and_mendeley_endnote_xml(shared_dir):
    base = shared_dir / "corpus" / "imports" / "endnote_xml"
    z = sources.read(base / "zotero_endnote.xml").records
    m = sources.read(base / "mendeley_endnote.xml").records
    # the two files were trimmed from differently ordered exports: compare the shared records
    zd = {r.doi: r for r in z if r.doi}
    shared = [r for r in m if r.doi in zd]
    assert len(shared) >= 25
    for r in shared:
        assert (r.year, r.title.lower(), r.first_author) == (
            zd[r.doi].year,
            zd[r.doi].title.lower(),
            zd[r.doi].first_author,
        )
    assert m[0].pmid == "35319117"  # Mendeley's accession-num


def test_source_specific_fields(shared_dir):
    base = shared_dir / "corpus" / "imports"
    emb = sources.read(base / "ris/embase_elsevier.ris").records[0]
    assert emb.abstract.startswith("Gastrointestinal tract duplication cysts")  # N2
    assert emb.source_database == "Embase" and emb.accession_number == "L373791783"
    assert emb.issn == "2226-7190" and emb.pages == "152-160"
    coch = sources.read(base / "ris/cochrane_central.ris").records[0]
    assert coch.pmid == "21314913" and coch.accession_number == "CN-00778158"
    wos = sources.read(base / "ris/wos.ris").records[0]
    assert wos.journal == "Journal of Applied Research in Memory and Cognition"  # was upper case
    nbs = sources.read(base / "nbib/pubmed_revtools.nbib").records
    assert nbs[0].pmid == "30689646" and nbs[0].source_database == "PubMed"
    tagged = [r for r in nbs if "MH" in r.raw or "OT" in r.raw]  # MeSH and other terms
    assert tagged
    assert all(set(r.raw.get("MH", []) + r.raw.get("OT", [])) == set(r.keywords) for r in tagged)
    csv_emb = sources.read(base / "csv/embase.csv").records[0]
    assert (csv_emb.journal, csv_emb.volume, csv_emb.issue, csv_emb.pages) == (
        "Endoscopic Ultrasound",
        "3",
        "3",
        "152-160",
    )
    asr = sources.read(base / "csv/asreview_generic_labels.csv").records
    assert asr[0].label == "include" and [a.family for a in asr[0].authors] == ["Marx", "Lindgren"]
    assert asr[0].keywords == ["Pippi", "Nordwind", "Piraten"]
    sc = sources.read(base / "csv/scopus.csv").records[0]
    assert str(sc.authors[0]) == "Wilson, Lauren N." and sc.pmid == "38580657"
    px = sources.read(base / "pubmed_xml/pubmed_result.xml").records[0]
    assert px.abstract.startswith("BACKGROUND: Systematic literature searching")
    assert px.pmid == "30107788" and px.journal == "BMC medical research methodology"
    ws = sources.read(base / "wos_plaintext/wos_other_ref_software.txt").records[0]
    assert ws.accession_number.startswith("WOS:") and ws.pmid == "29377890"
    assert [a.family for a in ws.authors] == ["Asampong", "Gyeke", "Oduro"]
