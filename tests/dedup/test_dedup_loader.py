"""Benchmark CSV loader and author parsing."""

from __future__ import annotations

import gzip

import pytest

from metasift.dedup import load_benchmark_csv, parse_authors
from metasift.errors import ImportFormatError
from metasift.records import Author


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Adeli K.Lewis G. F.", [("Adeli", "K."), ("Lewis", "G. F.")]),
        ("KodydkovaJ.VavrovaL.ZemanM.", [("Kodydkova", "J."), ("Vavrova", "L."), ("Zeman", "M.")]),
        ("Guasch-Ferre M.Satija A.", [("Guasch-Ferre", "M."), ("Satija", "A.")]),
        ("Rud'koO.I.", [("Rud'ko", "O.I.")]),
        ("Zhai, Q. J. and Yue, X. Y.", [("Zhai", "Q. J."), ("Yue", "X. Y.")]),
        ("Zuna, R E and Wang, S S", [("Zuna", "R E"), ("Wang", "S S")]),
        ("Deng, Chaoqun and Ravichandran, T.", [("Deng", "Chaoqun"), ("Ravichandran", "T.")]),
        ("Philip MariaBenatar Michael", [("Philip", "Maria"), ("Benatar", "Michael")]),
        ("АЗЬМУК, Н. А.", [("АЗЬМУК", "Н. А.")]),
        ("", []),
    ],
)
def test_parse_authors(text, expected):
    assert parse_authors(text) == [Author(f, g) for f, g in expected]


def test_load_special_cases(shared_dir):
    records, truth = load_benchmark_csv(shared_dir / "benchmarks/dedup/special_cases.csv")
    assert len(records) == len(truth) == 6
    assert len(set(truth)) == 4
    r = records[1]
    assert r.title.startswith("How Consumers Perceive Trustworthiness")
    assert r.year == 2017
    assert r.journal == "Amcis 2017 Proceedings"  # booktitle when there is no journal
    assert r.publication_type == "inproceedings"
    assert r.authors[1] == Author("Ravichandran", "T.")
    assert r.raw["record_id"] == ["id_0000002"]
    assert records[2].doi == "10.24251/HICSS.2021.510"


def test_load_gzip_and_minimal_columns(tmp_path):
    text = (
        "record_id,title,authors,year,dup_group\n"
        "id_1,A title,Smith J.,1999,id_1\n"
        "id_2,A title,Smith J.,,id_1\n"
    )
    p = tmp_path / "set.csv.gz"
    p.write_bytes(gzip.compress(text.encode()))
    records, truth = load_benchmark_csv(p)
    assert truth == ["id_1", "id_1"]
    assert records[0].year == 1999 and records[1].year is None
    assert records[0].authors == [Author("Smith", "J.")]
    assert records[0].journal == "" and records[0].abstract == ""


def test_missing_column_and_missing_file(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("record_id,title,year\nid_1,x,2000\n")
    with pytest.raises(ImportFormatError, match="authors"):
        load_benchmark_csv(p)
    with pytest.raises(ImportFormatError, match="not found"):
        load_benchmark_csv(tmp_path / "nope.csv")
