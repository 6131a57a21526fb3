"""Command-line entry points of the web app, as Typer-annotated functions registered by cli.py:
``metasift serve DIR`` and ``metasift user add DIR NAME --role ROLE``."""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from metasift.cli_common import DbOpt, DirArg, err
from metasift.errors import MetasiftError


def _fail(exc: MetasiftError):
    err.print(f"[red]error:[/red] {escape(str(exc))}")
    raise typer.Exit(1) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    directory: DirArg,
    db: DbOpt = None,
    host: Annotated[
        str,
        typer.Option(help="Address to bind; 127.0.0.1 keeps the app on this machine only."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes (use more than 1 only with a PostgreSQL store; for a busy "
            "team, one more than the machine's cores).",
            min=1,
        ),
    ] = 1,
):
    """Serve the review's web app (dashboard, screening, conflicts, import) for the team."""
    import uvicorn

    from metasift.review import Review
    from metasift.web import create_app, users
    from metasift.web.app import project_secret

    try:
        review = Review.open(directory, db=db, actor="web")
        if workers > 1 and review.store.dialect == "sqlite":
            err.print(
                "[yellow]note:[/yellow] several workers over SQLite serialise every write; "
                "a PostgreSQL store (--db) suits a team server better"
            )
        if not users.list_users(review.store):
            err.print(
                f"no users yet: add one with `metasift user add {directory} NAME --role owner`"
            )
        project_secret(review.path)  # create the signing key once, before workers start
    except MetasiftError as exc:
        _fail(exc)
    if not _is_loopback(host):
        err.print(
            f"[yellow]warning:[/yellow] binding to {escape(host)}: anyone who can reach this "
            "address can see the sign-in page; put it behind HTTPS"
        )
    err.print(f"serving {escape(str(directory))} at http://{escape(host)}:{port}")
    if workers == 1:
        uvicorn.run(create_app(review), host=host, port=port, log_level="warning")
        review.close()
        return
    review.close()
    os.environ["METASIFT_WEB_PROJECT"] = str(Path(directory).resolve())
    if db:
        os.environ["METASIFT_DB"] = db
    uvicorn.run(
        "metasift.web.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


def user_add(
    directory: DirArg,
    name: Annotated[
        str, typer.Argument(help="The user name (also the reviewer name in decisions).")
    ],
    role: Annotated[
        str, typer.Option("--role", help="owner | reviewer | resolver | viewer.")
    ] = "reviewer",
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            envvar="METASIFT_PASSWORD",
            help="The password (default: prompted, not echoed). Avoid it on a shared shell.",
        ),
    ] = None,
    db: DbOpt = None,
):
    """Add a web-app user with a role; the password is stored as an argon2 hash."""
    from metasift.review import Review, default_actor
    from metasift.web import users

    try:
        users.check_name(name)
        if role not in users.ROLES:
            raise MetasiftError(f"role must be one of {', '.join(users.ROLES)}; got {role!r}")
        if password is None:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        with Review.open(directory, db=db) as review:
            user = users.add_user(review.store, name, role, password, actor=default_actor())
            names = {r.name for r in review.protocol.reviewers}
            if role in ("owner", "reviewer", "resolver") and names and name not in names:
                err.print(
                    f"[yellow]note:[/yellow] {escape(name)} is not in the protocol's reviewers; "
                    "the library will refuse their screening decisions until protocol.yaml lists them"
                )
    except MetasiftError as exc:
        _fail(exc)
    print(f"added user {user.name} ({user.role})", file=sys.stderr)
