"""Narrative synthesis by direction of effect (SWiM; Cochrane Handbook ch. 12; see
../shared/reference/swim-direction.md).

Per study x outcome domain the direction is summarised with the 70% rule (Boon & Thomson
2021): if at least 70% of the outcomes with a direction point the same way, the cell shows that
direction, otherwise "mixed". Direction comes from the point estimate, never from statistical
significance. Per domain, studies showing benefit or harm are vote-counted; "no change" and
"mixed" studies are reported separately and excluded from the count. The proportion showing
benefit gets a Wilson score interval (Brown, Cai & DasGupta 2001) and a two-sided exact sign
test P = min(1, 2 min(P(X <= u), P(X >= u))), X ~ Bin(n, 1/2).

Decisions on the spec's unverified points: exactly 70% counts as "same direction" (>=);
arrow sizes use the cut-offs large >= 300, medium 50-299, small < 50 participants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from metasift.errors import check_param
from metasift.synthesis._common import SynthesisError, alpha_from_level, checksum, version

BENEFIT, HARM, NO_CHANGE, MIXED = "benefit", "harm", "no change", "mixed"
SYMBOL = {BENEFIT: "\u25b2", HARM: "\u25bc", NO_CHANGE: "\u25c4\u25ba", MIXED: "\u25c4\u25ba"}
_ALIASES = {
    "benefit": BENEFIT, "+": BENEFIT, "up": BENEFIT, "positive": BENEFIT, "favours intervention": BENEFIT,
    "harm": HARM, "-": HARM, "down": HARM, "negative": HARM, "favours comparator": HARM,
    "no change": NO_CHANGE, "0": NO_CHANGE, "none": NO_CHANGE, "null": NO_CHANGE,
    "no difference": NO_CHANGE, "mixed": MIXED, "conflicting": MIXED, "+/-": MIXED,
}  # fmt: skip
THRESHOLD = 0.70


def wilson_ci(u: int, n: int, level=95) -> tuple[float, float]:
    """Wilson score interval for u successes out of n."""
    if n <= 0:
        return (math.nan, math.nan)
    z = float(-special.ndtri(alpha_from_level(level, "wilson_ci") / 2))
    p = u / n
    den = 1 + z * z / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, (centre - half) / den), min(1.0, (centre + half) / den))


def sign_test(u: int, n: int) -> float:
    """Two-sided exact binomial (sign) test of P(benefit) = 1/2."""
    if n <= 0:
        return math.nan
    lower = float(special.bdtr(u, n, 0.5))  # P(X <= u)
    upper = 1.0 if u == 0 else float(special.bdtrc(u - 1, n, 0.5))  # P(X >= u)
    return min(1.0, 2 * min(lower, upper))


def size_class(n) -> str | None:
    """Arrow size of the effect direction plot: large >= 300, medium 50-299, small < 50."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return None
    return "large" if n >= 300 else ("medium" if n >= 50 else "small")


def _direction_of(d, effect, null, favourable):
    if d is not None and not (isinstance(d, float) and math.isnan(d)):
        key = str(d).strip().lower()
        if key not in _ALIASES:
            raise SynthesisError(f"direction_summary: unknown direction {d!r}; use one of "
                                 f"benefit, harm, no change, mixed")  # fmt: skip
        return _ALIASES[key]
    if effect is None or (isinstance(effect, float) and math.isnan(effect)):
        return None
    if effect == null:
        return NO_CHANGE
    up = effect > null
    return BENEFIT if up == (favourable == "higher") else HARM


@dataclass(frozen=True, eq=False)
class DomainVote:
    domain: str
    benefit: int
    harm: int
    excluded: int  # studies with no change or mixed findings
    proportion: float
    ci_lb: float
    ci_ub: float
    pval: float

    @property
    def n(self) -> int:
        return self.benefit + self.harm

    def sentence(self) -> str:
        if self.n == 0:
            return f"{self.domain}: no study with a direction of effect"
        return (f"{self.domain}: {self.benefit} of {self.n} studies showed benefit "
                f"({self.proportion:.2f}, 95% CI {self.ci_lb:.2f} to {self.ci_ub:.2f}; sign test "
                f"P = {self.pval:.3f})")  # fmt: skip


@dataclass(frozen=True, eq=False)
class DirectionSummary:
    """Study x domain directions (70% rule) and per-domain vote counts with sign tests."""

    studies: tuple
    domains: tuple
    cells: dict  # (study, domain) -> (direction, n_benefit, n_harm, n_total)
    votes: tuple  # DomainVote per domain
    sample_size: dict  # study -> n
    design: dict
    rob: dict
    provenance: dict = field(default_factory=dict)

    def direction(self, study, domain) -> str | None:
        c = self.cells.get((str(study), str(domain)))
        return None if c is None else c[0]

    def vote(self, domain) -> DomainVote:
        for v in self.votes:
            if v.domain == str(domain):
                return v
        raise KeyError(domain)

    def to_frame(self):
        import pandas as pd

        rows = []
        for s in self.studies:
            row = {"study": s}
            for d in self.domains:
                c = self.cells.get((s, d))
                row[d] = "" if c is None else SYMBOL[c[0]]
            row["n"] = self.sample_size.get(s)
            rows.append(row)
        return pd.DataFrame(rows).set_index("study")

    def summary(self) -> str:
        lines = ["Vote counting by direction of effect (SWiM)"]
        lines += ["  " + v.sentence() for v in self.votes]
        lines.append("Direction is from point estimates, not statistical significance. The "
                     "sign test ignores study size and precision (Nikolakopoulos 2020).")  # fmt: skip
        return "\n".join(lines)


def direction_summary(
    study,
    domain,
    direction=None,
    effect=None,
    null: float = 0.0,
    favourable: str = "higher",
    n=None,
    design=None,
    rob=None,
    level=95,
) -> DirectionSummary:
    """Summarise directions per study x outcome domain and vote-count them per domain.

    One entry per reported outcome: ``study``, ``domain`` and either a ``direction`` ("benefit",
    "harm", "no change", "mixed") or an ``effect`` compared with ``null`` (``favourable`` says
    whether "higher" or "lower" values favour the intervention). ``n`` (participants),
    ``design`` and ``rob`` are per-outcome values of the study, used by the plot.
    """
    check_param(favourable, ("higher", "lower"), "favourable", "direction_summary")
    st = [str(s) for s in np.atleast_1d(np.asarray(study, dtype=object))]
    dm = [str(d) for d in np.atleast_1d(np.asarray(domain, dtype=object))]
    m = len(st)
    if len(dm) != m:
        raise SynthesisError("direction_summary: study and domain must have the same length")

    def per(x, name):
        if x is None:
            return [None] * m
        arr = list(np.atleast_1d(np.asarray(x, dtype=object)))
        if len(arr) != m:
            raise SynthesisError(f"direction_summary: {name!r} has the wrong length")
        return arr

    dirs, effs = per(direction, "direction"), per(effect, "effect")
    ns, des, rbs = per(n, "n"), per(design, "design"), per(rob, "rob")
    tallies: dict = {}
    for i in range(m):
        eff = None if effs[i] is None else float(effs[i])
        d = _direction_of(dirs[i], eff, null, favourable)
        t = tallies.setdefault((st[i], dm[i]), [0, 0, 0, 0])  # benefit, harm, with-dir, mixed
        if d is None:
            continue
        if d == BENEFIT:
            t[0] += 1
        elif d == HARM:
            t[1] += 1
        elif d == MIXED:
            t[3] += 1
        t[2] += 1
    cells = {}
    for key, (b, h, tot, mx) in tallies.items():
        if tot == 0:
            continue
        if b / tot >= THRESHOLD:
            cd = BENEFIT
        elif h / tot >= THRESHOLD:
            cd = HARM
        elif b == 0 and h == 0 and mx == 0:
            cd = NO_CHANGE
        else:
            cd = MIXED
        cells[key] = (cd, b, h, tot)
    studies = tuple(dict.fromkeys(st))
    domains = tuple(dict.fromkeys(dm))
    votes = []
    for d in domains:
        b = sum(1 for s in studies if cells.get((s, d), (None,))[0] == BENEFIT)
        h = sum(1 for s in studies if cells.get((s, d), (None,))[0] == HARM)
        x = sum(1 for s in studies if cells.get((s, d), (None,))[0] in (MIXED, NO_CHANGE))
        nn = b + h
        lo, hi = wilson_ci(b, nn, level)
        votes.append(DomainVote(d, b, h, x, b / nn if nn else math.nan, lo, hi, sign_test(b, nn)))

    def first(vals):
        out = {}
        for s, v in zip(st, vals, strict=True):
            if v is not None and s not in out:
                out[s] = v
        return out

    prov = {"metasift_version": version(), "settings": {"null": null, "favourable": favourable},
            "input_checksum": checksum(np.array(st, dtype=object), np.array(dm, dtype=object))}  # fmt: skip
    return DirectionSummary(studies, domains, cells, tuple(votes), first(ns), first(des),
                            first(rbs), prov)  # fmt: skip
