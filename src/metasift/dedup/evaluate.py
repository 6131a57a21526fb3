"""Group-aware scoring of a deduplication against labelled truth.

Definitions (``../shared/benchmarks/dedup/README.md``): each predicted cluster C is "keep one,
remove the rest". Correct removals in C = sum over true groups g meeting C of (|C ∩ g| - 1);
wrong removals (a unique study lost) = (number of distinct true groups in C) - 1.
TP = correct removals, FP = wrong removals, FN = (N - n_true_unique) - TP,
TN = n_true_unique - FP. Pairwise precision/recall are reported as a second view.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass

import pandas as pd

from metasift.errors import ParameterError


@dataclass(frozen=True)
class Metrics:
    sensitivity: float
    specificity: float
    precision: float
    tp: int
    fp: int
    fn: int
    tn: int
    n_records: int
    n_true_unique: int
    n_pred_unique: int
    pairwise_precision: float
    pairwise_recall: float

    @property
    def f1(self) -> float:
        s, p = self.sensitivity, self.precision
        return 2 * s * p / (s + p) if s + p else 0.0

    def summary(self) -> str:
        return (
            f"records {self.n_records}, true unique {self.n_true_unique}, predicted unique "
            f"{self.n_pred_unique}\nsensitivity {self.sensitivity:.4f}  specificity "
            f"{self.specificity:.5f}  precision {self.precision:.4f}\n"
            f"TP {self.tp}  FP {self.fp}  FN {self.fn}  TN {self.tn}  (pairwise precision "
            f"{self.pairwise_precision:.4f}, recall {self.pairwise_recall:.4f})"
        )

    def to_frame(self) -> pd.DataFrame:
        d = asdict(self)
        d["f1"] = self.f1
        return pd.DataFrame([d])


def _labels(groups: Sequence[Sequence[int]], n: int | None, name: str) -> list[int]:
    size = n if n is not None else sum(len(g) for g in groups)
    lab = [-1] * size
    for gi, g in enumerate(groups):
        for i in g:
            if not (0 <= i < size) or lab[i] != -1:
                raise ParameterError(
                    name, "evaluate", None, f"index {i} out of range or in two groups"
                )
            lab[i] = gi
    if -1 in lab:
        raise ParameterError(name, "evaluate", None, f"record {lab.index(-1)} is in no group")
    return lab


def _as_labels(x, n: int | None, name: str) -> list:
    """Accept groups (list of lists of indices) or one label per record."""
    x = list(x)
    if x and all(isinstance(g, (list, tuple, set, frozenset)) for g in x):
        return _labels([sorted(g) for g in x], n, name)
    if not all(isinstance(v, Hashable) for v in x):
        raise ParameterError(name, "evaluate", None, "neither groups nor one label per record")
    return x


def _pairs(counter: Counter) -> int:
    return sum(c * (c - 1) // 2 for c in counter.values())


def evaluate(groups_pred, groups_true) -> Metrics:
    """Score predicted groups against true groups.

    Each argument is either a list of groups (lists of record indices, every index once) or a
    list with one label per record (e.g. the benchmark's ``dup_group`` column).
    """
    true = _as_labels(groups_true, None, "groups_true")
    pred = _as_labels(groups_pred, len(true), "groups_pred")
    if len(pred) != len(true):
        raise ParameterError(
            "groups_pred", "evaluate", None, f"{len(pred)} records, truth has {len(true)}"
        )
    n = len(true)
    n_true_unique = len(set(true))
    cells = Counter(zip(pred, true, strict=True))
    clusters: dict = {}
    for (p, _t), c in cells.items():
        clusters.setdefault(p, []).append(c)
    tp = sum(sum(c - 1 for c in cs) for cs in clusters.values())
    fp = sum(len(cs) - 1 for cs in clusters.values())
    fn = (n - n_true_unique) - tp
    tn = n_true_unique - fp
    pair_tp = _pairs(cells)
    pair_pred = _pairs(Counter(pred))
    pair_true = _pairs(Counter(true))
    return Metrics(
        sensitivity=tp / (tp + fn) if tp + fn else 1.0,
        specificity=tn / (tn + fp) if tn + fp else 1.0,
        precision=tp / (tp + fp) if tp + fp else 1.0,
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        n_records=n,
        n_true_unique=n_true_unique,
        n_pred_unique=len(clusters),
        pairwise_precision=pair_tp / pair_pred if pair_pred else 1.0,
        pairwise_recall=pair_tp / pair_true if pair_true else 1.0,
    )
