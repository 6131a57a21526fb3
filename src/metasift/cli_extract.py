"""``metasift extract``: studies, the XLSX extraction form, differences and reconciliation.

Thin over :mod:`metasift.extraction`: each command opens the project, calls one library function
and prints with rich. Data goes to stdout (``--json``), messages to stderr. A ``MetasiftError``
propagates to ``metasift.cli.main``, which prints one line and exits 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from metasift.cli_common import DbOpt, DirArg, JsonOpt, err, open_review, out

app = typer.Typer(
    help="Data extraction: studies, the XLSX form from the protocol, differences between "
    "extractors and their reconciliation.",
    no_args_is_help=True,
)

_open = open_review


@app.command("studies")
def studies_cmd(directory: DirArg, db: DbOpt = None, as_json: JsonOpt = False):
    """List the studies (label, design, reports)."""
    from metasift.extraction import studies

    with _open(directory, db) as review, review.store.read() as s:
        rows = studies(s)
    if as_json:
        print(json.dumps([r.to_dict() for r in rows], ensure_ascii=False))
        return
    t = Table(title=f"Studies ({len(rows)})")
    for c in ("#", "study", "design", "references"):
        t.add_column(c)
    for r in rows:
        t.add_row(str(r.id), r.label, r.design, ", ".join(f"#{i}" for i in r.reference_ids))
    out.print(t)


@app.command("add-study")
def add_study_cmd(
    directory: DirArg,
    label: Annotated[str, typer.Argument(help="The study label, e.g. Takehara2013.")],
    references: Annotated[
        list[int],
        typer.Option(
            "--ref", help="A reference id of a report of the study (repeat; the first is primary)."
        ),
    ],
    design: Annotated[str, typer.Option(help="The study design, as named in the protocol.")],
    actor: Annotated[
        str | None,
        typer.Option("--as", help="Who adds it (audit log); default: $METASIFT_USER or login."),
    ] = None,
    db: DbOpt = None,
):
    """Add a study made of one or more references included at full text."""
    from metasift.extraction import add_study
    from metasift.review import default_actor

    with _open(directory, db, actor) as review:
        info = add_study(
            review.store,
            label,
            design,
            references,
            actor or default_actor(),
            protocol=review.protocol,
        )
    err.print(f"added study #{info.id} {info.label} ({info.design})")


@app.command("template")
def template_cmd(
    directory: DirArg,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the XLSX; default: DIR/out/extraction.xlsx."),
    ] = None,
    db: DbOpt = None,
):
    """Write the XLSX extraction form from the protocol (a row per study, drop-downs)."""
    from metasift.extraction import studies, write_template

    with _open(directory, db) as review:
        with review.store.read() as s:
            rows = studies(s)
        path = write_template(
            review.protocol, out_file or directory / "out" / "extraction.xlsx", studies=rows
        )
    err.print(f"wrote {path} ({len(rows)} studies)")


@app.command("load")
def load_cmd(
    directory: DirArg,
    file: Annotated[Path, typer.Argument(help="The filled XLSX extraction form.")],
    reviewer: Annotated[str, typer.Option(help="The extractor whose values these are.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
):
    """Load a filled extraction form; every problem is listed by sheet, row and column."""
    from metasift.extraction import load_workbook

    with _open(directory, db, reviewer) as review:
        report = load_workbook(review.store, review.protocol, file, reviewer)
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        err.print(report.summary())


@app.command("differences")
def differences_cmd(
    directory: DirArg,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    resolved: Annotated[
        bool, typer.Option("--resolved", help="Also list reconciled cells, with the decision.")
    ] = False,
):
    """List the cells where extractors differ (conflict) or one of two is missing (incomplete)."""
    from metasift.extraction import differences

    with _open(directory, db) as review, review.store.read() as s:
        diffs = differences(s, review.protocol, include_resolved=resolved)
    if as_json:
        print(json.dumps([d.to_dict() for d in diffs], ensure_ascii=False))
        return
    t = Table(title=f"Differences ({len(diffs)})")
    for c in ("kind", "study", "field", "outcome", "arm", "timepoint", "values", "decided"):
        t.add_column(c)
    for d in diffs:
        c = d.cell
        values = "; ".join(f"{r}: {v}" for r, v in d.values.items())
        decided = f"{d.reconciled} ({d.decided_by})" if d.reconciled is not None else ""
        t.add_row(d.kind, d.study, c.field, c.outcome, c.arm, c.timepoint, values, decided)
    out.print(t)


@app.command("reconcile")
def reconcile_cmd(
    directory: DirArg,
    study: Annotated[str, typer.Argument(help="The study label (or id).")],
    field: Annotated[str, typer.Argument(help="The form field, e.g. n_total or mean.")],
    value: Annotated[str, typer.Option("--value", help="The decided value.")],
    decided_by: Annotated[str, typer.Option("--as", help="Who decides (a protocol reviewer).")],
    note: Annotated[str, typer.Option("--note", help="Why this value (required).")],
    arm: Annotated[str, typer.Option("--arm", help="The arm, for outcome data.")] = "",
    outcome: Annotated[str, typer.Option("--outcome", help="The outcome, for outcome data.")] = "",
    timepoint: Annotated[
        str, typer.Option("--timepoint", help="The time point, for outcome data.")
    ] = "",
    db: DbOpt = None,
):
    """Decide the value of one cell, recording who decided and why."""
    from metasift.extraction import Cell, reconcile

    with _open(directory, db, decided_by) as review:
        row = reconcile(
            review.store,
            review.protocol,
            study,
            Cell(field, arm=arm, outcome=outcome, timepoint=timepoint),
            value,
            decided_by,
            note,
        )
    err.print(
        f"{study} {Cell(field, arm, outcome, timepoint).describe()} = {row.value} ({row.reviewer})"
    )


@app.command("values")
def values_cmd(
    directory: DirArg,
    db: DbOpt = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV to stdout.")] = False,
    as_json: JsonOpt = False,
):
    """Show the agreed (final) values: reconciled, or agreed by the required extractors."""
    from metasift.extraction import final_values

    with _open(directory, db) as review, review.store.read() as s:
        df = final_values(s, review.protocol)
    if as_csv:
        print(df.to_csv(index=False), end="")
        return
    if as_json:
        print(df.to_json(orient="records", force_ascii=False))
        return
    t = Table(title=f"Agreed values ({len(df)})")
    cols = ["study", "field", "outcome", "arm", "timepoint", "value", "unit"]
    for c in cols:
        t.add_column(c)
    for rec in df[cols].itertuples(index=False):
        t.add_row(*map(str, rec))
    out.print(t)
