"""Extraction forms from the protocol: validating and normalising one value, and naming a cell.

A value is stored as text, validated and normalised first so that two extractors who typed the
same thing store the same string (and a difference is a real difference):

==========  ==============================================  ==================================
type        accepted                                        stored as
==========  ==============================================  ==================================
integer     12, 12.0, "12", " 12 "                           "12"
number      46.6, "46.6", "46,6" (decimal comma), 12        repr of the float: "46.6", "12.0"
text        any non-blank text (numbers as typed)           the text, stripped
choice      one of ``allowed`` (case and spaces ignored)    the protocol's spelling
boolean     true/false, yes/no, y/n, 1/0 (any case)         "true" / "false"
date        a date, a datetime or an ISO date "2024-03-01"  "2024-03-01"
==========  ==============================================  ==================================

``min`` / ``max`` apply to integer and number fields. A blank value is never valid here: a blank
spreadsheet cell means "not extracted" and is skipped before validation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime

from metasift.errors import MetasiftError
from metasift.protocol import FormField

LEVELS = ("study", "outcome")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}
_INT_RE = re.compile(r"^[+-]?\d+(?:\.0*)?$")
_NUM_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


class ExtractionError(MetasiftError, ValueError):
    """An extraction input breaks a rule (unknown study or field, reviewer without the role, ...)."""


class InvalidValueError(ExtractionError):
    """A value does not fit its form field. ``expected`` says what would have fitted."""

    def __init__(self, field: FormField, raw, expected: str):
        self.field = field.name
        self.raw = raw
        self.expected = expected
        super().__init__(f"field {field.name!r}: expected {expected}; got {_show(raw)}")


def _show(raw) -> str:
    s = repr(raw)
    return s if len(s) <= 60 else s[:59] + "…"


def _fmt_bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def expected(field: FormField) -> str:
    """What a field accepts, in words (used in error messages and the template's README sheet)."""
    if field.type == "integer":
        what = "a whole number"
    elif field.type == "number":
        what = "a number"
    elif field.type == "choice":
        what = "one of: " + ", ".join(field.allowed)
    elif field.type == "boolean":
        what = "true or false (yes/no)"
    elif field.type == "date":
        what = "a date (YYYY-MM-DD)"
    else:
        what = "text"
    if field.type in ("integer", "number"):
        if field.min is not None and field.max is not None:
            what += f" from {_fmt_bound(field.min)} to {_fmt_bound(field.max)}"
        elif field.min is not None:
            what += f" >= {_fmt_bound(field.min)}"
        elif field.max is not None:
            what += f" <= {_fmt_bound(field.max)}"
    if field.unit:
        what += f" (unit: {field.unit})"
    return what


def _check_range(field: FormField, x: float, raw) -> None:
    if (field.min is not None and x < field.min) or (field.max is not None and x > field.max):
        raise InvalidValueError(field, raw, expected(field))


def _as_number(field: FormField, raw) -> float:
    if isinstance(raw, bool):
        raise InvalidValueError(field, raw, expected(field))
    if isinstance(raw, int | float):
        x = float(raw)
    elif isinstance(raw, str):
        s = raw.strip().replace("\u2212", "-")  # a typographic minus from a PDF
        if "," in s and "." not in s and s.count(",") == 1:
            s = s.replace(",", ".")  # decimal comma
        if not _NUM_RE.match(s):
            raise InvalidValueError(field, raw, expected(field))
        x = float(s)
    else:
        raise InvalidValueError(field, raw, expected(field))
    if not math.isfinite(x):
        raise InvalidValueError(field, raw, expected(field))
    return x


def validate_value(field: FormField, raw) -> str:
    """The normalised text of ``raw`` for ``field``; :class:`InvalidValueError` says what was
    expected when it does not fit (type, allowed values, min/max)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise InvalidValueError(field, raw, "a value (" + expected(field) + ")")
    t = field.type
    if t == "integer":
        if isinstance(raw, str):
            s = raw.strip().replace("\u2212", "-")
            if not _INT_RE.match(s):
                raise InvalidValueError(field, raw, expected(field))
            n = int(s.split(".")[0])
        else:
            x = _as_number(field, raw)
            if not x.is_integer():
                raise InvalidValueError(field, raw, expected(field))
            n = int(x)
        _check_range(field, n, raw)
        return str(n)
    if t == "number":
        x = _as_number(field, raw)
        _check_range(field, x, raw)
        return repr(x + 0.0) if x != 0 else "0.0"  # no "-0.0"
    if t == "choice":
        key = " ".join(str(raw).split()).casefold()
        for a in field.allowed:
            if " ".join(a.split()).casefold() == key:
                return a
        raise InvalidValueError(field, raw, expected(field))
    if t == "boolean":
        if isinstance(raw, bool):
            return "true" if raw else "false"
        key = str(raw).strip().casefold()
        if isinstance(raw, int | float) and not isinstance(raw, bool) and raw in (0, 1):
            key = str(int(raw))
        if key in _TRUE:
            return "true"
        if key in _FALSE:
            return "false"
        raise InvalidValueError(field, raw, expected(field))
    if t == "date":
        if isinstance(raw, datetime):
            return raw.date().isoformat()
        if isinstance(raw, date):
            return raw.isoformat()
        try:
            return date.fromisoformat(str(raw).strip()).isoformat()
        except ValueError:
            raise InvalidValueError(field, raw, expected(field)) from None
    # text
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))  # a spreadsheet turned "12" into 12.0
    if isinstance(raw, datetime | date):
        return raw.isoformat()
    return str(raw).strip()


@dataclass(frozen=True, order=True)
class Cell:
    """Where a value goes: a study-level field (``Cell("n_total")``) or an outcome field of one
    arm x outcome x time point (``Cell("mean", arm="ivig", outcome="mRSS", timepoint="12 months")``)."""

    field: str
    arm: str = ""
    outcome: str = ""
    timepoint: str = ""

    @property
    def level(self) -> str:
        return "outcome" if self.outcome else "study"

    def describe(self) -> str:
        if self.level == "study":
            return self.field
        return f"{self.outcome} / {self.arm} / {self.timepoint or '-'} / {self.field}"


def form_field(protocol, cell: Cell) -> FormField:
    """The protocol's form field for ``cell``; checks the cell's keys against the protocol."""
    ex = protocol.extraction
    if cell.level == "study":
        if cell.arm or cell.timepoint:
            raise ExtractionError(
                f"study-level field {cell.field!r} takes no arm or time point (give an outcome "
                "for outcome data)"
            )
        fields = {f.name: f for f in ex.study_fields}
    else:
        names = [o.name for _, o in protocol.outcomes()]
        if cell.outcome not in names:
            raise ExtractionError(
                f"{cell.outcome!r} is not an outcome of the protocol; use one of: "
                + ", ".join(names)
            )
        if not cell.arm.strip():
            raise ExtractionError(f"outcome data for {cell.outcome!r} need an arm label")
        fields = {f.name: f for f in ex.outcome_fields}
    if cell.field not in fields:
        raise ExtractionError(
            f"{cell.field!r} is not a {cell.level}-level field of the protocol's extraction form; "
            f"use one of: {', '.join(fields) or '(none)'}"
        )
    return fields[cell.field]


def unit_of(protocol, cell: Cell, field: FormField) -> str:
    """The unit stored beside a value: the form field's unit; for an unlabelled *number* field of
    outcome data (mean, SD, median) the outcome's unit. Counts (integer fields) carry none."""
    if field.unit:
        return field.unit
    if cell.level == "outcome" and field.type == "number":
        for _, o in protocol.outcomes():
            if o.name == cell.outcome:
                return o.unit
    return ""
