"""Write docs/cli.md from the command tree's own help texts (run: .venv/bin/python scripts/gen_cli_docs.py).

A test fails when docs/cli.md is out of date, so the docs cannot drift from the code."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import typer.main

from metasift.cli import app

OUT = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def walk(group: click.Group, prefix=()):
    for name, cmd in sorted(group.commands.items()):
        path = (*prefix, name)
        yield path, cmd
        if isinstance(cmd, click.Group):
            yield from walk(cmd, path)


def render() -> str:
    root = typer.main.get_command(app)
    lines = [
        "# metasift command line",
        "",
        "Generated from the commands' own help by `scripts/gen_cli_docs.py`; a test keeps it current.",
        "Every command that reads a project takes `--db URL` (or `METASIFT_DB`) to use a PostgreSQL",
        "store instead of `DIR/review.db`. Errors print one line and exit 1; `metasift --debug …`",
        "shows the traceback.",
        "",
    ]
    for path, cmd in walk(root):
        ctx = click.Context(cmd, info_name=" ".join(("metasift", *path)))
        usage = cmd.get_usage(ctx).replace("Usage: ", "")
        lines += [f"## metasift {' '.join(path)}", "", (cmd.help or "").strip(), "", "```", usage]
        for p in cmd.params:
            if isinstance(p, click.Argument):
                lines.append(f"  {p.human_readable_name:<24} {getattr(p, 'help', '') or ''}")
        for p in cmd.params:
            if isinstance(p, click.Option) and p.name != "help":
                opts = ", ".join(p.opts)
                lines.append(f"  {opts:<24} {p.help or ''}")
        lines += ["```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text(encoding="utf-8") == text else 1)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
