"""The command line: help for every command, documented in docs/cli.md, clean errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest
import typer.main

from metasift.cli import app

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def _commands(group: click.Group, prefix=()):
    for name, cmd in sorted(group.commands.items()):
        path = (*prefix, name)
        if isinstance(cmd, click.Group):
            yield path, cmd
            yield from _commands(cmd, path)
        else:
            yield path, cmd


COMMANDS = list(_commands(typer.main.get_command(app)))


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=" ".join)
def test_every_command_has_help_and_is_in_the_docs(path):
    cmd = dict(COMMANDS)[path]
    assert (cmd.help or "").strip(), f"`metasift {' '.join(path)}` has no help text"
    for p in cmd.params:
        if isinstance(p, click.Option) and p.name not in ("help",):
            assert (p.help or "").strip(), f"option {p.opts} of {' '.join(path)} has no help"
    docs = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert f"metasift {' '.join(path)}" in docs, (
        f"`metasift {' '.join(path)}` is not in docs/cli.md"
    )


def _run(*args, env=None):
    e = dict(os.environ)
    e.pop("METASIFT_DB", None)
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "metasift.cli", *args],
        capture_output=True,
        text=True,
        env=e,
        timeout=120,
    )


def test_user_errors_print_one_line_and_exit_1(tmp_path):
    r = _run("status", str(tmp_path / "none"))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "not a metasift project" in r.stderr
    r = _run("--debug", "status", str(tmp_path / "none"))
    assert r.returncode == 1 and "Traceback" in r.stderr


def test_init_status_audit_json(tmp_path):
    folder = tmp_path / "rev"
    assert _run("init", str(folder), "--as", "ann").returncode == 0
    r = _run("status", str(folder), "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["records"] == 0 and st["protocol_version"] == 1
    r = _run("audit", str(folder), "--json")
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["action"] for e in events] == ["project.create", "protocol.version"]
    assert events[0]["actor"] == "ann"
    (folder / "protocol.yaml").write_text("title: 3\nquestion: {}\n")
    r = _run("protocol", "check", str(folder))
    assert r.returncode == 1 and "question.population" in r.stderr and "Traceback" not in r.stderr


def test_docs_cli_md_is_current():
    r = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_cli_docs.py"), "--check"], timeout=120
    )
    assert r.returncode == 0, "docs/cli.md is stale: run .venv/bin/python scripts/gen_cli_docs.py"
