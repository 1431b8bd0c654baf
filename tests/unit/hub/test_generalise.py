"""Generalising attribute columns: exact vectors for each rule, nulls kept, a property
check of the date rules against Python's calendar, and the error messages."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.release.generalise import (
    AgeBands,
    DateTrunc,
    DropTime,
    GeneralisationError,
    PostcodeUnit,
    apply,
    parse_generalisation,
)


def _one(rule: dict[str, object], column: pa.Array | pa.ChunkedArray) -> list[object]:
    """The values of a single generalised column."""
    table = pa.table({"x": column})
    values: list[object] = apply(table, parse_generalisation({"x": rule})).column("x").to_pylist()
    return values


WEEKS = [
    (date(2021, 1, 3), date(2020, 12, 28)),  # Sunday: ISO week 53 of 2020
    (date(2021, 1, 4), date(2021, 1, 4)),  # Monday
    (date(2020, 12, 31), date(2020, 12, 28)),
    (date(2024, 12, 31), date(2024, 12, 30)),  # ISO week 1 of 2025 starts in 2024
    (date(2026, 1, 1), date(2025, 12, 29)),
    (date(2024, 2, 29), date(2024, 2, 26)),
    (date(1969, 12, 31), date(1969, 12, 29)),  # before the epoch
    (None, None),
]


def test_weeks_are_the_monday_starting_the_iso_week() -> None:
    """Each date becomes the Monday of its ISO week, across year boundaries and the epoch."""
    given_, expected = zip(*WEEKS, strict=True)
    assert _one({"date": "week"}, pa.array(given_, pa.date32())) == list(expected)


def test_months_and_years_are_their_first_day_as_a_date() -> None:
    """Months give the 1st of the month and years 1 January, both as date32."""
    days = pa.array([date(2024, 2, 29), date(2021, 12, 31), date(1969, 7, 20), None])
    assert _one({"date": "month"}, days) == [
        date(2024, 2, 1),
        date(2021, 12, 1),
        date(1969, 7, 1),
        None,
    ]
    assert _one({"date": "year"}, days) == [
        date(2024, 1, 1),
        date(2021, 1, 1),
        date(1969, 1, 1),
        None,
    ]
    table = apply(pa.table({"d": days}), parse_generalisation({"d": {"date": "month"}}))
    assert table.schema.field("d").type == pa.date32()


def test_timestamps_are_cut_to_their_date_first() -> None:
    """A naive timestamp is cut to its date; an aware one to the date on its own clock
    (23:30 UTC on 30 June is 1 July in London). date64 is accepted too."""
    naive = pa.array([datetime(2021, 1, 3, 23, 59), None], pa.timestamp("ns"))
    assert _one({"date": "week"}, naive) == [date(2020, 12, 28), None]
    assert _one({"drop_time": True}, naive) == [date(2021, 1, 3), None]
    late = datetime(2021, 6, 30, 23, 30, tzinfo=UTC)
    aware = pa.array([late], pa.timestamp("us", tz="Europe/London"))
    assert _one({"drop_time": True}, aware) == [date(2021, 7, 1)]
    assert _one({"date": "month"}, aware) == [date(2021, 7, 1)]
    assert _one({"date": "year"}, pa.array([date(2021, 5, 5)], pa.date64())) == [date(2021, 1, 1)]
    assert _one({"drop_time": True}, pa.array([date(2021, 5, 5)])) == [date(2021, 5, 5)]


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
@settings(max_examples=200, deadline=None)
def test_date_rules_agree_with_the_python_calendar(day: date) -> None:
    """Week, month and year starts match an independent computation with datetime, and
    applying a rule twice changes nothing."""
    expected = {
        "week": day - timedelta(days=day.weekday()),
        "month": day.replace(day=1),
        "year": day.replace(month=1, day=1),
    }
    for unit, start in expected.items():
        once = _one({"date": unit}, pa.array([day]))
        assert once == [start]
        assert _one({"date": unit}, pa.array(once, pa.date32())) == once


def test_age_bands_at_their_edges() -> None:
    """Each bound is the first age of its band; negative and null ages become null."""
    ages = [0, 17, 18, 24, 25, 34, 35, 49, 50, 64, 65, 120, -1, None]
    assert _one({"age_bands": [18, 25, 35, 50, 65]}, pa.array(ages, pa.int16())) == [
        "0-17",
        "0-17",
        "18-24",
        "18-24",
        "25-34",
        "25-34",
        "35-49",
        "35-49",
        "50-64",
        "50-64",
        "65+",
        "65+",
        None,
        None,
    ]


def test_age_band_labels() -> None:
    """A one-year band is labelled by its single age; unsigned ages work."""
    assert AgeBands((1, 5)).labels == ("0", "1-4", "5+")
    assert AgeBands((18,)).labels == ("0-17", "18+")
    assert _one({"age_bands": [1, 5]}, pa.array([0, 1, 4, 5], pa.uint8())) == [
        "0",
        "1-4",
        "1-4",
        "5+",
    ]


POSTCODES = [
    # raw, district, sector, area
    ("cf101ab", "CF10", "CF10 1", "CF"),
    ("CF10 1AB", "CF10", "CF10 1", "CF"),
    ("EC1A 1BB", "EC1A", "EC1A 1", "EC"),
    ("W1A 0AX", "W1A", "W1A 0", "W"),
    ("  sw1a   1aa ", "SW1A", "SW1A 1", "SW"),
    ("M1 1AE", "M1", "M1 1", "M"),
    ("not a postcode", None, None, None),
    ("ZZ99 3VZ", None, None, None),  # pseudo postcode: no fixed abode
    ("", None, None, None),
    (None, None, None, None),
]


@pytest.mark.parametrize(("level", "position"), [("district", 1), ("sector", 2), ("area", 3)])
def test_postcode_units(level: str, position: int) -> None:
    """Case and spacing are normalised first; what does not parse becomes null."""
    raw = pa.array([row[0] for row in POSTCODES], pa.string())
    assert _one({"postcode": level}, raw) == [row[position] for row in POSTCODES]


def test_postcode_columns_may_be_large_or_dictionary_encoded_text_in_chunks() -> None:
    """large_string, dictionary-encoded and multi-chunk columns give the same answer."""
    values = ["cf101ab", None, "W1A 0AX", "cf101ab"]
    expected = ["CF10", None, "W1A", "CF10"]
    assert _one({"postcode": "district"}, pa.array(values, pa.large_string())) == expected
    assert _one({"postcode": "district"}, pa.array(values).dictionary_encode()) == expected
    chunked = pa.chunked_array([values[:1], values[1:]])
    assert _one({"postcode": "district"}, chunked) == expected


def test_apply_replaces_only_the_named_columns_in_place() -> None:
    """Other columns, the column order and the input table are left as they were."""
    table = pa.table(
        {
            "id": [1, 2],
            "dob": pa.array([date(2021, 1, 3), None]),
            "age": [40, 70],
            "postcode": ["cf101ab", "EC1A 1BB"],
        }
    )
    doc = json.loads(
        '{"dob": {"date": "week"}, "age": {"age_bands": [18, 65]},'
        ' "postcode": {"postcode": "area"}}'
    )
    out = apply(table, parse_generalisation(doc))
    assert out.column_names == ["id", "dob", "age", "postcode"]
    assert out.to_pylist() == [
        {"id": 1, "dob": date(2020, 12, 28), "age": "18-64", "postcode": "CF"},
        {"id": 2, "dob": None, "age": "65+", "postcode": "EC"},
    ]
    assert table.column("age").to_pylist() == [40, 70]
    assert apply(table, {}).equals(table)


def test_parsing_gives_frozen_rules() -> None:
    """Each kind parses to its own frozen rule object."""
    rules = parse_generalisation(
        {
            "a": {"date": "week"},
            "b": {"age_bands": [18, 65]},
            "c": {"postcode": "sector"},
            "d": {"drop_time": True},
        }
    )
    assert rules == {
        "a": DateTrunc("week"),
        "b": AgeBands((18, 65)),
        "c": PostcodeUnit("sector"),
        "d": DropTime(),
    }
    week = DateTrunc("week")
    with pytest.raises(FrozenInstanceError):
        week.unit = "year"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"dob": {"date": "fortnight"}}, "field 'dob': date must be one of week, month or year"),
        ({"dob": {"blur": 3}}, "field 'dob': unknown rule 'blur'"),
        ({"dob": "week"}, "field 'dob': a rule is an object with exactly one"),
        ({"dob": {"date": "week", "drop_time": True}}, "field 'dob': a rule is an object"),
        ({"dob": {}}, "field 'dob': a rule is an object"),
        ({"age": {"age_bands": []}}, "field 'age': age_bands must be a non-empty list"),
        ({"age": {"age_bands": "18,65"}}, "field 'age': age_bands must be a non-empty list"),
        ({"age": {"age_bands": [18, 18]}}, r"strictly increasing \(18 follows 18\)"),
        ({"age": {"age_bands": [65, 18]}}, r"strictly increasing \(18 follows 65\)"),
        ({"age": {"age_bands": [0, 18]}}, "field 'age': .* positive integers, not 0"),
        ({"age": {"age_bands": [-5]}}, "positive integers, not -5"),
        ({"age": {"age_bands": [18.5]}}, "positive integers, not 18.5"),
        ({"age": {"age_bands": [True]}}, "positive integers, not True"),
        ({"pc": {"postcode": "unit"}}, "field 'pc': postcode must be one of district, sector"),
        ({"ts": {"drop_time": False}}, "field 'ts': drop_time takes true, not False"),
        ({"": {"drop_time": True}}, "column names must be non-empty text"),
    ],
)
def test_bad_documents_are_refused_naming_the_field(doc: dict[str, object], message: str) -> None:
    """Every mistake in a document is a GeneralisationError naming the field."""
    with pytest.raises(GeneralisationError, match=message):
        parse_generalisation(doc)


def test_a_document_must_be_an_object() -> None:
    """A list is not a generalisation."""
    with pytest.raises(GeneralisationError, match="must be an object"):
        parse_generalisation([("dob", {"date": "week"})])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rule", "column", "message"),
    [
        ({"date": "week"}, pa.array(["2021-01-03"]), "column 'x' is string; the date rule"),
        ({"drop_time": True}, pa.array([1]), "column 'x' is int64; drop_time needs a date"),
        ({"age_bands": [18]}, pa.array([20.0]), "column 'x' is double; age bands need"),
        ({"age_bands": [18]}, pa.array(["20"]), "column 'x' is string; age bands need"),
        ({"postcode": "area"}, pa.array([1]), "column 'x' is int64; the postcode rule needs"),
    ],
)
def test_rules_refuse_columns_of_the_wrong_type(
    rule: dict[str, object], column: pa.Array, message: str
) -> None:
    """A rule applied to a column it cannot handle says which column and what it needs."""
    with pytest.raises(GeneralisationError, match=message):
        _one(rule, column)


def test_rules_for_missing_columns_are_refused() -> None:
    """Naming columns the table lacks is an error that lists them."""
    rules = parse_generalisation({"dob": {"date": "week"}, "pc": {"postcode": "area"}})
    with pytest.raises(GeneralisationError, match="does not have: dob, pc"):
        apply(pa.table({"id": [1]}), rules)
