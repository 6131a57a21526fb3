"""Risk of bias in a spreadsheet: an XLSX form per tool in use, and loading it back.

The workbook has one sheet per tool in use (named after the tool: ``rob2``, ``robins_i``,
``nos_cohort``, ``nos_case_control``, ``jbi_case_series``), a README and a hidden ``lists``
sheet with the values behind the drop-downs. A tool sheet has one row per study appraised with
it (the protocol's tool for the study's design) and these columns:

* ``study`` (the study label), ``outcome`` (blank: the study as a whole; else the protocol outcome
  whose result is assessed) and, for RoB 2 and ROBINS-I, ``effect`` (assignment | adhering);
* one column per signalling question (header = question id, e.g. ``1.2``; the question's text is
  the header's comment), with a drop-down of its allowed answers;
* per domain, ``<domain> override`` (a judgement different from the algorithm's suggestion) or,
  where the tool publishes no algorithm (ROBINS-I 2016), ``<domain> judgement``; and
  ``<domain> justification``; the same for ``overall`` (JBI: ``overall judgement``, as JBI has
  no overall rule).

Loading checks every filled row first and raises :class:`~metasift.errors.SheetError` with every
located problem ``(sheet, row, column letter, what was expected)`` and loads nothing; or records
every filled row in one transaction (:func:`metasift.appraisal.stored.write_assessment`, each
audited). A row with nothing but its keys is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation
from sqlalchemy import select

from metasift.appraisal import TOOLS, _normalise, get_tool
from metasift.appraisal.model import ANSWER_LABELS, Question, Tool
from metasift.appraisal.stored import (
    OVERALL,
    build_assessment,
    check_appraiser,
    gaps,
    has_algorithm,
    overall_has_rule,
    protocol_tool,
    write_assessment,
)
from metasift.errors import MetasiftError, ParameterError, SheetError
from metasift.extraction.sheets import _blank, _read, _show, _text
from metasift.extraction.values import StudyInfo
from metasift.protocol import Protocol
from metasift.store import Store
from metasift.store.models import Study

README_SHEET = "README"
LISTS_SHEET = "lists"
KEYS = ("study", "outcome", "effect")
TEMPLATE_ROWS = 200  # rows that carry the drop-downs (beyond the pre-filled studies)
_HEAD_FONT = Font(bold=True)
_HEAD_FILL = PatternFill("solid", fgColor="DDEBF7")
_KEY_FILL = PatternFill("solid", fgColor="F2F2F2")


# -- the columns of a tool's sheet ----------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """One column of a tool sheet: ``kind`` is key | question | judgement | justification."""

    name: str
    kind: str
    domain: str | None = None  # judgement/justification: domain id, None = overall
    question: str | None = None
    options: tuple[str, ...] = ()
    override: bool = True  # judgement: an override of a suggestion (else the reviewer's own)
    note: str = ""


def _questions(tool: Tool) -> list[tuple[str, list[tuple[str | None, Question]]]]:
    """Every question id of the tool in order, with the effects that ask it (RoB 2 and ROBINS-I
    ask some questions, or the same id with another wording, for one effect only)."""
    seen: dict[str, list[tuple[str | None, Question]]] = {}
    for d in tool.domains:
        for e in tool.effects if d.variants else (None,):
            for q in d.for_effect(e)[0]:
                seen.setdefault(q.id, []).append((e, q))
    return list(seen.items())


def columns(tool: str | Tool) -> list[Column]:
    """The columns of ``tool``'s sheet, in order."""
    tool = get_tool(tool)
    cols = [
        Column("study", "key", note="The study label (as in `metasift extract studies`)."),
        Column(
            "outcome",
            "key",
            note="Blank: the study as a whole. Else the protocol outcome whose result is assessed.",
        ),
    ]
    if tool.effects:
        cols.append(
            Column(
                "effect",
                "key",
                options=tool.effects,
                note="The effect of interest: assignment (intention-to-treat) or adhering "
                "(per-protocol). Required.",
            )
        )
    for qid, asked in _questions(tool):
        options = tuple(dict.fromkeys(o for _, q in asked for o in q.options))
        texts = []
        worded_apart = len({q.text for _, q in asked}) > 1
        for e, q in asked:
            prefix = f"[effect of {e}] " if e and worded_apart else ""
            t = prefix + q.text + (f" ({q.condition})" if q.condition else "")
            if t not in texts:
                texts.append(t)
        effects = [e for e, _ in asked if e]
        if effects and set(effects) != set(tool.effects):
            texts.append("Only for the effect of " + ", ".join(effects) + ".")
        labels = ", ".join(f"{o} = {ANSWER_LABELS[o]}" for o in options if o in ANSWER_LABELS)
        note = "\n".join(texts) + ("\n" + labels if labels else "")
        cols.append(Column(qid, "question", question=qid, options=options, note=note))
    for d in tool.domains:
        own = not has_algorithm(tool, d.id)
        cols.append(
            Column(
                f"{d.id} {'judgement' if own else 'override'}",
                "judgement",
                domain=d.id,
                options=tool.judgement_names,
                override=not own,
                note=(
                    f"{d.name}: the reviewer's judgement (required: {tool.name} publishes no "
                    "algorithm for this domain)."
                    if own
                    else f"{d.name}: blank keeps the algorithm's suggestion; a judgement here "
                    "overrides it and needs a justification."
                ),
            )
        )
        cols.append(
            Column(
                f"{d.id} justification",
                "justification",
                domain=d.id,
                note="Why (required with an override)." if not own else "Support for judgement.",
            )
        )
    own = not overall_has_rule(tool)
    cols.append(
        Column(
            f"{OVERALL} {'judgement' if own else 'override'}",
            "judgement",
            domain=None,
            options=tool.overall_names,
            override=True,
            note=(
                f"{tool.name} has no overall decision rule: the reviewer's overall judgement "
                "(required, with a justification)."
                if own
                else "Blank keeps the overall judgement the tool's rule derives; a judgement here "
                "overrides it and needs a justification."
            ),
        )
    )
    cols.append(
        Column(f"{OVERALL} justification", "justification", domain=None, note="Why (required).")
    )
    return cols


# -- template -------------------------------------------------------------------------------------
def _study_rows(studies) -> list[tuple[str, str]]:
    out = []
    for s in studies or ():
        if isinstance(s, StudyInfo | Study):
            out.append((s.label, s.design or ""))
        elif isinstance(s, tuple | list):
            out.append((str(s[0]), str(s[1])))
        else:
            raise ParameterError(
                "studies", "write_rob_template", None, f"{s!r} (a study with its design)"
            )
    return out


def tools_in_use(protocol: Protocol, studies=None) -> dict[str, list[str]]:
    """Tool name -> labels of the studies appraised with it (the protocol's tool for each study's
    design). Without studies: every tool the protocol names, with no labels."""
    rows = _study_rows(studies)
    out: dict[str, list[str]] = {}
    if not rows:
        for t in protocol.risk_of_bias.values():
            if t != "none":
                out.setdefault(t, [])
        return out
    for label, design in rows:
        t = protocol_tool(protocol, design)
        if t and t != "none":
            out.setdefault(t, []).append(label)
    return out


def write_rob_template(
    protocol: Protocol,
    path: str | Path,
    studies: Iterable[StudyInfo | Study | tuple[str, str]] | None = None,
) -> Path:
    """Write the risk-of-bias workbook to ``path``: one sheet per tool in use, one row per study
    appraised with it (``studies``: :class:`StudyInfo` or ``(label, design)`` pairs; the tool is
    the protocol's for the design). Studies whose design the protocol maps to no tool are listed
    in the README. Returns the path."""
    path = Path(path)
    rows = _study_rows(studies)
    in_use = tools_in_use(protocol, rows)
    if not in_use:
        raise MetasiftError(
            "no risk-of-bias tool in use: the protocol's risk_of_bias maps "
            f"{', '.join(f'{k}: {v}' for k, v in protocol.risk_of_bias.items()) or 'nothing'}"
            + (f" and the studies' designs are {sorted({d for _, d in rows})}" if rows else "")
        )
    outcomes = [o.name for _, o in protocol.outcomes()]
    wb = Workbook()
    readme = wb.active
    readme.title = README_SHEET
    sheets = {t: wb.create_sheet(t) for t in sorted(in_use, key=_tool_order)}
    lists = wb.create_sheet(LISTS_SHEET)
    lists.sheet_state = "hidden"
    ranges: dict[tuple, str] = {}

    def list_ref(name: str, values: tuple[str, ...]) -> str:
        key = (name, tuple(values))
        if key not in ranges:
            col = get_column_letter(len(ranges) + 1)
            lists[f"{col}1"] = name
            for i, v in enumerate(values, start=2):
                lists[f"{col}{i}"] = v
            end = max(2, len(values) + 1)
            ranges[key] = f"{quote_sheetname(LISTS_SHEET)}!${col}$2:${col}${end}"
        return ranges[key]

    for t, ws in sheets.items():
        labels = in_use[t]
        cols = columns(t)
        last = len(labels) + 1 + TEMPLATE_ROWS
        for j, c in enumerate(cols, start=1):
            cell = ws.cell(row=1, column=j, value=c.name)
            cell.font, cell.fill = _HEAD_FONT, _HEAD_FILL
            if c.note:
                cell.comment = Comment(c.note, "metasift", width=320, height=160)
            width = 44 if c.kind == "justification" else 18 if c.kind != "question" else 7
            ws.column_dimensions[get_column_letter(j)].width = width
            values: tuple[str, ...] = ()
            if c.name == "study":
                values = tuple(labels)
            elif c.name == "outcome":
                values = tuple(outcomes)
            else:
                values = c.options
            if values:
                dv = DataValidation(
                    type="list", formula1=list_ref(c.name, values), allow_blank=True
                )
                dv.error, dv.errorTitle = f"Pick a value from the list ({c.name}).", "Not allowed"
                dv.showErrorMessage = True
                dv.add(f"{get_column_letter(j)}2:{get_column_letter(j)}{last}")
                ws.add_data_validation(dv)
        for i, label in enumerate(labels, start=2):
            ws.cell(row=i, column=1, value=label).fill = _KEY_FILL
        ws.freeze_panes = "D2" if get_tool(t).effects else "C2"
    _write_readme(readme, protocol, in_use, rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _tool_order(name: str) -> int:
    return list(TOOLS).index(name) if name in TOOLS else len(TOOLS)


def _write_readme(ws, protocol: Protocol, in_use: dict[str, list[str]], rows) -> None:
    lines: list[tuple] = [
        (f"Risk of bias: {protocol.title}",),
        (),
        ("How to fill it in",),
        ("One sheet per tool; one row per study (add a row per outcome to assess results apart).",),
        (
            "Answer the signalling questions from the drop-downs (Y, PY, PN, N, NI, NA; "
            "NOS: item letters; JBI: Yes/No/Unclear/Not applicable).",
        ),
        (
            "The published algorithm turns the answers into domain and overall judgements; "
            "leave 'override' blank to keep them.",
        ),
        (
            "An override needs a justification. 'judgement' columns (no published algorithm) "
            "must be filled.",
        ),
        ("Then: metasift rob load DIR FILE --reviewer NAME. Do not rename sheets or headers.",),
    ]
    unmapped = [(lab, des) for lab, des in rows if protocol_tool(protocol, des) in (None, "none")]
    if unmapped:
        lines += [(), ("Studies without a risk-of-bias tool in the protocol (not in the form)",)]
        lines += [(lab, des or "(no design)") for lab, des in unmapped]
    for t in in_use:
        tool = get_tool(t)
        lines += [(), (f"{t}: {tool.label}",), ("source", tool.source)]
        if tool.notes:
            lines.append(("note", tool.notes))
        lines.append(("domain", "question", "effect", "answers", "text"))
        for d in tool.domains:
            for e in tool.effects if d.variants else (None,):
                for q in d.for_effect(e)[0]:
                    text = q.text + (f" ({q.condition})" if q.condition else "")
                    lines.append((d.id, q.id, e or "", ", ".join(q.options), text))
    for row in lines:
        ws.append(list(row))
    ws["A1"].font = Font(bold=True, size=14)
    for col, width in zip("ABCDE", (14, 12, 12, 28, 90), strict=True):
        ws.column_dimensions[col].width = width


# -- loading --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RobLoadReport:
    """What :func:`load_rob_workbook` loaded."""

    path: str
    reviewer: str
    assessments: tuple[tuple[str, str, str], ...]  # (tool, study, outcome)
    written: int  # assessments recorded (new or changed)
    unchanged: int  # equal to the current assessment, not written again
    by_sheet: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.path}: {len(self.assessments)} assessment(s) by {self.reviewer}: "
            f"{self.written} recorded, {self.unchanged} unchanged"
        )

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "reviewer": self.reviewer,
            "assessments": [list(a) for a in self.assessments],
            "written": self.written,
            "unchanged": self.unchanged,
            "by_sheet": dict(self.by_sheet),
        }


@dataclass
class _Row:
    sheet: str
    row: int
    study: str
    outcome: str
    assessment: object


def _header(ws, sheet: str, cols: list[Column], problems) -> dict[int, Column]:
    by_name: dict[str, Column] = {}
    for c in cols:
        by_name[c.name.casefold()] = c
        if c.kind == "judgement":  # accept either spelling of a judgement column
            other = "judgement" if c.name.endswith("override") else "override"
            by_name[f"{c.name.rsplit(' ', 1)[0]} {other}".casefold()] = c
    out: dict[int, Column] = {}
    seen: dict[str, int] = {}
    header = next(ws.iter_rows(min_row=1, max_row=1, values_only=True), ())
    for j, h in enumerate(header, start=1):
        if _blank(h):
            continue
        name = _text(h).casefold()
        letter = get_column_letter(j)
        c = by_name.get(name)
        if c is None:
            problems.append((sheet, 1, letter, f"a column of the {sheet} form; got {_text(h)!r}"))
            continue
        if c.name in seen:
            problems.append(
                (
                    sheet,
                    1,
                    letter,
                    f"a column used once ({c.name!r} is also column "
                    f"{get_column_letter(seen[c.name])})",
                )
            )
            continue
        seen[c.name] = j
        out[j] = c
    for c in cols:
        if c.kind == "key" and c.name not in seen:
            problems.append((sheet, 1, "", f"a column named {c.name!r}"))
    return out


def parse_rob_workbook(protocol: Protocol, path: str | Path, known: dict[str, str]):
    """Validate a filled risk-of-bias workbook without touching the store. ``known`` maps study
    label -> design. Returns ``[_Row]`` (sheet, row, study, outcome, assessment) and a per-sheet
    count, or raises :class:`SheetError` with every located problem."""
    path = Path(path)
    wb = _read(path)
    problems: list[tuple[str, int, str, str]] = []
    out: list[_Row] = []
    counts: dict[str, int] = {}
    outcomes = {o.name.casefold(): o.name for _, o in protocol.outcomes()}
    seen_keys: dict[tuple, tuple[str, int]] = {}
    try:
        sheets = [n for n in wb.sheetnames if n not in (README_SHEET, LISTS_SHEET)]
        for name in sheets:
            if name not in TOOLS:
                problems.append((name, 0, "", f"a sheet named after a tool ({', '.join(TOOLS)})"))
        if not any(n in TOOLS for n in sheets):
            problems.append(("", 0, "", "at least one tool sheet (" + ", ".join(TOOLS) + ")"))
        for sheet in (n for n in sheets if n in TOOLS):
            tool = get_tool(sheet)
            counts[sheet] = 0
            ws = wb[sheet]
            cols = _header(ws, sheet, columns(tool), problems)
            col_of = {c.name: j for j, c in cols.items()}
            if not all(k in col_of for k in ("study", "outcome")) or (
                tool.effects and "effect" not in col_of
            ):
                continue
            for r, row in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2):
                cells = {j: (row[j - 1] if j - 1 < len(row) else None) for j in cols}
                filled = {j: v for j, v in cells.items() if not _blank(v)}
                if not any(cols[j].kind != "key" for j in filled):
                    continue  # keys only: a study not appraised (yet)
                item = _parse_row(protocol, tool, sheet, r, cols, col_of, filled, known, outcomes)
                problems += item[1]
                if item[0] is None:
                    continue
                row_ = item[0]
                key = (row_.study, sheet, row_.outcome)
                if key in seen_keys:
                    s0, r0 = seen_keys[key]
                    problems.append(
                        (
                            sheet,
                            r,
                            get_column_letter(col_of["study"]),
                            f"one row per study and outcome; {row_.study!r}"
                            + (f" ({row_.outcome})" if row_.outcome else "")
                            + f" is also on row {r0}",
                        )
                    )
                    continue
                seen_keys[key] = (sheet, r)
                out.append(row_)
                counts[sheet] += 1
    finally:
        wb.close()
    if problems:
        raise SheetError(path, problems)
    return out, counts


def _parse_row(protocol, tool: Tool, sheet, r, cols, col_of, filled, known, outcomes):
    """One filled row -> (_Row or None, problems)."""
    problems: list[tuple[str, int, str, str]] = []

    def at(name: str) -> str:
        j = col_of.get(name)
        return get_column_letter(j) if j else ""

    def text(name: str) -> str:
        j = col_of.get(name)
        return _text(filled.get(j)) if j in filled else ""

    ok = True
    label = text("study")
    if not label:
        problems.append((sheet, r, at("study"), "a study label"))
        ok = False
    elif label not in known:
        problems.append(
            (sheet, r, at("study"), f"a study label of the review; got {label!r} (add it first)")
        )
        ok = False
    else:
        t = protocol_tool(protocol, known[label])
        if t is not None and t != tool.name:
            problems.append(
                (
                    sheet,
                    r,
                    at("study"),
                    f"a study appraised with {tool.name}; the protocol appraises {label!r} "
                    f"(design {known[label]!r}) with {t}",
                )
            )
            ok = False
    outcome = text("outcome")
    if outcome:
        canon = outcomes.get(outcome.casefold())
        if canon is None:
            problems.append(
                (sheet, r, at("outcome"), f"blank or an outcome of the protocol; got {outcome!r}")
            )
            ok = False
        outcome = canon or outcome
    effect = None
    if tool.effects:
        effect = text("effect").casefold() or None
        if effect not in tool.effects:
            problems.append(
                (
                    sheet,
                    r,
                    at("effect"),
                    f"the effect of interest: one of {', '.join(tool.effects)}"
                    + (f"; got {text('effect')!r}" if effect else ""),
                )
            )
            ok = False
            effect = None
    asked = {q.id: q for q in tool.questions(effect)} if (effect or not tool.effects) else {}
    answers: dict[str, str] = {}
    judgements: dict[str, tuple[str, str]] = {}
    overrides: dict[str, tuple[str, str]] = {}
    pending: dict[str | None, dict] = {}
    for j, raw in filled.items():
        c = cols[j]
        letter = get_column_letter(j)
        if c.kind == "question":
            if effect is None and tool.effects:
                continue  # the effect error above says it all
            q = asked.get(c.question)
            if q is None:
                problems.append(
                    (
                        sheet,
                        r,
                        letter,
                        f"a blank cell: question {c.question} is not asked for the effect of "
                        f"{effect}; got {_show(raw)}",
                    )
                )
                ok = False
                continue
            try:
                answers[q.id] = _normalise(q, raw, "load_rob_workbook")
            except ParameterError:
                problems.append(
                    (
                        sheet,
                        r,
                        letter,
                        f"{q.id}: one of {', '.join(q.options)}; got {_show(raw)}",
                    )
                )
                ok = False
        elif c.kind in ("judgement", "justification"):
            pending.setdefault(c.domain, {})[c.kind] = (letter, c, raw)
    for domain, parts in pending.items():
        name = domain or OVERALL
        jud, why = parts.get("judgement"), parts.get("justification")
        why_text = _text(why[2]) if why else ""
        if jud is None:
            problems.append(
                (
                    sheet,
                    r,
                    why[0],
                    f"a blank cell, or a judgement in '{name} {_kind(tool, domain)}': a "
                    "justification goes with a judgement",
                )
            )
            ok = False
            continue
        letter, c, raw = jud
        level = {n.casefold(): n for n in c.options}.get(_text(raw).casefold())
        if level is None:
            problems.append(
                (sheet, r, letter, f"{name}: one of {', '.join(c.options)}; got {_show(raw)}")
            )
            ok = False
            continue
        if c.override and not why_text:
            j_col = at(f"{name} justification")
            problems.append(
                (
                    sheet,
                    r,
                    j_col or letter,
                    f"{name}: a written justification of the judgement {level!r}",
                )
            )
            ok = False
            continue
        if c.override:
            overrides[name] = (level, why_text)
        else:
            judgements[name] = (level, why_text)
    if not ok:
        return None, problems
    try:
        a = build_assessment(
            tool,
            answers,
            effect=effect,
            overrides=overrides,
            judgements=judgements,
            require_complete=False,
        )
    except MetasiftError as exc:
        return None, [*problems, (sheet, r, "", str(exc))]
    for domain, qs, why in gaps(tool, a):
        if qs:
            for q in qs:
                problems.append((sheet, r, at(q), f"an answer to {q} ({why})"))
        else:
            name = domain or OVERALL
            letter = at(f"{name} judgement") or at(f"{name} override")
            problems.append((sheet, r, letter, why))
    if problems:
        return None, problems
    return _Row(sheet, r, label, outcome, a), problems


def _kind(tool: Tool, domain: str | None) -> str:
    """The name of the judgement column of a domain (None: overall): override or judgement."""
    if domain is None:
        return "override" if overall_has_rule(tool) else "judgement"
    return "override" if has_algorithm(tool, domain) else "judgement"


def load_rob_workbook(
    store: Store, protocol: Protocol, path: str | Path, reviewer: str
) -> RobLoadReport:
    """Load a filled risk-of-bias workbook as ``reviewer``'s assessments: everything is validated
    first (:class:`SheetError` with every located problem, nothing loaded), then every filled row
    is recorded in one transaction, each assessment audited."""
    check_appraiser(protocol, reviewer)
    path = Path(path)
    with store.read() as s:
        known = {label: design for label, design in s.execute(select(Study.label, Study.design))}
    rows, counts = parse_rob_workbook(protocol, path, known)
    written = unchanged = 0
    with store.write() as s:
        by_label = {st.label: st for st in s.scalars(select(Study))}
        for item in rows:
            st = by_label.get(item.study)
            if st is None:  # removed between validation and writing
                raise SheetError(path, [(item.sheet, item.row, "A", f"study {item.study!r}")])
            if write_assessment(s, st, item.assessment, item.outcome, reviewer):
                written += 1
            else:
                unchanged += 1
        report = RobLoadReport(
            path=str(path),
            reviewer=reviewer,
            assessments=tuple((i.sheet, i.study, i.outcome) for i in rows),
            written=written,
            unchanged=unchanged,
            by_sheet=counts,
        )
        Store.audit(s, reviewer, "appraise.load", "workbook", path.name, None, report.to_dict())
    return report


__all__ = [
    "Column",
    "RobLoadReport",
    "columns",
    "load_rob_workbook",
    "parse_rob_workbook",
    "tools_in_use",
    "write_rob_template",
]
