"""Screening stage: prioritisation (active learning), simulation, stopping rules, agreement.

Store-side decisions, blinding and conflicts live in :mod:`metasift.screening.decisions`.

The names below are loaded on first use (PEP 562), so importing ``metasift.screening.decisions``
(every CLI call and web request does) does not pull in scikit-learn and SciPy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# eager: the function ``agreement`` shares its name with its submodule, which the import system
# would otherwise set on the package in its place (it is light: numpy and pandas)
from metasift.screening.agreement import Agreement, AgreementError, agreement

_WHERE = {
    "Prioritiser": "prioritiser",
    "DEFAULT_SETUP": "setup",
    "ScreeningSetup": "setup",
    "LabelledSet": "simulation",
    "SimulationResult": "simulation",
    "choose_priors": "simulation",
    "load_labelled_csv": "simulation",
    "simulate": "simulation",
    "StopEstimate": "stopping",
    "estimate": "stopping",
}

__all__ = [
    "Agreement",
    "AgreementError",
    "agreement",
    "Prioritiser",
    "DEFAULT_SETUP",
    "ScreeningSetup",
    "LabelledSet",
    "SimulationResult",
    "choose_priors",
    "load_labelled_csv",
    "simulate",
    "StopEstimate",
    "estimate",
]
assert set(__all__) == set(_WHERE) | {"Agreement", "AgreementError", "agreement"}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from metasift.screening.agreement import Agreement, AgreementError, agreement  # noqa: F401
    from metasift.screening.prioritiser import Prioritiser
    from metasift.screening.setup import DEFAULT_SETUP, ScreeningSetup
    from metasift.screening.simulation import (
        LabelledSet,
        SimulationResult,
        choose_priors,
        load_labelled_csv,
        simulate,
    )
    from metasift.screening.stopping import StopEstimate, estimate


def __getattr__(name: str):
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
