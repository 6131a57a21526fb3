"""What the analyses, extraction, risk-of-bias and full-text pages show and do, over the library.

The route handlers in :mod:`metasift.web.pages` call these functions only: every rule (who may
extract, reconcile or appraise, what a value must look like, how a judgement is suggested) is the
library's (:mod:`metasift.extraction`, :mod:`metasift.appraisal.stored`,
:mod:`metasift.workflow.analyses`, :mod:`metasift.reporting`); this module gathers what a page
needs and turns form fields into library calls.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from metasift.errors import MetasiftError
from metasift.store import Store

OUT_DIR = "out"
FULLTEXT_DIR = "fulltext"
# what may be downloaded from out/ (by suffix) and how it is served
OUT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".pdf": "application/pdf",
    ".csv": "text/csv; charset=utf-8",
}
EXPORT_TYPES = {
    "ris": ("application/x-research-info-systems", "ris"),
    "csv": ("text/csv; charset=utf-8", "csv"),
}
PDF_MAGIC = b"%PDF-"
NEW_OUTCOME_ROWS = 2
MAX_OUTCOME_ROWS = 500


class NotFound(MetasiftError):
    """A file or item the request names does not exist (or may not be served)."""


# -- files under the project folder ---------------------------------------------------------------
def safe_file(root: Path, relpath: str, suffixes) -> Path:
    """``root/relpath`` when it is an existing file inside ``root`` with an allowed suffix; else
    :class:`NotFound`. Refuses absolute paths, ``..``, hidden parts, backslashes and NUL, and
    anything whose resolved path (symlinks followed) leaves ``root``."""
    rel = relpath or ""
    if not rel or "\\" in rel or "\x00" in rel or rel.startswith("/") or ":" in rel:
        raise NotFound(f"no such file: {relpath!r}")
    parts = PurePosixPath(rel).parts
    if not parts or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise NotFound(f"no such file: {relpath!r}")
    base = Path(root).resolve()
    path = (base / Path(*parts)).resolve()
    if not path.is_relative_to(base) or not path.is_file() or path.suffix.lower() not in suffixes:
        raise NotFound(f"no such file: {relpath!r}")
    return path


def out_file(review, relpath: str) -> tuple[Path, str]:
    """A file of the report folder ``<project>/out`` and its media type."""
    path = safe_file(review.path / OUT_DIR, relpath, OUT_TYPES)
    return path, OUT_TYPES[path.suffix.lower()]


# -- analyses and report --------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameView:
    """A table for a template: a title, column names and rows of cells."""

    key: str
    title: str
    columns: list
    rows: list
    note: str = ""


def _frame_view(key, title, df, note="") -> FrameView:
    df = df.astype(object).where(df.notna(), "")
    return FrameView(key, title, [str(c) for c in df.columns], df.values.tolist(), note)


@dataclass
class AnalysesView:
    tables: list = field(default_factory=list)  # FrameView
    figures: list = field(default_factory=list)  # (title, out-relative path)
    downloads: list = field(default_factory=list)  # (label, out-relative path)
    csvs: list = field(default_factory=list)  # out-relative paths of tables/*.csv
    report_built: bool = False


FIGURE_TITLES = (
    ("forest_", "Forest plot"),
    ("effect_direction", "Effect direction plot"),
    ("rob_traffic_light_", "Risk of bias: traffic light"),
    ("rob_summary_", "Risk of bias: summary"),
)


def analyses_view(review) -> AnalysesView:
    """The stored analyses (syntheses, directions, pooled characteristics) and what ``out/``
    holds (figures, report files, CSV tables)."""
    import pandas as pd

    from metasift.reporting import tables as T

    view = AnalysesView()
    with review.store.read() as s:
        # listed from the stored payloads as they are (no refit: what was stored is shown)
        stored = []
        for a, r in T.newest_results(s):
            payload = r.payload if isinstance(r.payload, dict) else {}
            st = a.settings or {}
            model = ", ".join(f"{k} = {st[k]}" for k in ("method", "test") if st.get(k))
            summary = payload.get("summary")
            stored.append(
                {
                    "Outcome": a.outcome,
                    "Analysis": a.kind,
                    "Studies": len(a.study_ids or [])
                    or (len(r.payload) if isinstance(r.payload, list) else ""),
                    "Measure": st.get("measure", ""),
                    "Model": model,
                    "Summary": summary if isinstance(summary, str) else "",
                    "Input checksum": (r.input_checksum or "")[:12],
                }
            )
        if stored:
            view.tables.append(_frame_view("analyses", "Stored analyses", pd.DataFrame(stored)))
        dirs = T.stored_directions(s)
        if dirs:
            view.tables.append(
                _frame_view("directions", "Direction of effect per study", pd.DataFrame(dirs))
            )
        for a, r in T.newest_results(s):
            if a.kind == "descriptives" and isinstance(r.payload, list) and r.payload:
                view.tables.append(
                    _frame_view(
                        f"descriptives-{a.id}",
                        f"Study characteristics: {a.outcome}",
                        pd.DataFrame(r.payload),
                    )
                )
    out = review.path / OUT_DIR
    figs = sorted((out / "figures").glob("*.png")) if (out / "figures").is_dir() else []
    for p in figs:
        title = next((t for pre, t in FIGURE_TITLES if p.stem.startswith(pre)), p.stem)
        view.figures.append((f"{title} ({p.stem})", f"figures/{p.name}"))
    for label, name in (
        ("Report (HTML)", "report.html"),
        ("Report (DOCX)", "report.docx"),
        ("PRISMA diagram (SVG)", "prisma.svg"),
        ("PRISMA diagram (PNG)", "prisma.png"),
        ("PRISMA diagram (PDF)", "prisma.pdf"),
    ):
        if (out / name).is_file():
            view.downloads.append((label, name))
    view.report_built = (out / "report.html").is_file()
    if (out / "tables").is_dir():
        view.csvs = [f"tables/{p.name}" for p in sorted((out / "tables").glob("*.csv"))]
    return view


def run_analyses_and_report(review, actor: str):
    """Run the protocol's analyses over the agreed values and rebuild ``out/`` (both audited)."""
    from metasift.reporting import build_report
    from metasift.workflow import analyses

    result = analyses.run(review, actor)
    paths = build_report(review)
    with review.store.write() as s:
        Store.audit(
            s,
            actor,
            "report.build",
            "report",
            "",
            after={"out": str(paths.out_dir.name), "store_checksum": paths.store_checksum},
        )
    return result, paths


def check_export_blinding(review, requester: str) -> None:
    """Raise :class:`~metasift.errors.BlindingError` while the export would show ``requester``
    a decision the library keeps from them: an export carries every reviewer's decisions and
    notes, so it waits until no reference has fewer than the required decisions with someone
    else's among them (the library's :func:`visible_decisions` has the last word)."""
    from metasift.protocol import STAGES
    from metasift.screening.decisions import stage_states, visible_decisions

    protocol = review.protocol
    with review.store.read() as s:
        for stage in STAGES:
            required = protocol.screening.stage(stage).reviewers_per_record
            for ref, st in stage_states(s, protocol, stage).items():
                if len(st.decisions) < required and set(st.decisions) - {requester}:
                    visible_decisions(s, protocol, ref, stage, requester)  # raises


def export_bytes(review, fmt: str, what: str, requester: str) -> tuple[bytes, str, str]:
    """(content, media type, file name) of a RIS or CSV export of references or records, once
    it shows ``requester`` nothing blinding hides (:func:`check_export_blinding`)."""
    from metasift.workflow.exporting import export

    if fmt not in EXPORT_TYPES:
        raise NotFound(f"no export format {fmt!r}; use one of: {', '.join(EXPORT_TYPES)}")
    if what not in ("references", "records"):
        raise NotFound(f"export what={what!r}; use references or records")
    check_export_blinding(review, requester)
    fh = io.StringIO()
    export(review, fmt, fh, what=what)
    media, ext = EXPORT_TYPES[fmt]
    return fh.getvalue().encode("utf-8"), media, f"{review.path.name}-{what}.{ext}"


# -- studies and extraction -----------------------------------------------------------------------
def _study(session, study_id: int):
    from metasift.extraction import studies

    for st in studies(session):
        if st.id == study_id:
            return st
    raise NotFound(f"no study #{study_id}")


def _titles(session, ids) -> dict[int, str]:
    from sqlalchemy import select

    from metasift.store.models import Reference

    ids = list(ids)
    if not ids:
        return {}
    q = select(Reference.id, Reference.title).where(Reference.id.in_(ids))
    return {i: t for i, t in session.execute(q)}


def protocol_designs(protocol) -> list[str]:
    for f in protocol.extraction.study_fields:
        if f.name == "design" and f.type == "choice":
            return list(f.allowed)
    return list(protocol.risk_of_bias)


@dataclass
class StudiesView:
    studies: list  # dicts: id, label, design, refs [(id, title)], n_differences, tool
    available: list  # included references in no study: (id, title)
    designs: list


def studies_view(review) -> StudiesView:
    """Every study with its reports and open differences, and the references included at full
    text that no study holds yet (for a new study)."""
    from metasift.appraisal.stored import protocol_tool
    from metasift.extraction import differences, studies

    included = [r for r, st in review.stage_states("full_text").items() if st.status == "included"]
    with review.store.read() as s:
        all_studies = studies(s)
        diffs = differences(s, review.protocol)
        used = {r for st in all_studies for r in st.reference_ids}
        titles = _titles(s, set(included) | used)
    n_diff: dict[int, int] = {}
    for d in diffs:
        n_diff[d.study_id] = n_diff.get(d.study_id, 0) + 1
    rows = [
        {
            "id": st.id,
            "label": st.label,
            "design": st.design,
            "refs": [(r, titles.get(r, "")) for r in st.reference_ids],
            "n_differences": n_diff.get(st.id, 0),
            "tool": protocol_tool(review.protocol, st.design) or "",
        }
        for st in all_studies
    ]
    available = [(r, titles.get(r, "")) for r in sorted(included) if r not in used]
    return StudiesView(rows, available, protocol_designs(review.protocol))


def add_study(review, label: str, design: str, reference_ids, actor: str):
    from metasift.extraction import add_study as _add

    return _add(review.store, label, design, reference_ids, actor, protocol=review.protocol)


@dataclass
class FieldView:
    name: str
    type: str
    allowed: list
    expected: str
    required: bool
    value: str = ""
    error: str = ""


@dataclass
class OutcomeRowView:
    index: int
    outcome: str
    arm: str
    timepoint: str
    fixed: bool  # an existing row: its labels are not edited here
    cells: dict = field(default_factory=dict)  # field -> value
    errors: dict = field(default_factory=dict)  # field -> message ("" key: the row's labels)


@dataclass
class CompareRow:
    cell: object  # Cell
    status: str  # agreed | conflict | incomplete | reconciled
    values: dict  # extractor -> value
    unit: str = ""
    reconciled: str | None = None
    decided_by: str = ""
    note: str = ""


@dataclass
class ExtractionView:
    study: object  # StudyInfo
    ref_titles: list
    study_fields: list  # FieldView
    outcome_fields: list  # FormField
    outcomes: list  # protocol outcome names
    rows: list  # OutcomeRowView
    extractors: list
    compare: list  # CompareRow (only for those who may reconcile)
    n_mine: int = 0
    compare_hidden: bool = False
    error: str = ""


def _states(session, study_id: int):
    # the library's own cell states (current value per extractor, the reconciled row), so the page
    # shows exactly what differences() and final_values() see
    from metasift.extraction.values import _cell_states

    return {cell: st for (_, cell), st in _cell_states(session, study_id).items()}


def extraction_view(
    review,
    study_id: int,
    user: str,
    *,
    can_reconcile: bool,
    submitted: dict | None = None,
    errors: dict | None = None,
) -> ExtractionView:
    """The protocol's forms for one study, filled with ``user``'s current values (or what they
    just submitted, with ``errors`` beside the fields), and for a reconciler every extracted cell
    with each extractor's value side by side."""
    from metasift.extraction import expected
    from metasift.extraction.values import _status

    protocol = review.protocol
    ex = protocol.extraction
    errors = errors or {}
    with review.store.read() as s:
        st = _study(s, study_id)
        states = _states(s, study_id)
        titles = _titles(s, st.reference_ids)
    mine = {cell: v.value for cell, cs in states.items() for r, v in cs.values.items() if r == user}
    extractors = sorted({r for cs in states.values() for r in cs.values})
    sf = []
    for f in ex.study_fields:
        key = f"s__{f.name}"
        value = submitted.get(key, "") if submitted is not None else None
        if value is None:
            value = next(
                (v for c, v in mine.items() if c.level == "study" and c.field == f.name), ""
            )
        sf.append(
            FieldView(
                f.name, f.type, list(f.allowed), expected(f), f.required, value, errors.get(key, "")
            )
        )
    groups = sorted(
        {(c.outcome, c.arm, c.timepoint) for c in states if c.level == "outcome"},
        key=lambda g: (g[0], g[2], g[1]),
    )
    rows = []
    if submitted is not None:
        n = _row_count(submitted)
        for i in range(n):
            g = tuple(
                submitted.get(f"o{i}__{k}", "").strip() for k in ("outcome", "arm", "timepoint")
            )
            rows.append(
                OutcomeRowView(
                    i,
                    *g,
                    fixed=submitted.get(f"o{i}__fixed") == "1",
                    cells={f.name: submitted.get(f"o{i}__{f.name}", "") for f in ex.outcome_fields},
                    errors={
                        k.split("__", 1)[1] if "__" in k else "": m
                        for k, m in errors.items()
                        if k == f"o{i}" or k.startswith(f"o{i}__")
                    },
                )
            )
    else:
        for i, (o, a, t) in enumerate(groups):
            cells = {
                c.field: v
                for c, v in mine.items()
                if c.level == "outcome" and (c.outcome, c.arm, c.timepoint) == (o, a, t)
            }
            rows.append(OutcomeRowView(i, o, a, t, True, cells))
        for j in range(NEW_OUTCOME_ROWS):
            rows.append(OutcomeRowView(len(groups) + j, "", "", "", False, {}))
    compare = []
    required = ex.extractors_per_study
    # extraction is independent: someone still to extract this study does not see the others'
    # values; a reconciler sees them once the study has its extractors (or is one of them)
    if can_reconcile and (user in extractors or len(extractors) >= required):
        for cell, cs in sorted(states.items(), key=lambda kv: (kv[0].level != "study", kv[0])):
            status = _status(cs, required)
            if status == "empty":
                continue
            any_v = next(iter(cs.values.values()), None) or cs.reconciled
            rec = cs.reconciled
            compare.append(
                CompareRow(
                    cell,
                    status,
                    {r: v.value for r, v in cs.values.items()},
                    any_v.unit if any_v else "",
                    rec.value if rec else None,
                    rec.reviewer if rec else "",
                    rec.note if rec else "",
                )
            )
        compare.sort(
            key=lambda r: (
                r.status not in ("conflict", "incomplete"),
                r.cell.level != "study",
                r.cell,
            )
        )
    return ExtractionView(
        study=st,
        ref_titles=[(r, titles.get(r, "")) for r in st.reference_ids],
        study_fields=sf,
        outcome_fields=list(ex.outcome_fields),
        outcomes=[o.name for _, o in protocol.outcomes()],
        rows=rows,
        extractors=extractors,
        compare=compare,
        n_mine=len(mine),
        compare_hidden=can_reconcile and not compare and bool(extractors),
    )


def _row_count(form: dict) -> int:
    try:
        n = int(form.get("rows", "0"))
    except ValueError:
        n = 0
    return max(0, min(n, MAX_OUTCOME_ROWS))


def save_extraction(review, study_id: int, user: str, form: dict) -> tuple[int, dict]:
    """Record ``user``'s values from the extraction form. Each field is validated against the
    protocol's form (the library's ``prepare``); when any is invalid nothing is written and the
    messages come back by form key. A field left blank that held a value clears it. Returns
    (values written, errors)."""
    from metasift.extraction import Cell, ExtractionError, record_values
    from metasift.extraction.values import prepare

    protocol = review.protocol
    ex = protocol.extraction
    with review.store.read() as s:
        _study(s, study_id)
        states = _states(s, study_id)
    mine = {cell for cell, cs in states.items() if user in cs.values}
    rows: list[tuple[str, dict]] = []
    errors: dict[str, str] = {}

    def add(key: str, cell: Cell, raw: str) -> None:
        raw = (raw or "").strip()
        base = {
            "field": cell.field,
            "arm": cell.arm,
            "outcome": cell.outcome,
            "timepoint": cell.timepoint,
        }
        if raw:
            rows.append((key, base | {"value": raw}))
        elif cell in mine:
            rows.append((key, base | {"value": None}))

    for f in ex.study_fields:
        add(f"s__{f.name}", Cell(f.name), form.get(f"s__{f.name}", ""))
    for i in range(_row_count(form)):
        outcome, arm, tp = (
            form.get(f"o{i}__{k}", "").strip() for k in ("outcome", "arm", "timepoint")
        )
        given = {f.name: form.get(f"o{i}__{f.name}", "") for f in ex.outcome_fields}
        if not any(v.strip() for v in given.values()) and not (outcome and arm):
            if not any(Cell(f, arm, outcome, tp) in mine for f in given):
                continue
        if not outcome or not arm:
            errors[f"o{i}"] = "give the outcome and the arm of this row"
            continue
        for name, raw in given.items():
            add(f"o{i}__{name}", Cell(name, arm=arm, outcome=outcome, timepoint=tp), raw)
    for key, row in rows:
        try:
            prepare(protocol, [row])
        except ExtractionError as exc:
            errors[key] = str(exc)
    if errors:
        return 0, errors
    written = record_values(review.store, protocol, study_id, user, [r for _, r in rows])
    return len(written), {}


def reconcile_cell(review, study_id: int, form: dict, user: str):
    from metasift.extraction import Cell, reconcile

    cell = Cell(
        form.get("field", "").strip(),
        arm=form.get("arm", "").strip(),
        outcome=form.get("outcome", "").strip(),
        timepoint=form.get("timepoint", "").strip(),
    )
    value = form.get("value", "")
    if form.get("custom", "").strip():
        value = form["custom"]
    return reconcile(
        review.store, review.protocol, study_id, cell, value, user, form.get("note", "")
    )


# -- risk of bias ---------------------------------------------------------------------------------
@dataclass
class QuestionView:
    id: str
    text: str
    options: list  # (code, label)
    condition: str
    answer: str = ""


@dataclass
class DomainView:
    id: str
    name: str
    questions: list  # QuestionView
    has_algorithm: bool
    suggested: str = ""
    rule: str = ""
    judgement: str = ""  # the reviewer's choice ("" = the algorithm's suggestion)
    justification: str = ""
    stored: object = None  # StoredJudgement


@dataclass
class RobView:
    study: object  # StudyInfo
    tool: object  # Tool or None
    tool_error: str
    outcome: str
    outcomes: list
    effect: str | None
    domains: list  # DomainView
    overall_names: list
    overall_suggested: str = ""
    overall_rule: str = ""
    overall_judgement: str = ""
    overall_justification: str = ""
    overall_has_rule: bool = True
    stored: object = None  # StoredAssessment
    missing: list = field(default_factory=list)
    error: str = ""


def _rob_tool(review, st):
    from metasift.appraisal import get_tool
    from metasift.appraisal.stored import resolve_tool

    try:
        return get_tool(resolve_tool(review.protocol, st.label, st.design, None)), ""
    except MetasiftError as exc:
        return None, str(exc)


def _rob_choices(tool, form: dict):
    """answers, domain choices {id: (judgement, justification)}, overall choice, from the form."""
    answers = {
        q.id: form[f"q__{q.id}"] for q in _all_questions(tool) if form.get(f"q__{q.id}", "").strip()
    }
    choices = {
        d.id: (form.get(f"j__{d.id}", "").strip(), form.get(f"w__{d.id}", "").strip())
        for d in tool.domains
    }
    overall = (form.get("j__overall", "").strip(), form.get("w__overall", "").strip())
    return answers, choices, overall


def _all_questions(tool):
    seen, out = set(), []
    for d in tool.domains:
        variants = list(d.variants.values()) if d.variants else [(d.questions, d.parts)]
        for qs, _ in variants:
            for q in qs:
                if q.id not in seen:
                    seen.add(q.id)
                    out.append(q)
    return out


def _rob_decisions(tool, answers, effect, choices, overall):
    """The library's suggestion for the answers, and the reviewer's choices as ``overrides`` and
    ``judgements`` for :func:`~metasift.appraisal.stored.record_assessment`: a choice equal to
    the suggestion is no override; one that differs is (and needs a justification there)."""
    from metasift.appraisal.stored import build_assessment, has_algorithm

    judgements = {
        d: (j, why) for d, (j, why) in choices.items() if j and not has_algorithm(tool, d)
    }
    plain = build_assessment(
        tool, answers, effect=effect, judgements=judgements, require_complete=False
    )
    overrides = {}
    for dj in plain.domains:
        j, why = choices.get(dj.domain, ("", ""))
        if j and has_algorithm(tool, dj.domain) and j != dj.suggested:
            overrides[dj.domain] = (j, why)
    with_domains = build_assessment(
        tool,
        answers,
        effect=effect,
        judgements=judgements,
        overrides=overrides,
        require_complete=False,
    )
    oj, owhy = overall
    if oj and oj != with_domains.overall.suggested:
        overrides["overall"] = (oj, owhy)
    return plain, with_domains, judgements, overrides


def rob_view(
    review,
    study_id: int,
    *,
    outcome: str = "",
    effect: str | None = None,
    form: dict | None = None,
) -> RobView:
    """The tool's signalling questions for one study (answers from ``form`` when given, else the
    stored assessment), the algorithm's suggested judgements for those answers, and the stored
    final judgements with their justifications."""
    from metasift.appraisal.stored import (
        check_outcome,
        current_judgements,
        gaps,
        has_algorithm,
        overall_has_rule,
    )

    protocol = review.protocol
    with review.store.read() as s:
        st = _study(s, study_id)
        outcome = check_outcome(protocol, outcome)
        tool, tool_error = _rob_tool(review, st)
        stored = None
        if tool is not None:
            stored = next(
                (
                    a
                    for a in current_judgements(s, study=study_id, tool=tool.name)
                    if a.outcome == outcome
                ),
                None,
            )
    outcomes = [o.name for _, o in protocol.outcomes()]
    if tool is None:
        return RobView(st, None, tool_error, outcome, outcomes, None, [], [])
    if tool.effects:
        if effect not in tool.effects:
            effect = stored.effect if stored and stored.effect in tool.effects else tool.effects[0]
    else:
        effect = None
    stored_rows = {j.domain: j for j in stored.domains} if stored else {}
    if form is not None:
        answers, choices, overall = _rob_choices(tool, form)
    else:
        answers = dict(stored.answers) if stored else {}
        choices = {
            d: (j.judgement if j.source != "algorithm" else "", j.justification)
            for d, j in stored_rows.items()
        }
        ov = stored.overall if stored else None
        overall = (
            (ov.judgement if ov.source != "algorithm" else "", ov.justification) if ov else ("", "")
        )
    try:
        plain, with_domains, _, _ = _rob_decisions(tool, answers, effect, choices, overall)
        error = ""
    except MetasiftError as exc:
        plain = with_domains = None
        error = str(exc)
    from metasift.appraisal.model import ANSWER_LABELS

    domains = []
    for d in tool.domains:
        qs = d.for_effect(effect if d.variants else None)[0]
        dj = plain.domain(d.id) if plain else None
        j, why = choices.get(d.id, ("", ""))
        domains.append(
            DomainView(
                d.id,
                d.name,
                [
                    QuestionView(
                        q.id,
                        q.text,
                        [(o, ANSWER_LABELS.get(o, o)) for o in q.options],
                        q.condition or "",
                        str(answers.get(q.id, "")),
                    )
                    for q in qs
                ],
                has_algorithm(tool, d.id),
                (dj.suggested or "") if dj else "",
                dj.rule if dj else "",
                j,
                why,
                stored_rows.get(d.id),
            )
        )
    view = RobView(
        st,
        tool,
        "",
        outcome,
        outcomes,
        effect,
        domains,
        list(tool.overall_names),
        (with_domains.overall.suggested or "") if with_domains else "",
        with_domains.overall.rule if with_domains else "",
        overall[0],
        overall[1],
        overall_has_rule(tool),
        stored,
        [why for _, _, why in gaps(tool, with_domains)] if with_domains else [],
        error,
    )
    return view


def save_rob(review, study_id: int, user: str, form: dict, *, outcome: str = ""):
    """Record ``user``'s assessment from the form (the library validates everything: answers,
    justification of every override, completeness); returns the stored assessment."""
    from metasift.appraisal.stored import record_assessment

    with review.store.read() as s:
        st = _study(s, study_id)
    tool, tool_error = _rob_tool(review, st)
    if tool is None:
        raise MetasiftError(tool_error)
    effect = form.get("effect") or None
    if not tool.effects:
        effect = None
    answers, choices, overall = _rob_choices(tool, form)
    _, _, judgements, overrides = _rob_decisions(tool, answers, effect, choices, overall)
    return record_assessment(
        review.store,
        review.protocol,
        study_id,
        answers,
        user,
        tool=tool.name,
        outcome=outcome,
        effect=effect,
        overrides=overrides,
        judgements=judgements,
    )


def rob_overview(review) -> tuple[list, list]:
    """(stored assessments, tools that have any) for the risk-of-bias list page."""
    from metasift.appraisal.stored import current_judgements

    with review.store.read() as s:
        current = current_judgements(s)
    return current, sorted({a.tool for a in current})


def traffic_light_png(review, tool: str) -> bytes:
    """The robvis traffic-light plot of every stored assessment made with ``tool``, as PNG."""
    from metasift.appraisal import get_tool
    from metasift.appraisal.plots import traffic_light
    from metasift.appraisal.stored import current_judgements

    tool = get_tool(tool).name
    with review.store.read() as s:
        current = current_judgements(s, tool=tool)
    data = {(f"{a.study} ({a.outcome})" if a.outcome else a.study): a.judgements for a in current}
    if not data:
        raise NotFound(f"no stored {tool} assessment to plot")
    fig = traffic_light(data, tool)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


# -- full text ------------------------------------------------------------------------------------
@dataclass
class FullTextItem:
    id: int
    title: str
    year: int | None
    links: list  # (location, served path or None)
    status: str  # this user's own decision at full text ("" when none)
    reason: str = ""


def fulltext_items(review, user: str) -> list[FullTextItem]:
    """References at the full-text stage with their linked or uploaded reports and this user's
    own decision (blinding: nobody else's decision is shown here)."""
    from sqlalchemy import select

    from metasift.screening.decisions import eligible_references
    from metasift.store.models import FullTextLink, Reference

    states = review.stage_states("full_text")
    with review.store.read() as s:
        ids = eligible_references(s, review.protocol, "full_text")
        refs = (
            {r.id: r for r in s.scalars(select(Reference).where(Reference.id.in_(ids)))}
            if ids
            else {}
        )
        links: dict[int, list] = {}
        if ids:
            for ln in s.scalars(
                select(FullTextLink)
                .where(FullTextLink.reference_id.in_(ids))
                .order_by(FullTextLink.id.desc())
            ):
                links.setdefault(ln.reference_id, []).append(ln.location)
    out = []
    for rid in ids:
        ref = refs.get(rid)
        mine = states.get(rid).decisions.get(user) if states.get(rid) else None
        out.append(
            FullTextItem(
                rid,
                ref.title if ref else "",
                ref.year if ref else None,
                [(loc, served_path(loc)) for loc in links.get(rid, [])],
                mine.decision if mine else "",
                mine.reason if mine else "",
            )
        )
    return out


def served_path(location: str) -> str | None:
    """The app path of an uploaded PDF (``fulltext/<name>.pdf``), None for a URL or other path."""
    p = PurePosixPath(location)
    if len(p.parts) == 2 and p.parts[0] == FULLTEXT_DIR and p.suffix == ".pdf":
        return f"/fulltext/file/{p.name}"
    return None


def check_pdf(head: bytes) -> None:
    if not head.startswith(PDF_MAGIC):
        raise MetasiftError("the uploaded file is not a PDF (it does not start with %PDF-)")


def fulltext_dest(review, reference_id: int) -> tuple[Path, str]:
    """A new file name for an uploaded report: ``<project>/fulltext/ref<id>-<random>.pdf``
    (outside the web root; never a name the browser chose) and its project-relative location."""
    folder = review.path / FULLTEXT_DIR
    folder.mkdir(exist_ok=True)
    name = f"ref{int(reference_id)}-{secrets.token_hex(8)}.pdf"
    return folder / name, f"{FULLTEXT_DIR}/{name}"


def link_fulltext(review, reference_id: int, location: str, actor: str) -> None:
    """Attach a URL, path or uploaded PDF to a reference at full text (audited)."""
    from metasift.web.services import add_fulltext_link

    add_fulltext_link(review, reference_id, location, actor)


def fulltext_file(review, name: str) -> Path:
    return safe_file(review.path / FULLTEXT_DIR, name, {".pdf"})
