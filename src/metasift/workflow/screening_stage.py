"""Screening on a project: the next reference for a reviewer by active-learning priority, agreement
per reviewer pair, and the stopping rule's recall estimate (recorded for the report).

Blinding and the model: a reviewer's model is trained on references whose outcome is settled
(agreed or resolved, which every reviewer may see) plus that reviewer's own decisions, never on
another reviewer's undisclosed decision, so the ranking itself leaks nothing. Retraining runs in a
background thread; the next reference always comes from the latest *finished* model.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

from sqlalchemy import select

from metasift.errors import MetasiftError, check_param
from metasift.protocol import STAGES
from metasift.screening import DEFAULT_SETUP, Prioritiser, ScreeningSetup, agreement, estimate
from metasift.screening.decisions import INCLUDE_LIKE, eligible_references, stage_states
from metasift.store import Store
from metasift.store.models import Decision, Reference, Setting

SETUP_KEY = "screening_setup"
STOP_KEY = "stopping"


def load_setup(store: Store) -> ScreeningSetup:
    with store.read() as s:
        row = s.get(Setting, SETUP_KEY)
        return ScreeningSetup.from_dict(row.value) if row else DEFAULT_SETUP


def save_setup(store: Store, setup: ScreeningSetup, actor: str) -> None:
    with store.write() as s:
        row = s.get(Setting, SETUP_KEY)
        before = row.value if row else None
        if row:
            row.value = setup.to_dict()
        else:
            s.add(Setting(key=SETUP_KEY, value=setup.to_dict()))
        Store.audit(
            s, actor, "screen.setup", "setting", SETUP_KEY, before=before, after=setup.to_dict()
        )


@dataclass
class Candidate:
    reference: Reference
    rank: int  # 0-based position in the latest ranking (or reference order before a model exists)
    model_labels: int  # how many labels the model that chose it was trained on


class ScreeningQueue:
    """The next references for one reviewer at one stage, by the latest finished model."""

    def __init__(self, review, stage: str, reviewer: str):
        check_param(stage, STAGES, "stage", "ScreeningQueue")
        self.review, self.stage, self.reviewer = review, stage, reviewer
        self.setup = load_setup(review.store)
        self.prioritiser = Prioritiser(self.setup)
        self._thread: threading.Thread | None = None
        self._since = 0  # decisions counted since the labels of the latest training were read
        self._trained_on = 0  # how many labels that training had
        self._load()
        self.retrain(wait=True)

    def _load(self) -> None:
        with self.review.store.read() as s:
            self.ref_ids = eligible_references(s, self.review.protocol, self.stage)
            refs = (
                {
                    r.id: r
                    for r in s.scalars(select(Reference).where(Reference.id.in_(self.ref_ids)))
                }
                if self.ref_ids
                else {}
            )
        self.refs = [refs[i] for i in self.ref_ids]
        self.pos = {r: i for i, r in enumerate(self.ref_ids)}
        self.texts = [f"{r.title}\n{r.abstract}" for r in self.refs]

    def labels(self) -> dict[int, int]:
        """Row -> 0/1 from settled outcomes and this reviewer's own standing decisions."""
        states = self.review.stage_states(self.stage)
        out: dict[int, int] = {}
        for ref, st in states.items():
            if ref not in self.pos:
                continue
            own = st.decisions.get(self.reviewer)
            if st.status in ("included", "excluded"):
                out[self.pos[ref]] = int(st.status == "included")
            elif own is not None and own.decision in ("include", "exclude", "maybe"):
                out[self.pos[ref]] = int(own.decision in INCLUDE_LIKE)
        return out

    def retrain(self, wait: bool = False) -> None:
        if not self.texts:
            return
        self._since = 0  # before the labels are read: a decision counted after is not in them
        labels = self.labels()
        self._trained_on = len(labels)
        if not labels:
            return
        self._thread = self.prioritiser.refit_async(self.texts, labels)
        if wait:
            self._thread.join()

    def next(self) -> Candidate | None:
        """The best-ranked reference this reviewer has not decided and that still needs decisions."""
        states = self.review.stage_states(self.stage)
        required = self.review.protocol.screening.stage(self.stage).reviewers_per_record

        def open_for_me(ref_id: int) -> bool:
            st = states.get(ref_id)
            if st is None:
                return True
            if self.reviewer in st.decisions or st.resolution is not None:
                return False
            return st.status == "pending" and len(st.decisions) < required

        model = getattr(self.prioritiser, "model_", None)
        if model is not None:
            order = list(self.prioritiser.rank())
            n_train = model.n_train
        else:
            order, n_train = list(range(len(self.ref_ids))), 0
        seen = set(order)
        order += [i for i in range(len(self.ref_ids)) if i not in seen]  # labelled since training
        for rank, row in enumerate(order):
            ref_id = self.ref_ids[row]
            if open_for_me(ref_id):
                return Candidate(self.refs[row], rank, n_train)
        return None

    def retrain_due(self, relevant: bool | None = None) -> bool:
        """Count one decision of this reviewer; is a retraining due?

        The setup's schedule (:attr:`~metasift.screening.setup.ScreeningSetup.retrain_fraction`),
        as in :func:`~metasift.screening.simulation.simulate`: at once after a relevant label
        (``relevant``: include or maybe) or a change of unknown kind (None: an undo, say);
        after an irrelevant one, once the decisions since the latest training reach
        max(1, floor(fraction × the labels it had)). Until then the next reference comes from
        the latest model's ranking, as the simulation's figures were measured."""
        self._since += 1
        if relevant is not False:
            return True
        frac = float(self.setup.retrain_fraction or 0.0)
        return self._since >= max(1, int(frac * self._trained_on))

    def decided(self, relevant: bool | None = None) -> None:
        """Call after each decision (``relevant``: see :meth:`retrain_due`): retrain in the
        background when the schedule says so."""
        if self.retrain_due(relevant):
            self.retrain(wait=False)


def agreement_table(review) -> list[dict]:
    """Agreement per stage and reviewer pair on the references both decided (include or maybe vs
    exclude; at full text, not-retrieved is left out)."""
    rows = []
    for stage in STAGES:
        states = review.stage_states(stage)
        reviewers = sorted({r for st in states.values() for r in st.decisions})
        for a, b in itertools.combinations(reviewers, 2):
            la, lb = [], []
            for st in states.values():
                da, db = st.decisions.get(a), st.decisions.get(b)
                if da is None or db is None or "not_retrieved" in (da.decision, db.decision):
                    continue
                la.append("include" if da.decision in INCLUDE_LIKE else "exclude")
                lb.append("include" if db.decision in INCLUDE_LIKE else "exclude")
            if not la:
                continue
            ag = agreement(la, lb, categories=["include", "exclude"])
            rows.append({"stage": stage, "reviewer_a": a, "reviewer_b": b, "agreement": ag})
    return rows


def screening_order(review, stage: str) -> tuple[list[int], list[int], int]:
    """(reference ids in the order first decided, their 0/1 labels, number eligible)."""
    with review.store.read() as s:
        eligible = eligible_references(s, review.protocol, stage)
        first: dict[int, int] = {}
        for ref, did in s.execute(
            select(Decision.reference_id, Decision.id)
            .where(Decision.stage == stage, Decision.kind == "screen", Decision.decision != "undo")
            .order_by(Decision.id)
        ):
            first.setdefault(ref, did)
        states = stage_states(s, review.protocol, stage)
    order = [r for r in sorted(first, key=first.get) if r in set(eligible)]
    labels = []
    for r in order:
        st = states.get(r)
        if st is None:
            continue
        if st.status in ("included", "excluded"):
            labels.append(int(st.status == "included"))
        else:  # undecided between reviewers: count as relevant (conservative for recall)
            labels.append(
                int(
                    any(d.decision in INCLUDE_LIKE for d in st.decisions.values())
                    or st.status == "conflict"
                )
            )
    order = [r for r in order if r in states]
    return order, labels, len(eligible)


def stop_check(
    review,
    stage: str = "title_abstract",
    rule: str = "random_sampling",
    *,
    sample_start: int | None = None,
    actor: str = "",
    **params,
):
    """Apply a stopping rule to the screening so far and record its estimate in the store."""
    order, labels, n_total = screening_order(review, stage)
    if not labels:
        raise MetasiftError(f"no screening decisions at {stage} yet: nothing to estimate")
    est = estimate(labels, n_total, rule=rule, sample_start=sample_start, **params)
    payload = {"stage": stage, **est.to_dict()}
    with review.store.write() as s:
        row = s.get(Setting, STOP_KEY)
        if row:
            row.value = {**row.value, stage: payload}
        else:
            s.add(Setting(key=STOP_KEY, value={stage: payload}))
        Store.audit(s, actor or "unknown", "screen.stop_check", "stage", stage, after=payload)
    return est
