"""What the web pages need from the library, as plain functions (no request objects here).

Route handlers call these and render the result; the SQL stays in the store and the screening
rules stay in ``metasift.screening`` / ``metasift.workflow``.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import Markup, escape
from sqlalchemy import select

from metasift.errors import BlindingError, MetasiftError, check_param
from metasift.protocol import STAGES
from metasift.sources import IMPORT_SUFFIXES
from metasift.store import Store
from metasift.store.models import FullTextLink, Reference, Setting

STOP_KEY = "stopping"
UPLOAD_SUFFIXES = IMPORT_SUFFIXES
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
SIGNATURE_TTL = 2.0
RETRAIN_MIN_INTERVAL = 3.0  # seconds between two retrainings of one reviewer's model
# how far behind other reviewers' newest decisions the screening page may be (never behind the
# reviewer's own: see QueueRegistry.screen)
VIEW_MAX_AGE = 0.5

# The references of a stage, their texts and features, shared by the queues of all reviewers in
# this process (the texts are the same; each reviewer still has their own classifier and labels).
_SHARED_CORPORA: dict[tuple, _Corpus] = {}
_SHARED_LOCK = threading.Lock()
ORDER_TOP = 2000  # rows ordered after each retraining (the rest only when a request needs them)
_SHARED_MAX = 4


@dataclass
class _Corpus:
    ref_ids: list
    refs: list
    pos: dict
    texts: list
    features: tuple | None = None  # (X_, _feature_key, n_records_) once computed
    error: str = ""  # why the features could not be computed (e.g. no usable words)


# -- text ------------------------------------------------------------------------------------------
def highlight(text: str | None, include=(), exclude=()) -> Markup:
    """Escape ``text`` and wrap the protocol's keywords in ``<mark>`` (case-insensitive).

    Escaping happens piece by piece on the raw text, so HTML in an abstract is always inert."""
    text = text or ""
    words = [(w, "inc") for w in include if w] + [(w, "exc") for w in exclude if w]
    if not words or not text:
        return Markup(escape(text))
    kind = {w.lower(): k for w, k in words}
    pattern = re.compile(
        "|".join(re.escape(w) for w, _ in sorted(words, key=lambda x: -len(x[0]))), re.IGNORECASE
    )
    out, pos = [], 0
    for m in pattern.finditer(text):
        out.append(escape(text[pos : m.start()]))
        out.append(
            Markup('<mark class="kw-{}">{}</mark>').format(kind[m.group(0).lower()], m.group(0))
        )
        pos = m.end()
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def authors_line(authors, limit: int = 8) -> str:
    names = []
    for a in (authors or [])[:limit]:
        if isinstance(a, list | tuple):
            names.append(", ".join(p for p in a if p))
        else:
            names.append(str(a))
    more = len(authors or []) - limit
    return "; ".join(names) + (f"; … (+{more})" if more > 0 else "")


# -- dashboard -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dashboard:
    status: dict
    progress: dict  # stage -> {reviewer: number of standing decisions}
    agreement: list  # rows: stage, reviewer_a, reviewer_b, n, kappa, percent
    stopping: dict  # stage -> latest stop-check payload
    conflicts: dict  # stage -> number of open conflicts


def dashboard(review) -> Dashboard:
    from metasift.workflow.screening_stage import agreement_table

    status = review.status().to_dict()
    progress: dict = {}
    for stage in STAGES:
        counts: Counter = Counter()
        for st in review.stage_states(stage).values():
            for reviewer in st.decisions:
                counts[reviewer] += 1
        progress[stage] = dict(sorted(counts.items()))
    rows = []
    for row in agreement_table(review):
        ag = row["agreement"]
        rows.append(
            {
                "stage": row["stage"],
                "reviewer_a": row["reviewer_a"],
                "reviewer_b": row["reviewer_b"],
                "n": getattr(ag, "n", None),
                "kappa": getattr(ag, "kappa", None),
                "percent": getattr(ag, "percent_agreement", None),
            }
        )
    return Dashboard(
        status=status,
        progress=progress,
        agreement=rows,
        stopping=latest_stop_estimate(review.store),
        conflicts={s: status["stages"][s]["conflicts"] for s in STAGES},
    )


def latest_stop_estimate(store: Store) -> dict:
    """The newest stop-check payload per stage (``metasift screen stop-check`` records it)."""
    with store.read() as s:
        row = s.get(Setting, STOP_KEY)
        return dict(row.value) if row is not None and isinstance(row.value, dict) else {}


# -- screening -------------------------------------------------------------------------------------
def _robust_queue_class():
    from metasift.workflow.screening_stage import ScreeningQueue

    class RobustQueue(ScreeningQueue):
        """A :class:`ScreeningQueue` for a long-running server.

        * Retraining follows the setup's schedule (:meth:`retrain_due`) and runs entirely in one
          background thread per queue (reading the labels included), coalesced: decisions made
          while it trains only mark the model stale, and the thread then trains once more with
          all labels so far. A request never waits for training; ``next()`` uses the latest
          finished model, as in the library. (The count of decisions since a training is kept
          without a lock against the training thread: a decision lost from it delays the next
          training by one decision.)
        * A failed retraining (e.g. too few distinct words yet) keeps the last ranking instead of
          failing a request; the reason is kept in ``train_error``.
        * With many reviewers at once, a reviewer's model is retrained at most every
          ``RETRAIN_MIN_INTERVAL`` seconds, and the feature matrix is shared between reviewers.
        * The queue's texts never change, so the features are not re-hashed on every retraining,
          and the ranking is computed once per finished model (both pure caches).
        """

        train_error = ""

        def _load(self) -> None:
            self.stale = False
            self._ordered = None  # (model, order, partial): see _prepare_order
            self._bg: threading.Thread | None = None
            self._bg_lock = threading.Lock()
            corpus = _shared_corpus(self.review, self.stage, self.prioritiser)
            self.ref_ids, self.refs, self.pos, self.texts = (
                corpus.ref_ids,
                corpus.refs,
                corpus.pos,
                corpus.texts,
            )
            p, texts = self.prioritiser, self.texts
            features, rank = p._features, p.rank
            cache: list = [None, None]

            def cached_features(t):
                if t is texts and getattr(p, "_feature_key", None) is not None:
                    return p.X_
                return features(t)

            def cached_rank(exclude=(), top=None):
                if len(exclude) or top is not None:
                    return rank(exclude, top=top)
                model = getattr(p, "model_", None)
                if cache[0] is not model:
                    cache[1], cache[0] = rank(), model
                return cache[1]

            p._features, p.rank = cached_features, cached_rank
            if corpus.features is not None:
                p.components_ = p.setup.build()  # own classifier, shared matrix
                p.X_, p._feature_key, p.n_records_ = corpus.features
            elif corpus.error:
                self.train_error = corpus.error  # retraining will say so again

        def next(self, states=None):
            """As :meth:`ScreeningQueue.next` (same rule: the best-ranked reference this reviewer
            has not decided that still needs decisions), with the full order cached per finished
            model instead of rebuilt from 50,000 rows on every request. ``states``: the stage's
            current states if the caller has them (read-only; default: read them now)."""
            from metasift.screening.decisions import stage_snapshot
            from metasift.workflow.screening_stage import Candidate

            if states is None:
                with self.review.store.read() as s:  # shared, read-only: no copy per request
                    states = stage_snapshot(s, self.review.protocol, self.stage)
            required = self.review.protocol.screening.stage(self.stage).reviewers_per_record
            model, order, partial = self._prepare_order()
            n_train = model.n_train if model is not None else 0
            start = 0
            while True:
                order_head = order
                for rank, row in enumerate(order[start:], start):
                    st = states.get(self.ref_ids[row])
                    if st is None or (
                        self.reviewer not in st.decisions
                        and st.resolution is None
                        and st.status == "pending"
                        and len(st.decisions) < required
                    ):
                        return Candidate(self.refs[row], rank, n_train)
                if not partial:
                    return None
                # every row of the model's first ORDER_TOP is taken: the whole order, once (from
                # the top again if a newer model has finished meanwhile)
                was = model
                model, order, partial = self._prepare_order(full=True)
                start = len(order_head) if model is was else 0

        def _prepare_order(self, full: bool = False):
            """(the latest finished model, rows best first by it then rows labelled since,
            partial?), cached per model.

            Only the first ``ORDER_TOP`` rows are ordered at first (the same rows, in the same
            order, as the head of the whole order): a request walks a few of them, and sorting
            all 50,000 rows after every retraining took most of a retraining's time. The whole
            order is made when a request walks past them (``full``). The cache is one tuple,
            replaced at once: the retraining thread and requests both call this."""
            import numpy as np

            model = getattr(self.prioritiser, "model_", None)
            held = self._ordered
            if held is not None and held[0] is model and not (full and held[2]):
                return held
            n = len(self.ref_ids)
            if model is None:
                held = (None, list(range(n)), False)
            else:
                top = None if full else ORDER_TOP
                ranked = np.asarray(self.prioritiser.rank(top=top), dtype=int)
                if top is not None and len(ranked) >= top:
                    held = (model, ranked[:top].tolist(), True)
                else:
                    rest = np.ones(n, dtype=bool)
                    rest[ranked] = False
                    held = (model, np.concatenate([ranked, np.flatnonzero(rest)]).tolist(), False)
            self._ordered = held
            return held

        def retrain(self, wait: bool = False) -> None:
            try:
                super().retrain(wait=wait)
                self.train_error = ""
            except MetasiftError as exc:
                self.train_error = str(exc)

        def decided(self, relevant: bool | None = None) -> None:
            with self._bg_lock:
                if not self.retrain_due(relevant):
                    return
                self.stale = True
                if self._bg is None:
                    self._bg = threading.Thread(
                        target=self._train_loop, name="metasift-web-retrain", daemon=True
                    )
                    self._bg.start()

        def _train_loop(self) -> None:
            last = 0.0
            while True:
                wait = last + RETRAIN_MIN_INTERVAL - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                last = time.monotonic()
                with self._bg_lock:
                    if not self.stale:
                        self._bg = None
                        return
                    self.stale = False
                try:
                    self.retrain(wait=True)
                    self._prepare_order()  # here, not in the next request
                except Exception as exc:  # noqa: BLE001 - keep serving the last ranking
                    self.train_error = repr(exc)

    return RobustQueue


def _shared_corpus(review, stage: str, prioritiser) -> _Corpus:
    """The references eligible at ``stage``, their texts and features, built once per process and
    eligible set (the first queue builds them; every other reviewer's queue reuses them)."""
    import json

    from metasift.screening.decisions import eligible_references

    with review.store.read() as s:
        ids = eligible_references(s, review.protocol, stage)
    setup = json.dumps(prioritiser.setup.to_dict(), sort_keys=True, default=str)
    key = (id(review), stage, len(ids), hash(tuple(ids)), setup)
    with _SHARED_LOCK:
        corpus = _SHARED_CORPORA.get(key)
        if corpus is not None and corpus.ref_ids == ids:
            return corpus
        with review.store.read() as s:
            refs = (
                {r.id: r for r in s.scalars(select(Reference).where(Reference.id.in_(ids)))}
                if ids
                else {}
            )
        rows = [refs[i] for i in ids]
        corpus = _Corpus(
            ref_ids=ids,
            refs=rows,
            pos={r: i for i, r in enumerate(ids)},
            texts=[f"{r.title}\n{r.abstract}" for r in rows],
        )
        if corpus.texts:
            try:
                prioritiser._features(corpus.texts)
            except MetasiftError as exc:
                corpus.error = str(exc)
            else:
                corpus.features = (prioritiser.X_, prioritiser._feature_key, prioritiser.n_records_)
        while len(_SHARED_CORPORA) >= _SHARED_MAX:
            _SHARED_CORPORA.pop(next(iter(_SHARED_CORPORA)))
        _SHARED_CORPORA[key] = corpus
        return corpus


def _eligible_signature(review, stage: str) -> tuple:
    """Changes whenever the set of references eligible at ``stage`` may have changed (cheap)."""
    from sqlalchemy import func

    from metasift.store.models import Decision

    with review.store.read() as s:
        n, top = s.execute(
            select(func.count(Reference.id), func.max(Reference.id)).where(Reference.active)
        ).one()
        last = 0
        if stage == "full_text":
            last = s.scalar(select(func.max(Decision.id)).where(Decision.stage == "title_abstract"))
    return (n, top, last)


@dataclass(frozen=True)
class ScreenState:
    candidate: object  # a Candidate, or None when nothing is left for this reviewer
    eligible: int  # references eligible at the stage
    decided: int  # references this reviewer has a standing decision on at the stage


class QueueRegistry:
    """One :class:`ScreeningQueue` per (reviewer, stage), kept across requests so retraining runs in
    the background. A queue is rebuilt when the set of eligible references changed (an import, or a
    reference included at title/abstract becoming screenable at full text)."""

    def __init__(self, review):
        self.review = review
        self._queues: dict[tuple[str, str], list] = {}  # key -> [signature, eligible ids, queue]
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self._sigs: dict[str, tuple[float, tuple]] = {}
        self._refreshing: set[str] = set()

    def signature(self, stage: str) -> tuple:
        """The eligible-set signature, re-read at most every ``SIGNATURE_TTL`` seconds (so another
        worker's import reaches this worker's queues within that time and one query). Only the
        first read waits for the store; later ones are re-read by a background thread while
        requests go on with the signature held (counting 50,000 references takes tens of ms)."""
        held = self._sigs.get(stage)
        if held is None:
            held = (time.monotonic(), _eligible_signature(self.review, stage))
            self._sigs[stage] = held
        elif time.monotonic() - held[0] > SIGNATURE_TTL:
            self._refresh_signature(stage)
        return held[1]

    def _refresh_signature(self, stage: str) -> None:
        with self._guard:
            if stage in self._refreshing:
                return
            self._refreshing.add(stage)

        def work():
            try:
                self._sigs[stage] = (time.monotonic(), _eligible_signature(self.review, stage))
            except Exception:  # noqa: BLE001 - keep the signature held; the next request retries
                pass
            finally:
                with self._guard:
                    self._refreshing.discard(stage)

        threading.Thread(target=work, name="metasift-web-signature", daemon=True).start()

    def lock(self, reviewer: str, stage: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((reviewer, stage), threading.Lock())

    def get(self, reviewer: str, stage: str):
        from metasift.screening.decisions import eligible_references

        check_param(stage, STAGES, "stage", "QueueRegistry.get")
        sig = self.signature(stage)
        key = (reviewer, stage)
        held = self._queues.get(key)
        if held is not None and held[0] != sig:
            with self.review.store.read() as s:
                ids = eligible_references(s, self.review.protocol, stage)
            if ids == held[2].ref_ids:
                held[0] = sig  # e.g. a title/abstract decision that changed nothing at full text
            else:
                held = None
        if held is None:
            held = [sig, None, _robust_queue_class()(self.review, stage, reviewer)]
            self._queues[key] = held
        return held[2]

    def warm(self, reviewers) -> None:
        """Build the queues of ``reviewers`` at every stage now (features, first model), so that
        no reviewer's first request pays for it (the web app calls this at start-up)."""
        for stage in STAGES:
            for reviewer in reviewers:
                with self.lock(reviewer, stage):
                    self.get(reviewer, stage)

    def next(self, reviewer: str, stage: str):
        """(the next candidate or None, the number of references eligible at ``stage``)."""
        with self.lock(reviewer, stage):
            q = self.get(reviewer, stage)
            return q.next(), len(q.ref_ids)

    def screen(self, reviewer: str, stage: str, seen: int | None = None) -> ScreenState:
        """What the screening page shows: the next candidate, the number eligible and how many
        the reviewer has decided, from one read of the store.

        ``seen``: the id of the decision the reviewer has just made. When this process's index of the
        stage holds it and was in step with the store less than ``VIEW_MAX_AGE`` seconds ago,
        the page comes from the index without a read (a decision on PostgreSQL brings the
        index in step as it writes): the page may then lag other reviewers' decisions by that
        much, which only matters for which record is offered (a record offered is decided
        seconds later in any case), never the reviewer's own."""
        with self.lock(reviewer, stage):
            return self._screen(self.get(reviewer, stage), reviewer, stage, seen)

    def screen_now(self, reviewer: str, stage: str, seen: int | None = None) -> ScreenState | None:
        """As :meth:`screen` when it can be answered at once: the reviewer's queue is built and
        current (no rebuild, no first read of the signature) and no other thread is using it.
        Else None, having done nothing: the caller then calls :meth:`screen` where waiting is
        harmless (the web app: in a worker thread rather than its event loop)."""
        held = self._queues.get((reviewer, stage))
        sig = self._sigs.get(stage)
        if held is None or sig is None or held[0] != sig[1]:
            return None
        lock = self.lock(reviewer, stage)
        if not lock.acquire(blocking=False):
            return None
        try:
            if held is not self._queues.get((reviewer, stage)) or held[0] != self.signature(stage):
                return None
            return self._screen(held[2], reviewer, stage, seen)
        finally:
            lock.release()

    def _screen(self, q, reviewer: str, stage: str, seen: int | None = None) -> ScreenState:
        from metasift.screening.decisions import recent_stage_view, stage_view

        view = None
        if seen:
            view = recent_stage_view(
                self.review.store,
                self.review.protocol,
                stage,
                at_least=seen,
                max_age=VIEW_MAX_AGE,
            )
        if view is None:
            with self.review.store.read() as s:
                view = stage_view(s, self.review.protocol, stage)
        return ScreenState(q.next(view.states), len(q.ref_ids), view.counts.get(reviewer, 0))

    def decided(self, reviewer: str, stage: str, relevant: bool | None = None) -> None:
        """Count a decision of the reviewer's; when the setup's retraining schedule says so
        (:meth:`~metasift.workflow.screening_stage.ScreeningQueue.retrain_due`), mark their
        model stale (retrained in the background). Without the queue's lock: the web app calls
        this from its event loop, which must not wait for a request that holds it (a queue
        being built); a queue built meanwhile reads the labels anew."""
        held = self._queues.get((reviewer, stage))
        if held is not None:
            held[2].decided(relevant)


def my_decided(review, stage: str, reviewer: str) -> int:
    """How many references ``reviewer`` has a standing screening decision on at ``stage``."""
    from metasift.screening.decisions import standing_count

    with review.store.read() as s:
        return standing_count(s, review.protocol, stage, reviewer)


@dataclass(frozen=True)
class ReferenceView:
    """One reference with what the requester may see of the decisions on it."""

    id: int
    title: str
    abstract: str
    authors: str
    year: int | None
    journal: str
    doi: str
    links: list = field(default_factory=list)
    decisions: dict = field(default_factory=dict)  # reviewer -> {decision, reason, note}
    blinded: bool = False


def reference_view(review, reference_id: int, stage: str, requester: str) -> ReferenceView:
    """A reference and the decisions on it that ``requester`` may see (blinding by the library)."""
    check_param(stage, STAGES, "stage", "reference_view")
    with review.store.read() as s:
        ref = s.get(Reference, reference_id)
        if ref is None or not ref.active:
            raise MetasiftError(f"no reference #{reference_id}")
        links = [
            link.location
            for link in s.scalars(
                select(FullTextLink)
                .where(FullTextLink.reference_id == reference_id)
                .order_by(FullTextLink.id.desc())
            )
        ]
    blinded = False
    try:
        visible = review.visible_decisions(reference_id, stage, requester)
    except BlindingError:
        visible, blinded = {}, True
    return ReferenceView(
        id=ref.id,
        title=ref.title or "",
        abstract=ref.abstract or "",
        authors=authors_line(ref.authors),
        year=ref.year,
        journal=ref.journal or "",
        doi=ref.doi or "",
        links=links,
        decisions={
            r: {"decision": d.decision, "reason": d.reason, "note": d.note}
            for r, d in visible.items()
            if d is not None
        },
        blinded=blinded,
    )


def reference_card(review, ref: Reference, stage: str) -> ReferenceView:
    """A reference to screen, without any decisions (the screening page never shows them)."""
    return ReferenceView(
        id=ref.id,
        title=ref.title or "",
        abstract=ref.abstract or "",
        authors=authors_line(ref.authors),
        year=ref.year,
        journal=ref.journal or "",
        doi=ref.doi or "",
        links=fulltext_links(review.store, ref.id) if stage == "full_text" else [],
    )


def fulltext_links(store: Store, reference_id: int) -> list[str]:
    with store.read() as s:
        return [
            link.location
            for link in s.scalars(
                select(FullTextLink)
                .where(FullTextLink.reference_id == reference_id)
                .order_by(FullTextLink.id.desc())
            )
        ]


def add_fulltext_link(review, reference_id: int, location: str, actor: str) -> None:
    """Attach a PDF path or URL to a reference for full-text screening (newest wins; audited)."""
    from metasift.screening.decisions import eligible_references

    location = (location or "").strip()
    if not location:
        raise MetasiftError("give a PDF path or URL")
    if len(location) > 2000:
        raise MetasiftError("a PDF path or URL is at most 2000 characters")
    if re.match(r"^[a-z][a-z0-9+.-]*:", location, re.I) and not re.match(
        r"^(https?|file):", location, re.I
    ):
        raise MetasiftError("a link must be an http(s) or file URL, or a path")
    with review.store.write() as s:
        if reference_id not in set(eligible_references(s, review.protocol, "full_text")):
            raise MetasiftError(f"reference #{reference_id} is not at the full-text stage")
        s.add(FullTextLink(reference_id=reference_id, location=location, added_by=actor))
        Store.audit(
            s, actor, "fulltext.link", "reference", reference_id, after={"location": location}
        )


def conflict_views(review, stage: str, requester: str) -> list[ReferenceView]:
    return [
        reference_view(review, st.reference_id, stage, requester)
        for st in sorted(review.conflicts(stage), key=lambda st: st.reference_id)
    ]


# -- uploads ---------------------------------------------------------------------------------------
def safe_filename(name: str) -> str:
    base = Path(name or "").name
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload"
    return base[-120:]


def check_upload_name(name: str) -> str:
    safe = safe_filename(name)
    suffix = Path(safe).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise MetasiftError(
            f"{safe}: not a search export this app imports; use one of {', '.join(UPLOAD_SUFFIXES)}"
        )
    return safe


def incoming_path(project: Path, name: str) -> Path:
    """Where an upload is written before import: under ``searches/`` (never web-served)."""
    folder = Path(project) / "searches" / ".incoming"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{secrets.token_hex(6)}-{check_upload_name(name)}"


def import_upload(
    review,
    path: Path,
    original_name: str,
    *,
    database: str,
    searched: str,
    query: str,
    lenient: bool,
    actor: str,
):
    """Import an uploaded file (copied into ``searches/`` by the library) and drop the staging copy."""
    path = Path(path)
    final = path.with_name(check_upload_name(original_name))
    staged = path.parent / secrets.token_hex(4) / final.name
    staged.parent.mkdir()
    path.rename(staged)  # the import keeps the original file name
    try:
        return review.import_file(
            staged, database=database, searched=searched, query=query, lenient=lenient, actor=actor
        )
    finally:
        staged.unlink(missing_ok=True)
        staged.parent.rmdir()
