"""A full dual-screening run through the command line, driven by a test through stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _run(*args, stdin: str = ""):
    env = dict(os.environ)
    env.pop("METASIFT_DB", None)
    r = subprocess.run(
        [sys.executable, "-m", "metasift.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_dual_screening_conflict_resolution_and_agreement_through_the_cli(tmp_path, shared_dir):
    d = str(tmp_path / "rev")
    assert _run("init", d, "--as", "alice").returncode == 0
    wos = str(shared_dir / "corpus/imports/ris/wos.ris")
    r = _run("import", d, wos, "--database", "Web of Science", "--json")
    assert json.loads(r.stdout)["imported"] == 10
    # alice: include, exclude (reason 1), include, exclude ... ; bob: include everything
    alice = "".join("i\n" if k % 2 == 0 else "e\n1\n" for k in range(10)) + "q\n"
    r = _run("screen", d, "--reviewer", "alice", "--stage", "title_abstract", stdin=alice)
    assert r.returncode == 0 and "10 decisions recorded" in r.stderr
    r = _run("screen", d, "--reviewer", "bob", stdin="i\n" * 10 + "q\n")
    assert r.returncode == 0 and "10 decisions recorded" in r.stderr
    # bob cannot screen more: everything is decided by him
    r = _run("screen", d, "--reviewer", "bob", stdin="q\n")
    assert "nothing left for bob" in r.stderr
    conflicts = json.loads(_run("screen", "conflicts", d, "--json").stdout)
    assert len(conflicts) == 5
    assert all(c["decisions"]["bob"]["decision"] == "include" for c in conflicts)
    ref = conflicts[0]["reference"]
    r = _run(
        "screen",
        "resolve",
        d,
        str(ref),
        "exclude",
        "--as",
        "carol",
        "--reason",
        "wrong population",
        "--note",
        "adults only",
    )
    assert r.returncode == 0, r.stderr
    assert len(json.loads(_run("screen", "conflicts", d, "--json").stdout)) == 4
    (ag,) = json.loads(_run("screen", "agreement", d, "--json").stdout)
    assert (ag["n"], ag["percent_agreement"]) == (10, 0.5)
    assert ag["kappa"] == 0.0  # bob always includes: chance agreement equals observed
    st = json.loads(_run("status", d, "--json").stdout)["stages"]["title_abstract"]
    assert (st["included"], st["excluded"], st["conflicts"]) == (5, 1, 4)
    # undo through the CLI: alice goes back on her last decision
    r = _run("screen", d, "--reviewer", "alice", stdin="b\nq\n")
    assert "undid your decision" in r.stderr
    events = [json.loads(x) for x in _run("audit", d, "--json").stdout.splitlines()]
    actions = [e["action"] for e in events]
    assert (
        actions.count("screen.decide") == 20
        and "screen.resolve" in actions
        and "screen.undo" in actions
    )
