"""Analyses from the protocol, over the agreed extracted values (no number typed by hand).

For each protocol outcome:

* **Pooled** (``kind="rma"``) when at least ``synthesis.min_studies`` studies give two-arm data at
  one time point: continuous -> ``escalc("MD")`` (``"SMD"`` when the studies' units differ),
  dichotomous -> ``escalc("RR")``; fitted with the protocol's estimator and test (Cochrane's 2025
  defaults: REML, Hartung-Knapp, prediction interval).
* Otherwise **narrative by direction** (SWiM): each study's direction from, in this order, an
  extracted ``direction``; the sign of the intervention-minus-comparator difference; the change
  from the ``baseline`` arm to the latest follow-up of the intervention arm (before-after studies).
  The outcome's ``direction`` in the protocol says which sign is a benefit. Vote counting per outcome
  domain with a sign test (:func:`metasift.synthesis.direction_summary`).
* **Pooled study characteristics** (N, N-weighted %, pooled mean and SD) from study-level fields.
* **Adverse events**: one row per study x event for the protocol's ``descriptive``/``count``
  outcomes of the ``other`` domain (the event is the row's time point label).

Arms: ``baseline`` is the before-treatment measurement of a single-arm study; the first arm that is
not ``baseline`` and not a comparator is the intervention; comparators are named ``placebo``,
``control``, ``comparator``, ``usual care`` or start with ``no ``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metasift import __version__
from metasift.protocol import Protocol

COMPARATORS = re.compile(r"^(placebo|control|comparator|usual care|standard care|no .*)", re.I)


def _num(v) -> float | None:
    if v is None:
        return None
    try:
        x = float(str(v).strip())
    except ValueError:
        return None
    return x if math.isfinite(x) else None


@dataclass
class AnalysisSet:
    """Everything the report shows from the analyses."""

    characteristics: list = field(default_factory=list)  # PooledCharacteristic
    pooled: list = field(default_factory=list)  # (outcome, domain, measure, RmaResult)
    narrative: object | None = None  # DirectionSummary
    directions: pd.DataFrame | None = None  # study, domain, outcome, direction, basis
    adverse_events: pd.DataFrame | None = None
    input_checksum: str = ""
    prediction_interval: bool = True


def _timepoint_order(tp: str) -> float:
    m = re.search(r"(\d+(?:\.\d+)?)\s*(week|month|year|day)?", tp or "")
    if not m:
        return 0.0
    x = float(m.group(1))
    unit = (m.group(2) or "month").lower()
    return x * {"week": 0.23, "month": 1.0, "year": 12.0, "day": 0.033}[unit]


def _arms(df: pd.DataFrame) -> tuple[str | None, str | None, bool]:
    arms = list(dict.fromkeys(df["arm"]))
    comp = [a for a in arms if COMPARATORS.match(a or "")]
    interv = [a for a in arms if a and a != "baseline" and a not in comp]
    return (interv[0] if interv else None), (comp[0] if comp else None), "baseline" in arms


def _cell(df: pd.DataFrame, arm: str, timepoint: str | None = None) -> dict:
    sub = df[df["arm"] == arm]
    if timepoint is not None:
        sub = sub[sub["timepoint"] == timepoint]
    return {r.field: r.value for r in sub.itertuples()}


def _study_direction(df: pd.DataFrame, favourable: str) -> tuple[str | None, str]:
    """(direction, basis) for one study x outcome."""
    d = df[df["field"] == "direction"]["value"]
    if len(d):
        return str(d.iloc[0]), "reported direction"
    interv, comp, has_base = _arms(df)
    sign = 1 if favourable == "higher" else -1

    def value(cell):
        for f in ("mean", "pct", "median"):
            if _num(cell.get(f)) is not None:
                return _num(cell.get(f))
        ev, n = _num(cell.get("events")), _num(cell.get("n"))
        return ev / n if ev is not None and n else None

    if interv and comp:
        for tp in sorted(set(df["timepoint"]), key=_timepoint_order, reverse=True):
            a, b = value(_cell(df, interv, tp)), value(_cell(df, comp, tp))
            if a is not None and b is not None:
                diff = sign * (a - b)
                return ("benefit" if diff > 0 else "harm" if diff < 0 else "no change"), (
                    f"{interv} vs {comp} at {tp}"
                )
    if interv and has_base:
        base = value(_cell(df, "baseline"))
        tps = sorted(set(df[df["arm"] == interv]["timepoint"]), key=_timepoint_order)
        for tp in reversed(tps):
            post = value(_cell(df, interv, tp))
            if base is not None and post is not None:
                diff = sign * (post - base)
                return ("benefit" if diff > 0 else "harm" if diff < 0 else "no change"), (
                    f"before-after ({tp} vs baseline)"
                )
    return None, "no direction extractable"


def _pool_outcome(protocol: Protocol, name: str, otype: str, df: pd.DataFrame):
    """escalc + rma for one outcome when enough studies give two-arm data, else None."""
    from metasift.synthesis import escalc, rma

    rows = []
    for study, sdf in df.groupby("study", sort=False):
        interv, comp, _ = _arms(sdf)
        if not (interv and comp):
            continue
        for tp in sorted(set(sdf["timepoint"]), key=_timepoint_order, reverse=True):
            a, b = _cell(sdf, interv, tp), _cell(sdf, comp, tp)
            if otype == "continuous":
                vals = [_num(x.get(f)) for x in (a, b) for f in ("n", "mean", "sd")]
                if None not in vals and vals[2] > 0 and vals[5] > 0:
                    rows.append((study, *vals, sdf["unit"].iloc[0]))
                    break
            elif otype == "dichotomous":
                vals = [_num(x.get(f)) for x in (a, b) for f in ("events", "n")]
                if None not in vals:
                    rows.append((study, *vals))
                    break
    if len(rows) < max(2, protocol.synthesis.min_studies):
        return None
    cols = list(zip(*rows, strict=True))
    if otype == "continuous":
        units = set(cols[7])
        measure = "MD" if len(units) == 1 else "SMD"
        es = escalc(
            measure,
            n1i=cols[1],
            m1i=cols[2],
            sd1i=cols[3],
            n2i=cols[4],
            m2i=cols[5],
            sd2i=cols[6],
            slab=list(cols[0]),
        )
    else:
        measure = "RR"
        es = escalc("RR", ai=cols[1], n1i=cols[2], ci=cols[3], n2i=cols[4], slab=list(cols[0]))
    s = protocol.synthesis
    res = rma(es.yi, es.vi, method=s.method, test=s.test, level=s.level, slab=list(cols[0]))
    return measure, res


def compute(protocol: Protocol, values: pd.DataFrame) -> AnalysisSet:
    """All analyses from the agreed values (columns: study, design, level, field, arm, outcome,
    timepoint, value, unit)."""
    out = AnalysisSet(prediction_interval=bool(protocol.synthesis.prediction_interval))
    canon = values.sort_values(list(values.columns)).to_csv(index=False)
    out.input_checksum = hashlib.sha256(canon.encode()).hexdigest()
    study_vals = values[values["level"] == "study"]
    studies = list(dict.fromkeys(values["study"]))
    wide = {
        s: {r.field: r.value for r in study_vals[study_vals["study"] == s].itertuples()}
        for s in studies
    }
    out.characteristics = _characteristics(studies, wide)
    ov = values[values["level"] == "outcome"]
    dir_rows = []
    for domain, outcome in protocol.outcomes():
        df = ov[ov["outcome"] == outcome.name]
        if df.empty or outcome.type == "descriptive":
            continue
        if outcome.type in ("continuous", "dichotomous"):
            pooled = _pool_outcome(protocol, outcome.name, outcome.type, df)
            if pooled is not None:
                out.pooled.append((outcome.name, domain, *pooled))
        favourable = "higher" if outcome.direction == "higher_is_better" else "lower"
        if outcome.direction == "none":
            continue
        for study, sdf in df.groupby("study", sort=False):
            direction, basis = _study_direction(sdf, favourable)
            n = _num(wide.get(study, {}).get("n_ivig")) or _num(wide.get(study, {}).get("n_total"))
            dir_rows.append(
                {
                    "study": study,
                    "domain": domain,
                    "outcome": outcome.name,
                    "direction": direction,
                    "basis": basis,
                    "n": n,
                    "design": wide.get(study, {}).get("design", ""),
                }
            )
    out.directions = pd.DataFrame(
        dir_rows, columns=["study", "domain", "outcome", "direction", "basis", "n", "design"]
    )
    have = out.directions.dropna(subset=["direction"])
    if len(have):
        from metasift.synthesis import direction_summary

        out.narrative = direction_summary(
            list(have["study"]),
            list(have["domain"]),
            direction=list(have["direction"]),
            n=[
                None if v is None or (isinstance(v, float) and math.isnan(v)) else v
                for v in have["n"]
            ],
            design=list(have["design"]),
        )
    out.adverse_events = _adverse_events(protocol, ov)
    return out


def _characteristics(studies: list[str], wide: dict) -> list:
    from metasift.synthesis import pool_characteristics

    def col(field):
        return [_num(wide[s].get(field)) for s in studies]

    n = col("n_total")
    if all(v is None for v in n):
        return []
    res = [pool_characteristics(n, name="patients (N)", study=studies)]
    if any(v is not None for v in col("n_female") + col("pct_female")):
        res.append(
            pool_characteristics(
                n, count=col("n_female"), percent=col("pct_female"), name="women", study=studies
            )
        )
    if any(v is not None for v in col("age_mean") + col("age_median")):
        res.append(
            pool_characteristics(
                n,
                mean=col("age_mean"),
                sd=col("age_sd"),
                median=col("age_median"),
                name="age (years)",
                study=studies,
            )
        )
    for f, label in (("n_dcSSc", "diffuse cutaneous SSc"), ("n_lcSSc", "limited cutaneous SSc")):
        if any(v is not None for v in col(f)):
            res.append(pool_characteristics(n, count=col(f), name=label, study=studies))
    return res


def _adverse_events(protocol: Protocol, ov: pd.DataFrame) -> pd.DataFrame:
    names = [
        o.name
        for d, o in protocol.outcomes()
        if d == "other" and o.type in ("descriptive", "count")
    ]
    rows = []
    for (study, outcome, arm, tp), sdf in ov[ov["outcome"].isin(names)].groupby(
        ["study", "outcome", "arm", "timepoint"], sort=False
    ):
        cell = {r.field: r.value for r in sdf.itertuples()}
        rows.append(
            {
                "study": study,
                "outcome": outcome,
                "event": tp,
                "arm": arm,
                "participants_with_event": cell.get("events", ""),
                "n": cell.get("n", ""),
                "percent": cell.get("pct", ""),
            }
        )
    return pd.DataFrame(
        rows,
        columns=["study", "outcome", "event", "arm", "participants_with_event", "n", "percent"],
    )


def _floats(x) -> list[float]:
    """A numpy array as a JSON list of floats (non-finite values become null in ``clean``)."""
    return [float(v) for v in np.asarray(x, dtype=float).ravel()]


def store(review, analyses: AnalysisSet, actor: str) -> int:
    """Write the analyses as Analysis + Result rows (each with the input checksum); returns how many."""
    from sqlalchemy import select

    from metasift.store import Store
    from metasift.store.models import Analysis, Result, Study

    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        if isinstance(x, np.generic):
            return clean(x.item())
        return x

    items = []
    for c in analyses.characteristics:
        items.append(
            (
                c.name,
                "descriptives",
                {},
                json.loads(c.to_frame().reset_index().to_json(orient="records")),
            )
        )
    for outcome, domain, measure, res in analyses.pooled:
        # the inputs (yi, vi, slab) are stored so the report refits the same model and draws the
        # forest plot from the store alone
        payload = {
            "domain": domain,
            "measure": measure,
            "yi": _floats(res.yi),
            "vi": _floats(res.vi),
            "slab": list(res.slab) if getattr(res, "slab", None) is not None else None,
            "beta": _floats(res.beta),
            "ci_lb": _floats(res.ci_lb),
            "ci_ub": _floats(res.ci_ub),
            "tau2": res.tau2,
            "i2": res.i2,
            "summary": res.summary(),
        }
        settings = {
            "measure": measure,
            "method": res.method,
            "test": res.test,
            "level": res.level,
            "prediction_interval": analyses.prediction_interval,
        }
        items.append((outcome, "rma", settings, payload))
    if analyses.directions is not None and len(analyses.directions):
        items.append(
            (
                "(all outcomes)",
                "narrative",
                {},
                json.loads(analyses.directions.to_json(orient="records")),
            )
        )
    with review.store.write() as s:
        ids = dict(s.execute(select(Study.label, Study.id)).all())
        for outcome, kind, settings, payload in items:
            labels = payload.get("slab") if isinstance(payload, dict) else None
            a = Analysis(
                outcome=outcome,
                kind=kind,
                settings=settings,
                study_ids=[ids[x] for x in labels or [] if x in ids],
            )
            s.add(a)
            s.flush()
            s.add(
                Result(
                    analysis_id=a.id,
                    payload=clean(payload),
                    input_checksum=analyses.input_checksum,
                    metasift_version=__version__,
                )
            )
        Store.audit(
            s,
            actor,
            "analyses.run",
            "analysis",
            "",
            after={"analyses": len(items), "input_checksum": analyses.input_checksum},
        )
    return len(items)


def run(review, actor: str) -> AnalysisSet:
    """Compute every analysis from the store's agreed values and store them (one transaction)."""
    from metasift.errors import MetasiftError
    from metasift.extraction import final_values

    with review.store.read() as s:
        values = final_values(s, review.protocol)
    if values.empty:
        raise MetasiftError(
            "no agreed extracted values yet: extract (metasift extract ...) and reconcile first"
        )
    analyses = compute(review.protocol, values)
    store(review, analyses, actor)
    return analyses
