"""GRADE certainty of evidence per outcome, and the summary-of-findings table.

GRADE rates a body of evidence for one outcome: start by design (randomised trials High,
non-randomised studies Low; non-randomised studies assessed with ROBINS-I start High and are
then rated down for risk of bias, GRADE guidelines 18, Schünemann et al. J Clin Epidemiol
2019;111:105-114), rate down in five domains (0 / -1 / -2) and up in three (large effect +1/+2,
dose-response +1, plausible confounding +1). Every domain carries a written reason: GRADE
decisions are judgements the tool records, never infers.

The summary-of-findings row computes anticipated absolute effects per 1,000 from a relative
effect and an assumed comparator risk (Cochrane Handbook 14.1.5-14.1.6):
RR: ICR = RR x ACR; OR: ICR = OR x ACR / (1 - ACR + OR x ACR); HR: ICR = 1 - (1 - ACR)^HR;
RD: ICR = ACR + RD. Confidence limits apply the same formula to the limits (ACR held fixed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from metasift.errors import MetasiftError, ParameterError, check_param

HIGH, MODERATE, LOW, VERY_LOW = "High", "Moderate", "Low", "Very low"
LEVELS = (VERY_LOW, LOW, MODERATE, HIGH)  # index + 1 = number of filled circles
SYMBOLS = {HIGH: "⊕⊕⊕⊕", MODERATE: "⊕⊕⊕◯", LOW: "⊕⊕◯◯", VERY_LOW: "⊕◯◯◯"}

DOWNGRADE_DOMAINS = (
    "risk_of_bias",
    "inconsistency",
    "indirectness",
    "imprecision",
    "publication_bias",
)
UPGRADE_DOMAINS = {
    "large_effect": (0, 1, 2),
    "dose_response": (0, 1),
    "plausible_confounding": (0, 1),
}
DOWNGRADE_LABELS = {0: "not serious", -1: "serious", -2: "very serious"}
DESIGNS = ("rct", "nrs")
ROB_TOOLS = (None, "rob2", "robins_i", "nos_cohort", "nos_case_control", "jbi_case_series")
MEASURES = ("RR", "OR", "HR", "RD")


class CertaintyError(MetasiftError, ValueError):
    """A GRADE rating breaks a rule of the method (e.g. a domain without a reason)."""


@dataclass(frozen=True)
class Rating:
    """One GRADE domain: ``level`` (downgrades 0/-1/-2; upgrades 0/+1/+2) and its reason."""

    domain: str
    level: int
    reason: str


def _rating(domain, value, allowed, func) -> Rating:
    if isinstance(value, Rating):
        level, reason = value.level, value.reason
    else:
        try:
            level, reason = value
        except (TypeError, ValueError):
            raise ParameterError(
                domain, func, None, value
            ) from None  # expected a (level, reason) pair
    if isinstance(level, bool) or level not in allowed:
        raise ParameterError(f"{domain} level", func, list(allowed), level)
    if not isinstance(reason, str) or not reason.strip():
        raise CertaintyError(
            f"{func}: GRADE domain {domain!r} needs a written reason (got {reason!r}); every "
            "rating, including 'not serious', is a judgement to be explained"
            if domain in DOWNGRADE_DOMAINS
            else f"{func}: rating up for {domain!r} needs a written reason (got {reason!r})"
        )
    return Rating(domain, int(level), reason.strip())


@dataclass(frozen=True)
class Certainty:
    """The GRADE certainty of the evidence for one outcome."""

    outcome: str
    design: str
    rob_tool: str | None
    start: str
    downgrades: tuple[Rating, ...]
    upgrades: tuple[Rating, ...]
    level: str
    notes: tuple[str, ...] = ()

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.level]

    @property
    def footnotes(self) -> tuple[str, ...]:
        """One footnote per domain that moved the rating, in table order."""
        out = []
        for r in self.downgrades:
            if r.level:
                out.append(f"Rated down {-r.level} for {r.domain.replace('_', ' ')}: {r.reason}")
        for r in self.upgrades:
            if r.level:
                out.append(f"Rated up {r.level} for {r.domain.replace('_', ' ')}: {r.reason}")
        return tuple(out)

    def to_frame(self) -> pd.DataFrame:
        rows = [
            {
                "domain": r.domain,
                "direction": "down",
                "level": r.level,
                "label": DOWNGRADE_LABELS[r.level],
                "reason": r.reason,
            }
            for r in self.downgrades
        ] + [
            {
                "domain": r.domain,
                "direction": "up",
                "level": r.level,
                "label": f"+{r.level}" if r.level else "none",
                "reason": r.reason,
            }
            for r in self.upgrades
        ]
        return pd.DataFrame(rows)

    def summary(self) -> str:
        lines = [
            f"GRADE certainty for {self.outcome!r}: {self.symbol} {self.level.upper()} "
            f"(start {self.start}: {self.design}"
            + (f", {self.rob_tool}" if self.rob_tool else "")
            + ")"
        ]
        lines += [
            f"  {r.domain:<22} {DOWNGRADE_LABELS[r.level]:<13} {r.reason}" for r in self.downgrades
        ]
        lines += [f"  {r.domain:<22} +{r.level:<12} {r.reason}" for r in self.upgrades if r.level]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def start_level(design: str, rob_tool: str | None = None) -> str:
    """Randomised trials start High; non-randomised studies start Low, or High when their risk
    of bias was assessed with ROBINS-I (GRADE guidelines 18, Table 1/2)."""
    check_param(design, DESIGNS, "design", "start_level")
    check_param(rob_tool, ROB_TOOLS, "rob_tool", "start_level")
    if design == "rct" or rob_tool == "robins_i":
        return HIGH
    return LOW


def grade(
    outcome: str,
    design: str,
    downgrades: dict,
    upgrades: dict | None = None,
    *,
    rob_tool: str | None = None,
) -> Certainty:
    """Rate the certainty of the evidence for ``outcome``.

    ``downgrades`` must rate all five domains (``risk_of_bias``, ``inconsistency``,
    ``indirectness``, ``imprecision``, ``publication_bias``), each as ``(level, reason)`` with
    level 0, -1 or -2. ``upgrades`` may rate ``large_effect`` (0/+1/+2), ``dose_response``
    (0/+1) and ``plausible_confounding`` (0/+1), each with a reason. The result is
    start + sum(downgrades) + sum(upgrades), kept within Very low .. High.
    """
    func = "grade"
    if not isinstance(outcome, str) or not outcome.strip():
        raise ParameterError("outcome", func, None, outcome)
    start = start_level(design, rob_tool)
    downgrades = dict(downgrades or {})
    unknown = [d for d in downgrades if d not in DOWNGRADE_DOMAINS]
    if unknown:
        raise ParameterError("downgrades", func, list(DOWNGRADE_DOMAINS), unknown[0])
    missing = [d for d in DOWNGRADE_DOMAINS if d not in downgrades]
    if missing:
        raise CertaintyError(
            f"{func}: every GRADE downgrading domain must be rated with a reason; missing: "
            + ", ".join(missing)
        )
    down = tuple(_rating(d, downgrades[d], (0, -1, -2), func) for d in DOWNGRADE_DOMAINS)
    upgrades = dict(upgrades or {})
    unknown = [d for d in upgrades if d not in UPGRADE_DOMAINS]
    if unknown:
        raise ParameterError("upgrades", func, list(UPGRADE_DOMAINS), unknown[0])
    up = tuple(
        _rating(d, upgrades[d], UPGRADE_DOMAINS[d], func) for d in UPGRADE_DOMAINS if d in upgrades
    )
    total_down = sum(r.level for r in down)
    total_up = sum(r.level for r in up)
    idx = LEVELS.index(start) + total_down + total_up
    level = LEVELS[min(max(idx, 0), len(LEVELS) - 1)]
    notes = []
    if total_up and total_down:
        notes.append(
            "rated up although rated down elsewhere: GRADE applies rating up mainly to "
            "non-randomised evidence with no reason to rate down (GRADE 9; GRADE 18, Table 1)"
        )
    if total_up and design == "rct":
        notes.append("rating up randomised evidence is unusual (GRADE 9)")
    if idx < 0 or idx >= len(LEVELS):
        notes.append(f"net rating {idx - LEVELS.index(start):+d} from {start} clamped to {level}")
    return Certainty(outcome.strip(), design, rob_tool, start, down, up, level, tuple(notes))


# --- Summary of findings ---------------------------------------------------------------------


def _round_half_away(x: float) -> int:
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def corresponding_risk(acr: float, effect: float, measure: str) -> float:
    """The intervention-group risk implied by the assumed comparator risk ``acr`` and a relative
    effect (Cochrane Handbook 14.1.5). RD results are kept within [0, 1]."""
    check_param(measure, MEASURES, "measure", "corresponding_risk")
    if measure == "RR":
        return effect * acr
    if measure == "OR":
        return effect * acr / (1 - acr + effect * acr)
    if measure == "HR":
        return 1 - (1 - acr) ** effect
    return min(max(acr + effect, 0.0), 1.0)


# metafor measure codes whose pooled estimate is a log ratio, and the SoF measure they give.
_LOG_RATIO = {"RR": "RR", "OR": "OR", "PETO": "OR", "HR": "HR"}


def relative_effect_from(result) -> tuple[float, float, float, str]:
    """``(estimate, ci_lb, ci_ub, measure)`` for :func:`sof_row` from a fitted synthesis result
    (``rma``, ``rma_mh``, ``rma_peto``: anything with metafor's ``measure``, ``beta``,
    ``ci_lb``, ``ci_ub``). Log ratios (RR, OR, PETO) are back-transformed with exp; RD is
    used as is. Only intercept-only (pooled) fits are accepted, and only at the 95% level
    (the SoF table reports 95% CIs)."""
    func = "relative_effect_from"
    measure = getattr(result, "measure", None)
    if measure not in (*_LOG_RATIO, "RD"):
        raise ParameterError("measure", func, [*_LOG_RATIO, "RD"], measure)
    level = getattr(result, "level", 95)
    if abs(float(level) - (95 if float(level) > 1 else 0.95)) > 1e-9:
        raise ParameterError("level", func, [95], level)

    def scalar(name):
        v = getattr(result, name)
        try:
            vals = [float(x) for x in v]
        except TypeError:
            return float(v)
        if len(vals) != 1:
            raise ParameterError(
                "result",
                func,
                None,
                f"{len(vals)} coefficients (a meta-regression); pass a pooled, intercept-only fit",
            )
        return vals[0]

    b, lb, ub = scalar("beta"), scalar("ci_lb"), scalar("ci_ub")
    if measure == "RD":
        return b, lb, ub, "RD"
    return math.exp(b), math.exp(lb), math.exp(ub), _LOG_RATIO[measure]


@dataclass(frozen=True)
class SofRow:
    """One summary-of-findings row. Risks are proportions; ``per_1000`` fields are rounded
    whole numbers per 1,000 as printed; ``difference`` is intervention minus comparator."""

    outcome: str
    k: int | None
    n: int | None
    measure: str | None
    estimate: float | None
    ci_lb: float | None
    ci_ub: float | None
    assumed_control_risk: float | None
    certainty: Certainty | None
    comment: str = ""
    risk_intervention: tuple[float, float, float] | None = None
    comparator_per_1000: int | None = None
    intervention_per_1000: tuple[int, int, int] | None = None
    difference_per_1000: tuple[int, int, int] | None = None
    footnote_ids: tuple[str, ...] = field(default=())

    @property
    def relative_text(self) -> str:
        if self.measure is None:
            return ""
        return f"{self.measure} {self.estimate:.2f} ({self.ci_lb:.2f} to {self.ci_ub:.2f})"

    @property
    def absolute_text(self) -> str:
        if self.difference_per_1000 is None:
            return ""
        d, lb, ub = self.difference_per_1000
        return f"{_more_fewer(d)} per 1,000 (from {_more_fewer(lb)} to {_more_fewer(ub)})"

    @property
    def participants_text(self) -> str:
        if self.k is None:
            return ""
        kind = {"rct": "RCT", "nrs": "non-randomised studies"}.get(
            self.certainty.design if self.certainty else "", "studies"
        )
        if kind == "RCT":
            kind = "RCT" if self.k == 1 else "RCTs"
        elif kind == "non-randomised studies" and self.k == 1:
            kind = "non-randomised study"
        elif kind == "studies" and self.k == 1:
            kind = "study"
        n = f"{self.n:,}" if self.n is not None else "—"
        return f"{n} ({self.k} {kind})"


def _more_fewer(x: int) -> str:
    if x == 0:
        return "0 fewer"
    return f"{abs(x)} {'more' if x > 0 else 'fewer'}"


def sof_row(
    outcome: str,
    k: int | None,
    n: int | None,
    relative_effect: tuple | None,
    assumed_control_risk: float | None,
    certainty: Certainty | None,
    comment: str = "",
) -> SofRow:
    """Build one summary-of-findings row.

    ``relative_effect`` is ``(estimate, ci_lb, ci_ub, measure)`` with measure "RR", "OR", "HR"
    (ratios, back-transformed) or "RD" (a risk difference as a proportion), or None when there
    is no pooled estimate (narrative outcome: put the narrative in ``comment``).
    ``assumed_control_risk`` is the comparator-group risk as a proportion (e.g. the median
    control-group risk of the included studies, Handbook 14.1.5); without it no absolute effect
    is computed."""
    func = "sof_row"
    if not isinstance(outcome, str) or not outcome.strip():
        raise ParameterError("outcome", func, None, outcome)
    for name, v in (("k", k), ("n", n)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ParameterError(name, func, None, v)
    if certainty is not None and not isinstance(certainty, Certainty):
        raise ParameterError("certainty", func, None, type(certainty).__name__)
    measure = est = lb = ub = None
    if relative_effect is not None:
        try:
            est, lb, ub, measure = relative_effect
            est, lb, ub = float(est), float(lb), float(ub)
        except (TypeError, ValueError):
            raise ParameterError("relative_effect", func, None, relative_effect) from None
        check_param(measure, MEASURES, "measure", func)
        if not lb <= est <= ub:
            raise ParameterError(
                "relative_effect",
                func,
                None,
                f"ci_lb <= estimate <= ci_ub fails for {relative_effect!r}",
            )
        if measure != "RD" and lb <= 0:
            raise ParameterError(
                "relative_effect",
                func,
                None,
                f"a {measure} must be positive; got {relative_effect!r}",
            )
        if measure == "RD" and not (-1 <= lb and ub <= 1):
            raise ParameterError("relative_effect", func, None, relative_effect)
    acr = assumed_control_risk
    if acr is not None:
        acr = float(acr)
        if not 0 <= acr <= 1:
            raise ParameterError("assumed_control_risk", func, None, assumed_control_risk)
    risk = comp = inter = diff = None
    if measure is not None and acr is not None:
        risk = tuple(corresponding_risk(acr, x, measure) for x in (est, lb, ub))
        comp = _round_half_away(1000 * acr)
        inter = tuple(_round_half_away(1000 * r) for r in risk)
        diffs = [_round_half_away(1000 * (r - acr)) for r in risk]
        diff = (diffs[0], min(diffs[1:]), max(diffs[1:]))
    return SofRow(
        outcome=outcome.strip(),
        k=k,
        n=n,
        measure=measure,
        estimate=est,
        ci_lb=lb,
        ci_ub=ub,
        assumed_control_risk=acr,
        certainty=certainty,
        comment=comment,
        risk_intervention=risk,
        comparator_per_1000=comp,
        intervention_per_1000=inter,
        difference_per_1000=diff,
    )


COLUMNS = (
    "Outcomes",
    "Risk with comparator",
    "Risk with intervention (95% CI)",
    "Risk difference (95% CI)",
    "Relative effect (95% CI)",
    "№ of participants (studies)",
    "Certainty of the evidence (GRADE)",
    "Comments",
)


@dataclass(frozen=True)
class SofTable:
    """A summary-of-findings table (Cochrane / GRADEpro layout)."""

    rows: tuple[SofRow, ...]
    title: str = ""

    def footnotes(self) -> list[str]:
        """Footnotes for every rating that moved an outcome's certainty, lettered a, b, ..."""
        out = []
        for r in self.rows:
            if r.certainty is not None:
                out += [f for f in r.certainty.footnotes if f not in out]
        return [f"{chr(97 + i) if i < 26 else i + 1}. {f}" for i, f in enumerate(out)]

    def _letters(self) -> dict[str, str]:
        notes = [f.split(". ", 1)[1] for f in self.footnotes()]
        return {f: (chr(97 + i) if i < 26 else str(i + 1)) for i, f in enumerate(notes)}

    def to_frame(self) -> pd.DataFrame:
        letters = self._letters()
        data = []
        for r in self.rows:
            cert = ""
            if r.certainty is not None:
                marks = ",".join(letters[f] for f in r.certainty.footnotes)
                cert = f"{r.certainty.symbol} {r.certainty.level.upper()}" + (
                    f" ({marks})" if marks else ""
                )
            inter = ""
            if r.intervention_per_1000 is not None:
                e, lb, ub = r.intervention_per_1000
                inter = f"{e} per 1,000 ({lb} to {ub})"
            data.append(
                {
                    COLUMNS[0]: r.outcome,
                    COLUMNS[1]: f"{r.comparator_per_1000} per 1,000"
                    if r.comparator_per_1000 is not None
                    else "",
                    COLUMNS[2]: inter,
                    COLUMNS[3]: r.absolute_text,
                    COLUMNS[4]: r.relative_text,
                    COLUMNS[5]: r.participants_text,
                    COLUMNS[6]: cert,
                    COLUMNS[7]: r.comment,
                }
            )
        return pd.DataFrame(data, columns=list(COLUMNS))

    def summary(self) -> str:
        df = self.to_frame()
        head = [self.title] if self.title else []
        return "\n".join(head + [df.to_string(index=False)] + self.footnotes())


def sof_table(rows, title: str = "") -> SofTable:
    """Collect :func:`sof_row` rows into a :class:`SofTable`."""
    rows = tuple(rows)
    for r in rows:
        if not isinstance(r, SofRow):
            raise ParameterError("rows", "sof_table", None, type(r).__name__)
    return SofTable(rows, title)


__all__ = [
    "Certainty",
    "CertaintyError",
    "Rating",
    "SofRow",
    "SofTable",
    "corresponding_risk",
    "grade",
    "relative_effect_from",
    "sof_row",
    "sof_table",
    "start_level",
]
