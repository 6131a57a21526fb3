"""Extraction in a spreadsheet: an XLSX template from the protocol, and loading it back.

The template has one sheet per form level and a README:

* ``study``: one row per study, column ``study`` (the study label) and one column per study field;
* ``outcomes``: long form, columns ``study | arm | outcome | timepoint | <outcome fields>``, one row
  per arm x outcome x time point;
* ``README``: how to fill it in, and every field with its type, unit, allowed values and range;
* ``lists`` (hidden): the values behind the drop-downs (study labels, outcomes, choices).

Drop-downs (data validation) come from the protocol: choice fields, booleans, outcome names and
study labels; integer and number fields get Excel's whole/decimal checks with the field's range.
Excel's checks only help while typing: :func:`load_workbook` validates every cell again.

Loading validates everything first and raises :class:`~metasift.errors.SheetError` with every
located problem ``(sheet, row, column, expected)`` (row as Excel numbers it, column as its letter)
and loads nothing; or it loads all values in one transaction. A blank cell is "not extracted" and
skipped; a study row with any value must have every required study field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from openpyxl import Workbook
from openpyxl import load_workbook as _open_xlsx
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation
from sqlalchemy import select

from metasift.errors import SheetError
from metasift.extraction.forms import (
    Cell,
    ExtractionError,
    InvalidValueError,
    expected,
    unit_of,
    validate_value,
)
from metasift.extraction.values import (
    EXTRACTOR_ROLES,
    Prepared,
    StudyInfo,
    _check_person,
    _write,
)
from metasift.protocol import FormField, Protocol
from metasift.store import Store
from metasift.store.models import Study, Value

STUDY_SHEET = "study"
OUTCOME_SHEET = "outcomes"
README_SHEET = "README"
LISTS_SHEET = "lists"
OUTCOME_KEYS = ("study", "arm", "outcome", "timepoint")
TEMPLATE_ROWS = 500  # rows of the outcomes sheet that carry the drop-downs
_HEAD_FONT = Font(bold=True)
_HEAD_FILL = PatternFill("solid", fgColor="DDEBF7")
_KEY_FILL = PatternFill("solid", fgColor="F2F2F2")


# -- template -----------------------------------------------------------------------------------
def _labels(studies) -> list[str]:
    out = []
    for s in studies or ():
        out.append(s.label if isinstance(s, StudyInfo | Study) else str(s))
    return out


def write_template(
    protocol: Protocol, path: str | Path, studies: Iterable[StudyInfo | str] | None = None
) -> Path:
    """Write the extraction workbook for ``protocol`` to ``path`` (one ``study`` row per study
    given, by label). Returns the path."""
    path = Path(path)
    labels = _labels(studies)
    ex = protocol.extraction
    outcomes = [o.name for _, o in protocol.outcomes()]
    wb = Workbook()
    readme = wb.active
    readme.title = README_SHEET
    ws_s = wb.create_sheet(STUDY_SHEET)
    ws_o = wb.create_sheet(OUTCOME_SHEET)
    lists = wb.create_sheet(LISTS_SHEET)
    lists.sheet_state = "hidden"

    # the values behind the drop-downs, one column each
    list_ranges: dict[str, str] = {}

    def add_list(name: str, values: list[str]) -> str:
        col = get_column_letter(len(list_ranges) + 1)
        lists[f"{col}1"] = name
        for i, v in enumerate(values, start=2):
            lists[f"{col}{i}"] = v
        end = max(2, len(values) + 1)
        ref = f"{quote_sheetname(LISTS_SHEET)}!${col}$2:${col}${end}"
        list_ranges[name] = ref
        return ref

    if labels:
        add_list("study", labels)
    add_list("outcome", outcomes)
    add_list("boolean", ["true", "false"])
    for level, fields in (("study", ex.study_fields), ("outcome", ex.outcome_fields)):
        for f in fields:
            if f.type == "choice":
                add_list(f"{level}:{f.name}", list(f.allowed))

    def head(ws, columns: list[tuple[str, str]]):
        for j, (name, note) in enumerate(columns, start=1):
            c = ws.cell(row=1, column=j, value=name)
            c.font, c.fill = _HEAD_FONT, _HEAD_FILL
            if note:
                c.comment = Comment(note, "metasift")
            ws.column_dimensions[get_column_letter(j)].width = max(12, min(40, len(name) + 4))
        ws.freeze_panes = "B2" if ws.title == STUDY_SHEET else "E2"

    def validate_column(ws, j: int, f: FormField | None, list_name: str | None, last: int):
        rng = f"{get_column_letter(j)}2:{get_column_letter(j)}{last}"
        if list_name is not None:
            dv = DataValidation(type="list", formula1=list_ranges[list_name], allow_blank=True)
            dv.error, dv.errorTitle = f"Pick a value from the list ({list_name}).", "Not allowed"
        elif f is not None and f.type in ("integer", "number"):
            kind = "whole" if f.type == "integer" else "decimal"
            lo, hi = _bound(f.min), _bound(f.max)
            if lo is not None and hi is not None:
                dv = DataValidation(type=kind, operator="between", formula1=lo, formula2=hi)
            elif lo is not None:
                dv = DataValidation(type=kind, operator="greaterThanOrEqual", formula1=lo)
            elif hi is not None:
                dv = DataValidation(type=kind, operator="lessThanOrEqual", formula1=hi)
            else:  # any number: Excel needs bounds
                dv = DataValidation(
                    type=kind, operator="between", formula1="-1E+15", formula2="1E+15"
                )
            dv.error, dv.errorTitle = f"{f.name}: {expected(f)}", "Not allowed"
            dv.allow_blank = True
        else:
            return
        dv.showErrorMessage = True
        dv.add(rng)
        ws.add_data_validation(dv)

    def list_for(level: str, f: FormField) -> str | None:
        if f.type == "choice":
            return f"{level}:{f.name}"
        if f.type == "boolean":
            return "boolean"
        return None

    # study sheet
    last_s = max(len(labels) + 1, TEMPLATE_ROWS)
    head(
        ws_s,
        [("study", "The study label (as in `metasift extract studies`).")]
        + [(f.name, _note(f)) for f in ex.study_fields],
    )
    for i, lab in enumerate(labels, start=2):
        ws_s.cell(row=i, column=1, value=lab).fill = _KEY_FILL
    if labels:
        validate_column(ws_s, 1, None, "study", last_s)
    for j, f in enumerate(ex.study_fields, start=2):
        validate_column(ws_s, j, f, list_for("study", f), last_s)

    # outcomes sheet (long form)
    key_notes = [
        "The study label.",
        "The arm (group) label, e.g. ivig, placebo, all.",
        "An outcome of the protocol.",
        "The time point label, e.g. 12 months, baseline.",
    ]
    head(
        ws_o,
        list(zip(OUTCOME_KEYS, key_notes, strict=True))
        + [(f.name, _note(f)) for f in ex.outcome_fields],
    )
    if labels:
        validate_column(ws_o, 1, None, "study", TEMPLATE_ROWS)
    validate_column(ws_o, 3, None, "outcome", TEMPLATE_ROWS)
    ws_o.column_dimensions["C"].width = max([12] + [min(40, len(o) + 2) for o in outcomes])
    for j, f in enumerate(ex.outcome_fields, start=len(OUTCOME_KEYS) + 1):
        validate_column(ws_o, j, f, list_for("outcome", f), TEMPLATE_ROWS)

    _write_readme(readme, protocol)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _bound(x: float | None) -> str | None:
    if x is None:
        return None
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _note(f: FormField) -> str:
    s = f"{f.type}: {expected(f)}"
    if f.required:
        s += "; required"
    if f.description:
        s += f". {f.description}"
    return s


def _write_readme(ws, protocol: Protocol) -> None:
    ex = protocol.extraction
    lines = [
        (f"Extraction form: {protocol.title}",),
        (),
        ("How to fill it in",),
        ("Sheet 'study': one row per study; the 'study' column holds the study label.",),
        (
            "Sheet 'outcomes': one row per study x arm x outcome x time point (arm e.g. ivig, "
            "placebo, all).",
        ),
        (
            "Leave a cell blank when the report does not give the value. Do not rename sheets or "
            "column headers.",
        ),
        (
            f"Then: metasift extract load DIR FILE --reviewer NAME "
            f"({ex.extractors_per_study} extractor(s) per study).",
        ),
        (),
        ("sheet", "column", "type", "expects", "unit", "required", "description"),
    ]
    for sheet, fields in ((STUDY_SHEET, ex.study_fields), (OUTCOME_SHEET, ex.outcome_fields)):
        for f in fields:
            lines.append(
                (
                    sheet,
                    f.name,
                    f.type,
                    expected(f),
                    f.unit,
                    "yes" if f.required else "",
                    f.description,
                )
            )
    lines += [(), ("domain", "outcome", "type", "unit", "direction", "", "description")]
    for d, o in protocol.outcomes():
        lines.append((d, o.name, o.type, o.unit, o.direction, "", o.description))
    for row in lines:
        ws.append(list(row))
    ws["A1"].font = Font(bold=True, size=14)
    for r in (3, 9):
        for c in ws[r]:
            c.font = _HEAD_FONT
    header2 = 9 + len(ex.study_fields) + len(ex.outcome_fields) + 2
    for c in ws[header2]:
        c.font = _HEAD_FONT
    for col, width in zip("ABCDEFG", (14, 26, 10, 40, 14, 9, 50), strict=True):
        ws.column_dimensions[col].width = width


# -- loading ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_workbook` loaded."""

    path: str
    reviewer: str
    studies: tuple[str, ...]
    values: int  # values in the workbook
    written: int  # new rows (values that changed or are new)
    unchanged: int  # equal to the reviewer's current value, not written again
    by_sheet: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.path}: {self.values} value(s) for {len(self.studies)} study(ies) by "
            f"{self.reviewer}: {self.written} recorded, {self.unchanged} unchanged"
        )

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "reviewer": self.reviewer,
            "studies": list(self.studies),
            "values": self.values,
            "written": self.written,
            "unchanged": self.unchanged,
            "by_sheet": dict(self.by_sheet),
        }


def _at(row: tuple, j: int):
    """The value in 1-based column ``j`` of a row read with ``values_only`` (None past its end)."""
    return row[j - 1] if j - 1 < len(row) else None


def _blank(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return "" if v is None else " ".join(str(v).split())


def _header(ws, sheet: str, keys: tuple[str, ...], fields: list[FormField], problems):
    """Map column index -> key or FormField from the header row; report unknown/missing ones."""
    by_name = {f.name.casefold(): f for f in fields}
    cols: dict[int, str | FormField] = {}
    seen: dict[str, int] = {}
    header = next(ws.iter_rows(min_row=1, max_row=1, values_only=True), ())
    for j, h in enumerate(header, start=1):
        if _blank(h):
            continue
        name = _text(h).casefold()
        letter = get_column_letter(j)
        if name in seen:
            problems.append(
                (
                    sheet,
                    1,
                    letter,
                    f"a column name used once (also column {get_column_letter(seen[name])})",
                )
            )
            continue
        seen[name] = j
        if name in keys:
            cols[j] = name
        elif name in by_name:
            cols[j] = by_name[name]
        else:
            problems.append(
                (
                    sheet,
                    1,
                    letter,
                    f"a column of the form ({', '.join(list(keys) + [f.name for f in fields])}); "
                    f"got {_text(h)!r}",
                )
            )
    for k in keys:
        if k not in seen:
            problems.append((sheet, 1, "", f"a column named {k!r}"))
    return cols


def _read(path: Path):
    if not path.is_file():
        raise SheetError(path, [("", 0, "", "an existing .xlsx file")])
    try:
        return _open_xlsx(path, data_only=True, read_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for a non-workbook
        raise SheetError(
            path, [("", 0, "", f"an .xlsx workbook (could not open it: {exc.__class__.__name__})")]
        ) from None


def parse_workbook(
    protocol: Protocol,
    path: str | Path,
    known_studies: Iterable[str],
    refused: Mapping[str, str] | None = None,
):
    """Validate a filled workbook without touching the store: ``{study label: [Prepared]}`` and a
    per-sheet count, or :class:`SheetError` with every located problem. ``refused`` maps a study
    label to why this extractor may not fill it (reported on each of its rows)."""
    path = Path(path)
    known = set(known_studies)
    refused = dict(refused or {})
    wb = _read(path)
    problems: list[tuple[str, int, str, str]] = []
    per_study: dict[str, dict[Cell, Prepared]] = {}
    counts = {STUDY_SHEET: 0, OUTCOME_SHEET: 0}
    ex = protocol.extraction
    try:
        names = wb.sheetnames
        for sheet in (STUDY_SHEET, OUTCOME_SHEET):
            if sheet not in names:
                problems.append(
                    (
                        sheet,
                        0,
                        "",
                        f"a sheet named {sheet!r} as in the template (sheets: {', '.join(names)})",
                    )
                )

        def check_study(sheet, r, letter, label) -> bool:
            if not label:
                problems.append((sheet, r, letter, "a study label"))
                return False
            if label not in known:
                problems.append(
                    (
                        sheet,
                        r,
                        letter,
                        f"a study label of the review; got {label!r} (add the study first)",
                    )
                )
                return False
            if label in refused:
                problems.append((sheet, r, letter, refused[label]))
                return False
            return True

        def value(sheet, r, j, cell: Cell, f: FormField, raw, bucket: dict):
            try:
                v = validate_value(f, raw)
            except InvalidValueError as e:
                problems.append(
                    (sheet, r, get_column_letter(j), f"{f.name}: {e.expected}; got {_show(raw)}")
                )
                return
            bucket[cell] = Prepared(cell, v, unit_of(protocol, cell, f))

        if STUDY_SHEET in names:
            ws = wb[STUDY_SHEET]
            cols = _header(ws, STUDY_SHEET, ("study",), list(ex.study_fields), problems)
            key_col = next((j for j, c in cols.items() if c == "study"), None)
            seen_rows: dict[str, int] = {}
            for r, row in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2):
                cells = {j: row[j - 1] for j in cols if j - 1 < len(row)}
                filled = {
                    j: v
                    for j, v in cells.items()
                    if isinstance(cols[j], FormField) and not _blank(v)
                }
                if not filled:
                    continue  # an empty row, or a study this extractor has not filled in
                label = _text(cells.get(key_col)) if key_col else ""
                if not check_study(STUDY_SHEET, r, get_column_letter(key_col or 1), label):
                    continue
                if label in seen_rows:
                    problems.append(
                        (
                            STUDY_SHEET,
                            r,
                            get_column_letter(key_col),
                            f"one row per study; {label!r} is also on row {seen_rows[label]}",
                        )
                    )
                    continue
                seen_rows[label] = r
                bucket = per_study.setdefault(label, {})
                for j, raw in filled.items():
                    f = cols[j]
                    value(STUDY_SHEET, r, j, Cell(f.name), f, raw, bucket)
                    counts[STUDY_SHEET] += 1
                present = {cols[j].name for j in filled}
                for f in ex.study_fields:
                    if f.required and f.name not in present:
                        j = next((j for j, c in cols.items() if c is f), None)
                        problems.append(
                            (
                                STUDY_SHEET,
                                r,
                                get_column_letter(j) if j else "",
                                f"{f.name}: a value (required): {expected(f)}",
                            )
                        )

        if OUTCOME_SHEET in names:
            ws = wb[OUTCOME_SHEET]
            cols = _header(ws, OUTCOME_SHEET, OUTCOME_KEYS, list(ex.outcome_fields), problems)
            keycol = {c: j for j, c in cols.items() if isinstance(c, str)}
            outcomes = [o.name for _, o in protocol.outcomes()]
            canon = {" ".join(o.split()).casefold(): o for o in outcomes}
            seen_keys: dict[tuple, int] = {}
            if all(k in keycol for k in OUTCOME_KEYS):
                for r, row in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2):
                    filled = {
                        j: _at(row, j)
                        for j, c in cols.items()
                        if isinstance(c, FormField) and not _blank(_at(row, j))
                    }
                    keys = {k: _text(_at(row, keycol[k])) for k in OUTCOME_KEYS}
                    if not filled:
                        continue  # a row with keys only carries no data
                    ok = check_study(
                        OUTCOME_SHEET, r, get_column_letter(keycol["study"]), keys["study"]
                    )
                    outcome = canon.get(keys["outcome"].casefold())
                    if outcome is None:
                        problems.append(
                            (
                                OUTCOME_SHEET,
                                r,
                                get_column_letter(keycol["outcome"]),
                                f"an outcome of the protocol; got {keys['outcome']!r}",
                            )
                        )
                        ok = False
                    if not keys["arm"]:
                        problems.append(
                            (
                                OUTCOME_SHEET,
                                r,
                                get_column_letter(keycol["arm"]),
                                "an arm label (e.g. ivig, placebo, all)",
                            )
                        )
                        ok = False
                    if not ok:
                        continue
                    k = (keys["study"], keys["arm"], outcome, keys["timepoint"])
                    if k in seen_keys:
                        problems.append(
                            (
                                OUTCOME_SHEET,
                                r,
                                get_column_letter(keycol["outcome"]),
                                f"one row per study x arm x outcome x time point; "
                                f"also on row {seen_keys[k]}",
                            )
                        )
                        continue
                    seen_keys[k] = r
                    bucket = per_study.setdefault(keys["study"], {})
                    for j, raw in filled.items():
                        f = cols[j]
                        cell = Cell(f.name, keys["arm"], outcome, keys["timepoint"])
                        value(OUTCOME_SHEET, r, j, cell, f, raw, bucket)
                        counts[OUTCOME_SHEET] += 1
    finally:
        wb.close()
    if problems:
        raise SheetError(path, problems)
    return {k: list(v.values()) for k, v in per_study.items()}, counts


def _show(raw) -> str:
    s = repr(raw)
    return s if len(s) <= 60 else s[:59] + "…"


def load_workbook(store: Store, protocol: Protocol, path: str | Path, reviewer: str) -> LoadReport:
    """Load a filled extraction workbook as ``reviewer``'s values: everything is validated first
    (:class:`SheetError` with every located problem, nothing loaded), then all values are written
    in one transaction (each audited)."""
    _check_person(protocol, reviewer, EXTRACTOR_ROLES, "extracting")
    path = Path(path)
    limit = protocol.extraction.extractors_per_study
    with store.read() as s:
        known = list(s.scalars(select(Study.label)))
        extractors: dict[str, set[str]] = {}
        for label, who in s.execute(
            select(Study.label, Value.reviewer)
            .join(Value, Value.study_id == Study.id)
            .where(Value.kind == "extract")
            .distinct()
        ):
            extractors.setdefault(label, set()).add(who)
    refused = {
        label: f"a study {reviewer} may extract; {label!r} already has {limit} extractor(s) "
        f"({', '.join(sorted(who))})"
        for label, who in extractors.items()
        if reviewer not in who and len(who) >= limit
    }
    per_study, counts = parse_workbook(protocol, path, known, refused)
    written = unchanged = 0
    with store.write() as s:
        by_label = {st.label: st for st in s.scalars(select(Study))}
        for label, items in per_study.items():
            if label not in by_label:  # removed between validation and writing
                raise SheetError(path, [(STUDY_SHEET, 0, "", f"study {label!r} in the store")])
            try:
                rows, same = _write(s, protocol, by_label[label], reviewer, items)
            except ExtractionError as exc:
                raise ExtractionError(f"{path}: {exc}") from None
            written += len(rows)
            unchanged += same
        report = LoadReport(
            path=str(path),
            reviewer=reviewer,
            studies=tuple(per_study),
            values=sum(counts.values()),
            written=written,
            unchanged=unchanged,
            by_sheet=counts,
        )
        Store.audit(s, reviewer, "extract.load", "workbook", path.name, None, report.to_dict())
    return report
