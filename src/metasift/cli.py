"""The command line: thin over the library. Each command opens the project, calls one library
function and prints. Data goes to stdout (``--json``), progress and messages to stderr. A user
error prints one line and exits 1; ``--debug`` shows the traceback instead."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from metasift import __version__
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

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DirArg = Annotated[Path, typer.Argument(help="The project folder.")]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", envvar="METASIFT_DB", help="Database URL (postgresql://…); default: DIR/review.db."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON to stdout instead of a table.")]
ActorOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        "--user",
        help="Who is acting (for the audit log); default: $METASIFT_USER or the login name.",
    ),
]


def _open(directory: Path, db: str | None, actor: str | None = None):
    from metasift.review import Review

    return Review.open(directory, db=db, actor=actor)


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
