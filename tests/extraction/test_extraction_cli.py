"""``metasift extract``: every command has help; a whole session through the CLI on both back ends."""

from __future__ import annotations

import json

import click
import openpyxl
import pytest
import typer
from typer.testing import CliRunner

from metasift.cli_extract import app
from metasift.errors import SheetError

runner = CliRunner()


def _commands():
    group = typer.main.get_command(app)
    return sorted(group.commands.items())


@pytest.mark.parametrize("name, cmd", _commands())
def test_every_command_and_option_has_help(name, cmd):
    assert (cmd.help or "").strip(), f"`extract {name}` has no help"
    for p in cmd.params:
        if isinstance(p, click.Option) and p.name != "help":
            assert (p.help or "").strip(), f"option {p.opts} of `extract {name}` has no help"


def test_command_names():
    assert [n for n, _ in _commands()] == [
        "add-study",
        "differences",
        "load",
        "reconcile",
        "studies",
        "template",
        "values",
    ]


def run(*args, ok=True):
    result = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_a_session_through_the_cli(project, included, tmp_path):
    d, db = project.path, project.store.url
    refs = included(project, ["Trial A", "Trial B"])
    run("add-study", d, "A2020", "--ref", refs[0], "--design", "RCT", "--as", "alice", "--db", db)
    run("add-study", d, "B2021", "--ref", refs[1], "--design", "cohort", "--db", db)
    listed = json.loads(run("studies", d, "--db", db, "--json").stdout)
    assert [(s["label"], s["reference_ids"]) for s in listed] == [
        ("A2020", [refs[0]]),
        ("B2021", [refs[1]]),
    ]
    assert "A2020" in run("studies", d, "--db", db).stdout

    form = tmp_path / "form.xlsx"
    run("template", d, "--out", form, "--db", db)
    wb = openpyxl.load_workbook(form)
    assert [wb["study"].cell(row=r, column=1).value for r in (2, 3)] == ["A2020", "B2021"]

    def fill(path, n_a):
        wb = openpyxl.load_workbook(form)
        ws = wb["study"]
        for r, (design, n) in ((2, ("RCT", n_a)), (3, ("cohort", 40))):
            ws.cell(row=r, column=2, value=design)
            ws.cell(row=r, column=3, value=n)
        wo = wb["outcomes"]
        for j, v in enumerate(["A2020", "drug", "main outcome", "6 months", 30, 2.5], start=1):
            wo.cell(row=2, column=j, value=v)
        wb.save(path)

    fill(tmp_path / "alice.xlsx", 60)
    fill(tmp_path / "bob.xlsx", 66)
    loaded = json.loads(
        run("load", d, tmp_path / "alice.xlsx", "--reviewer", "alice", "--db", db, "--json").stdout
    )
    assert (loaded["values"], loaded["written"]) == (6, 6)
    run("load", d, tmp_path / "bob.xlsx", "--reviewer", "bob", "--db", db)

    diffs = json.loads(run("differences", d, "--db", db, "--json").stdout)
    assert [(x["study"], x["field"], x["kind"], x["values"]) for x in diffs] == [
        ("A2020", "n_total", "conflict", {"alice": "60", "bob": "66"})
    ]
    assert "n_total" in run("differences", d, "--db", db).stdout

    run(
        "reconcile", d, "A2020", "n_total", "--value", "60", "--as", "carol",
        "--note", "66 is the number screened", "--db", db,
    )  # fmt: skip
    assert json.loads(run("differences", d, "--db", db, "--json").stdout) == []
    resolved = json.loads(run("differences", d, "--db", db, "--json", "--resolved").stdout)
    assert [(x["reconciled"], x["decided_by"], x["note"]) for x in resolved] == [
        ("60", "carol", "66 is the number screened")
    ]
    csv_text = run("values", d, "--db", db, "--csv").stdout
    lines = csv_text.strip().splitlines()
    assert lines[0] == "study_id,study,design,level,field,arm,outcome,timepoint,value,unit"
    assert len(lines) == 1 + 6
    assert any(",n_total,,,,60," in line for line in lines)
    assert any(",mean,drug,main outcome,6 months,2.5," in line for line in lines)
    assert "main outcome" in run("values", d, "--db", db).stdout

    # a malformed form: the library's SheetError reaches metasift.cli.main (exit 1, one message)
    wb = openpyxl.load_workbook(form)
    wb["study"].cell(row=2, column=3, value="many")
    wb["study"].cell(row=2, column=2, value="RCT")
    wb.save(tmp_path / "bad.xlsx")
    bad = run("load", d, tmp_path / "bad.xlsx", "--reviewer", "alice", "--db", db, ok=False)
    assert isinstance(bad.exception, SheetError)
    assert bad.exception.problems[0][:3] == ("study", 2, "C")
