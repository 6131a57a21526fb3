"""Risk-of-bias assessments in the store and the XLSX form, on both back ends.

The project is the worked example's protocol (examples/ivig-ssc/protocol.yaml): RCTs are
appraised with RoB 2, every non-randomised design with ROBINS-I; reviewers ana (owner,
reviewer), ben (reviewer), carmen (resolver). Rule ids are those of
``/work/shared/reference/rob2.md`` (Higgins et al., RoB 2 full guidance, 22 Aug 2019, decision
flowcharts per domain; Sterne et al. BMJ 2019;366:l4898, Table 2 for the overall judgement).
"""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from metasift.appraisal import AppraisalError
from metasift.appraisal.plots import traffic_light
from metasift.appraisal.sheets import columns, load_rob_workbook, write_rob_template
from metasift.appraisal.stored import current_judgements, record_assessment
from metasift.errors import ParameterError, SheetError
from metasift.extraction import add_study, studies
from metasift.reporting.tables import risk_of_bias_table
from metasift.store.models import Event, Judgement

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PROTOCOL = REPO / "examples" / "ivig-ssc" / "protocol.yaml"

# RoB 2, effect of assignment. Path per domain (rob2.md rule tables):
#   D1: 1.2 Y, 1.1 Y, 1.3 N                 -> D1-3 Low
#   D2: 2.1 N & 2.2 N -> P1-1 Low; 2.6 Y -> P2-1 Low; worst of the parts -> Low
#   D3: 3.1 Y                               -> D3-1 Low
#   D4: 4.1 N, 4.2 N, 4.3 Y, 4.4 Y, 4.5 N   -> D4-5 Some concerns
#   D5: 5.2 N, 5.3 N, 5.1 Y                 -> D5-2 Low
#   overall: Some concerns in one domain, High in none -> Some concerns (Sterne 2019, Table 2)
ROB2_ANSWERS = {
    "1.1": "Y",
    "1.2": "Y",
    "1.3": "N",
    "2.1": "N",
    "2.2": "N",
    "2.3": "NA",
    "2.4": "NA",
    "2.5": "NA",
    "2.6": "Y",
    "2.7": "NA",
    "3.1": "Y",
    "4.1": "N",
    "4.2": "N",
    "4.3": "Y",
    "4.4": "Y",
    "4.5": "N",
    "5.1": "Y",
    "5.2": "N",
    "5.3": "N",
}
ROB2_EXPECTED = {
    "D1": "Low",
    "D2": "Low",
    "D3": "Low",
    "D4": "Some concerns",
    "D5": "Low",
    "Overall": "Some concerns",
}
# ROBINS-I 2016 publishes no algorithm from answers to domain judgements: the reviewer judges.
ROBINS_JUDGEMENTS = {
    "D1": ("Serious", "no adjustment for disease duration"),
    "D2": "Low",
    "D3": "Low",
    "D4": "Moderate",
    "D5": "Low",
    "D6": "Moderate",
    "D7": "Low",
}


@pytest.fixture
def ivig(tmp_path, db_url, make_refs):
    """The worked example's protocol on each back end, with an RCT, a cohort and a case series."""
    from metasift.review import Review

    review = Review.create(
        tmp_path / "ivig",
        db=None if db_url.startswith("sqlite") else db_url,
        protocol_text=EXAMPLE_PROTOCOL.read_text(encoding="utf-8"),
        actor="tester",
    )
    refs = make_refs(review, ["IVIG trial", "IVIG cohort", "IVIG series"])
    for label, design, ref in (
        ("Takehara2013", "RCT", refs[0]),
        ("Poelman2015", "prospective cohort", refs[1]),
        ("Sanges2017", "case series", refs[2]),
    ):
        add_study(review.store, label, design, [ref], "tester")
    try:
        yield review
    finally:
        review.close()


def judgement_rows(review) -> list[Judgement]:
    with review.store.read() as s:
        return list(s.scalars(select(Judgement).order_by(Judgement.id)))


def appraisal_events(review) -> list[Event]:
    with review.store.read() as s:
        return list(
            s.scalars(select(Event).where(Event.action.like("appraise.%")).order_by(Event.id))
        )


def report_row(review, study: str) -> dict:
    with review.store.read() as s:
        table, plot = risk_of_bias_table(s, review.protocol)
    return table.frame.set_index("Study").loc[study].to_dict(), plot


# -- one assessment -------------------------------------------------------------------------------
def test_a_full_rob2_assessment_is_written_and_read_back(ivig):
    stored = record_assessment(
        ivig.store, ivig.protocol, "Takehara2013", ROB2_ANSWERS, "ana", effect="assignment"
    )
    assert stored.tool == "rob2"  # the protocol's tool for design RCT
    assert stored.judgements == ROB2_EXPECTED
    assert stored.effect == "assignment"
    assert all(j.source == "algorithm" for j in stored.domains)

    rows = judgement_rows(ivig)
    assert [r.domain for r in rows] == ["D1", "D2", "D3", "D4", "D5", "overall"]
    assert {r.domain: r.suggested for r in rows} == {
        "D1": "Low",
        "D2": "Low",
        "D3": "Low",
        "D4": "Some concerns",
        "D5": "Low",
        "overall": "Some concerns",
    }
    assert all(r.judgement == r.suggested and r.justification == "" for r in rows)
    assert all(r.reviewer == "ana" and r.tool == "rob2" and r.outcome == "" for r in rows)
    assert rows[0].answers == {"1.1": "Y", "1.2": "Y", "1.3": "N"}
    assert rows[3].answers == {"4.1": "N", "4.2": "N", "4.3": "Y", "4.4": "Y", "4.5": "N"}
    assert rows[-1].answers == {**ROB2_ANSWERS, "effect": "assignment"}

    with ivig.store.read() as s:
        (back,) = current_judgements(s)
    assert back == stored
    assert back.answers == ROB2_ANSWERS

    # the report reads exactly these rows; the robvis plot accepts them
    row, plot = report_row(ivig, "Takehara2013")
    assert row["Tool"] == "rob2"
    assert {d: row[d] for d in ROB2_EXPECTED} == ROB2_EXPECTED
    assert plot == {"rob2": {"Takehara2013": ROB2_EXPECTED}}
    traffic_light(plot["rob2"], "rob2")

    (ev,) = appraisal_events(ivig)
    assert (ev.action, ev.actor, ev.entity, ev.before) == (
        "appraise.assessment",
        "ana",
        "study",
        None,
    )
    assert ev.after["domains"]["D4"]["rule"] == "D4-5"
    assert ev.after["overall"]["judgement"] == "Some concerns"

    # recording the same assessment again writes nothing
    record_assessment(
        ivig.store, ivig.protocol, "Takehara2013", ROB2_ANSWERS, "ana", effect="assignment"
    )
    assert len(judgement_rows(ivig)) == 6 and len(appraisal_events(ivig)) == 1


def test_an_override_is_kept_beside_the_suggestion_and_the_newest_wins(ivig):
    record_assessment(
        ivig.store, ivig.protocol, "Takehara2013", ROB2_ANSWERS, "ana", effect="assignment"
    )
    why = "baseline mRSS differs by 5 points between arms (Table 1)"
    stored = record_assessment(
        ivig.store,
        ivig.protocol,
        "Takehara2013",
        ROB2_ANSWERS,
        "carmen",
        effect="assignment",
        overrides={"D1": ("High", why)},
    )
    d1 = stored.domains[0]
    assert (d1.suggested, d1.judgement, d1.justification, d1.source) == (
        "Low",
        "High",
        why,
        "override",
    )
    # the overall suggestion is re-derived from the final domain judgements: High in one domain
    assert (stored.overall.suggested, stored.overall.judgement) == ("High", "High")
    assert len(judgement_rows(ivig)) == 12  # append-only
    row, _ = report_row(ivig, "Takehara2013")
    assert (row["D1"], row["Overall"]) == ("High", "High")
    ev = appraisal_events(ivig)[-1]
    assert ev.before["D1"] == {"judgement": "Low", "reviewer": "ana"}
    assert ev.after["domains"]["D1"]["justification"] == why


def test_an_override_without_justification_is_refused_and_nothing_is_written(ivig):
    for bad in ({"D1": ("High", "")}, {"D1": ("High", "   ")}, {"overall": "High"}):
        with pytest.raises(AppraisalError, match="needs a written justification"):
            record_assessment(
                ivig.store,
                ivig.protocol,
                "Takehara2013",
                ROB2_ANSWERS,
                "ana",
                effect="assignment",
                overrides=bad,
            )
    assert judgement_rows(ivig) == [] and appraisal_events(ivig) == []


def test_what_is_refused_before_anything_is_written(ivig):
    def rec(**kw):
        args = {"study_label": "Takehara2013", "answers": ROB2_ANSWERS, "reviewer": "ana"}
        args = {**args, "effect": "assignment", **kw}
        return record_assessment(ivig.store, ivig.protocol, **args)

    with pytest.raises(AppraisalError, match="'zoe' is not a protocol reviewer"):
        rec(reviewer="zoe")
    with pytest.raises(AppraisalError, match="no study 'Nobody2020'"):
        rec(study_label="Nobody2020")
    with pytest.raises(ParameterError, match="answer to 1.1"):
        rec(answers={**ROB2_ANSWERS, "1.1": "maybe"})
    with pytest.raises(AppraisalError, match="incomplete rob2 assessment: D5: answers the"):
        rec(answers={k: v for k, v in ROB2_ANSWERS.items() if not k.startswith("5.")})
    with pytest.raises(ParameterError, match="'outcome' parameter"):
        rec(outcome="quality of life")
    with pytest.raises(ParameterError, match="'effect' parameter"):
        rec(effect=None)
    assert judgement_rows(ivig) == [] and appraisal_events(ivig) == []


def test_robins_i_from_the_design_with_the_reviewers_judgements(ivig):
    stored = record_assessment(
        ivig.store,
        ivig.protocol,
        "Poelman2015",
        {"1.1": "Y", "1.2": "N"},
        "ben",
        effect="assignment",
        judgements=ROBINS_JUDGEMENTS,
        outcome="mrss",
    )
    assert (stored.tool, stored.outcome) == ("robins_i", "mRSS")
    assert stored.domains[0].justification == "no adjustment for disease duration"
    assert all(j.source == "reviewer" for j in stored.domains)
    # Sterne et al. 2016, Table 3: Serious in one domain, Critical in none -> Serious
    assert (stored.overall.suggested, stored.overall.judgement) == ("Serious", "Serious")
    row, _ = report_row(ivig, "Poelman2015")  # an outcome's assessment is a row of its own
    assert (row["Tool"], row["Outcome"], row["D1"], row["D4"], row["Overall"]) == (
        "robins_i",
        "mRSS",
        "Serious",
        "Moderate",
        "Serious",
    )
    with pytest.raises(AppraisalError, match="publishes no algorithm for D1"):
        record_assessment(ivig.store, ivig.protocol, "Poelman2015", {}, "ben", effect="assignment")


def test_an_explicit_tool_and_jbi_overall_judgement(ivig):
    answers = {f"Q{i}": "Yes" for i in range(1, 11)} | {"Q4": "Unclear", "Q9": "N"}
    with pytest.raises(AppraisalError, match="no overall decision rule"):
        record_assessment(
            ivig.store, ivig.protocol, "Sanges2017", answers, "ana", tool="jbi_case_series"
        )
    stored = record_assessment(
        ivig.store,
        ivig.protocol,
        "Sanges2017",
        answers,
        "ana",
        tool="jbi_case_series",
        overrides={"overall": ("Include", "8 of 10 items met; no item critical to the question")},
    )
    assert stored.judgements["Q9"] == "No" and stored.judgements["Overall"] == "Include"
    assert stored.overall.suggested == "" and stored.overall.source == "reviewer"


# -- the XLSX form --------------------------------------------------------------------------------
def fill(path: Path, out: Path, rows: dict[str, dict[int, dict[str, object]]]) -> Path:
    """Write ``{sheet: {row: {header: value}}}`` into the template at ``path``."""
    wb = openpyxl.load_workbook(path)
    for sheet, by_row in rows.items():
        ws = wb[sheet]
        col = {c.value: c.column for c in ws[1]}
        for r, values in by_row.items():
            for header, v in values.items():
                ws.cell(row=r, column=col[header], value=v)
    wb.save(out)
    return out


def test_template_filled_and_loaded(ivig, tmp_path):
    with ivig.store.read() as s:
        listed = studies(s)
    form = write_rob_template(ivig.protocol, tmp_path / "rob.xlsx", listed)
    wb = openpyxl.load_workbook(form)
    assert wb.sheetnames == ["README", "rob2", "robins_i", "lists"]
    assert wb["lists"].sheet_state == "hidden"
    rob2 = wb["rob2"]
    header = [c.value for c in rob2[1]]
    assert header == [c.name for c in columns("rob2")]
    assert header[:4] == ["study", "outcome", "effect", "1.1"]
    assert header[-4:] == [
        "D5 override",
        "D5 justification",
        "overall override",
        "overall justification",
    ]
    assert [rob2.cell(row=r, column=1).value for r in (2, 3)] == ["Takehara2013", None]
    assert [wb["robins_i"].cell(row=r, column=1).value for r in (2, 3, 4)] == [
        "Poelman2015",
        "Sanges2017",
        None,
    ]
    assert "D1 judgement" in [c.value for c in wb["robins_i"][1]]
    # a drop-down of the allowed answers on every question column
    covered = {
        col
        for dv in rob2.data_validations.dataValidation
        for rng in dv.sqref.ranges
        for col in range(rng.min_col, rng.max_col + 1)
        if rng.min_row == 2
    }
    kinds = {c.name: c.kind for c in columns("rob2")}
    for cell in rob2[1]:
        assert (cell.column in covered) == (kinds[cell.value] != "justification"), cell.value
    assert "allocation sequence random" in rob2["D1"].comment.text

    why = "outcome assessors knew the allocation and the scale is subjective"
    filled = fill(
        form,
        tmp_path / "ana.xlsx",
        {
            "rob2": {
                2: {"effect": "assignment", **ROB2_ANSWERS, "D4 override": "High",
                    "D4 justification": why},
            },
            "robins_i": {
                2: {"effect": "assignment", "outcome": "mRSS", "1.1": "Yes", "1.2": "Probably no",
                    **{f"{d} judgement": (v if isinstance(v, str) else v[0])
                       for d, v in ROBINS_JUDGEMENTS.items()},
                    "D1 justification": "no adjustment for disease duration"},
            },
        },
    )  # fmt: skip
    report = load_rob_workbook(ivig.store, ivig.protocol, filled, "ana")
    assert (report.written, report.unchanged) == (2, 0)
    assert report.by_sheet == {"rob2": 1, "robins_i": 1}
    with ivig.store.read() as s:
        got = {(a.study, a.tool, a.outcome): a for a in current_judgements(s)}
    rob = got[("Takehara2013", "rob2", "")]
    assert rob.judgements == {**ROB2_EXPECTED, "D4": "High", "Overall": "High"}
    assert (rob.domains[3].suggested, rob.domains[3].justification) == ("Some concerns", why)
    rob_i = got[("Poelman2015", "robins_i", "mRSS")]
    assert rob_i.answers == {"1.1": "Y", "1.2": "PN"}
    assert rob_i.judgements["D1"] == "Serious" and rob_i.judgements["Overall"] == "Serious"
    assert rob_i.domains[0].justification == "no adjustment for disease duration"
    assert len(judgement_rows(ivig)) == 6 + 8
    assert [e.action for e in appraisal_events(ivig)] == ["appraise.assessment"] * 2 + [
        "appraise.load"
    ]
    # loading the same form again records nothing new
    again = load_rob_workbook(ivig.store, ivig.protocol, filled, "ana")
    assert (again.written, again.unchanged) == (0, 2)
    assert len(judgement_rows(ivig)) == 14


def test_a_malformed_form_gives_located_errors_and_loads_nothing(ivig, tmp_path):
    with ivig.store.read() as s:
        form = write_rob_template(ivig.protocol, tmp_path / "rob.xlsx", studies(s))
    letter = {c.name: i for i, c in enumerate(columns("rob2"), start=1)}

    def col(name: str) -> str:
        return openpyxl.utils.get_column_letter(letter[name])

    bad = fill(
        form,
        tmp_path / "bad.xlsx",
        {
            "rob2": {
                2: {"effect": "assignment", **ROB2_ANSWERS, "1.1": "maybe"},  # bad answer
                3: {"study": "Nobody2020", "effect": "assignment", **ROB2_ANSWERS},  # unknown
                4: {"study": "Poelman2015", "effect": "assignment", **ROB2_ANSWERS},  # wrong tool
                5: {"study": "Takehara2013", "outcome": "mRSS", "effect": "per protocol",
                    **ROB2_ANSWERS},  # bad effect
                6: {"study": "Takehara2013", "outcome": "FVC % predicted", "effect": "assignment",
                    **{k: v for k, v in ROB2_ANSWERS.items() if k != "5.2"},
                    "D1 override": "High"},  # 5.2 missing; override without justification
                7: {"study": "Takehara2013", "outcome": "CRP", "effect": "adhering",
                    **ROB2_ANSWERS},  # 2.7 is not asked for the effect of adhering
            },
        },
    )  # fmt: skip
    with pytest.raises(SheetError) as caught:
        load_rob_workbook(ivig.store, ivig.protocol, bad, "ana")
    problems = caught.value.problems
    where = [(s, r, c) for s, r, c, _ in problems]
    assert where == [
        ("rob2", 2, col("1.1")),
        ("rob2", 3, "A"),
        ("rob2", 4, "A"),
        ("rob2", 5, col("effect")),
        ("rob2", 6, col("D1 justification")),
        ("rob2", 7, col("2.7")),
    ]
    why = {r: w for _, r, _, w in problems}
    assert why[2] == "1.1: one of Y, PY, PN, N, NI; got 'maybe'"
    assert "a study label of the review; got 'Nobody2020'" in why[3]
    assert (
        "the protocol appraises 'Poelman2015' (design 'prospective cohort') with robins_i" in why[4]
    )
    assert why[5] == "the effect of interest: one of assignment, adhering; got 'per protocol'"
    assert why[6] == "D1: a written justification of the judgement 'High'"
    assert "not asked for the effect of adhering" in why[7]
    assert f"sheet 'rob2', row 2, column '{col('1.1')}'" in str(caught.value)

    # once the override is justified, the missing answer is located at its column
    bad2 = fill(
        form,
        tmp_path / "bad2.xlsx",
        {"rob2": {2: {"effect": "assignment", **{k: v for k, v in ROB2_ANSWERS.items() if k != "5.2"},
                      "D1 justification": "stray"}}},
    )  # fmt: skip
    with pytest.raises(SheetError) as caught:
        load_rob_workbook(ivig.store, ivig.protocol, bad2, "ana")
    assert [(r, c) for _, r, c, _ in caught.value.problems] == [(2, col("D1 justification"))]
    bad3 = fill(
        form,
        tmp_path / "bad3.xlsx",
        {"rob2": {2: {"effect": "assignment", **{k: v for k, v in ROB2_ANSWERS.items() if k != "5.2"}}}},
    )  # fmt: skip
    with pytest.raises(SheetError) as caught:
        load_rob_workbook(ivig.store, ivig.protocol, bad3, "ana")
    assert [(r, c) for _, r, c, _ in caught.value.problems] == [(2, col("5.2"))]
    assert judgement_rows(ivig) == [] and appraisal_events(ivig) == []
    with ivig.store.read() as s:
        assert s.scalar(select(func.count()).select_from(Judgement)) == 0


# -- the CLI --------------------------------------------------------------------------------------
def test_rob_commands(ivig, tmp_path):
    from metasift.cli_appraise import rob_app

    runner = CliRunner()
    d, db = str(ivig.path), ivig.store.url

    def run(*args, ok=True):
        result = runner.invoke(rob_app, [str(a) for a in args])
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        return result

    form = tmp_path / "form.xlsx"
    run("template", d, "--out", form, "--db", db)
    filled = fill(
        form, tmp_path / "f.xlsx", {"rob2": {2: {"effect": "assignment", **ROB2_ANSWERS}}}
    )
    loaded = json.loads(run("load", d, filled, "--reviewer", "ben", "--db", db, "--json").stdout)
    assert (loaded["written"], loaded["assessments"]) == (1, [["rob2", "Takehara2013", ""]])
    shown = json.loads(run("show", d, "--db", db, "--json").stdout)
    assert [(a["study"], a["judgements"]) for a in shown] == [("Takehara2013", ROB2_EXPECTED)]
    text = run("show", d, "--db", db).stdout
    assert "Takehara2013" in text and "concerns" in text
    bad = run("load", d, filled, "--reviewer", "zoe", "--db", db, ok=False)
    assert bad.exit_code == 1 and isinstance(bad.exception, AppraisalError)


def _commands():
    import typer

    from metasift.cli_appraise import grade_app, rob_app

    for prefix, app in (("rob", rob_app), ("grade", grade_app)):
        group = typer.main.get_command(app)
        for name, cmd in sorted(group.commands.items()):
            yield f"{prefix} {name}", cmd


@pytest.mark.parametrize("name, cmd", list(_commands()))
def test_every_command_and_option_has_help(name, cmd):
    import click

    assert (cmd.help or "").strip(), f"`{name}` has no help"
    for p in cmd.params:
        if isinstance(p, click.Option) and p.name != "help":
            assert (p.help or "").strip(), f"option {p.opts} of `{name}` has no help"


def test_command_names():
    assert [n for n, _ in _commands()] == [
        "rob load",
        "rob show",
        "rob template",
        "grade set",
        "grade show",
    ]
