"""Validating and normalising one value against its protocol form field."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metasift.errors import MetasiftError
from metasift.extraction import Cell, InvalidValueError, expected, validate_value
from metasift.protocol import FormField

INT = FormField(name="n_total", type="integer", min=1)
NUM = FormField(name="age_mean", type="number", min=0, max=120, unit="years")
ANY_NUM = FormField(name="mean", type="number")
CHOICE = FormField(name="design", type="choice", allowed=["RCT", "prospective cohort"])
BOOL = FormField(name="blinded", type="boolean")
DATE = FormField(name="published", type="date")
TEXT = FormField(name="country", type="text")


@pytest.mark.parametrize(
    "field, raw, norm",
    [
        (INT, 12, "12"),
        (INT, 12.0, "12"),
        (INT, "12", "12"),
        (INT, " 12 ", "12"),
        (INT, "12.0", "12"),
        (INT, "+7", "7"),
        (NUM, 46.6, "46.6"),
        (NUM, "46.6", "46.6"),
        (NUM, "46,6", "46.6"),
        (NUM, 12, "12.0"),
        (NUM, "0", "0.0"),
        (ANY_NUM, "-3.3", "-3.3"),
        (ANY_NUM, "\u22123.3", "-3.3"),
        (ANY_NUM, -0.0, "0.0"),
        (ANY_NUM, "1e-3", "0.001"),
        (CHOICE, "RCT", "RCT"),
        (CHOICE, "rct", "RCT"),
        (CHOICE, " Prospective   Cohort ", "prospective cohort"),
        (BOOL, True, "true"),
        (BOOL, "Yes", "true"),
        (BOOL, "n", "false"),
        (BOOL, 0, "false"),
        (DATE, date(2024, 3, 1), "2024-03-01"),
        (DATE, datetime(2024, 3, 1, 12, 30), "2024-03-01"),
        (DATE, " 2024-03-01 ", "2024-03-01"),
        (TEXT, "  Japan ", "Japan"),
        (TEXT, 12.0, "12"),
        (TEXT, "40-60", "40-60"),
    ],
)
def test_accepts_and_normalises(field, raw, norm):
    assert validate_value(field, raw) == norm


@pytest.mark.parametrize(
    "field, raw, says",
    [
        (INT, 12.5, "a whole number >= 1"),
        (INT, "12a", "a whole number >= 1"),
        (INT, "1,000", "a whole number >= 1"),
        (INT, True, "a whole number >= 1"),
        (INT, 0, "a whole number >= 1"),
        (INT, "-3", "a whole number >= 1"),
        (NUM, 121, "a number from 0 to 120 (unit: years)"),
        (NUM, -0.5, "a number from 0 to 120 (unit: years)"),
        (NUM, "46.6 (SD 12.3)", "a number from 0 to 120 (unit: years)"),
        (ANY_NUM, "nan", "a number"),
        (ANY_NUM, float("inf"), "a number"),
        (ANY_NUM, "1,2,3", "a number"),
        (CHOICE, "cohort", "one of: RCT, prospective cohort"),
        (BOOL, "maybe", "true or false (yes/no)"),
        (BOOL, 2, "true or false (yes/no)"),
        (DATE, "01/03/2024", "a date (YYYY-MM-DD)"),
        (DATE, "2024-02-30", "a date (YYYY-MM-DD)"),
        (TEXT, "   ", "a value (text)"),
        (INT, None, "a value (a whole number >= 1)"),
    ],
)
def test_rejects_saying_what_was_expected(field, raw, says):
    with pytest.raises(InvalidValueError) as info:
        validate_value(field, raw)
    err = info.value
    assert isinstance(err, MetasiftError)
    assert err.field == field.name
    assert err.expected == says
    assert field.name in str(err) and says in str(err)


def test_expected_describes_the_range_and_unit():
    assert expected(FormField(name="x", type="number", max=100, unit="%")) == (
        "a number <= 100 (unit: %)"
    )
    assert expected(FormField(name="x", type="number", min=0.5)) == "a number >= 0.5"
    assert expected(TEXT) == "text"


@given(st.integers(min_value=1, max_value=2**53))
def test_integer_normalisation_round_trips(n):
    norm = validate_value(INT, n)
    assert int(norm) == n
    assert validate_value(INT, norm) == norm
    assert validate_value(INT, float(n)) == norm  # a spreadsheet's 12.0 is the integer 12


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_number_normalisation_round_trips(x):
    norm = validate_value(ANY_NUM, x)
    assert float(norm) == x
    assert validate_value(ANY_NUM, norm) == norm  # idempotent: equal inputs store equal text
    if x == 0:
        assert norm == "0.0"  # -0.0 and 0.0 are one value


@given(st.sampled_from(CHOICE.allowed), st.sampled_from([str.upper, str.lower, str.title]))
def test_choice_is_case_insensitive_and_canonical(choice, case):
    assert validate_value(CHOICE, case(choice)) == choice


def test_cell_level_follows_the_outcome():
    assert Cell("n_total").level == "study"
    c = Cell("mean", arm="ivig", outcome="mRSS", timepoint="12 months")
    assert c.level == "outcome"
    assert "mRSS" in c.describe() and "ivig" in c.describe()
