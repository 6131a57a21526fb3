"""Deduplication of bibliographic records: :func:`dedup` finds groups of records that are the
same bibliographic record, with a scored, explained link per candidate pair and a queue of
uncertain pairs for a human; :func:`evaluate` scores groups against labelled truth;
:func:`load_benchmark_csv` reads the labelled sets in ``../shared/benchmarks/dedup/``."""

from metasift.dedup.core import (
    AUTO_THRESHOLD,
    REVIEW_THRESHOLD,
    DedupConflictError,
    DedupResult,
    Link,
    dedup,
)
from metasift.dedup.evaluate import Metrics, evaluate
from metasift.dedup.io import load_benchmark_csv, parse_authors
from metasift.dedup.scoring import WEIGHTS, to_score

__all__ = [
    "AUTO_THRESHOLD",
    "REVIEW_THRESHOLD",
    "WEIGHTS",
    "DedupConflictError",
    "DedupResult",
    "Link",
    "Metrics",
    "dedup",
    "evaluate",
    "load_benchmark_csv",
    "parse_authors",
    "to_score",
]
