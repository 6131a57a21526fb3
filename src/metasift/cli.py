"""The command line: thin over the library. Each command opens the project, calls one library
function and prints. Data goes to stdout (``--json``), progress and messages to stderr. A user
error prints one line and exits 1; ``--debug`` shows the traceback instead."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
import typer.core
from rich.markup import escape
from rich.table import Table

from metasift import __version__
from metasift.cli_common import ActorOpt, DbOpt, DirArg, JsonOpt, err, open_review, out
from metasift.errors import MetasiftError

app = typer.Typer(
    help="metasift: a whole systematic review and meta-analysis in one reproducible project.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
protocol_app = typer.Typer(
    help="Check and show the review protocol (protocol.yaml).", no_args_is_help=True
)
app.add_typer(protocol_app, name="protocol")


class DefaultGroup(typer.core.TyperGroup):
    """A command group that runs its ``run`` command when the first argument is not a subcommand,
    so ``metasift dedup DIR`` and ``metasift dedup review DIR`` both work."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


dedup_app = typer.Typer(
    cls=DefaultGroup,
    no_args_is_help=True,
    help="Find duplicate records (`metasift dedup DIR`), review the uncertain pairs, undo a merge.",
)
app.add_typer(dedup_app, name="dedup")
screen_app = typer.Typer(
    cls=DefaultGroup,
    no_args_is_help=True,
    help="Screen references (`metasift screen DIR --stage … --reviewer …`), conflicts, agreement, stopping.",
)
app.add_typer(screen_app, name="screen")

_open = open_review


def _version(value: bool):
    if value:
        out.print(f"metasift {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
):
    """metasift: from database exports to a publishable systematic review."""


@app.command()
def init(
    directory: DirArg,
    db: DbOpt = None,
    protocol: Annotated[
        Path | None,
        typer.Option(help="Start from this protocol.yaml instead of the commented template."),
    ] = None,
    actor: ActorOpt = None,
):
    """Create a project folder with a commented protocol template and an empty store."""
    from metasift.review import Review

    text = protocol.read_text(encoding="utf-8-sig") if protocol else None
    review = Review.create(directory, db=db, protocol_text=text, actor=actor)
    err.print(
        f"created {directory} (store: {review.store.safe_url}); edit {directory}/protocol.yaml next"
    )
    review.close()


@app.command()
def status(directory: DirArg, db: DbOpt = None, as_json: JsonOpt = False):
    """Counts by stage and by source."""
    with _open(directory, db) as review:
        st = review.status()
    if as_json:
        print(json.dumps(st.to_dict(), ensure_ascii=False))
        return
    out.print(
        f"[bold]{review.protocol.title}[/bold]  (protocol v{st.protocol_version}, store {st.store})"
    )
    t = Table(title="Sources")
    for c in ("#", "database", "file", "searched", "records"):
        t.add_column(c)
    for s in st.sources:
        t.add_row(str(s["id"]), s["database"], s["file"], s["searched"] or "", str(s["records"]))
    out.print(t)
    out.print(
        f"records {st.records} · references {st.references} · duplicates removed {st.duplicates_removed}"
    )
    for stage, counts in st.stages.items():
        out.print(f"{stage}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@protocol_app.command("check")
def protocol_check(directory: DirArg, db: DbOpt = None, actor: ActorOpt = None):
    """Validate protocol.yaml and store it as a new version if it changed."""
    with _open(directory, db, actor) as review:
        version = review.protocol_version()
        p = review.protocol
    err.print(
        f"protocol OK (version {version}): {len(p.outcome_domains)} outcome domains, "
        f"{len(p.outcomes())} outcomes, {len(p.extraction.study_fields)} study fields, "
        f"{len(p.reviewers)} reviewers"
    )


@protocol_app.command("show")
def protocol_show(directory: DirArg, db: DbOpt = None):
    """Print the validated protocol as JSON."""
    with _open(directory, db) as review:
        print(review.protocol.model_dump_json(indent=2))


@app.command()
def audit(
    directory: DirArg,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    limit: Annotated[int | None, typer.Option(help="Show at most this many events.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only events of this action (e.g. import).")
    ] = None,
):
    """The audit log: who did what, when, with the state before and after."""
    with _open(directory, db) as review:
        events = review.audit_log(limit=limit, action=action)
    if as_json:
        for e in events:
            print(
                json.dumps(
                    {
                        "id": e.id,
                        "at": e.at.isoformat(),
                        "actor": e.actor,
                        "action": e.action,
                        "entity": e.entity,
                        "entity_id": e.entity_id,
                        "before": e.before,
                        "after": e.after,
                    },
                    ensure_ascii=False,
                )
            )
        return
    t = Table(title="Audit log")
    for c in ("#", "when", "who", "action", "what", "after"):
        t.add_column(c)
    for e in events:
        t.add_row(
            str(e.id),
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            e.actor,
            e.action,
            f"{e.entity} {e.entity_id}".strip(),
            json.dumps(e.after, ensure_ascii=False)[:80] if e.after else "",
        )
    out.print(t)


@app.command("import")
def import_(
    directory: DirArg,
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Export files (RIS, nbib, PubMed XML, BibTeX, EndNote XML, CSV/TSV/XLSX, WoS)."
        ),
    ],
    database: Annotated[
        str, typer.Option("--database", help="The database searched (e.g. MEDLINE, Embase).")
    ],
    searched: Annotated[str, typer.Option("--searched", help="Date searched (YYYY-MM-DD).")] = "",
    query: Annotated[str | None, typer.Option("--query", help="The search string.")] = None,
    query_file: Annotated[
        Path | None, typer.Option("--query-file", help="A file holding the search string.")
    ] = None,
    lenient: Annotated[
        bool, typer.Option("--lenient", help="Import what can be read; report problems per record.")
    ] = False,
    fmt: Annotated[
        str | None, typer.Option("--format", help="Force a reader instead of sniffing.")
    ] = None,
    register: Annotated[
        bool,
        typer.Option(
            "--register",
            help="The source is a trials register, not a database (PRISMA counts them apart).",
        ),
    ] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    actor: ActorOpt = None,
):
    """Import search exports: one Source per file, all or nothing per file."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    q = query_file.read_text(encoding="utf-8") if query_file else (query or "")
    with _open(directory, db, actor) as review:
        for f in files:
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                console=err,
                transient=True,
                disable=as_json or not err.is_terminal,
            ) as bar:
                task = bar.add_task(f"importing {f.name}", total=None)
                rep = review.import_file(
                    f,
                    database=database,
                    searched=searched,
                    query=q,
                    lenient=lenient,
                    format=fmt,
                    kind="register" if register else "database",
                    actor=actor,
                    progress=lambda n, task=task, name=f.name: bar.update(
                        task, description=f"importing {name}: {n} records"
                    ),
                )
            if as_json:
                print(rep.to_json())
                continue
            if rep.skipped:
                err.print(rep.message)
                continue
            err.print(
                f"{f.name}: {rep.imported} records imported ({rep.format}, {rep.encoding}) as source #{rep.source_id}"
            )
            for w in rep.warnings:
                err.print(f"  warning: {w}")
            for p in rep.problems:
                err.print(
                    f"  problem at line {p.get('line')}, record {p.get('record')}, field {p.get('field')}: {p.get('reason')}"
                )


@app.command()
def sources(directory: DirArg, db: DbOpt = None, as_json: JsonOpt = False):
    """The search log: one row per imported file."""
    with _open(directory, db) as review:
        rows = review.sources()
    data = [
        {
            "id": s.id,
            "database": s.database,
            "searched": s.searched_on,
            "file": s.filename,
            "format": s.format,
            "encoding": s.encoding,
            "records": s.n_records,
            "query": s.query,
            "checksum": s.checksum,
            "kind": s.kind,
        }
        for s in rows
    ]
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
        return
    t = Table(title="Sources")
    for c in ("#", "database", "searched", "file", "format", "records"):
        t.add_column(c)
    for d in data:
        t.add_row(
            str(d["id"]), d["database"], d["searched"], d["file"], d["format"], str(d["records"])
        )
    out.print(t)


# -- dedup -------------------------------------------------------------------------------------
@dedup_app.command("run")
def dedup_run(
    directory: DirArg,
    db: DbOpt = None,
    actor: ActorOpt = None,
    auto_threshold: Annotated[
        float | None, typer.Option(help="Score for an automatic merge (default: the library's).")
    ] = None,
    review_threshold: Annotated[
        float | None, typer.Option(help="Score from which a pair is queued for a reviewer.")
    ] = None,
    as_json: JsonOpt = False,
):
    """Deduplicate the project's records: merge sure duplicates, queue uncertain pairs."""
    with _open(directory, db, actor) as review:
        rep = review.dedup(
            actor=actor, auto_threshold=auto_threshold, review_threshold=review_threshold
        )
    if as_json:
        print(json.dumps(rep.to_dict()))
        return
    err.print(rep.summary)
    if rep.queued:
        err.print(f"{rep.queued} uncertain pairs: run `metasift dedup review {directory}`")


def _pair_table(pair) -> Table:
    from metasift.records import Author

    t = Table(title=f"Candidate pair #{pair.link_id} (score {pair.score:.3f})", show_lines=True)
    t.add_column("field")
    t.add_column(f"record {pair.a.id} ({pair.a.source_database})")
    t.add_column(f"record {pair.b.id} ({pair.b.source_database})")
    for f in ("title", "authors", "year", "journal", "volume", "issue", "pages", "doi", "pmid"):
        va, vb = getattr(pair.a, f), getattr(pair.b, f)
        if f == "authors":
            va = "; ".join(str(Author(*x)) for x in (va or [])[:6])
            vb = "; ".join(str(Author(*x)) for x in (vb or [])[:6])
        va, vb = "" if va is None else str(va), "" if vb is None else str(vb)
        style = "" if va.strip().lower() == vb.strip().lower() else "bold yellow"
        t.add_row(
            f,
            f"[{style}]{escape(va)}[/]" if style else escape(va),
            f"[{style}]{escape(vb)}[/]" if style else escape(vb),
        )
    return t


@dedup_app.command("review")
def dedup_review(directory: DirArg, db: DbOpt = None, actor: ActorOpt = None):
    """Walk the queue of uncertain pairs: m = merge, a = keep apart, s = skip, q = quit."""
    from metasift.review import default_actor

    who = actor or default_actor()
    with _open(directory, db, actor) as review:
        pairs = review.dedup_queue()
        if not pairs:
            err.print("no uncertain pairs in the queue")
            return
        done = 0
        for i, pair in enumerate(pairs, 1):
            out.print(_pair_table(pair))
            while True:
                answer = typer.prompt(
                    f"[{i}/{len(pairs)}] m = merge, a = keep apart, s = skip, q = quit", default="s"
                )
                answer = answer.strip().lower()[:1]
                if answer in ("m", "a", "s", "q"):
                    break
            if answer == "q":
                break
            if answer == "s":
                continue
            review.dedup_decide(pair.link_id, "merge" if answer == "m" else "apart", who)
            done += 1
        err.print(f"{done} pairs decided; {len(review.dedup_queue())} left in the queue")


@dedup_app.command("undo")
def dedup_undo(
    directory: DirArg,
    group: Annotated[int, typer.Argument(help="The reference (group) id whose merges to undo.")],
    db: DbOpt = None,
    actor: ActorOpt = None,
):
    """Undo the merges into one reference: its records go back where they were."""
    with _open(directory, db, actor) as review:
        moved = review.dedup_undo(group, actor=actor)
    err.print(f"reference #{group}: {len(moved)} records moved back ({', '.join(map(str, moved))})")


# -- screening ---------------------------------------------------------------------------------
StageOpt = Annotated[str, typer.Option("--stage", help="title_abstract or full_text.")]


def _highlight(text: str, protocol):
    from rich.text import Text

    t = Text(text or "")
    t.highlight_words(protocol.screening.keywords_include, "bold green", case_sensitive=False)
    t.highlight_words(protocol.screening.keywords_exclude, "bold red", case_sensitive=False)
    return t


@screen_app.command("run")
def screen_run(
    directory: DirArg,
    reviewer: Annotated[
        str, typer.Option("--reviewer", help="Who is screening (a protocol reviewer).")
    ],
    stage: StageOpt = "title_abstract",
    db: DbOpt = None,
    limit: Annotated[int | None, typer.Option(help="Stop after this many decisions.")] = None,
):
    """Screen references one by one, the most relevant first (active learning).

    Keys (then Enter): i = include, e = exclude (then pick a reason), m = maybe, r = not retrieved
    (full text), n = add a note to the next decision, b = back (undo your last decision), q = quit."""
    from metasift.screening.decisions import INCLUDE_LIKE
    from metasift.workflow.screening_stage import ScreeningQueue

    with _open(directory, db, reviewer) as review:
        q = ScreeningQueue(review, stage, reviewer)
        reasons = review.protocol.exclusion_reasons(stage)
        n = 0
        note = ""
        while limit is None or n < limit:
            cand = q.next()
            if cand is None:
                err.print(f"nothing left for {reviewer} at {stage}")
                # the last decision may still want changing: offer to go back before leaving
                try:
                    answer = typer.prompt("b back · q quit", default="q", show_default=False)
                except click.exceptions.Abort:
                    break
                if answer.strip().lower()[:1] != "b":
                    break
                last = review.undo(stage, reviewer)
                err.print(
                    f"undid your decision on #{last.reference_id}" if last else "nothing to undo"
                )
                q.decided()
                continue
            ref = cand.reference
            out.rule(
                f"reference #{ref.id} · rank {cand.rank + 1} · model trained on {cand.model_labels} labels"
            )
            out.print(_highlight(ref.title, review.protocol), style="bold")
            authors = "; ".join(f"{a[0]}, {a[1]}".strip(", ") for a in (ref.authors or [])[:6])
            out.print(f"{authors} · {ref.journal} · {ref.year or 'n.d.'}", highlight=False)
            out.print(_highlight(ref.abstract or "(no abstract)", review.protocol))
            keys = "i include · e exclude · m maybe" + (
                " · r not retrieved" if stage == "full_text" else ""
            )
            answer = typer.prompt(f"{keys} · n note · b back · q quit").strip().lower()[:1]
            if answer == "q":
                break
            if answer == "n":
                note = typer.prompt("note")
                continue
            if answer == "b":
                last = review.undo(stage, reviewer)
                err.print(
                    f"undid your decision on #{last.reference_id}" if last else "nothing to undo"
                )
                q.decided()
                continue
            decision = {"i": "include", "e": "exclude", "m": "maybe", "r": "not_retrieved"}.get(
                answer
            )
            if decision is None or (decision == "not_retrieved" and stage != "full_text"):
                err.print("unknown key")
                continue
            reason = ""
            if decision == "exclude" and reasons:
                for k, r in enumerate(reasons, 1):
                    err.print(f"  {k}. {r}")
                required = review.protocol.screening.reason_required(stage)
                pick = typer.prompt(
                    "reason number" + ("" if required else " (Enter: none)"),
                    default="" if not required else None,
                    show_default=False,
                )
                if pick.strip():
                    if not pick.strip().isdigit() or not 1 <= int(pick) <= len(reasons):
                        err.print("no such reason")
                        continue
                    reason = reasons[int(pick) - 1]
            review.decide(ref.id, stage, reviewer, decision, reason=reason, note=note)
            note = ""
            n += 1
            q.decided(relevant=decision in INCLUDE_LIKE)
        err.print(f"{n} decisions recorded")


@screen_app.command("conflicts")
def screen_conflicts(
    directory: DirArg,
    stage: StageOpt = "title_abstract",
    db: DbOpt = None,
    as_json: JsonOpt = False,
):
    """References where the reviewers disagree (both decisions and reasons side by side)."""
    with _open(directory, db) as review:
        conflicts = review.conflicts(stage)
        titles = {r.id: r.title for r in review.references()}
    rows = [
        {
            "reference": c.reference_id,
            "title": titles.get(c.reference_id, ""),
            "decisions": {
                r: {"decision": d.decision, "reason": d.reason, "note": d.note}
                for r, d in c.decisions.items()
            },
        }
        for c in conflicts
    ]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    t = Table(title=f"Conflicts at {stage}")
    t.add_column("#")
    t.add_column("title")
    t.add_column("decisions")
    for r in rows:
        t.add_row(
            str(r["reference"]),
            escape(r["title"][:80]),
            "; ".join(
                f"{k}: {v['decision']}{' (' + v['reason'] + ')' if v['reason'] else ''}"
                for k, v in r["decisions"].items()
            ),
        )
    out.print(t)


@screen_app.command("resolve")
def screen_resolve(
    directory: DirArg,
    reference: Annotated[int, typer.Argument(help="The reference id in conflict.")],
    decision: Annotated[
        str, typer.Argument(help="include or exclude (full text: also not_retrieved).")
    ],
    resolver: Annotated[
        str,
        typer.Option(
            "--as", help="The resolver (a protocol reviewer with role resolver or owner)."
        ),
    ],
    stage: StageOpt = "title_abstract",
    reason: Annotated[str, typer.Option(help="Exclusion reason from the protocol.")] = "",
    note: Annotated[str, typer.Option(help="Why, for the record.")] = "",
    db: DbOpt = None,
):
    """Resolve a conflict (third reviewer or consensus); recorded with who resolved it."""
    with _open(directory, db, resolver) as review:
        review.resolve(reference, stage, resolver, decision, reason=reason, note=note)
    err.print(f"reference #{reference}: resolved as {decision} by {resolver}")


@screen_app.command("agreement")
def screen_agreement(directory: DirArg, db: DbOpt = None, as_json: JsonOpt = False):
    """Agreement per stage and reviewer pair: percent agreement, Cohen's kappa with 95% CI, PABAK."""
    from metasift.workflow.screening_stage import agreement_table

    with _open(directory, db) as review:
        rows = agreement_table(review)
    data = [
        {
            "stage": r["stage"],
            "reviewer_a": r["reviewer_a"],
            "reviewer_b": r["reviewer_b"],
            "n": r["agreement"].n,
            "percent_agreement": r["agreement"].percent_agreement,
            "kappa": r["agreement"].kappa,
            "ci_lb": r["agreement"].ci_lb,
            "ci_ub": r["agreement"].ci_ub,
            "pabak": r["agreement"].pabak,
        }
        for r in rows
    ]
    if as_json:
        print(json.dumps(data))
        return
    t = Table(title="Agreement (include or maybe vs exclude)")
    for c in ("stage", "pair", "n", "% agree", "kappa (95% CI)", "PABAK"):
        t.add_column(c)
    for d in data:

        def f(x):
            return "—" if x is None else f"{x:.3f}"

        t.add_row(
            d["stage"],
            f"{d['reviewer_a']} / {d['reviewer_b']}",
            str(d["n"]),
            f"{100 * d['percent_agreement']:.1f}",
            f"{f(d['kappa'])} ({f(d['ci_lb'])} to {f(d['ci_ub'])})",
            f(d["pabak"]),
        )
    out.print(t)


@screen_app.command("stop-check")
def screen_stop_check(
    directory: DirArg,
    stage: StageOpt = "title_abstract",
    rule: Annotated[
        str,
        typer.Option(
            help="random_sampling (recall estimate with a test) or consecutive_irrelevant."
        ),
    ] = "random_sampling",
    sample_start: Annotated[
        int | None,
        typer.Option(help="Screened records before the random sample began (random_sampling)."),
    ] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
):
    """Estimate recall so far with a stopping rule; the estimate is recorded for the report."""
    from metasift.workflow.screening_stage import stop_check

    with _open(directory, db, actor) as review:
        est = stop_check(review, stage, rule, sample_start=sample_start, actor=actor or "")
    if as_json:
        print(json.dumps(est.to_dict()))
        return
    out.print(est.summary())


# -- simulation and export -------------------------------------------------------------------------
@app.command()
def simulate(
    data: Annotated[
        Path, typer.Argument(help="A labelled CSV (record_id, title, abstract, label_included).")
    ],
    seed: Annotated[int, typer.Option(help="Chooses the prior records and breaks ties.")] = 0,
    prior_included: Annotated[
        int, typer.Option(help="Relevant records known before screening.")
    ] = 1,
    prior_excluded: Annotated[
        int, typer.Option(help="Irrelevant records known before screening.")
    ] = 1,
    output: Annotated[
        Path | None, typer.Option("--out", help="Write the labelling order (CSV) here.")
    ] = None,
    as_json: JsonOpt = False,
):
    """Simulate prioritised screening on labelled data: WSS@95, WSS@100, recall at 10%, RRF@10."""
    from metasift.screening import load_labelled_csv
    from metasift.screening import simulate as run_sim
    from metasift.workflow.screening_stage import DEFAULT_SETUP

    ls = load_labelled_csv(data)
    res = run_sim(
        ls.texts,
        ls.labels,
        setup=DEFAULT_SETUP,
        seed=seed,
        prior_included=prior_included,
        prior_excluded=prior_excluded,
        record_ids=ls.record_ids,
    )
    if output:
        res.to_frame().to_csv(output, index=False)
    if as_json:
        print(
            json.dumps(
                {"dataset": data.name, "seed": seed, **res.metrics(), "seconds": res.seconds}
            )
        )
    else:
        out.print(res.summary())


@app.command()
def export(
    directory: DirArg,
    fmt: Annotated[str, typer.Option("--format", help="ris, csv or bibtex.")] = "ris",
    output: Annotated[
        Path | None, typer.Option("--out", help="File to write (default: stdout).")
    ] = None,
    what: Annotated[
        str,
        typer.Option(help="references (deduplicated, with decisions) or records (as imported)."),
    ] = "references",
    db: DbOpt = None,
):
    """Export records or references with their current decisions, labels and notes."""
    from metasift.workflow.exporting import export as run_export

    with _open(directory, db) as review:
        n = run_export(review, fmt, output or sys.stdout, what=what)
    err.print(f"{n} {what} written" + (f" to {output}" if output else ""))


@app.command()
def analyse(directory: DirArg, db: DbOpt = None, actor: ActorOpt = None):
    """Run the protocol's analyses on the agreed extracted values and store them: rma where the
    data allow (protocol settings), narrative synthesis by direction otherwise, pooled study
    characteristics, adverse events."""
    from metasift.review import default_actor
    from metasift.workflow.analyses import run

    with _open(directory, db, actor) as review:
        res = run(review, actor or default_actor())
    pooled = ", ".join(f"{o} ({m}, k = {r.k})" for o, _, m, r in res.pooled) or "none"
    n_dir = 0 if res.directions is None else int(res.directions["direction"].notna().sum())
    err.print(
        f"pooled: {pooled}\n"
        f"narrative: {n_dir} study x outcome directions"
        + (f" in {len(res.narrative.votes)} domains" if res.narrative is not None else "")
        + f"\npooled characteristics: {', '.join(c.name for c in res.characteristics) or 'none'}"
        + f"\nadverse-event rows: {0 if res.adverse_events is None else len(res.adverse_events)}"
    )


@app.command()
def report(
    directory: DirArg,
    db: DbOpt = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="Folder to (re)build (default: DIR/out).")
    ] = None,
):
    """Rebuild the report from the store: report.html, report.docx, the PRISMA 2020 diagram
    (SVG, PNG, PDF), figures and every table as CSV."""
    from metasift.reporting import build_report

    with _open(directory, db) as review:
        paths = build_report(review, output)
    out.print(paths.summary(), highlight=False)


# -- sub-apps owned by their own modules ----------------------------------------------------------
def _mount() -> None:
    from metasift import cli_appraise, cli_extract, cli_web

    app.add_typer(cli_extract.app, name="extract")
    app.add_typer(cli_appraise.rob_app, name="rob")
    app.add_typer(cli_appraise.grade_app, name="grade")
    app.command("serve")(cli_web.serve)
    user_app = typer.Typer(help="Web-app users and their roles.", no_args_is_help=True)
    user_app.command("add")(cli_web.user_add)
    app.add_typer(user_app, name="user")


_mount()


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        app(args=argv, prog_name="metasift")
    except MetasiftError as exc:
        if debug:
            raise
        err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
        sys.exit(1)
    except (OSError, UnicodeDecodeError) as exc:
        if debug:
            raise
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted; nothing half-written was kept (each write is one transaction)")
        sys.exit(130)


if __name__ == "__main__":
    main()
