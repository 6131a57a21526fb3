"""Class balancing for the training set (registered as ``metasift.balancers``).

A balancer turns the 0/1 training labels into per-record sample weights; relevant records are
rare (1–5%), so an unweighted classifier learns mostly "exclude".
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from metasift.errors import ParameterError

__all__ = ["NoBalance", "DoubleBalance"]


class NoBalance(BaseEstimator):
    """Every training record weighs 1."""

    def sample_weight(self, y) -> np.ndarray:
        return np.ones(len(y), dtype=float)


class DoubleBalance(BaseEstimator):
    """Reweight both classes: each class gets the same total weight, then the relevant class is
    multiplied by ``ratio`` (so its total weight is ``ratio`` times the irrelevant total).

    With ``ratio=1`` this is scikit-learn's ``class_weight="balanced"``; ASReview's ``balanced``
    balancer is the same rule (its default ratio 9.8).
    """

    def __init__(self, ratio: float = 1.0):
        self.ratio = ratio

    def sample_weight(self, y) -> np.ndarray:
        if not (isinstance(self.ratio, int | float) and self.ratio > 0):
            raise ParameterError("ratio", "DoubleBalance", None, self.ratio)
        y = np.asarray(y)
        n1 = int((y == 1).sum())
        n0 = int((y == 0).sum())
        w = np.ones(len(y), dtype=float)
        if n1 == 0 or n0 == 0:
            return w
        n = len(y)
        w[y == 1] = self.ratio * n / (2.0 * n1)
        w[y == 0] = n / (2.0 * n0)
        return w / w.mean()
