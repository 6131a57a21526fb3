"""The web app's queue registry keeps the library's screening order and rules."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from metasift.web import services
from metasift.workflow.screening_stage import ScreeningQueue

TOPICS = "exercise yoga surgery placebo insulin sleep anxiety massage knee fracture".split()


def _titles(n):
    return [
        f"{TOPICS[i % 10]} {TOPICS[(i * 3 + 1) % 10]} trial {i} in {TOPICS[(i * 7 + 2) % 10]}"
        for i in range(n)
    ]


def _wait_idle(queue, timeout=60):
    deadline = time.monotonic() + timeout
    while queue._bg is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert queue._bg is None, "retraining did not finish"


def test_registry_next_matches_library_queue(project, make_refs, monkeypatch):
    monkeypatch.setattr(services, "RETRAIN_MIN_INTERVAL", 0.0)
    ids = make_refs(project, _titles(30))
    reg = services.QueueRegistry(project)
    for step in range(8):
        cand, n = reg.next("bob", "title_abstract")
        assert n == 30
        lib = ScreeningQueue(project, "title_abstract", "bob").next()
        assert cand.reference.id == lib.reference.id, step
        project.decide(
            cand.reference.id, "title_abstract", "bob", "include" if step % 3 else "exclude"
        )
        reg.decided("bob", "title_abstract")
        _wait_idle(reg.get("bob", "title_abstract"))
    # another reviewer's queue skips nothing of bob's: it is blind to his decisions
    first_alice, _ = reg.next("alice", "title_abstract")
    assert first_alice.reference.id in ids


def test_a_partial_order_gives_the_same_next_as_the_whole_order(project, make_refs, monkeypatch):
    """After a retraining only the head of the order is sorted (ORDER_TOP rows); a request that
    walks past it gets the whole order, and the same record as a queue that sorted everything."""
    make_refs(project, _titles(30))
    head_only, whole = services.QueueRegistry(project), services.QueueRegistry(project)
    picked = []
    for step in range(10):  # no retraining: the decided rows stay at the head of the order
        monkeypatch.setattr(services, "ORDER_TOP", 2)
        a, _ = head_only.next("bob", "title_abstract")
        monkeypatch.setattr(services, "ORDER_TOP", 10**9)
        b, _ = whole.next("bob", "title_abstract")
        assert a.reference.id == b.reference.id and a.rank == b.rank, step
        picked.append(a.reference.id)
        project.decide(a.reference.id, "title_abstract", "bob", "exclude")
    assert len(set(picked)) == 10
    held = head_only.get("bob", "title_abstract")._ordered
    assert held[2] is False and len(held[1]) == 30  # it went on to the whole order


def test_registry_rules_done_and_rebuilt_after_import(project, make_refs):
    ids = make_refs(project, _titles(3))
    reg = services.QueueRegistry(project)
    for _ in ids:
        cand, _ = reg.next("bob", "title_abstract")
        project.decide(cand.reference.id, "title_abstract", "bob", "include")
        reg.decided("bob", "title_abstract")
    assert reg.next("bob", "title_abstract")[0] is None
    for i in ids[:2]:  # alice agrees on two: both move to full text
        project.decide(i, "title_abstract", "alice", "include")
    reg._sigs.clear()  # skip the signature's time-to-live
    cand, n = reg.next("bob", "full_text")
    assert n == 2 and cand.reference.id in ids[:2]
    (new,) = make_refs(project, ["brand new record on yoga"])
    reg._sigs.clear()
    cand, n = reg.next("bob", "title_abstract")
    assert n == 4 and cand.reference.id == new


def test_failed_training_keeps_serving(project, make_refs):
    ids = make_refs(project, ["same words"] * 4)  # TF-IDF finds no usable terms
    reg = services.QueueRegistry(project)
    cand, _ = reg.next("bob", "title_abstract")
    project.decide(cand.reference.id, "title_abstract", "bob", "include")
    reg.decided("bob", "title_abstract")
    q = reg.get("bob", "title_abstract")
    _wait_idle(q)
    cand2, _ = reg.next("bob", "title_abstract")
    assert cand2 is not None and cand2.reference.id != cand.reference.id
    assert cand2.reference.id in ids


def test_queues_share_references_and_features(project, make_refs):
    make_refs(project, _titles(12))
    reg = services.QueueRegistry(project)
    bob, alice = reg.get("bob", "title_abstract"), reg.get("alice", "title_abstract")
    assert bob is not alice
    assert bob.refs is alice.refs and bob.texts is alice.texts  # loaded once per process
    assert bob.prioritiser.X_ is alice.prioritiser.X_  # features computed once
    assert bob.prioritiser.components_ is not alice.prioritiser.components_  # own classifiers


def test_start_up_builds_the_screening_users_queues(web):
    from starlette.testclient import TestClient

    review, app, _ = web
    assert not app.state.queues._queues
    with TestClient(app):  # runs the app's start-up
        built = set(app.state.queues._queues)
    screeners = {"alice", "bob"}  # owner and reviewer; carol resolves, victor views
    assert built == {(u, s) for u in screeners for s in ("title_abstract", "full_text")}


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds sockets through /proc")
def test_no_delay_on_the_server_socket():
    import socket

    from metasift.web.app import no_delay_on_listeners

    server = socket.socket()  # bound, not yet listening: as a uvicorn worker holds it
    server.bind(("127.0.0.1", 0))
    try:
        assert server.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        assert no_delay_on_listeners() >= 1
        assert server.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        server.listen()
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1  # inherited
        client.close()
        accepted.close()
    finally:
        server.close()


def test_an_import_reaches_the_queue_through_the_background_signature(
    project, make_refs, monkeypatch
):
    monkeypatch.setattr(services, "SIGNATURE_TTL", 0.0)
    make_refs(project, _titles(5))
    reg = services.QueueRegistry(project)
    assert reg.next("bob", "title_abstract")[1] == 5
    (new,) = make_refs(project, ["brand new record on yoga"])  # as another worker's import
    deadline = time.monotonic() + 60
    n = 5
    while n == 5 and time.monotonic() < deadline:
        time.sleep(0.05)
        _, n = reg.next("bob", "title_abstract")  # the first call starts the re-read
    assert n == 6 and new in reg.get("bob", "title_abstract").ref_ids


def test_retraining_follows_the_setups_schedule(project, make_refs):
    """As in simulation: a relevant label retrains at once; irrelevant ones once they reach
    max(1, floor(retrain_fraction x labels of the latest training)); an undo (None) at once."""
    from dataclasses import replace

    from metasift.workflow.screening_stage import save_setup

    ids = make_refs(project, _titles(40))
    save_setup(
        project.store,
        replace(ScreeningQueue(project, "title_abstract", "bob").setup, retrain_fraction=0.25),
        "tester",
    )
    for i in ids[:12]:
        project.decide(i, "title_abstract", "bob", "exclude" if i % 4 else "include")
    q = ScreeningQueue(project, "title_abstract", "bob")
    assert q._trained_on == 12 and q._since == 0
    due = [q.retrain_due(False) for _ in range(3)]  # every floor(0.25 x 12) = 3rd
    assert due == [False, False, True]
    q.retrain(wait=True)
    assert q._since == 0
    assert q.retrain_due(True) and q.retrain_due(None)  # relevant, or unknown: at once
    zero = ScreeningQueue(project, "title_abstract", "alice")
    zero.setup = replace(zero.setup, retrain_fraction=0.0)
    assert zero.retrain_due(False)  # 0: after every label


def test_the_registry_marks_a_model_stale_only_when_a_retraining_is_due(
    project, make_refs, monkeypatch
):
    from dataclasses import replace

    monkeypatch.setattr(services, "RETRAIN_MIN_INTERVAL", 0.0)

    from metasift.workflow.screening_stage import save_setup

    ids = make_refs(project, _titles(40))
    save_setup(
        project.store,
        replace(ScreeningQueue(project, "title_abstract", "bob").setup, retrain_fraction=0.5),
        "tester",
    )
    for i in ids[:10]:
        project.decide(i, "title_abstract", "bob", "exclude" if i % 3 else "include")
    reg = services.QueueRegistry(project)
    q = reg.get("bob", "title_abstract")
    assert q._trained_on == 10
    for _ in range(4):  # floor(0.5 x 10) = 5 irrelevant decisions before a retraining
        reg.decided("bob", "title_abstract", relevant=False)
        assert q._bg is None and not q.stale
    reg.decided("bob", "title_abstract", relevant=False)
    assert q._bg is not None or q.stale
    _wait_idle(q)
    reg.decided("bob", "title_abstract", relevant=True)  # a relevant one: at once
    assert q._bg is not None or q.stale
    _wait_idle(q)
