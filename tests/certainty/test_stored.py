"""GRADE ratings in the store, read back by the report's summary-of-findings table (both back ends).

GRADE rules exercised (tested in depth in test_certainty_grade.py): randomised evidence starts
High; each downgrading domain rated serious moves it down one level (GRADE Handbook 5.1-5.2;
Schünemann et al. J Clin Epidemiol 2019;111:105-114, Table 1); every domain carries a reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from metasift.certainty import CertaintyError
from metasift.certainty.stored import current_grades, record_grade
from metasift.errors import ParameterError
from metasift.extraction import add_study, final_values, record_values
from metasift.reporting.tables import sof_frame
from metasift.store.models import Analysis, Event, Result

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PROTOCOL = REPO / "examples" / "ivig-ssc" / "protocol.yaml"
CERTAINTY = "Certainty of the evidence (GRADE)"

DOWN = {
    "risk_of_bias": (
        -1,
        "the largest trial is at high risk of bias (RoB 2 D4: unblinded assessors)",
    ),
    "inconsistency": (0, "a single trial"),
    "indirectness": (0, "population, intervention and outcome as in the question"),
    "imprecision": (-1, "41 participants; the CI includes no effect"),
    "publication_bias": (0, "not suspected; trial registered"),
}


@pytest.fixture
def ivig(tmp_path, db_url, make_refs):
    """The worked example's protocol with one RCT whose mRSS both extractors agree on."""
    from metasift.review import Review

    review = Review.create(
        tmp_path / "ivig",
        db=None if db_url.startswith("sqlite") else db_url,
        protocol_text=EXAMPLE_PROTOCOL.read_text(encoding="utf-8"),
        actor="tester",
    )
    (ref,) = make_refs(review, ["IVIG trial"])
    add_study(review.store, "Takehara2013", "RCT", [ref], "tester")
    rows = [
        {"field": f, "arm": "ivig", "outcome": "mRSS", "timepoint": "12 weeks", "value": v}
        for f, v in (("n", 41), ("mean", 18.2), ("direction", "benefit"))
    ]
    for who in ("ana", "ben"):
        record_values(review.store, review.protocol, "Takehara2013", who, rows)
    try:
        yield review
    finally:
        review.close()


def sof(review):
    with review.store.read() as s:
        values = final_values(s, review.protocol)
        return sof_frame(review.protocol, values, [], s).frame.set_index("Outcomes")


def grade_rows(review):
    with review.store.read() as s:
        analyses = list(s.scalars(select(Analysis).where(Analysis.kind == "grade")))
        results = list(s.scalars(select(Result)))
        events = list(s.scalars(select(Event).where(Event.action == "grade.set")))
    return analyses, results, events


def test_a_grade_is_recorded_read_back_and_reaches_the_summary_of_findings(ivig):
    assert sof(ivig).loc["mRSS", CERTAINTY] == "not assessed"
    stored = record_grade(
        ivig.store, ivig.protocol, "mrss", design="rct", downgrades=DOWN, reviewer="ana"
    )
    # High, rated down one level for risk of bias and one for imprecision -> Low
    assert (stored.outcome, stored.level, stored.certainty.start) == ("mRSS", "Low", "High")
    assert sof(ivig).loc["mRSS", CERTAINTY] == "Low"

    (a,), (r,), (ev,) = grade_rows(ivig)
    assert (a.outcome, a.kind, a.settings["design"], a.settings["rob_tool"]) == (
        "mRSS",
        "grade",
        "rct",
        None,
    )
    assert len(a.study_ids) == 1  # the study with extracted mRSS data
    p = r.payload
    assert (p["level"], p["symbol"], p["start"], p["reviewer"]) == ("Low", "⊕⊕◯◯", "High", "ana")
    assert p["downgrades"]["imprecision"] == {
        "level": -1,
        "label": "serious",
        "reason": "41 participants; the CI includes no effect",
    }
    assert p["downgrades"]["inconsistency"]["label"] == "not serious"
    assert p["upgrades"] == {}
    assert len(p["footnotes"]) == 2 and len(r.input_checksum) == 64 and r.metasift_version
    assert (ev.actor, ev.entity, ev.entity_id, ev.before) == ("ana", "analysis", str(a.id), None)
    assert ev.after["level"] == "Low"

    with ivig.store.read() as s:
        (back,) = current_grades(s, ivig.protocol)
    assert back == stored
    assert back.to_dict()["summary"] == (
        "GRADE certainty Low (from High; rated down 1 for risk of bias, "
        "rated down 1 for imprecision)"
    )

    # the same ratings again: nothing written; new ratings: the newest wins
    record_grade(ivig.store, ivig.protocol, "mRSS", design="rct", downgrades=DOWN, reviewer="ana")
    assert len(grade_rows(ivig)[0]) == 1
    better = {**DOWN, "imprecision": (0, "optimal information size met in the updated search")}
    again = record_grade(
        ivig.store, ivig.protocol, "mRSS", design="rct", downgrades=better, reviewer="carmen"
    )
    assert again.level == "Moderate"
    assert sof(ivig).loc["mRSS", CERTAINTY] == "Moderate"
    analyses, _, events = grade_rows(ivig)
    assert len(analyses) == 2 and events[-1].before["level"] == "Low"


def test_ratings_up_and_the_robins_i_start(ivig):
    stored = record_grade(
        ivig.store,
        ivig.protocol,
        "FVC % predicted",
        design="nrs",
        rob_tool="robins_i",
        downgrades={**DOWN, "risk_of_bias": (-2, "critical confounding (ROBINS-I)")},
        upgrades={"large_effect": (1, "RR 0.3 in every cohort")},
        reviewer="ben",
        comment="before-after cohorts",
    )
    # ROBINS-I: non-randomised evidence starts High (GRADE 18); -2 -1 +1 -> Low
    assert (stored.certainty.start, stored.level) == ("High", "Low")
    with ivig.store.read() as s:
        (back,) = current_grades(s)
    assert back.comment == "before-after cohorts"
    assert back.certainty.upgrades[0].reason == "RR 0.3 in every cohort"
    assert back.to_dict()["upgrades"] == {
        "large_effect": {"level": 1, "label": "+1", "reason": "RR 0.3 in every cohort"}
    }


def test_invalid_ratings_are_refused_and_nothing_is_written(ivig):
    def rec(**kw):
        args = {"design": "rct", "downgrades": DOWN, "reviewer": "ana", **kw}
        return record_grade(ivig.store, ivig.protocol, kw.pop("outcome", "mRSS"), **args)

    with pytest.raises(CertaintyError, match="'imprecision' needs a written reason"):
        rec(downgrades={**DOWN, "imprecision": (-1, "")})
    with pytest.raises(CertaintyError, match="missing: publication_bias"):
        rec(downgrades={k: v for k, v in DOWN.items() if k != "publication_bias"})
    with pytest.raises(ParameterError, match="'imprecision level'"):
        rec(downgrades={**DOWN, "imprecision": (-3, "very very serious")})
    with pytest.raises(CertaintyError, match="'zoe' is not a protocol reviewer"):
        rec(reviewer="zoe")
    with pytest.raises(ParameterError, match="'outcome' parameter of record_grade"):
        record_grade(
            ivig.store,
            ivig.protocol,
            "quality of life",
            design="rct",
            downgrades=DOWN,
            reviewer="ana",
        )
    assert grade_rows(ivig) == ([], [], [])


def test_grade_commands(ivig):
    from metasift.cli_appraise import grade_app

    runner = CliRunner()
    d, db = str(ivig.path), ivig.store.url

    def run(*args):
        return runner.invoke(grade_app, [str(a) for a in args])

    args = ["set", d, "mRSS", "--reviewer", "ana", "--design-start", "rct", "--db", db]
    for name, (level, why) in DOWN.items():
        opt = name.replace("_", "-")
        word = {0: "not_serious", -1: "serious", -2: "very_serious"}[level]
        args += [f"--{opt}", word, f"--{opt}-reason", why]
    result = run(*args, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    assert json.loads(result.stdout)["level"] == "Low"
    shown = run("show", d, "--db", db, "--json")
    assert [(g["outcome"], g["level"]) for g in json.loads(shown.stdout)] == [("mRSS", "Low")]
    assert "mRSS" in run("show", d, "--db", db).stdout
    assert sof(ivig).loc["mRSS", CERTAINTY] == "Low"

    no_reason = run("set", d, "mRSS", "--reviewer", "ana", "--design", "rct", "--db", db,
                    "--risk-of-bias", "serious")  # fmt: skip
    assert no_reason.exit_code == 1 and isinstance(no_reason.exception, CertaintyError)
    stray = run("set", d, "mRSS", "--reviewer", "ana", "--design", "rct", "--db", db,
                "--imprecision-reason", "why")  # fmt: skip
    assert stray.exit_code == 1 and "without a rating" in str(stray.exception)
