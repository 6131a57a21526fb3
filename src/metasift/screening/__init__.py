"""Screening stage: prioritisation (active learning), simulation, stopping rules, agreement.

Store-side decisions, blinding and conflicts live in :mod:`metasift.screening.decisions`.
"""

from metasift.screening.agreement import Agreement, AgreementError, agreement
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
