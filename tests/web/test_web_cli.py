"""`metasift serve` and `metasift user add` as Typer commands (registered the way cli.py will)."""

from __future__ import annotations

import os

import typer
from typer.testing import CliRunner

from metasift.cli_web import serve, user_add


def _app():
    app = typer.Typer()
    users = typer.Typer()
    app.command("serve")(serve)
    users.command("add")(user_add)
    app.add_typer(users, name="user")
    return app


def test_user_add_prompts_and_hashes(project, fast_hash):
    from metasift.web import users

    db = None if project.store.dialect == "sqlite" else project.store.url
    args = ["user", "add", str(project.path), "bob", "--role", "reviewer"]
    if db:
        args += ["--db", db]
    r = CliRunner().invoke(_app(), args, input="s3cret-pass\ns3cret-pass\n")
    assert r.exit_code == 0, r.output
    assert users.authenticate(project.store, "bob", "s3cret-pass").role == "reviewer"
    assert users.authenticate(project.store, "bob", "wrong-pass!") is None
    r = CliRunner().invoke(_app(), [*args, "--password", "another-pass"])
    assert r.exit_code == 1 and "already exists" in r.output
    r = CliRunner().invoke(
        _app(),
        ["user", "add", str(project.path), "eve", "--role", "god", "--password", "x" * 9]
        + (["--db", db] if db else []),
    )
    assert r.exit_code == 1 and "role must be one of" in r.output
    r = CliRunner().invoke(
        _app(),
        ["user", "add", str(project.path), "eve", "--password", "short"]
        + (["--db", db] if db else []),
    )
    assert r.exit_code == 1 and "at least 8" in r.output


def test_serve_runs_uvicorn_on_loopback(project, monkeypatch):
    import uvicorn

    calls = []
    # serve() hands the project and store to worker processes through the environment
    monkeypatch.setenv("METASIFT_WEB_PROJECT", "placeholder")
    monkeypatch.setenv("METASIFT_DB", "placeholder")
    monkeypatch.delenv("METASIFT_DB")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    db = [] if project.store.dialect == "sqlite" else ["--db", project.store.url]
    r = CliRunner().invoke(_app(), ["serve", str(project.path), "--port", "8123", *db])
    assert r.exit_code == 0, r.output
    app, kw = calls[0]
    assert kw["host"] == "127.0.0.1" and kw["port"] == 8123
    assert hasattr(app, "router")  # a FastAPI app object with one worker
    assert "no users yet" in r.output
    r = CliRunner().invoke(_app(), ["serve", str(project.path), "--workers", "3", *db])
    assert r.exit_code == 0, r.output
    app, kw = calls[1]
    assert app == "metasift.web.app:app_from_env" and kw["factory"] and kw["workers"] == 3
    assert os.environ["METASIFT_WEB_PROJECT"] == str(project.path.resolve())


def test_serve_not_a_project(tmp_path):
    r = CliRunner().invoke(_app(), ["serve", str(tmp_path / "nothing")])
    assert r.exit_code == 1 and "not a metasift project" in r.output


def test_every_parameter_has_help():
    import inspect

    for fn in (serve, user_add):
        for name, p in inspect.signature(fn).parameters.items():
            meta = p.annotation.__metadata__[0] if hasattr(p.annotation, "__metadata__") else None
            if meta is None:  # postponed annotations: resolve them
                hints = __import__("typing").get_type_hints(fn, include_extras=True)
                meta = hints[name].__metadata__[0]
            assert meta.help, f"{fn.__name__}({name}) has no help text"
