"""What every command module shares: the consoles, the common argument and option types, and
opening a project. Kept free of heavy imports so ``metasift --help`` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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


def open_review(directory: Path, db: str | None, actor: str | None = None):
    """The project's Review (a context manager that closes the store)."""
    from metasift.review import Review

    return Review.open(directory, db=db, actor=actor)
