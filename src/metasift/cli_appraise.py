"""``metasift rob`` and ``metasift grade``: risk of bias through the XLSX form, GRADE per outcome.

Thin over :mod:`metasift.appraisal.stored`, :mod:`metasift.appraisal.sheets` and
:mod:`metasift.certainty.stored`: each command opens the project, calls one library function and
prints with rich. Data goes to stdout (``--json``), messages to stderr. A ``MetasiftError``
propagates to ``metasift.cli.main``, which prints one line and exits 1.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from metasift.cli_common import DbOpt, DirArg, JsonOpt, err, open_review, out

rob_app = typer.Typer(
    help="Risk of bias: the XLSX form per tool (RoB 2, ROBINS-I, NOS, JBI), loading it through the "
    "published algorithms, and the current judgements.",
    no_args_is_help=True,
)
grade_app = typer.Typer(
    help="GRADE: rate the certainty of the evidence per outcome, with a reason per domain.",
    no_args_is_help=True,
)

_open = open_review


# -- rob ------------------------------------------------------------------------------------------
@rob_app.command("template")
def rob_template_cmd(
    directory: DirArg,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the XLSX; default: DIR/out/risk_of_bias.xlsx."),
    ] = None,
    db: DbOpt = None,
):
    """Write the XLSX risk-of-bias form: a sheet per tool in use, a row per study, drop-downs."""
    from metasift.appraisal.sheets import tools_in_use, write_rob_template
    from metasift.extraction import studies

    with _open(directory, db) as review:
        with review.store.read() as s:
            rows = studies(s)
        path = write_rob_template(
            review.protocol, out_file or directory / "out" / "risk_of_bias.xlsx", studies=rows
        )
        in_use = tools_in_use(review.protocol, rows)
    per_tool = ", ".join(f"{t}: {len(labels)}" for t, labels in in_use.items())
    err.print(f"wrote {path} ({per_tool})")


@rob_app.command("load")
def rob_load_cmd(
    directory: DirArg,
    file: Annotated[Path, typer.Argument(help="The filled XLSX risk-of-bias form.")],
    reviewer: Annotated[str, typer.Option(help="The reviewer whose judgements these are.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
):
    """Load a filled risk-of-bias form; every problem is listed by sheet, row and column."""
    from metasift.appraisal.sheets import load_rob_workbook

    with _open(directory, db, reviewer) as review:
        report = load_rob_workbook(review.store, review.protocol, file, reviewer)
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        err.print(report.summary())


@rob_app.command("show")
def rob_show_cmd(directory: DirArg, db: DbOpt = None, as_json: JsonOpt = False):
    """Show the current judgements per study and domain (* = the reviewer's override)."""
    from metasift.appraisal.stored import current_judgements

    with _open(directory, db) as review, review.store.read() as s:
        rows = current_judgements(s)
    if as_json:
        print(json.dumps([a.to_dict() for a in rows], ensure_ascii=False))
        return
    by_tool: dict[str, list] = {}
    for a in rows:
        by_tool.setdefault(a.tool, []).append(a)
    if not rows:
        err.print("no risk-of-bias judgements yet")
    for tool, items in by_tool.items():
        domains = list(dict.fromkeys(j.domain for a in items for j in a.domains))
        keys = [k for k in ("outcome", "effect") if any(getattr(a, k) for a in items)]
        t = Table(title=f"{tool} ({len(items)})")
        t.add_column("study", no_wrap=True)
        for c in (*keys, *domains, "overall", "by"):
            t.add_column(c, overflow="fold")
        for a in items:
            cell = {j.domain: _mark(j) for j in a.domains}
            t.add_row(
                a.study,
                *[getattr(a, k) or "" for k in keys],
                *[cell.get(d, "") for d in domains],
                _mark(a.overall) if a.overall else "",
                ", ".join(a.reviewers),
            )
        out.print(t)


def _mark(j) -> str:
    return j.judgement + ("*" if j.source == "override" else "")


# -- grade ----------------------------------------------------------------------------------------
class Design(str, Enum):
    rct = "rct"
    nrs = "nrs"


class Down(str, Enum):
    not_serious = "not_serious"
    serious = "serious"
    very_serious = "very_serious"


DOWN_LEVEL = {Down.not_serious: 0, Down.serious: -1, Down.very_serious: -2}


def _down(name: str, what: str):
    return Annotated[
        Down | None,
        typer.Option(f"--{name}", help=f"{what}: not_serious, serious (-1) or very_serious (-2)."),
    ]


def _reason(name: str):
    return Annotated[
        str | None,
        typer.Option(f"--{name}-reason", help=f"Why this rating of {name.replace('-', ' ')}."),
    ]


def _up(name: str, top: int, what: str):
    return Annotated[
        int | None,
        typer.Option(f"--{name}", min=0, max=top, help=f"{what}: rate up 0..{top} levels."),
    ]


@grade_app.command("set")
def grade_set_cmd(
    directory: DirArg,
    outcome: Annotated[str, typer.Argument(help="The outcome, as named in the protocol.")],
    reviewer: Annotated[str, typer.Option(help="Who rates (a protocol reviewer).")],
    design: Annotated[
        Design,
        typer.Option(
            "--design",
            "--design-start",
            help="The evidence's design: rct (starts High) or nrs (starts Low; High with "
            "--rob-tool robins_i).",
        ),
    ],
    risk_of_bias: _down("risk-of-bias", "Risk of bias") = None,
    risk_of_bias_reason: _reason("risk-of-bias") = None,
    inconsistency: _down("inconsistency", "Inconsistency") = None,
    inconsistency_reason: _reason("inconsistency") = None,
    indirectness: _down("indirectness", "Indirectness") = None,
    indirectness_reason: _reason("indirectness") = None,
    imprecision: _down("imprecision", "Imprecision") = None,
    imprecision_reason: _reason("imprecision") = None,
    publication_bias: _down("publication-bias", "Publication bias") = None,
    publication_bias_reason: _reason("publication-bias") = None,
    large_effect: _up("large-effect", 2, "Large effect") = None,
    large_effect_reason: _reason("large-effect") = None,
    dose_response: _up("dose-response", 1, "Dose-response gradient") = None,
    dose_response_reason: _reason("dose-response") = None,
    plausible_confounding: _up("plausible-confounding", 1, "Plausible confounding") = None,
    plausible_confounding_reason: _reason("plausible-confounding") = None,
    rob_tool: Annotated[
        str | None,
        typer.Option(
            "--rob-tool", help="The risk-of-bias tool of the evidence (robins_i starts nrs High)."
        ),
    ] = None,
    comment: Annotated[
        str, typer.Option("--comment", help="A comment for the summary-of-findings table.")
    ] = "",
    db: DbOpt = None,
    as_json: JsonOpt = False,
):
    """Rate the certainty of the evidence for one outcome: all five downgrading domains, each
    with a reason; upgrading domains optional, each with a reason."""
    from metasift.certainty import CertaintyError
    from metasift.certainty.stored import record_grade

    given = {
        "risk_of_bias": (risk_of_bias, risk_of_bias_reason),
        "inconsistency": (inconsistency, inconsistency_reason),
        "indirectness": (indirectness, indirectness_reason),
        "imprecision": (imprecision, imprecision_reason),
        "publication_bias": (publication_bias, publication_bias_reason),
    }
    for d, (lv, why) in given.items():
        if lv is None and why:
            raise CertaintyError(f"--{d.replace('_', '-')}-reason is given without a rating")
    downgrades = {
        d: (DOWN_LEVEL[lv], why or "") for d, (lv, why) in given.items() if lv is not None
    }
    ups = {
        "large_effect": (large_effect, large_effect_reason),
        "dose_response": (dose_response, dose_response_reason),
        "plausible_confounding": (plausible_confounding, plausible_confounding_reason),
    }
    for d, (lv, why) in ups.items():
        if lv is None and why:
            raise CertaintyError(f"--{d.replace('_', '-')}-reason is given without a rating")
    upgrades = {d: (lv, why or "") for d, (lv, why) in ups.items() if lv is not None}
    with _open(directory, db, reviewer) as review:
        stored = record_grade(
            review.store,
            review.protocol,
            outcome,
            design=design.value,
            downgrades=downgrades,
            upgrades=upgrades,
            rob_tool=rob_tool,
            reviewer=reviewer,
            comment=comment,
        )
    if as_json:
        print(json.dumps(stored.to_dict(), ensure_ascii=False))
    else:
        err.print(stored.summary(), highlight=False)


@grade_app.command("show")
def grade_show_cmd(directory: DirArg, db: DbOpt = None, as_json: JsonOpt = False):
    """Show the current GRADE rating of every rated outcome."""
    from metasift.certainty import DOWNGRADE_DOMAINS
    from metasift.certainty.stored import current_grades

    with _open(directory, db) as review, review.store.read() as s:
        rows = current_grades(s, review.protocol)
    if as_json:
        print(json.dumps([g.to_dict() for g in rows], ensure_ascii=False))
        return
    if not rows:
        err.print("no GRADE ratings yet")
        return
    t = Table(title=f"GRADE ({len(rows)} outcomes)")
    for c in ("outcome", "certainty", "start", *DOWNGRADE_DOMAINS, "rated up", "by"):
        t.add_column(c)
    for g in rows:
        c = g.certainty
        down = {r.domain: str(r.level) if r.level else "0" for r in c.downgrades}
        up = ", ".join(f"{r.domain} +{r.level}" for r in c.upgrades if r.level)
        t.add_row(
            g.outcome,
            f"{c.symbol} {c.level}",
            c.start,
            *[down.get(d, "") for d in DOWNGRADE_DOMAINS],
            up,
            g.reviewer,
        )
    out.print(t)
    for g in rows:
        for f in g.certainty.footnotes:
            out.print(f"{g.outcome}: {f}", highlight=False)
