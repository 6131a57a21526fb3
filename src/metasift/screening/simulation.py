"""Simulation of prioritised screening on a labelled data set (``metasift simulate``).

The loop (one screen): pick prior records by the seed; then, until every relevant record is
found, train on everything labelled so far, show the top-ranked record, reveal its label. The
records left when the last relevant one is found are appended in the final model's order.
Metrics are those of :mod:`metasift.screening.metrics`, over the non-prior records.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from metasift.errors import ImportFormatError, MetasiftError, ParameterError
from metasift.screening import metrics as _metrics
from metasift.screening.prioritiser import train_scores
from metasift.screening.setup import DEFAULT_SETUP, ScreeningSetup

__all__ = ["LabelledSet", "SimulationResult", "load_labelled_csv", "choose_priors", "simulate"]

REQUIRED_COLUMNS = ("record_id", "title", "abstract", "label_included")


@dataclass(frozen=True)
class LabelledSet:
    """A labelled screening data set (schema of shared/benchmarks/screening/README.md)."""

    record_ids: tuple
    titles: tuple
    abstracts: tuple
    labels: tuple
    path: str = ""

    @property
    def texts(self) -> list[str]:
        """Title and abstract of each record, joined (what the feature extractor sees)."""
        return [f"{t} {a}".strip() for t, a in zip(self.titles, self.abstracts, strict=True)]

    def __len__(self) -> int:
        return len(self.labels)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "record_id": self.record_ids,
                "title": self.titles,
                "abstract": self.abstracts,
                "label_included": self.labels,
            }
        )


def load_labelled_csv(path: str | Path) -> LabelledSet:
    """Read a labelled CSV (columns record_id, title, abstract, label_included)."""
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(path, reason="file not found")
    try:
        df = pd.read_csv(path, dtype={"title": str, "abstract": str}, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ImportFormatError(path, reason=f"not a readable CSV: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ImportFormatError(
            path,
            line=1,
            field=missing[0],
            reason=f"missing column(s) {missing}",
            sniffed={"columns": "|".join(map(str, df.columns))},
        )
    labels = pd.to_numeric(df["label_included"], errors="coerce")
    bad = np.flatnonzero(~labels.isin([0, 1]).to_numpy())
    if bad.size:
        i = int(bad[0])
        raise ImportFormatError(
            path,
            line=i + 2,
            record=str(df["record_id"].iloc[i]),
            field="label_included",
            reason=f"label must be 0 or 1, got {df['label_included'].iloc[i]!r}",
        )
    ids = df["record_id"]
    dup = ids.duplicated(keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise ImportFormatError(
            path,
            line=i + 2,
            record=str(ids.iloc[i]),
            field="record_id",
            reason="record_id is not unique",
        )
    return LabelledSet(
        record_ids=tuple(ids.tolist()),
        titles=tuple(df["title"].astype(str).tolist()),
        abstracts=tuple(df["abstract"].astype(str).tolist()),
        labels=tuple(int(v) for v in labels),
        path=str(path),
    )


def choose_priors(
    labels: Sequence[int], seed: int | None, prior_included: int = 1, prior_excluded: int = 1
) -> tuple[int, ...]:
    """Row positions of the prior records: ``prior_included`` relevant and ``prior_excluded``
    irrelevant ones drawn with ``numpy.random.default_rng(seed)`` (relevant first)."""
    y = np.asarray(labels, dtype=int)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if prior_included < 0 or prior_included > pos.size:
        raise ParameterError("prior_included", "simulate", None, prior_included)
    if prior_excluded < 0 or prior_excluded > neg.size:
        raise ParameterError("prior_excluded", "simulate", None, prior_excluded)
    rng = np.random.default_rng(seed)
    inc = rng.choice(pos, size=prior_included, replace=False)
    exc = rng.choice(neg, size=prior_excluded, replace=False)
    return tuple(int(i) for i in np.concatenate([inc, exc]))


@dataclass(frozen=True)
class SimulationResult:
    """One simulated screening: the order, its metrics, and how it was produced."""

    setup: dict
    seed: int | None
    n_records: int
    n_relevant: int
    priors: tuple  # row positions of prior records
    order: tuple  # row positions of the other records, in screening order
    labels_in_order: tuple
    n_queried: int  # records actually chosen by a model (the rest follow the final ranking)
    wss95: float
    wss100: float
    recall_at_10pct: float
    rrf10: float
    n_to_95: int
    n_to_100: int
    atd: float
    seconds: float
    record_ids: tuple = ()

    def metrics(self) -> dict:
        keys = ("wss95", "wss100", "recall_at_10pct", "rrf10", "n_to_95", "n_to_100", "atd")
        return {k: getattr(self, k) for k in keys}

    def to_frame(self) -> pd.DataFrame:
        """The labelling order: priors (step 0) then one row per screened record."""
        rows = list(self.priors) + list(self.order)
        ids = list(self.record_ids) if self.record_ids else rows
        prior_labels = [None] * len(self.priors)
        return pd.DataFrame(
            {
                "step": [0] * len(self.priors) + list(range(1, len(self.order) + 1)),
                "row": rows,
                "record_id": [ids[r] for r in rows],
                "label": prior_labels + list(self.labels_in_order),
                "prior": [True] * len(self.priors) + [False] * len(self.order),
                "queried": [True] * len(self.priors)
                + [i < self.n_queried for i in range(len(self.order))],
            }
        )

    def summary(self) -> str:
        s = self.setup
        return "\n".join(
            [
                f"Simulation: {self.n_records} records, {self.n_relevant} relevant, seed "
                f"{self.seed}, priors {list(self.priors)}",
                f"  setup: {s['feature_extractor']} + {s['classifier']} + {s['querier']} + "
                f"{s['balancer']}",
                f"  WSS@95 {100 * self.wss95:.1f}%   WSS@100 {100 * self.wss100:.1f}%",
                f"  recall after 10% screened {100 * self.recall_at_10pct:.1f}% (RRF@10)",
                f"  screened to 95% recall {self.n_to_95}, to 100% {self.n_to_100}",
                f"  {self.seconds:.2f} s",
            ]
        )


def simulate(
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    setup: ScreeningSetup = DEFAULT_SETUP,
    seed: int | None = 0,
    prior_included: int = 1,
    prior_excluded: int = 1,
    priors: Sequence[int] | None = None,
    record_ids: Sequence | None = None,
) -> SimulationResult:
    """Simulate prioritised screening of ``texts`` whose true labels are ``labels``.

    ``seed`` chooses the prior records (:func:`choose_priors`) and drives tie-breaking; pass
    ``priors`` (row positions) to fix them instead.
    """
    t0 = time.perf_counter()
    if not isinstance(setup, ScreeningSetup):
        raise ParameterError("setup", "simulate", None, setup)
    y = np.asarray(labels)
    if len(texts) != len(y):
        raise MetasiftError(f"{len(texts)} texts but {len(y)} labels")
    if y.size == 0 or not np.isin(y, (0, 1)).all():
        raise MetasiftError("labels must be a non-empty sequence of 0/1")
    y = y.astype(int)
    if priors is None:
        priors = choose_priors(y, seed, prior_included, prior_excluded)
    priors = tuple(int(p) for p in priors)
    if len(set(priors)) != len(priors) or any(p < 0 or p >= y.size for p in priors):
        raise ParameterError("priors", "simulate", None, priors)
    n_rel_left = int(y.sum() - y[list(priors)].sum())
    if n_rel_left == 0:
        raise MetasiftError("no relevant record outside the priors: nothing to simulate")

    rng = np.random.default_rng(seed)
    run_setup = ScreeningSetup.from_dict({**setup.to_dict(), "random_state": seed})
    components = run_setup.build()
    X = components.feature_extractor.fit_transform(list(texts))

    labelled = np.zeros(y.size, dtype=bool)
    labelled[list(priors)] = True
    train_idx = list(priors)
    order: list[int] = []
    scores = None
    frac = float(run_setup.retrain_fraction)
    if not (0.0 <= frac < 1.0):
        raise ParameterError("retrain_fraction", "simulate", None, frac)
    queue: list[int] = []  # ranking of the latest model, not yet shown
    since = 0
    while n_rel_left > 0:
        if not queue or since >= max(1, int(frac * len(train_idx))):
            idx = np.asarray(train_idx)
            scores = train_scores(components, X, idx, y[idx], rng, run_setup.presumed_irrelevant)
            candidates = np.flatnonzero(~labelled)
            ranked = candidates[components.querier.rank(scores[candidates], rng)]
            queue = [int(i) for i in ranked[: max(1, int(frac * len(train_idx)) + 1)]][::-1]
            since = 0
        pick = queue.pop()
        labelled[pick] = True
        train_idx.append(pick)
        order.append(pick)
        since += 1
        if y[pick] == 1:
            n_rel_left -= 1
            queue = []  # a relevant record: retrain before the next pick
    n_queried = len(order)
    rest = np.flatnonzero(~labelled)
    if rest.size:
        order.extend(int(i) for i in rest[components.querier.rank(scores[rest], rng)])
    lab = y[order]
    m = _metrics.all_metrics(lab)
    return SimulationResult(
        setup=run_setup.to_dict(),
        seed=seed,
        n_records=int(y.size),
        n_relevant=int(y.sum()),
        priors=priors,
        order=tuple(order),
        labels_in_order=tuple(int(v) for v in lab),
        n_queried=n_queried,
        seconds=time.perf_counter() - t0,
        record_ids=tuple(record_ids) if record_ids is not None else (),
        **m,
    )
