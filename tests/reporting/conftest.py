"""A small review built in the store, on both back ends: two databases and a register, duplicates
merged, dual screening with reasons and resolutions, two included studies with three reports."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from refhelpers import add_references
from sqlalchemy import select, update

from metasift.protocol import TEMPLATE, load_protocol
from metasift.store.models import Record, Reference, Source, Study, StudyReport, Value

PROTOCOL = TEMPLATE.replace(
    '      - {name: "main outcome", type: continuous, direction: lower_is_better, unit: ""}',
    '      - {name: "main outcome", type: continuous, direction: lower_is_better, unit: ""}\n'
    "  - name: safety\n"
    "    outcomes:\n"
    "      - {name: adverse events, type: descriptive}\n"
    "      - {name: withdrawal due to adverse events, type: count}",
)


@dataclass
class Scenario:
    review: object
    n_medline: int = 10
    n_embase: int = 6
    n_dup: int = 3  # Embase records that duplicate MEDLINE ones
    n_register: int = 2
    values: dict | None = None


def _both(review, ref, stage, decision, reason=""):
    for who in ("alice", "bob"):
        review.decide(ref, stage, who, decision, reason=reason)


def build(review, make_refs) -> Scenario:
    sc = Scenario(review)
    text = PROTOCOL
    (review.path / "protocol.yaml").write_text(text, encoding="utf-8")
    review.protocol = load_protocol(review.path / "protocol.yaml")
    review.sync_protocol("tester")
    med = make_refs(review, [f"Medline study {i}" for i in range(sc.n_medline)], "MEDLINE")
    emb = make_refs(review, [f"Embase study {i}" for i in range(sc.n_embase)], "Embase")
    reg = make_refs(
        review, [f"Trial registration {i}" for i in range(sc.n_register)], "ClinicalTrials.gov"
    )
    with review.store.write() as s:
        s.execute(
            update(Source).where(Source.database == "ClinicalTrials.gov").values(kind="register")
        )
        for dup, keep in zip(emb[: sc.n_dup], med[: sc.n_dup], strict=True):
            s.execute(update(Record).where(Record.reference_id == dup).values(reference_id=keep))
            s.get(Reference, dup).active = False
    refs = med + emb[sc.n_dup :] + reg
    # title/abstract: 6 agreed exclusions, 1 conflict resolved as exclude, 8 moved on
    for r in refs[:6]:
        _both(review, r, "title_abstract", "exclude", "wrong design")
    review.decide(refs[6], "title_abstract", "alice", "include")
    review.decide(refs[6], "title_abstract", "bob", "exclude", reason="wrong population")
    review.resolve(refs[6], "title_abstract", "carol", "exclude", reason="wrong population")
    review.decide(refs[7], "title_abstract", "alice", "maybe")
    review.decide(refs[7], "title_abstract", "bob", "include")
    for r in refs[8:]:
        _both(review, r, "title_abstract", "include")
    ft = refs[7:]
    assert len(ft) == 8
    review.decide(ft[0], "full_text", "alice", "not_retrieved")
    _both(review, ft[1], "full_text", "exclude", "wrong outcomes")
    _both(review, ft[2], "full_text", "exclude", "wrong outcomes")
    review.decide(ft[3], "full_text", "alice", "exclude", reason="wrong population")
    review.decide(ft[3], "full_text", "bob", "include")
    review.resolve(ft[3], "full_text", "carol", "exclude", reason="wrong population")
    _both(review, ft[4], "full_text", "exclude", "wrong design")
    for r in ft[5:]:
        _both(review, r, "full_text", "include")
    with review.store.write() as s:
        a = Study(label="Alpha 2019", design="RCT")
        b = Study(label="Beta 2021", design="cohort")
        s.add_all([a, b])
        s.flush()
        s.add_all(
            [
                StudyReport(study_id=a.id, reference_id=ft[5]),
                StudyReport(study_id=a.id, reference_id=ft[6], primary=False),
                StudyReport(study_id=b.id, reference_id=ft[7]),
            ]
        )
    return sc


def add_values(review) -> dict:
    """Study-level and outcome values, entered as reconciled; returns what was entered."""
    entered = {
        "Alpha 2019": {
            "design": "RCT",
            "n_total": 40,
            "n_female": 30,
            "age_mean": 50.5,
            "age_sd": 9.0,
        },
        "Beta 2021": {
            "design": "cohort",
            "n_total": 24,
            "n_female": 21,
            "age_mean": 56.0,
            "age_sd": 11.0,
        },
    }
    with review.store.write() as s:
        sid = {st.label: st.id for st in s.scalars(select(Study))}
        for label, fields in entered.items():
            for f, v in fields.items():
                s.add(
                    Value(
                        study_id=sid[label],
                        field=f,
                        value=str(v),
                        reviewer="alice",
                        kind="reconciled",
                    )
                )
        for label, d in (("Alpha 2019", "benefit"), ("Beta 2021", "no change")):
            s.add(
                Value(
                    study_id=sid[label],
                    level="outcome",
                    field="direction",
                    outcome="main outcome",
                    value=d,
                    reviewer="alice",
                    kind="reconciled",
                )
            )
        s.add(
            Value(
                study_id=sid["Alpha 2019"],
                level="outcome",
                field="events",
                outcome="adverse events",
                arm="IVIG",
                value="7",
                reviewer="alice",
                kind="reconciled",
            )
        )
        s.add(
            Value(
                study_id=sid["Beta 2021"],
                level="outcome",
                field="events",
                outcome="withdrawal due to adverse events",
                arm="IVIG",
                value="2",
                reviewer="alice",
                kind="reconciled",
            )
        )
    return entered


@pytest.fixture
def scenario(project, make_refs) -> Scenario:
    return build(project, make_refs)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def built(request, tmp_path_factory):
    """The scenario with extracted values, built once per back end for read-only tests (building
    it takes seconds, so once per session; the function-scoped ``scenario`` fixture is for tests that change it)."""
    import uuid

    from sqlalchemy.engine import make_url

    from metasift.review import Review

    folder = tmp_path_factory.mktemp("built") / "proj"
    db, drop = None, None
    if request.param == "postgresql":
        import psycopg

        server = request.getfixturevalue("pg_server")
        name = f"metasift_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        db = make_url(server).set(database=name).render_as_string(hide_password=False)

        def drop():
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    review = Review.create(folder, db=db, actor="tester")
    try:
        sc = build(review, add_references)
        sc.values = add_values(review)
        yield sc
    finally:
        review.close()
        if drop:
            drop()
