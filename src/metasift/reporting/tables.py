"""The report's content, read from the store: every table and paragraph of the review report.

Nothing here writes files; :mod:`metasift.reporting.report` renders what these functions return
as HTML, DOCX and CSV. No number is typed by hand: each comes from a store row or is computed
from store rows here (or by the synthesis and certainty stages).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from metasift.extraction.values import FINAL_COLUMNS
from metasift.extraction.values import final_values as extraction_final_values
from metasift.protocol import Protocol
from metasift.store.models import (
    Analysis,
    Base,
    Decision,
    Event,
    Judgement,
    Reference,
    Result,
    Setting,
    Source,
    Study,
    StudyReport,
    Value,
)

NOT_ASSESSED = "not assessed"
DIRECTIONS = ("benefit", "no change", "harm", "mixed")


@dataclass(frozen=True)
class Table:
    """One report table: ``key`` names its CSV (``tables/<key>.csv``)."""

    key: str
    title: str
    frame: pd.DataFrame
    note: str = ""

    def to_frame(self) -> pd.DataFrame:
        return self.frame

    def summary(self) -> str:
        head = f"{self.title} ({len(self.frame)} rows)"
        return head + ("\n" + self.note if self.note else "")


@dataclass(frozen=True)
class Figure:
    """A figure written next to the report (``figures/<key>.png``)."""

    key: str
    title: str
    path: str  # relative to the report folder
    note: str = ""


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()
    notes: tuple[str, ...] = field(default=())


# -- store checksum ------------------------------------------------------------------------------
def _canon(v):
    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=UTC)
        return v.astimezone(UTC).isoformat()
    if isinstance(v, float):
        return repr(v)
    return v


def store_dump(session: Session):
    """Every row of every store table, canonically: tables by name, rows by primary key,
    columns by name, datetimes as UTC ISO strings (the same on SQLite and PostgreSQL)."""
    for table in sorted(Base.metadata.sorted_tables, key=lambda t: t.name):
        pk = list(table.primary_key.columns)
        rows = session.execute(select(table).order_by(*pk)).mappings().all()
        for row in rows:
            yield table.name, {k: _canon(row[k]) for k in sorted(row.keys())}


def store_checksum(session: Session) -> str:
    """SHA-256 over :func:`store_dump` (one JSON line per row, keys sorted)."""
    h = hashlib.sha256()
    for name, row in store_dump(session):
        h.update(json.dumps([name, row], sort_keys=True, ensure_ascii=False, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


# -- extracted values ----------------------------------------------------------------------------
def final_values(session: Session, protocol: Protocol) -> tuple[pd.DataFrame, str]:
    """The agreed extracted values (:func:`metasift.extraction.final_values`) and where they came
    from."""
    df = extraction_final_values(session, protocol)
    return df[FINAL_COLUMNS].copy(), "agreed or reconciled values (metasift.extraction)"


def _num(x):
    try:
        f = float(str(x).replace(",", ""))
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _study_order(session: Session) -> list[tuple[int, str, str]]:
    return list(session.execute(select(Study.id, Study.label, Study.design).order_by(Study.label)))


# -- tables --------------------------------------------------------------------------------------
def searches_table(session: Session) -> Table:
    rows = [
        {
            "Source": s.database,
            "Kind": s.kind,
            "Searched": s.searched_on,
            "File": s.filename,
            "Format": s.format,
            "Records": s.n_records,
            "Query": s.query,
        }
        for s in session.scalars(select(Source).order_by(Source.id))
    ]
    cols = ["Source", "Kind", "Searched", "File", "Format", "Records", "Query"]
    return Table("searches", "Searches", pd.DataFrame(rows, columns=cols))


def excluded_reports_table(session: Session, protocol: Protocol) -> Table:
    from metasift.screening.decisions import stage_states

    ft = stage_states(session, protocol, "full_text")
    ids = sorted(r for r, st in ft.items() if st.status == "excluded")
    refs = {r.id: r for r in session.scalars(select(Reference).where(Reference.id.in_(ids)))}
    rows = []
    for rid in ids:
        ref = refs.get(rid)
        if ref is None or not ref.active:
            continue
        first = (ref.authors or [[""]])[0]
        author = first[0] if isinstance(first, list | tuple) and first else str(first or "")
        rows.append(
            {
                "Reference": rid,
                "First author": author,
                "Year": ref.year,
                "Title": ref.title,
                "Reason": ft[rid].reason or "reason not recorded",
            }
        )
    cols = ["Reference", "First author", "Year", "Title", "Reason"]
    return Table(
        "excluded_reports",
        "Reports excluded at full text, with reasons",
        pd.DataFrame(rows, columns=cols),
    )


def characteristics_table(session: Session, protocol: Protocol, values: pd.DataFrame) -> Table:
    """One row per included study; one column per study-level field of the protocol's form."""
    fields = [f.name for f in protocol.extraction.study_fields]
    sv = values[values["level"] == "study"]
    extra = [f for f in dict.fromkeys(sv["field"]) if f not in fields]
    cols = ["Study", *[f for f in fields + extra if f != "design"]]
    rows = []
    for sid, label, design in _study_order(session):
        mine = sv[sv["study_id"] == sid]
        cell = {f: v for f, v in zip(mine["field"], mine["value"], strict=True)}
        row = {"Study": label, "design": cell.get("design") or design or ""}
        for f in cols[1:]:
            row[f] = cell.get(f, "")
        rows.append(row)
    cols = ["Study", "design", *cols[1:]]
    df = pd.DataFrame(rows, columns=cols)
    keep = ["Study", "design"] + [c for c in cols[2:] if (df[c].astype(str) != "").any()]
    units = {f.name: f.unit for f in protocol.extraction.study_fields if f.unit}
    names = {c: f"{c} ({units[c]})" for c in keep if c in units}
    return Table(
        "characteristics",
        "Characteristics of included studies",
        df[keep].rename(columns={"design": "Design", **names}),
        note="Blank cells: not reported, or the extractors' values do not agree yet.",
    )


def pooled_characteristics_table(values: pd.DataFrame) -> Table | None:
    """Participants, women and age across the included studies (synthesis.pool_characteristics),
    when the form has ``n_total`` and any of ``n_female``/``pct_female``, ``age_mean``/``age_sd``/
    ``age_median``."""
    try:
        from metasift.synthesis import pool_characteristics
    except ImportError:
        return None
    sv = values[values["level"] == "study"]
    if "n_total" not in set(sv["field"]):
        return None
    wide = sv.pivot_table(index="study", columns="field", values="value", aggfunc="first").reindex(
        columns=["n_total", "n_female", "pct_female", "age_mean", "age_sd", "age_median"]
    )
    studies = list(wide.index)
    col = {c: [_num(v) for v in wide[c]] for c in wide.columns}
    rows = []
    n = col["n_total"]
    total = pool_characteristics(n, name="participants", study=studies)
    rows.append(
        {
            "Characteristic": "participants",
            "Studies": total.k_n,
            "Value": f"{total.total_n:g}",
            "Detail": f"n reported by {total.k_n} of {total.k_total} studies",
        }
    )
    if any(v is not None for v in col["n_female"] + col["pct_female"]):
        fem = pool_characteristics(
            n,
            count=col["n_female"] if any(v is not None for v in col["n_female"]) else None,
            percent=None if any(v is not None for v in col["n_female"]) else col["pct_female"],
            name="women",
            study=studies,
        )
        if fem.proportion is not None:
            rows.append(
                {
                    "Characteristic": "women (%)",
                    "Studies": fem.k_proportion,
                    "Value": f"{100 * fem.proportion:.1f}",
                    "Detail": f"N-weighted over n = {fem.n_proportion:g}",
                }
            )
    if any(v is not None for v in col["age_mean"]):
        age = pool_characteristics(
            n,
            mean=col["age_mean"],
            sd=col["age_sd"],
            median=col["age_median"],
            name="age",
            study=studies,
        )
        if age.mean is not None:
            sd = "" if age.sd is None or math.isnan(age.sd) else f" (SD {age.sd:.1f})"
            rows.append(
                {
                    "Characteristic": "age, mean (years)",
                    "Studies": age.k_mean_sd,
                    "Value": f"{age.mean:.1f}{sd}",
                    "Detail": f"pooled mean and SD over n = {age.n_mean_sd:g}",
                }
            )
        if age.mean_of_means is not None:
            rows.append(
                {
                    "Characteristic": "age, N-weighted mean of means (years)",
                    "Studies": age.k_mean_only,
                    "Value": f"{age.mean_of_means:.1f}",
                    "Detail": "studies reporting a mean without SD",
                }
            )
    return Table(
        "pooled_characteristics",
        "Pooled characteristics of the included studies",
        pd.DataFrame(rows, columns=["Characteristic", "Studies", "Value", "Detail"]),
    )


def _outcome_rows(protocol: Protocol, values: pd.DataFrame) -> pd.DataFrame:
    return values[(values["level"] != "study") & (values["outcome"] != "")]


def outcomes_table(
    protocol: Protocol, values: pd.DataFrame, stored: list[dict] | None = None
) -> Table:
    """Per protocol domain and outcome: studies reporting it and the direction of effect each
    study found, as in "mRSS assessed in 11 studies, benefit in 9": from the stored narrative
    analysis when there is one (each direction with the basis it rests on), else from the
    ``direction`` outcome field."""
    ov = _outcome_rows(protocol, values)
    known = {o.name for _, o in protocol.outcomes()}
    pairs = [(d, o.name) for d, o in protocol.outcomes()]
    pairs += [("(not in protocol)", o) for o in dict.fromkeys(ov["outcome"]) if o not in known]
    rows = []
    for domain, outcome in pairs:
        mine = ov[ov["outcome"] == outcome]
        studies = list(dict.fromkeys(mine["study"]))
        if stored:
            found = {
                x["study"]: (x["direction"], x.get("basis") or "")
                for x in stored
                if x.get("outcome") == outcome and x.get("direction") in DIRECTIONS
            }
            dirs = pd.Series({k: v[0] for k, v in found.items()}, dtype=object)
            basis = "; ".join(f"{k}: {d} ({b})" for k, (d, b) in found.items())
        else:
            dirs = mine[mine["field"] == "direction"].groupby("study")["value"].first()
            basis = "; ".join(f"{k}: {d} (reported direction)" for k, d in dirs.items())
        c = Counter(str(v) for v in dirs)
        rows.append(
            {
                "Domain": domain,
                "Outcome": outcome,
                "Studies": len(studies),
                **{d.capitalize(): c.get(d, 0) for d in DIRECTIONS},
                "No direction given": len(studies) - len(dirs),
                "Study list": ", ".join(studies),
                "Directions and their basis": basis,
            }
        )
    cols = ["Domain", "Outcome", "Studies", *[d.capitalize() for d in DIRECTIONS]]
    cols += ["No direction given", "Study list", "Directions and their basis"]
    return Table("outcomes_by_domain", "Outcomes by domain", pd.DataFrame(rows, columns=cols))


def adverse_event_outcomes(protocol: Protocol) -> list[str]:
    """The protocol's adverse-event outcomes: those whose name mentions adverse events."""
    return [o.name for _, o in protocol.outcomes() if "adverse" in o.name.lower()]


def _outcome_wide(protocol: Protocol, ov: pd.DataFrame, idx: list[str]) -> pd.DataFrame:
    """Outcome values, one row per ``idx`` cell and one column per outcome field (protocol
    order first)."""
    order = [f.name for f in protocol.extraction.outcome_fields]
    present = list(dict.fromkeys(ov["field"]))
    fields = [f for f in order if f in present] + [f for f in present if f not in order]
    if len(ov):
        wide = (
            ov.pivot_table(index=idx, columns="field", values="value", aggfunc="first")
            .reindex(columns=fields)
            .fillna("")
            .reset_index()
        )
    else:
        wide = pd.DataFrame(columns=idx + fields)
    wide = wide.rename(
        columns={
            "domain": "Domain",
            "study": "Study",
            "outcome": "Outcome",
            "arm": "Arm",
            "timepoint": "Time point",
        }
    )
    wide.columns.name = None
    return wide


def outcome_data_table(protocol: Protocol, values: pd.DataFrame) -> Table:
    """Results of individual studies: every extracted outcome value (adverse events apart), by
    protocol domain, outcome, study, arm and time point."""
    ov = _outcome_rows(protocol, values)
    ov = ov[~ov["outcome"].isin(adverse_event_outcomes(protocol))].copy()
    rank = {o.name: i for i, (_, o) in enumerate(protocol.outcomes())}
    ov["domain"] = [protocol.domain_of(o) or "(not in protocol)" for o in ov["outcome"]]
    ov["_r"] = [rank.get(o, len(rank)) for o in ov["outcome"]]
    ov = ov.sort_values(["_r", "study", "arm", "timepoint"]).drop(columns="_r")
    wide = _outcome_wide(protocol, ov, ["domain", "outcome", "study", "arm", "timepoint"])
    if len(wide):
        wide["_r"] = [rank.get(o, len(rank)) for o in wide["Outcome"]]
        wide = wide.sort_values(["_r", "Study", "Arm", "Time point"]).drop(columns="_r")
    return Table(
        "outcome_data",
        "Results of individual studies",
        wide.reset_index(drop=True),
    )


def adverse_events_table(protocol: Protocol, values: pd.DataFrame) -> Table:
    aes = adverse_event_outcomes(protocol)
    ov = _outcome_rows(protocol, values)
    ov = ov[ov["outcome"].isin(aes)]
    wide = _outcome_wide(protocol, ov, ["study", "outcome", "arm", "timepoint"])
    return Table(
        "adverse_events",
        "Adverse events and withdrawals",
        wide,
        note="Outcomes: " + (", ".join(aes) if aes else "none named in the protocol") + ".",
    )


def _newest_judgements(session: Session) -> dict[tuple, Judgement]:
    out: dict[tuple, Judgement] = {}
    for j in session.scalars(select(Judgement).order_by(Judgement.id)):
        out[(j.study_id, j.tool, j.outcome, j.domain)] = j
    return out


def risk_of_bias_table(session: Session, protocol: Protocol) -> tuple[Table, dict]:
    """One row per assessment (study, or study x outcome for tools that judge a result, like
    RoB 2), one column per domain (newest judgement per domain); "not assessed" for a study
    without any. Also returns ``{tool: {row label: {domain: judgement}}}`` for the robvis plots."""
    newest = _newest_judgements(session)
    # (study id, tool, outcome) -> {domain: judgement}
    assessed: dict[tuple, dict] = defaultdict(dict)
    for (sid, tool, outcome, domain), j in newest.items():
        key = "Overall" if domain.lower() == "overall" else domain
        assessed[(sid, tool, outcome or "")][key] = j.judgement or j.suggested or NOT_ASSESSED
    domains = list(dict.fromkeys(c for d in assessed.values() for c in d if c != "Overall"))
    rows = []
    plot: dict[str, dict] = defaultdict(dict)
    n_none = 0
    for sid, label, design in _study_order(session):
        mine = sorted((k, v) for k, v in assessed.items() if k[0] == sid)
        if not mine:
            n_none += 1
            row = {"Study": label, "Outcome": "", "Design": design}
            row["Tool"] = protocol.risk_of_bias.get(design, "") or ""
            rows.append(row | {d: NOT_ASSESSED for d in domains} | {"Overall": NOT_ASSESSED})
            continue
        for (_, tool, outcome), j in mine:
            row = {"Study": label, "Outcome": outcome, "Design": design, "Tool": tool}
            for d in domains:
                row[d] = j.get(d, NOT_ASSESSED)
            row["Overall"] = j.get("Overall", NOT_ASSESSED)
            rows.append(row)
            plot[tool][f"{label} ({outcome})" if outcome else label] = dict(j)
    cols = ["Study", "Outcome", "Design", "Tool", *domains, "Overall"]
    df = pd.DataFrame(rows, columns=cols)
    if not df["Outcome"].astype(bool).any():
        df = df.drop(columns="Outcome")
    note = (
        f"{n_none} of {n_none + len({k[0] for k in assessed})} studies have no risk-of-bias "
        "judgement in the store (shown as 'not assessed')."
        if n_none
        else ""
    )
    return Table("risk_of_bias", "Risk of bias", df, note=note), dict(plot)


def newest_results(session: Session) -> list[tuple[Analysis, Result]]:
    out = []
    for a in session.scalars(select(Analysis).order_by(Analysis.id)):
        r = session.scalars(
            select(Result).where(Result.analysis_id == a.id).order_by(Result.id.desc())
        ).first()
        if r is not None:
            out.append((a, r))
    return out


def refit(analysis: Analysis, result: Result):
    """The fitted ``rma`` model of a stored analysis (its inputs ``yi``, ``vi`` and ``slab`` in
    the result payload, its settings in the analysis). Deterministic: the same numbers as when it
    was first fitted. None when the payload holds no inputs."""
    p = result.payload or {}
    if analysis.kind != "rma" or "yi" not in p or "vi" not in p:
        return None
    from metasift.synthesis import rma

    st = analysis.settings or {}
    return rma(
        yi=p["yi"],
        vi=p["vi"],
        slab=p.get("slab"),
        method=st.get("method", "REML"),
        test=st.get("test", "knha"),
        level=st.get("level", 95),
        measure=st.get("measure"),
    )


def syntheses_table(session: Session) -> tuple[Table, list]:
    rows, fits = [], []
    for a, r in newest_results(session):
        if a.kind not in ("rma", "mh", "narrative"):
            continue  # descriptives and GRADE have their own tables
        fit = refit(a, r)
        row = {
            "Outcome": a.outcome,
            "Analysis": a.kind,
            "Studies": len(a.study_ids or []),
            "Measure": (a.settings or {}).get("measure", ""),
            "Model": "",
            "Estimate (CI)": "",
            "Prediction interval": "",
            "tau2": "",
            "I2 (%)": "",
            "Summary": "",
        }
        if fit is not None:
            fits.append((a, fit))
            b, lb, ub = float(fit.beta[0]), float(fit.ci_lb[0]), float(fit.ci_ub[0])
            row["Studies"] = fit.k
            row["Model"] = f"{fit.method}, test = {fit.test}"
            row["Estimate (CI)"] = f"{b:.2f} ({lb:.2f} to {ub:.2f})"
            if (a.settings or {}).get("prediction_interval", True) and fit.method not in (
                "EE",
                "FE",
            ):
                try:
                    from metasift.synthesis import predict

                    pr = predict(fit)
                    pl, pu = float(pr.pi_lb[0]), float(pr.pi_ub[0])
                    row["Prediction interval"] = f"{pl:.2f} to {pu:.2f}"
                except Exception:  # noqa: BLE001 - a PI that cannot be computed is left blank
                    row["Prediction interval"] = ""
            row["tau2"] = f"{fit.tau2:.4f}"
            row["I2 (%)"] = f"{fit.i2:.1f}"
        payload = r.payload or {}
        if a.kind == "narrative" and isinstance(payload, list):
            have = [x for x in payload if isinstance(x, dict) and x.get("direction")]
            row["Studies"] = len({x.get("study") for x in have})
            row["Measure"] = "direction of effect"
            row["Model"] = "vote counting (SWiM), sign test"
            row["Summary"] = (
                f"{len(have)} study x outcome directions; see Outcomes by domain"
                if have
                else "no direction extractable"
            )
        summary = payload.get("summary") if isinstance(payload, dict) else None
        if isinstance(summary, str):
            row["Summary"] = summary
        rows.append(row)
    cols = [
        "Outcome",
        "Analysis",
        "Studies",
        "Measure",
        "Model",
        "Estimate (CI)",
        "Prediction interval",
        "tau2",
        "I2 (%)",
        "Summary",
    ]
    return Table("syntheses", "Syntheses", pd.DataFrame(rows, columns=cols)), fits


def stored_directions(session: Session) -> list[dict] | None:
    """The newest stored narrative analysis (``metasift analyse``): one row per study x outcome
    with its direction and the basis it was derived from; None when none is stored."""
    rows = None
    for a, r in newest_results(session):
        if a.kind == "narrative" and isinstance(r.payload, list):
            rows = r.payload
    return rows


def direction_inputs(
    protocol: Protocol, values: pd.DataFrame, stored: list[dict] | None = None
) -> dict | None:
    """Per study x outcome with a direction: the arguments of ``synthesis.direction_summary``
    (one entry per outcome, domain = the protocol domain). From the stored narrative analysis
    when there is one (directions recorded or derived from the numbers), else from the
    ``direction`` values recorded by the extractors."""
    if stored:
        have = [
            x
            for x in stored
            if x.get("direction") in DIRECTIONS
            and x.get("outcome") not in adverse_event_outcomes(protocol)
        ]
        if not have:
            return None
        return {
            "study": [x["study"] for x in have],
            "domain": [x.get("domain") or "(not in protocol)" for x in have],
            "direction": [x["direction"] for x in have],
            "n": [
                int(x["n"]) if isinstance(x.get("n"), float) and x["n"].is_integer() else x.get("n")
                for x in have
            ],
            "design": [x.get("design") or "" for x in have],
        }
    ov = _outcome_rows(protocol, values)
    d = ov[(ov["field"] == "direction") & ov["value"].isin(DIRECTIONS)]
    d = d[~d["outcome"].isin(adverse_event_outcomes(protocol))]
    if d.empty:
        return None
    d = d.drop_duplicates(["study", "outcome"])
    dom = [protocol.domain_of(o) or "(not in protocol)" for o in d["outcome"]]
    sv = values[(values["level"] == "study") & (values["field"] == "n_total")]
    n_of = {s: _num(v) for s, v in zip(sv["study"], sv["value"], strict=True)}
    n_of = {s: int(v) if v is not None and v.is_integer() else v for s, v in n_of.items()}
    return {
        "study": list(d["study"]),
        "domain": dom,
        "direction": list(d["value"]),
        "n": [n_of.get(s) for s in d["study"]],
        "design": list(d["design"]),
    }


def sof_frame(
    protocol: Protocol,
    values: pd.DataFrame,
    fits: list,
    session: Session,
    stored: list[dict] | None = None,
) -> Table:
    """Summary of findings (certainty.sof_table): one row per protocol outcome with data; the
    relative effect from a stored pooled analysis of a ratio measure; GRADE certainty from a stored
    ``grade`` analysis, else "not assessed"."""
    from metasift.certainty import relative_effect_from, sof_row, sof_table

    ov = _outcome_rows(protocol, values)
    sv = values[(values["level"] == "study") & (values["field"] == "n_total")]
    n_of = {s: _num(v) for s, v in zip(sv["study"], sv["value"], strict=True)}
    fit_of = {a.outcome: f for a, f in fits}
    graded = {a.outcome: r.payload for a, r in newest_results(session) if a.kind == "grade"}
    rows, cert = [], []
    for _, o in protocol.outcomes():
        studies = list(dict.fromkeys(ov[ov["outcome"] == o.name]["study"]))
        if not studies:
            continue
        ns = [n_of.get(s) for s in studies]
        n = int(sum(ns)) if ns and all(v is not None for v in ns) else None
        rel = None
        if o.name in fit_of:
            try:
                rel = relative_effect_from(fit_of[o.name])
            except Exception:  # noqa: BLE001 - not a ratio measure: no relative effect column
                rel = None
        if stored:  # the narrative analysis: recorded or derived from the numbers
            dirs = Counter(
                x["direction"]
                for x in stored
                if x.get("outcome") == o.name and x.get("direction") in DIRECTIONS
            )
        else:
            dirs = Counter(
                ov[(ov["outcome"] == o.name) & (ov["field"] == "direction")]
                .groupby("study")["value"]
                .first()
            )
        comment = ", ".join(f"{d} in {dirs[d]}" for d in DIRECTIONS if dirs.get(d))
        comment = f"Direction of effect: {comment}" if comment else ""
        if o.name in fit_of and rel is None:
            f = fit_of[o.name]
            measure = getattr(f, "measure", None) or "pooled estimate"
            pooled = (
                f"{measure} {float(f.beta[0]):.2f} "
                f"({float(f.ci_lb[0]):.2f} to {float(f.ci_ub[0]):.2f}; {f.k} studies)"
            )
            comment = pooled + (f". {comment}" if comment else "")
        rows.append(sof_row(o.name, len(studies), n, rel, None, None, comment=comment))
        g = graded.get(o.name) or {}
        cert.append(str(g.get("level")) if g.get("level") else NOT_ASSESSED)
    df = sof_table(rows, title=protocol.title).to_frame() if rows else pd.DataFrame()
    if len(df):
        df["Certainty of the evidence (GRADE)"] = cert
    return Table(
        "summary_of_findings",
        "Summary of findings",
        df,
        note="Certainty is 'not assessed' where no GRADE judgement is stored for the outcome.",
    )


# -- methods paragraph from the audit trail ------------------------------------------------------
def _join(items: list[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _kappa_sentences(
    session: Session, protocol: Protocol, stage: str
) -> tuple[list[str], list[dict]]:
    from metasift.screening.agreement import agreement
    from metasift.screening.decisions import DECISIONS, paired_labels, stage_states

    states = stage_states(session, protocol, stage)
    reviewers = sorted({r for s in states.values() for r in s.decisions})
    out, rows = [], []
    for i, a in enumerate(reviewers):
        for b in reviewers[i + 1 :]:
            la, lb = paired_labels(states, a, b)
            if len(la) < 2:
                continue
            cats = [c for c in DECISIONS[stage] if c in set(la) | set(lb)]
            ag = agreement(la, lb, categories=cats)
            k = (
                "not defined (one category only)"
                if math.isnan(ag.kappa)
                else (f"{ag.kappa:.2f} (95% CI {ag.ci_lb:.2f} to {ag.ci_ub:.2f})")
            )
            out.append(
                f"{a} and {b} agreed on {100 * ag.percent_agreement:.1f}% of {ag.n} records "
                f"(Cohen's \u03ba = {k})"
            )
            rows.append(
                {
                    "Stage": {"title_abstract": "title/abstract", "full_text": "full text"}[stage],
                    "Reviewers": f"{a}, {b}",
                    "Records": ag.n,
                    "Agreement (%)": round(100 * ag.percent_agreement, 1),
                    "Kappa": None if math.isnan(ag.kappa) else round(ag.kappa, 3),
                    "Kappa CI": "" if math.isnan(ag.kappa) else f"{ag.ci_lb:.3f} to {ag.ci_ub:.3f}",
                }
            )
    return out, rows


def methods_section(session: Session, protocol: Protocol, counts) -> tuple[list[str], Table]:
    """The methods paragraphs, written from the audit trail and the store; and the agreement table."""
    paras = []
    sources = list(session.scalars(select(Source).order_by(Source.id)))
    if sources:
        parts = [
            f"{s.database}"
            + (
                f" ({'register, ' if s.kind == 'register' else ''}searched {s.searched_on})"
                if s.searched_on
                else ""
            )
            + f": {s.n_records:,} records"
            for s in sources
        ]
        paras.append(
            f"We searched {len(sources)} source{'s' if len(sources) != 1 else ''}: "
            + "; ".join(parts)
            + f" ({sum(s.n_records for s in sources):,} records in all). The exports were "
            "imported into the review store unchanged; their checksums are kept with each import."
        )
    else:
        paras.append("No search has been imported into the store yet.")
    runs = list(
        session.scalars(select(Event).where(Event.action == "dedup.run").order_by(Event.id))
    )
    merges = list(session.scalars(select(Event).where(Event.action == "dedup.merge")))
    by_hand = sum(1 for e in merges if (e.after or {}).get("run") is None)
    if runs:
        last = runs[-1].after or {}
        settings = last.get("settings") or {}
        simple = {k: v for k, v in settings.items() if isinstance(v, str | int | float | bool)}
        how = ", ".join(f"{k} = {v}" for k, v in sorted(simple.items()))
        paras.append(
            f"Duplicates were identified with metasift's deduplication ({len(runs)} run"
            f"{'s' if len(runs) != 1 else ''}{'; ' + how if how else ''}); uncertain pairs were "
            f"queued for a reviewer ({by_hand} merge{'s' if by_hand != 1 else ''} made by hand). "
            f"{counts.duplicates:,} duplicate records were removed, leaving "
            f"{counts.records_screened:,} records to screen."
        )
    else:
        paras.append(
            f"{counts.duplicates:,} duplicate records were merged into their references "
            f"({len(merges)} merge events in the audit trail), leaving "
            f"{counts.records_screened:,} records to screen."
        )
    agree_rows = []
    for stage, name in (("title_abstract", "titles and abstracts"), ("full_text", "full texts")):
        n_rev = protocol.screening.stage(stage).reviewers_per_record
        screeners = sorted(
            set(
                session.scalars(
                    select(Decision.reviewer).where(
                        Decision.stage == stage, Decision.kind == "screen"
                    )
                )
            )
        )
        resolvers = sorted(
            set(
                session.scalars(
                    select(Decision.reviewer).where(
                        Decision.stage == stage, Decision.kind == "resolution"
                    )
                )
            )
        )
        n_res = len(
            set(
                session.scalars(
                    select(Decision.reference_id).where(
                        Decision.stage == stage, Decision.kind == "resolution"
                    )
                )
            )
        )
        if not screeners:
            paras.append(f"No {name} have been screened yet.")
            continue
        sent, rows = _kappa_sentences(session, protocol, stage)
        agree_rows += rows
        text = (
            f"{'Two reviewers' if n_rev == 2 else 'One reviewer'} screened each of the "
            f"{name} independently ({_join(screeners)})"
        )
        text += f"; {_join(sent)}." if sent else "."
        if n_res:
            text += (
                f" {n_res} disagreement{'s were' if n_res != 1 else ' was'} resolved by "
                f"{_join(resolvers)}."
            )
        reasons = protocol.exclusion_reasons(stage)
        if stage == "full_text" and reasons:
            text += " Exclusions at full text carry one reason from the protocol's list."
        paras.append(text)
    stop = session.get(Setting, "stopping")
    stop_ev = session.scalars(
        select(Event).where(Event.action.like("screen.stop%")).order_by(Event.id.desc())
    ).first()
    info = (stop_ev.after if stop_ev is not None else None) or (stop.value if stop else None)
    if info:
        rule = info.get("rule") or info.get("name") or "a stopping rule"
        rec = info.get("recall_estimate")
        txt = f"Screening stopped by {rule}"
        if rec is not None:
            txt += f", with an estimated recall of {100 * float(rec):.1f}%"
        if info.get("recall_lb") is not None:
            txt += f" (lower bound {100 * float(info['recall_lb']):.1f}%)"
        paras.append(txt + ".")
    else:
        paras.append(
            "No stopping rule is recorded in the audit trail: every record was screened."
            if not counts.records_awaiting
            else "No stopping rule is recorded in the audit trail; "
            f"{counts.records_awaiting:,} records still await a decision."
        )
    extractors = sorted(set(session.scalars(select(Value.reviewer).where(Value.kind == "extract"))))
    anyone = sorted(set(session.scalars(select(Value.reviewer))))
    n_studies = session.scalar(select(Study.id).limit(1))
    if extractors:
        paras.append(
            f"Data were extracted with the protocol's form by {_join(extractors)} "
            f"({protocol.extraction.extractors_per_study} extractor"
            f"{'s' if protocol.extraction.extractors_per_study != 1 else ''} per study); "
            "disagreements were reconciled before analysis."
        )
    elif anyone:
        paras.append(f"Data were entered with the protocol's form by {_join(anyone)}.")
    elif n_studies is not None:
        paras.append("No data have been extracted yet.")
    tools = sorted(set(session.scalars(select(Judgement.tool))))
    judges = sorted(set(session.scalars(select(Judgement.reviewer))))
    if tools:
        paras.append(
            f"Risk of bias was assessed with {_join(tools)} by {_join(judges)}; studies without "
            "a judgement are reported as not assessed."
        )
    else:
        paras.append("Risk of bias has not been assessed for any study (reported as not assessed).")
    syn = protocol.synthesis
    paras.append(
        f"Where at least {syn.min_studies} studies reported an outcome in a form that can be "
        f"pooled, the protocol prescribes a random-effects model ({syn.method} estimator of "
        f"\u03c4\u00b2, {'Hartung-Knapp' if syn.test == 'knha' else 'z'} test, {syn.level:g}% "
        "confidence intervals"
        + (", with a prediction interval" if syn.prediction_interval else "")
        + "); otherwise results are synthesised by direction of effect (vote counting, sign test)."
    )
    cols = ["Stage", "Reviewers", "Records", "Agreement (%)", "Kappa", "Kappa CI"]
    return paras, Table(
        "agreement", "Agreement between reviewers", pd.DataFrame(agree_rows, columns=cols)
    )


def question_table(protocol: Protocol) -> Table:
    q = protocol.question
    rows = [
        ("Population", q.population),
        ("Intervention", q.intervention),
        ("Comparator", q.comparator),
        ("Outcomes", q.outcomes),
        ("Study designs", ", ".join(q.study_designs)),
        *[("Inclusion", i) for i in protocol.eligibility.inclusion],
        *[("Exclusion", e) for e in protocol.eligibility.exclusion],
    ]
    return Table(
        "question", "Review question and eligibility", pd.DataFrame(rows, columns=["Item", "Text"])
    )


def row_counts(session: Session) -> pd.DataFrame:
    rows = []
    for table in sorted(Base.metadata.sorted_tables, key=lambda t: t.name):
        n = session.execute(
            select(table).with_only_columns(table.primary_key.columns.values()[0])
        ).all()
        rows.append({"table": table.name, "rows": len(n)})
    return pd.DataFrame(rows, columns=["table", "rows"])


def study_reports(session: Session) -> dict[int, int]:
    return dict(Counter(session.scalars(select(StudyReport.study_id))))
