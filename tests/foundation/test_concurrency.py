"""Real processes against the store: a killed writer leaves it consistent, and two writers at once
lose nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from sqlalchemy import func, select, text

from metasift.store.models import Decision, Event

KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from metasift.review import Review
    from metasift.store.models import Decision
    folder, db, ref = sys.argv[1], sys.argv[2] or None, int(sys.argv[3])
    review = Review.open(folder, db=db)
    with review.store.write() as s:
        for i in range(1_000_000):
            s.add(Decision(reference_id=ref, stage="title_abstract", reviewer="alice",
                           decision="include"))
            review.store.audit(s, "alice", "screen.decide", "reference", ref)
            if i % 100 == 99:
                s.flush()
                if i == 999:
                    print("mid-write", flush=True)
                time.sleep(0.001)
    """
)

PARALLEL_WRITER = textwrap.dedent(
    """
    import sys, time, pathlib
    from metasift.review import Review
    folder, db, reviewer, go = sys.argv[1], sys.argv[2] or None, sys.argv[3], pathlib.Path(sys.argv[4])
    refs = [int(x) for x in sys.argv[5].split(",")]
    review = Review.open(folder, db=db)
    while not go.exists():
        time.sleep(0.005)
    for ref in refs:
        review.decide(ref, "title_abstract", reviewer, "include" if ref % 3 else "exclude")
    print("done", flush=True)
    """
)


def _db_arg(review) -> str:
    return "" if review.store.dialect == "sqlite" else review.store.url


def _env():
    env = dict(os.environ)
    env.pop("METASIFT_DB", None)
    return env


def test_killing_a_writer_mid_transaction_leaves_the_store_consistent(project, make_refs, tmp_path):
    (ref,) = make_refs(project, ["A trial"])
    n_events = len(project.audit_log())
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(project.path), _db_arg(project), str(ref)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    line = proc.stdout.readline()
    assert line.strip() == "mid-write", proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # Nothing of the killed transaction is visible; the store still accepts writes.
    with project.store.read() as s:
        assert s.scalar(select(func.count(Decision.id))) == 0
        assert s.scalar(select(func.count(Event.id))) == n_events
        if project.store.dialect == "sqlite":
            assert s.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    project.decide(ref, "title_abstract", "alice", "include")
    with project.store.read() as s:
        assert s.scalar(select(func.count(Decision.id))) == 1


def test_two_processes_deciding_at_once_lose_nothing(project, make_refs, tmp_path):
    refs = make_refs(project, [f"Study {i}" for i in range(120)])
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                PARALLEL_WRITER,
                str(project.path),
                _db_arg(project),
                who,
                str(go),
                ",".join(map(str, refs)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for who in ("alice", "bob")
    ]
    time.sleep(1.0)  # both processes have opened the project and wait at the barrier
    go.touch()
    for p in procs:
        out, errtext = p.communicate(timeout=240)
        assert p.returncode == 0, errtext
        assert out.strip() == "done"
    with project.store.read() as s:
        rows = s.execute(
            select(Decision.reviewer, func.count(Decision.id)).group_by(Decision.reviewer)
        ).all()
        per_reviewer = {r: n for r, n in rows}
        decide_events = s.scalar(
            select(func.count(Event.id)).where(Event.action == "screen.decide")
        )
    assert per_reviewer == {"alice": 120, "bob": 120}
    assert decide_events == 240
    states = project.stage_states("title_abstract")
    assert all(len(st.decisions) == 2 for st in states.values()) and len(states) == 120
