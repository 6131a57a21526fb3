"""The forms fit real data: the worked example's studies.csv (IVIG in SSc, ../shared/examples/
ivig-ssc) loaded as study-level values with the example protocol, once through the Python API
(extractor ana) and once through the XLSX form (extractor ben); both agree, so every value is
final and there are no differences. One study's report gives no total n (Tandaipan2023), which
the form requires: the sheet says where, and ben records that study through the API instead.

The CSV is annotated by its curator ("24 (derived: 80.0% of 30)", "46.6 (SD 12.3)"), so the
mapping below takes the leading number of a numeric cell, the SD from "(SD x)", and maps the
free-text design onto the protocol's design choices. Rows without a design are the two studies
named in the brief that were never found (Levy, Ihn); they are not studies of the review.
"""

from __future__ import annotations

import csv
import re

import openpyxl
import pandas as pd
import pytest
from openpyxl.utils import get_column_letter
from sqlalchemy import select

from metasift.errors import SheetError
from metasift.extraction import (
    InvalidValueError,
    add_study,
    differences,
    final_values,
    load_workbook,
    record_values,
    studies,
    validate_value,
    write_template,
)
from metasift.store.models import Study, Value

NUMERIC = {
    "n_total": "n_total",
    "n_ivig": "n_ivig",
    "n_female": "n_female",
    "pct_female": "pct_female",
    "n_dcSSc": "n_dcSSc",
    "n_lcSSc": "n_lcSSc",
    "follow_up_months": "follow_up_months",
}
TEXT = {
    "country": "country",
    "ivig_dose_regimen": "ivig_dose_regimen",
    "co_immunosuppressants": "co_immunosuppressants",
}
LEADING = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")
SD = re.compile(r"\(SD\s*(\d+(?:\.\d+)?)\)")


def design_of(text: str) -> str:
    """The example protocol's design for the curator's free-text description."""
    t = text.lower()
    if t.startswith("rct"):
        return "RCT"
    if "case-control" in t:
        return "case-control"
    if "single arm" in t or "before/after" in t:
        return "case series"  # one group, no comparator
    if "cohort" in t and "retrospective" in t:
        return "retrospective cohort"
    if "cohort" in t and "prospective" in t:
        return "prospective cohort"
    raise AssertionError(f"no design rule for {text!r}")


def mapped(row: dict) -> dict[str, str]:
    """study field -> raw value taken from one CSV row (only the cells that hold a value)."""
    out = {"design": design_of(row["design"])}
    for col, name in NUMERIC.items():
        if row[col].strip():
            m = LEADING.match(row[col])
            assert m, f"{row['study_id']}.{col}: no leading number in {row[col]!r}"
            out[name] = m.group(1)
    for col, name in TEXT.items():
        if row[col].strip():
            out[name] = row[col]
    if row["mean_age"].strip():
        stat = row["age_stat"].strip().lower()
        key = "age_mean" if stat.startswith("mean") else "age_median"
        out[key] = LEADING.match(row["mean_age"]).group(1)
        sd = SD.search(row["mean_age"])
        if sd and key == "age_mean":
            out["age_sd"] = sd.group(1)
    return out


def test_worked_example_studies_fit_the_forms(ivig, included, shared_dir, tmp_path):
    with open(shared_dir / "examples/ivig-ssc/studies.csv", encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["design"].strip()]
    assert len(rows) == 8  # the eight identified studies (README section 4)
    p = ivig.protocol
    refs = included(ivig, [r["title"] for r in rows])
    data = {}
    for ref, row in zip(refs, rows, strict=True):
        vals = mapped(row)
        add_study(ivig.store, row["study_id"], vals["design"], [ref], "ana", protocol=p)
        data[row["study_id"]] = vals
        record_values(
            ivig.store,
            p,
            row["study_id"],
            "ana",
            [{"field": k, "value": v} for k, v in vals.items()],
        )

    # the second extractor fills the XLSX form with the same readings
    with ivig.store.read() as s:
        infos = studies(s)
    path = write_template(p, tmp_path / "ben.xlsx", studies=infos)
    wb = openpyxl.load_workbook(path)
    ws = wb["study"]
    cols = {c.value: get_column_letter(c.column) for c in ws[1]}
    row_of = {ws[f"A{r}"].value: r for r in range(2, ws.max_row + 1)}
    for label, vals in data.items():
        for name, v in vals.items():
            ws[f"{cols[name]}{row_of[label]}"] = float(v) if name in NUMERIC.values() else v
    wb.save(path)
    # a study whose report gives no total cannot be submitted through the form (n_total is
    # required there), and the problem is located; nothing is loaded
    no_n = sorted(label for label, vals in data.items() if "n_total" not in vals)
    assert no_n == ["Tandaipan2023"]  # README section 6: its n was not read
    with pytest.raises(SheetError) as info:
        load_workbook(ivig.store, p, path, "ben")
    assert [(sh, r, c) for sh, r, c, _ in info.value.problems] == [
        ("study", row_of[label], cols["n_total"]) for label in no_n
    ]
    # ben records that study through the API (values one by one) and the rest through the form
    for label in no_n:
        for c in ws[row_of[label]][1:]:
            c.value = None
        record_values(
            ivig.store, p, label, "ben", [{"field": k, "value": v} for k, v in data[label].items()]
        )
    wb.save(path)
    report = load_workbook(ivig.store, p, path, "ben")
    n = sum(len(v) for label, v in data.items() if label not in no_n)
    assert report.values == n and report.written == n

    fields = {f.name: f for f in p.extraction.study_fields}
    expected = {
        (label, name, validate_value(fields[name], raw), fields[name].unit)
        for label, vals in data.items()
        for name, raw in vals.items()
    }
    with ivig.store.read() as s:
        assert differences(s, p) == []
        final = final_values(s, p)
    assert set(final["level"]) == {"study"}
    got = set(final[["study", "field", "value", "unit"]].itertuples(index=False, name=None))
    assert got == expected
    # spot checks against the CSV itself (README section 6: Poelman2015 is complete)
    poel = final[final["study"] == "Poelman2015"].set_index("field")["value"]
    assert poel["n_female"] == "24" and poel["age_sd"] == "12.3"
    assert poel["design"] == "retrospective cohort"
    designs = dict(zip(final["study"], final["design"], strict=False))
    assert designs["Takehara2013"] == "RCT" and designs["Nacci2007"] == "case series"
    # every study has the protocol's required fields
    req = [f.name for f in p.extraction.study_fields if f.required]
    have = final.pivot_table(index="study", columns="field", values="value", aggfunc="first")
    missing = {s for s in have.index if have.loc[s, req].isna().any()}
    assert missing == {r["study_id"] for r in rows if not r["n_total"].strip()}
    assert isinstance(final, pd.DataFrame)


# -- outcome data -------------------------------------------------------------------------------
OUTCOME_FIELDS = ("n", "mean", "sd", "median", "iqr_or_range", "pct", "events", "p_value")
PLAIN_INT = re.compile(r"\d+")
PLAIN_NUM = re.compile(r"-?\d+(?:\.\d+)?")


def protocol_outcome(name: str, outcomes: list[str]) -> str | None:
    """The protocol outcome a CSV outcome names: the longest protocol name it starts with."""
    hits = [o for o in outcomes if name.lower().startswith(o.lower())]
    return max(hits, key=len) if hits else None


def plain(field, text: str) -> bool:
    """An independent oracle of what the form must accept: a plain number within the range."""
    if field.type == "text":
        return True
    pattern = PLAIN_INT if field.type == "integer" else PLAIN_NUM
    if not pattern.fullmatch(text):
        return False
    x = float(text)
    return (field.min is None or x >= field.min) and (field.max is None or x <= field.max)


def test_worked_example_outcomes_fit_the_forms(ivig, make_refs, shared_dir):
    """outcomes.csv rows whose outcome is one of the protocol's become outcome values (arm = the
    CSV group, time point = its label); cells that are not plain numbers are refused."""
    p = ivig.protocol
    names = [o.name for _, o in p.outcomes()]
    fields = {f.name: f for f in p.extraction.outcome_fields}
    with open(shared_dir / "examples/ivig-ssc/outcomes.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    mapped_rows = [(r, protocol_outcome(r["outcome"], names)) for r in rows]
    mapped_rows = [(r, o) for r, o in mapped_rows if o]
    assert {p.domain_of(o) for _, o in mapped_rows} == {d.name for d in p.outcome_domains}

    labels = sorted({r["study_id"] for r, _ in mapped_rows})
    refs = make_refs(ivig, labels)  # add_study without a protocol skips the screening check
    for ref, label in zip(refs, labels, strict=True):
        add_study(ivig.store, label, "retrospective cohort", [ref], "ana")

    accepted, refused, repeated = {}, set(), []
    per_study: dict[str, list[dict]] = {}
    for r, outcome in mapped_rows:
        cell_keys = (r["study_id"], r["group"], outcome, r["timepoint_label"])
        if any(k[:4] == cell_keys for k in accepted) or any(k[:4] == cell_keys for k in refused):
            repeated.append(cell_keys)  # two CSV rows for one arm x outcome x time point
            continue
        for name in OUTCOME_FIELDS:
            text = r[name].strip()
            if not text:
                continue
            key = (*cell_keys, name)
            try:
                value = validate_value(fields[name], text)
            except InvalidValueError:
                refused.add(key)
                continue
            accepted[key] = value
            row = {"arm": r["group"], "outcome": outcome, "timepoint": r["timepoint_label"]}
            per_study.setdefault(r["study_id"], []).append(row | {"field": name, "value": text})
    oracle_refused = {
        (r["study_id"], r["group"], o, r["timepoint_label"], name)
        for r, o in mapped_rows
        for name in OUTCOME_FIELDS
        if r[name].strip() and not plain(fields[name], r[name].strip())
    }
    assert refused == oracle_refused
    # e.g. an SEM typed into the SD column is refused, as it should be
    sem = {
        (r["study_id"], r["group"], o, r["timepoint_label"], "sd")
        for r, o in mapped_rows
        if r["sd"].endswith("(SEM)")
    }
    assert sem and sem <= refused
    assert len(repeated) == 1  # Poelman2015 reports two mRSS changes without a time point

    for label, vals in per_study.items():
        record_values(ivig.store, p, label, "ana", vals)
    with ivig.store.read() as s:
        got = {
            (lab, v.arm, v.outcome, v.timepoint, v.field): v.value
            for lab, v in s.execute(
                select(Study.label, Value).join(Value, Value.study_id == Study.id)
            ).all()
        }
    assert got == accepted
