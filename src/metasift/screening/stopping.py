"""Stopping rules for prioritised screening (registered as ``metasift.stopping``).

Every rule reads the labels screened so far, *in screening order* (1 = relevant), and the number
of records in the pool, and returns a frozen :class:`StopEstimate` that says whether to stop, the
estimated recall where the rule gives one, and the assumptions it rests on.

- ``random_sampling`` — :class:`RandomSamplingStop`, the statistical stopping criterion of
  Callaghan & Müller-Hansen (2020), Syst Rev 9:273 (spec: screening-stats.md §3a). After a
  prioritised phase of ``sample_start`` records, the reviewer screens records drawn uniformly at
  random (without replacement) from the records still unscreened (use :meth:`sampling_order`).
  H0 "recall < target" is tested with the hypergeometric distribution; stop when p < 1 −
  confidence. Without ``sample_start`` the retrospective variant (buscar) is used: each tail of
  the screening order is treated as if it were a random sample and the smallest p is taken —
  valid only if prioritisation ranks relevant records *above* random (then it is conservative).
- ``consecutive_irrelevant`` — :class:`ConsecutiveIrrelevantStop`, the heuristic "stop after n
  irrelevant records in a row" (SAFE's A-phase condition uses n = 50); it gives no recall.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator

from metasift import plugins
from metasift.errors import MetasiftError, ParameterError
from metasift.screening.queriers import as_generator

__all__ = ["StopEstimate", "RandomSamplingStop", "ConsecutiveIrrelevantStop", "estimate"]


@dataclass(frozen=True)
class StopEstimate:
    """What a stopping rule concludes from the screening so far."""

    rule: str
    should_stop: bool
    n_screened: int
    n_relevant_found: int
    n_total: int
    recall_estimate: float | None  # point estimate of recall (None: the rule gives none)
    recall_lb: float | None  # one-sided lower confidence bound on recall
    pval: float | None  # p-value of H0: recall < target
    target: float | None
    confidence: float | None
    assumptions: str
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Every field, JSON-ready (what the store records and ``--json`` prints): numpy scalars
        as Python numbers, non-finite numbers as None."""

        def clean(x):
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            if isinstance(x, list | tuple):
                return [clean(v) for v in x]
            if isinstance(x, np.generic):
                x = x.item()
            if isinstance(x, float) and not math.isfinite(x):
                return None
            return x

        return clean(dataclasses.asdict(self))

    def summary(self) -> str:
        lines = [
            f"Stopping rule {self.rule}: {'STOP' if self.should_stop else 'continue screening'}",
            f"  screened {self.n_screened} of {self.n_total}, relevant found "
            f"{self.n_relevant_found}",
        ]
        if self.recall_estimate is not None:
            lines.append(f"  estimated recall {100 * self.recall_estimate:.1f}%")
        if self.recall_lb is not None:
            lines.append(
                f"  recall >= {100 * self.recall_lb:.1f}% with {100 * self.confidence:g}% "
                "confidence"
            )
        if self.pval is not None:
            lines.append(f"  H0 recall < {100 * self.target:g}%: p = {self.pval:.4g}")
        lines.append(f"  assumptions: {self.assumptions}")
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        keys = [
            "rule",
            "should_stop",
            "n_screened",
            "n_relevant_found",
            "n_total",
            "recall_estimate",
            "recall_lb",
            "pval",
            "target",
            "confidence",
            "assumptions",
        ]
        return pd.DataFrame([{k: getattr(self, k) for k in keys}])


def _labels(labels: Sequence[int], n_total: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or not np.isin(y, (0, 1)).all():
        raise MetasiftError("labels must be a 1-d sequence of 0/1 in screening order")
    if not isinstance(n_total, int | np.integer) or n_total < y.size:
        raise ParameterError("n_total", "estimate", None, n_total)
    return y.astype(int)


def _p_h0(k: int, n: int, urn: int, r_seen: int, r_before: int, target: float) -> float:
    """P(X <= k), X ~ Hypergeom(urn, K_tar, n): Callaghan & Müller-Hansen's test of recall < τ."""
    k_tar = math.floor(r_seen / target - r_before + 1)
    if k_tar > urn:
        return 0.0  # the urn cannot hold enough relevant records for recall < target
    return float(stats.hypergeom.cdf(k, urn, k_tar, n))


def _recall_lb(k: int, n: int, urn: int, r_seen: int, r_before: int, alpha: float) -> float:
    """Lower confidence bound on recall: r_seen / the largest total R not rejected at alpha."""
    if n == 0:
        return r_seen / (r_seen + urn) if r_seen + urn > 0 else 1.0
    # the urn held K = R - r_before relevant records; K >= k and K - k <= urn - n
    ks = np.arange(k, k + (urn - n) + 1)
    p = stats.hypergeom.cdf(k, urn, ks, n)
    ok = ks[p >= alpha]
    k_ub = int(ok.max()) if ok.size else k
    r_ub = r_before + k_ub
    return r_seen / r_ub if r_ub > 0 else 1.0


class RandomSamplingStop(BaseEstimator):
    """Callaghan & Müller-Hansen (2020) random-sampling criterion for recall ≥ ``target``."""

    def __init__(self, target: float = 0.95, confidence: float = 0.95):
        self.target = target
        self.confidence = confidence

    def _check(self):
        for name in ("target", "confidence"):
            v = getattr(self, name)
            if not (isinstance(v, float | int) and 0 < v < 1):
                raise ParameterError(name, "RandomSamplingStop", None, v)

    @staticmethod
    def sampling_order(unscreened: Sequence[int], random_state=None) -> np.ndarray:
        """The order in which to screen ``unscreened`` records in the sampling phase: uniformly
        random without replacement (not model-ranked), as the test requires."""
        return as_generator(random_state).permutation(np.asarray(unscreened))

    def estimate(
        self, labels: Sequence[int], n_total: int, *, sample_start: int | None = None
    ) -> StopEstimate:
        """``labels``: all screened records in order; records from position ``sample_start`` on
        were drawn at random from those unscreened at that moment (None: retrospective)."""
        self._check()
        y = _labels(labels, n_total)
        alpha = 1.0 - self.confidence
        r_seen = int(y.sum())
        n_seen = int(y.size)
        if sample_start is not None:
            if not (0 <= sample_start <= n_seen):
                raise ParameterError(
                    "sample_start", "RandomSamplingStop.estimate", None, sample_start
                )
            r_before = int(y[:sample_start].sum())
            sample = y[sample_start:]
            n, k = int(sample.size), int(sample.sum())
            urn = n_total - sample_start
            variant = "prospective"
            assumptions = (
                f"records after the first {sample_start} were drawn uniformly at random without "
                "replacement from the records unscreened at that point, and each was screened "
                "correctly; recall counts relevant records in this pool only"
            )
        else:
            # retrospective (buscar) variant: the tail of length m with the smallest p
            best = (1.0, 0)
            cums = np.concatenate([[0], np.cumsum(y[::-1])])
            for m in range(1, n_seen + 1):
                km = int(cums[m])
                p = _p_h0(km, m, n_total - (n_seen - m), r_seen, r_seen - km, self.target)
                if p < best[0]:
                    best = (p, m)
            m = best[1]
            sample_start = n_seen - m
            r_before = int(y[:sample_start].sum())
            n, k = m, int(y[sample_start:].sum())
            urn = n_total - sample_start
            variant = "retrospective"
            assumptions = (
                "retrospective variant: the last records screened in model order are treated as "
                "a random sample of those unscreened before them (min p over tails). Conservative "
                "only if the model ranks relevant records above random order; no random sample "
                "was drawn, so this is a heuristic reading of the test"
            )
        p = _p_h0(k, n, urn, r_seen, r_before, self.target) if n > 0 else 1.0
        remaining = urn - n
        if n > 0:
            est_missing = k / n * remaining
            recall = r_seen / (r_seen + est_missing) if r_seen + est_missing > 0 else 1.0
            recall_lb = _recall_lb(k, n, urn, r_seen, r_before, alpha)
        else:
            recall = None
            recall_lb = _recall_lb(0, 0, urn, r_seen, r_before, alpha)
        return StopEstimate(
            rule="random_sampling",
            should_stop=bool(p < alpha) or remaining == 0,
            n_screened=n_seen,
            n_relevant_found=r_seen,
            n_total=int(n_total),
            recall_estimate=recall,
            recall_lb=float(recall_lb),
            pval=float(p),
            target=float(self.target),
            confidence=float(self.confidence),
            assumptions=assumptions,
            params={
                "variant": variant,
                "sample_start": int(sample_start),
                "sample_size": n,
                "sample_relevant": k,
                "source": "Callaghan & Müller-Hansen 2020, Syst Rev 9:273",
            },
        )


class ConsecutiveIrrelevantStop(BaseEstimator):
    """Stop after ``n`` irrelevant records in a row (a heuristic; no recall estimate)."""

    def __init__(self, n: int = 50):
        self.n = n

    def estimate(
        self, labels: Sequence[int], n_total: int, *, sample_start: int | None = None
    ) -> StopEstimate:
        if not (isinstance(self.n, int | np.integer) and self.n >= 1):
            raise ParameterError("n", "ConsecutiveIrrelevantStop", None, self.n)
        y = _labels(labels, n_total)
        hits = np.flatnonzero(y == 1)
        run = int(y.size - (hits[-1] + 1)) if hits.size else int(y.size)
        return StopEstimate(
            rule="consecutive_irrelevant",
            should_stop=run >= self.n or y.size == n_total,
            n_screened=int(y.size),
            n_relevant_found=int(y.sum()),
            n_total=int(n_total),
            recall_estimate=None,
            recall_lb=None,
            pval=None,
            target=None,
            confidence=None,
            assumptions=(
                f"heuristic: {run} irrelevant records in a row (threshold {self.n}); assumes the "
                "ranking has run out of relevant records; gives no recall estimate or guarantee"
            ),
            params={"n": int(self.n), "run": run},
        )


def estimate(
    labels: Sequence[int],
    n_total: int,
    *,
    rule: str = "random_sampling",
    sample_start: int | None = None,
    **params,
) -> StopEstimate:
    """Apply the stopping rule registered as ``rule`` (with ``params``) to the labels so far."""
    klass = plugins.load("stopping", rule)
    try:
        stopper = klass(**params)
    except TypeError as exc:
        raise ParameterError("params", f"estimate(rule={rule!r})", None, params) from exc
    return stopper.estimate(labels, n_total, sample_start=sample_start)
