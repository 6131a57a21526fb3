"""Queriers: which unlabelled record to show next (registered as ``metasift.queriers``).

``rank(scores, random_state)`` orders candidate positions best first; ``scores`` are relevance
scores of the candidates (higher = more likely relevant; 0 is the decision boundary for the
built-in classifiers). Ties are broken at random (seeded), never by file order.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from metasift.errors import ParameterError

__all__ = ["MaxQuery", "UncertaintyQuery", "MixedQuery"]


def as_generator(random_state) -> np.random.Generator:
    """A numpy Generator from None, an int, a Generator or a RandomState."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    return np.random.default_rng(random_state)


def _order(key: np.ndarray, rng, top: int | None = None) -> np.ndarray:
    """Indices sorting ``key`` ascending, ties in random order. With ``top``, only the first
    ``top`` of that same order (the random draws are the same, so the prefix is identical):
    the rows whose key is at most the ``top``-th smallest are sorted, not all of them."""
    tiebreak = rng.random(len(key))
    if top is None or top >= len(key):
        return np.lexsort((tiebreak, key))
    if top <= 0:
        return np.empty(0, dtype=np.intp)
    kth = np.partition(key, top - 1)[top - 1]
    near = np.flatnonzero(key <= kth)  # every row that can be in the first ``top``
    return near[np.lexsort((tiebreak[near], key[near]))][:top]


class MaxQuery(BaseEstimator):
    """Most likely relevant first (certainty-based sampling)."""

    def rank(self, scores, random_state=None, top: int | None = None) -> np.ndarray:
        """Positions best first; with ``top``, only the first ``top`` of the same order."""
        rng = as_generator(random_state)
        return _order(-np.asarray(scores, dtype=float), rng, top)


class UncertaintyQuery(BaseEstimator):
    """Closest to the decision boundary first (uncertainty sampling)."""

    def __init__(self, boundary: float = 0.0):
        self.boundary = boundary

    def rank(self, scores, random_state=None, top: int | None = None) -> np.ndarray:
        """Positions best first; with ``top``, only the first ``top`` of the same order."""
        rng = as_generator(random_state)
        return _order(np.abs(np.asarray(scores, dtype=float) - self.boundary), rng, top)


class MixedQuery(BaseEstimator):
    """Max relevance, with every ``every``-th pick taken by uncertainty instead."""

    def __init__(self, every: int = 10, boundary: float = 0.0):
        self.every = every
        self.boundary = boundary

    def rank(self, scores, random_state=None, top: int | None = None) -> np.ndarray:
        """Positions best first (the whole order: ``top`` is accepted and not used)."""
        if not (isinstance(self.every, int) and self.every >= 2):
            raise ParameterError("every", "MixedQuery", None, self.every)
        rng = as_generator(random_state)
        by_max = list(MaxQuery().rank(scores, rng))
        by_unc = list(UncertaintyQuery(self.boundary).rank(scores, rng))
        taken: set[int] = set()
        out: list[int] = []
        i = j = 0
        while len(out) < len(by_max):
            use_unc = (len(out) + 1) % self.every == 0
            if use_unc:
                while by_unc[j] in taken:
                    j += 1
                pick = by_unc[j]
            else:
                while by_max[i] in taken:
                    i += 1
                pick = by_max[i]
            taken.add(pick)
            out.append(pick)
        return np.asarray(out, dtype=int)
