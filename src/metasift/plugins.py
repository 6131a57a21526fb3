"""Pluggable parts (readers, feature extractors, classifiers, queriers, balancers, stopping rules)
are registered by name as entry points in ``pyproject.toml`` and loaded here, in one place
(ASReview's pattern). An unknown name raises an error that lists the valid ones."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from metasift.errors import ParameterError

GROUPS = {
    "readers": "metasift.readers",
    "feature_extractors": "metasift.feature_extractors",
    "classifiers": "metasift.classifiers",
    "queriers": "metasift.queriers",
    "balancers": "metasift.balancers",
    "stopping": "metasift.stopping",
}


@cache
def _eps(kind: str) -> dict:
    group = GROUPS[kind]
    return {ep.name: ep for ep in entry_points(group=group)}


def names(kind: str) -> list[str]:
    """The registered names of one kind of part, sorted."""
    return sorted(_eps(kind))


def load(kind: str, name: str):
    """Return the class (or factory) registered as ``name`` for ``kind``."""
    eps = _eps(kind)
    if name not in eps:
        raise ParameterError(kind.rstrip("s"), "metasift.plugins.load", sorted(eps), name)
    return eps[name].load()
