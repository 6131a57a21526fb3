"""The worked example's extraction: studies.csv and outcomes.csv (../shared/examples/ivig-ssc)
read as two extractors would fill the protocol's forms.

The CSVs are a curator's notes, not a form: cells carry annotations ("24 (derived: 80.0% of 30)",
"46.6 (SD 12.3)", "1.0 (SEM)"), outcome names are the papers' own, and some results are given only
as a direction in words. This module states every reading rule once, so the example uses only
facts from those files:

* a numeric study field takes the leading number of its cell; "(SD x)" after a mean is the SD;
* the free-text design maps onto the protocol's design choices (``design_of``);
* an outcome row belongs to a protocol outcome through ``OUTCOMES`` (CSV name -> protocol name);
  rows not listed there (IVIG exposure, reasons for stopping IVIG, the readministration phase of
  Takehara2013 whose two arms both received IVIG) are not outcomes of this protocol;
* adverse events: the event is the time point label of the cell (the adverse-event table is
  study x event);
* a cell the form refuses (an SEM typed in the SD column, "18 vs 34" as n) is left out and
  counted, not coerced;
* a direction is recorded only where the CSV says it in words (``DIRECTIONS``, each with the
  words it rests on, checked against the file) or where a single-arm study reports only a mean
  change from baseline (its sign, with the outcome's direction in the protocol).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from metasift.extraction import InvalidValueError, validate_value
from metasift.protocol import Protocol

LEADING = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")
SD = re.compile(r"\(SD\s*(\d+(?:\.\d+)?)\)")
NUMERIC = ("n_total", "n_ivig", "n_female", "pct_female", "n_dcSSc", "n_lcSSc", "follow_up_months")
TEXT = ("country", "ivig_dose_regimen", "co_immunosuppressants")
OUTCOME_FIELDS = ("n", "mean", "sd", "median", "iqr_or_range", "pct", "events", "p_value")

# CSV outcome name (as the papers name it) -> protocol outcome
OUTCOMES = {
    "mRSS": "mRSS",
    "mRSS change from baseline": "mRSS",
    "mRSS change (EULAR 2019 interim cohort)": "mRSS",
    "dermal fibrotic thickness, % change (histology)": "dermal fibrotic thickness",
    "FVC % predicted": "FVC % predicted",
    "DLCO % predicted": "DLCO % predicted",
    "CK": "CK",
    "CK (CPK)": "CK",
    "CK (conference version)": "CK",
    "muscle weakness": "muscle weakness",
    "muscle pain": "muscle pain",
    "joint pain": "joint pain",
    "joint pain/tenderness VAS": "joint pain",
    "MRC sum score (muscle strength)": "MRC sum score",
    "hand function, Dreiser algo-functional index (IAFD)": "hand function (IAFD)",
    "UCLA SCTC GIT 2.0 total": "UCLA SCTC GIT 2.0 total",
    "gastro-oesophageal reflux disease": "gastro-oesophageal reflux",
    "bowel symptoms": "bowel symptoms",
    "HAQ-DI": "HAQ-DI",
    "HAQ": "HAQ-DI",
    "corticosteroid daily dose (mg/day)": "corticosteroid dose",
    "corticosteroid dose (3-month decrease; dose at 1 year and end of follow-up)": (
        "corticosteroid dose"
    ),
    "CRP (mg/L)": "CRP",
    "adverse events (any), rate": "adverse events",
    "severe adverse events": "adverse events",
    "side effects reported once each (1 patient, 3.3%)": "adverse events",
    "withdrawal due to adverse event": "withdrawal due to adverse events",
}
SIDE_EFFECT = "side effect: "

# (study, CSV outcome) -> (direction, the words in the CSV's note it rests on)
DIRECTIONS = {
    ("Nacci2007", "mRSS"): ("benefit", "improved"),
    ("Nacci2007", "HAQ"): ("benefit", "improved"),
    ("Nacci2007", "hand function, Dreiser algo-functional index (IAFD)"): ("benefit", "improved"),
    ("Nacci2007", "joint pain/tenderness VAS"): ("benefit", "improved"),
    (
        "Chaigne2019",
        "corticosteroid dose (3-month decrease; dose at 1 year and end of follow-up)",
    ): ("benefit", "lower CS dose at 1 year and at end of follow-up (significant)"),
}


def design_of(text: str) -> str:
    """The protocol's design for the curator's free-text description."""
    t = text.lower()
    if t.startswith("rct"):
        return "RCT"
    if "case-control" in t:
        return "case-control"
    if "single arm" in t or "before/after" in t:
        return "case series"  # one group measured before and after, no comparator
    if "cohort" in t and "prospective" in t:
        return "prospective cohort"
    if "cohort" in t:
        return "retrospective cohort"
    raise ValueError(f"studies.csv: no design rule for {text!r}")


@dataclass
class Study:
    label: str
    title: str
    doi: str
    pmid: str
    design: str
    values: list[dict] = field(default_factory=list)  # record_values rows


@dataclass
class Extraction:
    studies: dict[str, Study]
    refused: list[tuple[str, str, str, str]]  # (study, outcome, field, raw) the form refused
    not_outcomes: list[tuple[str, str]]  # (study, CSV outcome) outside the protocol


def _study_rows(row: dict) -> list[dict]:
    out = {"design": design_of(row["design"])}
    for name in NUMERIC:
        m = LEADING.match(row[name])
        if m:
            out[name] = m.group(1)
    for name in TEXT:
        if row[name].strip():
            out[name] = row[name].strip()
    if row["mean_age"].strip():
        key = "age_mean" if row["age_stat"].strip().lower().startswith("mean") else "age_median"
        out[key] = LEADING.match(row["mean_age"]).group(1)
        sd = SD.search(row["mean_age"])
        if sd and key == "age_mean":
            out["age_sd"] = sd.group(1)
    return [{"field": k, "value": v} for k, v in out.items()]


def _timepoint(row: dict) -> str:
    label = row["timepoint_label"].strip()
    change = "change" in row["stat"].lower() and "change" not in label.lower()
    if not label and row["timepoint_months"].strip():
        label = f"{float(row['timepoint_months']):g} months"
    if change:
        label = f"change from baseline, {label}" if label else "change from baseline"
    return label or "end of follow-up"


def read(data_dir: Path, protocol: Protocol) -> Extraction:
    """The example's extraction from the two CSVs, validated against the protocol's forms."""
    with open(data_dir / "studies.csv", encoding="utf-8", newline="") as fh:
        srows = [r for r in csv.DictReader(fh) if r["design"].strip()]
    studies = {
        r["study_id"]: Study(
            r["study_id"], r["title"], r["doi"].strip(), r["pmid"].strip(), design_of(r["design"])
        )
        for r in srows
    }
    for r in srows:
        studies[r["study_id"]].values.extend(_study_rows(r))

    fields = {f.name: f for f in protocol.extraction.outcome_fields}
    outcome_type = {o.name: o for _, o in protocol.outcomes()}
    refused, not_outcomes, seen = [], [], set()
    with open(data_dir / "outcomes.csv", encoding="utf-8", newline="") as fh:
        orows = list(csv.DictReader(fh))
    arms_of: dict[tuple[str, str], set[str]] = {}
    for r in orows:
        arms_of.setdefault((r["study_id"], r["outcome"]), set()).add(r["group"])
    for r in orows:
        label, name = r["study_id"], r["outcome"]
        if label not in studies:
            continue
        if name.startswith(SIDE_EFFECT):
            outcome, tp = "adverse events", f"{name[len(SIDE_EFFECT) :]} ({r['timepoint_label']})"
        elif name in OUTCOMES:
            outcome = OUTCOMES[name]
            tp = _timepoint(r)
            if outcome_type[outcome].type in ("descriptive", "count"):
                tp = name + (f" ({r['timepoint_label']})" if r["timepoint_label"] else "")
        else:
            not_outcomes.append((label, name))
            continue
        arm = r["group"].strip()
        key = (label, arm, outcome, tp)
        if key in seen:
            raise ValueError(f"outcomes.csv: {key} given twice")
        seen.add(key)
        cells = []
        for fname in OUTCOME_FIELDS:
            raw = r[fname].strip()
            if not raw:
                continue
            try:
                validate_value(fields[fname], raw)
            except InvalidValueError:
                refused.append((label, name, fname, raw))
                continue
            cells.append((fname, raw))
        direction = None
        if (label, name) in DIRECTIONS:
            direction, words = DIRECTIONS[(label, name)]
            if words not in r["note"]:
                raise ValueError(
                    f"outcomes.csv: {label} {name!r}: the note no longer says {words!r}"
                )
        elif (
            r["stat"].lower().startswith("mean change")
            and arms_of[(label, name)] == {arm}
            and not any(x["group"] == "baseline" and x["study_id"] == label for x in orows)
        ):
            # a single-arm study that reports only the mean change: its sign is the direction
            mean = float(r["mean"])
            better = outcome_type[outcome].direction
            good = mean < 0 if better == "lower_is_better" else mean > 0
            direction = "benefit" if good else ("harm" if mean != 0 else "no change")
        if direction:
            cells.append(("direction", direction))
        studies[label].values.extend(
            {"field": f, "value": v, "arm": arm, "outcome": outcome, "timepoint": tp}
            for f, v in cells
        )
    return Extraction(studies, refused, not_outcomes)
