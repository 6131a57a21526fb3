"""Metrics of a prioritised screening order (spec: ``shared/reference/screening-stats.md`` §2).

Every function takes ``labels``: the 0/1 labels of the records *in the order they were screened*,
covering every record that is not prior knowledge (prior records are excluded, as in ASReview
Insights). N = ``len(labels)``, R = ``sum(labels)``.

- ``n_to_recall(labels, r)``: n_r, the number of records screened when recall first reaches
  ``r`` (i.e. when ⌈r·R⌉ relevant records have been found).
- ``wss(labels, r)``: work saved over sampling at recall ``r``, Cohen et al. (2006) for a
  ranking: WSS@r = (N − n_r)/N − (1 − r) = r − n_r/N. ASReview Insights instead reads the value
  at the largest achievable recall ≤ r against a rounded linear baseline; the two agree up to that
  rounding (≤ 1/R). All values are proportions (0.30 = 30 points).
- ``recall_at(labels, fraction)``: recall after ⌊fraction·N⌋ records; ``rrf(labels, 10)`` is
  RRF@10, the same quantity in percent.
- ``time_to_discovery(labels)``: 1-based positions of the relevant records; ``atd`` their mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from metasift.errors import MetasiftError, ParameterError

__all__ = [
    "MetricError",
    "recall_curve",
    "n_to_recall",
    "wss",
    "recall_at",
    "rrf",
    "time_to_discovery",
    "atd",
    "all_metrics",
]


class MetricError(MetasiftError):
    """The labels cannot be scored (not 0/1, empty, or without any relevant record)."""


def _labels(labels: Sequence[int]) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0:
        raise MetricError("labels must be a non-empty 1-d sequence of 0/1 in screening order")
    if not np.isin(arr, (0, 1)).all():
        raise MetricError("labels must be 0 or 1")
    if arr.sum() == 0:
        raise MetricError("no relevant record among the labels: recall is undefined")
    return arr.astype(int)


def _check_unit(value: float, param: str, func: str, *, closed_low: bool = False) -> float:
    ok = (0.0 <= value <= 1.0) if closed_low else (0.0 < value <= 1.0)
    if not ok:
        raise ParameterError(param, func, None, value)
    return float(value)


def recall_curve(labels: Sequence[int]) -> np.ndarray:
    """Recall after 1, 2, …, N records screened."""
    arr = _labels(labels)
    return np.cumsum(arr) / arr.sum()


def n_to_recall(labels: Sequence[int], recall: float = 0.95) -> int:
    """Records screened (1-based count) when recall first reaches ``recall``."""
    _check_unit(recall, "recall", "n_to_recall")
    arr = _labels(labels)
    # ⌈r·R⌉ with a guard so 0.95·20 = 19.000000000000004 counts as 19
    need = max(1, math.ceil(recall * arr.sum() - 1e-9))
    return int(np.searchsorted(np.cumsum(arr), need) + 1)


def wss(labels: Sequence[int], recall: float = 0.95) -> float:
    """Work saved over sampling at ``recall`` (proportion): r − n_r/N (Cohen et al. 2006)."""
    arr = _labels(labels)
    return float(recall - n_to_recall(arr, recall) / arr.size)


def recall_at(labels: Sequence[int], fraction: float = 0.10) -> float:
    """Recall after the first ⌊fraction·N⌋ records have been screened."""
    _check_unit(fraction, "fraction", "recall_at", closed_low=True)
    arr = _labels(labels)
    m = math.floor(fraction * arr.size + 1e-9)
    return float(arr[:m].sum() / arr.sum())


def rrf(labels: Sequence[int], percent: float = 10.0) -> float:
    """Relevant records found (percent of R) after screening ``percent``% of the records."""
    return 100.0 * recall_at(labels, percent / 100.0)


def time_to_discovery(labels: Sequence[int]) -> np.ndarray:
    """1-based position in the screening order at which each relevant record is found."""
    arr = _labels(labels)
    return np.flatnonzero(arr) + 1


def atd(labels: Sequence[int], *, proportion: bool = False) -> float:
    """Average time to discovery (records; or as a proportion of N when ``proportion``)."""
    td = time_to_discovery(labels)
    value = float(td.mean())
    return value / len(labels) if proportion else value


def all_metrics(labels: Sequence[int]) -> dict[str, float]:
    """The simulation metrics of one screening order, by name."""
    arr = _labels(labels)
    return {
        "wss95": wss(arr, 0.95),
        "wss100": wss(arr, 1.0),
        "recall_at_10pct": recall_at(arr, 0.10),
        "rrf10": rrf(arr, 10.0),
        "n_to_95": n_to_recall(arr, 0.95),
        "n_to_100": n_to_recall(arr, 1.0),
        "atd": atd(arr),
    }
