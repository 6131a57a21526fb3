"""synthesis stage: effect sizes, meta-analytic models, heterogeneity, small-study effects,
pooled study characteristics and narrative synthesis by direction of effect.

Arrays in, frozen result objects out (each with ``summary()`` and ``to_frame()``); names follow
metafor so every number can be checked in R field for field. The plotting functions import
matplotlib lazily.
"""

from __future__ import annotations

from metasift.synthesis._common import SynthesisError
from metasift.synthesis.bias import (
    LeaveOneOutResult,
    RegtestResult,
    TrimfillResult,
    leave1out,
    regtest,
    trimfill,
)
from metasift.synthesis.descriptives import PooledCharacteristic, pool_characteristics
from metasift.synthesis.escalc import EscalcResult, escalc
from metasift.synthesis.mh import MHResult, rma_mh, rma_peto
from metasift.synthesis.narrative import DirectionSummary, direction_summary
from metasift.synthesis.rma import ConfintResult, PredictResult, RmaResult, confint, predict, rma
from metasift.synthesis.subgroup import SubgroupResult, subgroup


def forest(res, **kwargs):
    """Forest plot of a fitted model (see :func:`metasift.synthesis.plots.forest`)."""
    from metasift.synthesis.plots import forest as _forest

    return _forest(res, **kwargs)


def funnel(res, **kwargs):
    """Contour-enhanced funnel plot (see :func:`metasift.synthesis.plots.funnel`)."""
    from metasift.synthesis.plots import funnel as _funnel

    return _funnel(res, **kwargs)


def effect_direction_plot(summary, **kwargs):
    """Effect direction plot (see :func:`metasift.synthesis.plots.effect_direction_plot`)."""
    from metasift.synthesis.plots import effect_direction_plot as _edp

    return _edp(summary, **kwargs)


rma_uni = rma

__all__ = [
    "escalc",
    "rma",
    "rma_uni",
    "rma_mh",
    "rma_peto",
    "regtest",
    "trimfill",
    "leave1out",
    "confint",
    "predict",
    "subgroup",
    "forest",
    "funnel",
    "pool_characteristics",
    "direction_summary",
    "effect_direction_plot",
    "EscalcResult",
    "RmaResult",
    "PredictResult",
    "ConfintResult",
    "MHResult",
    "RegtestResult",
    "TrimfillResult",
    "LeaveOneOutResult",
    "SubgroupResult",
    "PooledCharacteristic",
    "DirectionSummary",
    "SynthesisError",
]
