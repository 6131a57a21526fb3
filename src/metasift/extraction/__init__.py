"""Extraction stage: forms from the protocol, dual extraction, differences, reconciliation, and
the XLSX round trip (template -> filled by the team -> loaded with located errors).

Library functions over ``(store, protocol, ...)`` that validate, write one transaction and audit,
in the style of :mod:`metasift.screening.decisions`.
"""

from metasift.extraction.forms import (
    Cell,
    ExtractionError,
    InvalidValueError,
    expected,
    validate_value,
)
from metasift.extraction.sheets import LoadReport, load_workbook, parse_workbook, write_template
from metasift.extraction.values import (
    FINAL_COLUMNS,
    Difference,
    StudyInfo,
    add_study,
    differences,
    final_values,
    reconcile,
    record_values,
    studies,
)

__all__ = [
    "FINAL_COLUMNS",
    "Cell",
    "Difference",
    "ExtractionError",
    "InvalidValueError",
    "LoadReport",
    "StudyInfo",
    "add_study",
    "differences",
    "expected",
    "final_values",
    "load_workbook",
    "parse_workbook",
    "reconcile",
    "record_values",
    "studies",
    "validate_value",
    "write_template",
]
