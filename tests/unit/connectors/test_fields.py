"""Tests for the field-to-normaliser registry in connectors.fields, and the normalise vectors."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Literal, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.fields import (
    CANONICAL_FIELDS,
    MAX_RECORD_ID_CHARS,
    generic_normaliser,
    normalise_record_id,
    normaliser_for,
)
from connectors.nhs import normalise_nhs_number
from connectors.normalise import Normalised, Normaliser, normalise_code, normalise_free_text

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "normalise"
TODAY = date(2024, 6, 1)
DATE_FORMATS = ("%d/%m/%Y", "%d/%m/%y", "%d-%b-%Y")
KINDS: tuple[Literal["text", "date", "code"], ...] = ("text", "date", "code")


class Vector(NamedTuple):
    """One row of a normalise vector file."""

    input: str
    field: str
    expected_value: str
    expected_reason: str


def read_vectors(name: str) -> list[Vector]:
    """The rows of tests/vectors/normalise/<name>.csv, '#' comment lines skipped."""
    with (VECTORS / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return [Vector(**row) for row in csv.DictReader(lines)]


def load_vectors(name: str) -> list[pytest.ParameterSet]:
    """Parametrize helper: one case per vector row, named after its field and input."""
    rows = read_vectors(name)
    return [pytest.param(row, id=f"{row.field}:{row.input.strip()}") for row in rows]


def registry(field: str) -> Normaliser:
    """The normaliser for ``field`` with the settings the vector files declare."""
    return normaliser_for(field, date_formats=DATE_FORMATS, phone_region="GB", today=TODAY)


@pytest.mark.parametrize("vector", load_vectors("accepted"))
def test_accepted_vectors(vector: Vector) -> None:
    """Each accepted vector normalises to its expected canonical value, which is stable."""
    assert not vector.expected_reason
    normalise = registry(vector.field)
    assert normalise(vector.input) == Normalised.ok(vector.expected_value)
    assert normalise(vector.expected_value) == Normalised.ok(vector.expected_value)


@pytest.mark.parametrize("vector", load_vectors("refused"))
def test_refused_vectors(vector: Vector) -> None:
    """Each refused vector is refused with its expected reason code."""
    assert not vector.expected_value
    assert registry(vector.field)(vector.input) == Normalised.refused(vector.expected_reason)


def test_vectors_cover_every_field() -> None:
    """The accepted vectors exercise every canonical field."""
    fields = {row.field for row in read_vectors("accepted")}
    assert fields == set(CANONICAL_FIELDS)


def test_canonical_fields_in_schema_order() -> None:
    """CANONICAL_FIELDS lists person schema v1 in order."""
    assert CANONICAL_FIELDS == (
        "record_id",
        "given_name",
        "family_name",
        "other_names",
        "date_of_birth",
        "sex",
        "nhs_number",
        "postcode",
        "address",
        "phone",
        "email",
        "pnc_id",
    )


@pytest.mark.parametrize("field", CANONICAL_FIELDS)
def test_every_canonical_field_has_a_normaliser(field: str) -> None:
    """Every canonical field has a normaliser that refuses over-long input."""
    assert registry(field)("x" * 1001) == Normalised.refused("too_long")


def test_registry_picks_the_field_normaliser() -> None:
    """Fixed fields map to their module normaliser; dates and phones use the given settings."""
    assert registry("nhs_number") is normalise_nhs_number
    assert registry("address") is normalise_free_text
    later = normaliser_for("date_of_birth", date_formats=(), phone_region="GB", today=TODAY)
    assert later("14/03/1985") == Normalised.refused("unparseable")
    us = normaliser_for("phone", date_formats=(), phone_region="US", today=TODAY)
    assert us("202 555 0123") == Normalised.ok("+12025550123")


@pytest.mark.parametrize("field", ["nhs", "Given_Name", "", "ethnicity"])
def test_unknown_field_is_an_error(field: str) -> None:
    """An unknown field name is a ValueError."""
    with pytest.raises(ValueError, match="unknown"):
        registry(field)


def test_unknown_phone_region_is_an_error() -> None:
    """An unknown phone region is a ValueError when the phone normaliser is built."""
    with pytest.raises(ValueError, match="region"):
        normaliser_for("phone", date_formats=(), phone_region="UK", today=TODAY)


def test_generic_normalisers() -> None:
    """Extra fields: text is folded, code is A-Z0-9, date has no plausibility checks."""
    assert generic_normaliser("text", date_formats=(), today=TODAY) is normalise_free_text
    assert generic_normaliser("code", date_formats=(), today=TODAY) is normalise_code
    dates = generic_normaliser("date", date_formats=DATE_FORMATS, today=TODAY)
    assert dates("01/01/1900") == Normalised.ok("1900-01-01")
    assert dates("31/12/2099") == Normalised.ok("2099-12-31")
    with pytest.raises(ValueError, match="kind"):
        generic_normaliser("number", date_formats=(), today=TODAY)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "result"),
    [
        ("  A&E-000123 ", Normalised.ok("A&E-000123")),
        ("Ref 12 / b", Normalised.ok("Ref 12 / b")),
        ("x" * MAX_RECORD_ID_CHARS, Normalised.ok("x" * MAX_RECORD_ID_CHARS)),
        ("x" * (MAX_RECORD_ID_CHARS + 1), Normalised.refused("too_long")),
        ("A\x00B", Normalised.refused("bad_format")),
        ("A\nB", Normalised.refused("bad_format")),
        ("A\x7fB", Normalised.refused("bad_format")),
        ("   ", Normalised.refused("bad_format")),
    ],
)
def test_record_id(raw: str, result: Normalised) -> None:
    """Record ids are only stripped; too long or control characters are refused."""
    assert normalise_record_id(raw) == result


@settings(max_examples=300)
@given(st.text(), st.sampled_from(CANONICAL_FIELDS))
def test_every_field_idempotent(raw: str, field: str) -> None:
    """Every registered normaliser is idempotent on any text."""
    normalise = registry(field)
    first = normalise(raw)
    if first.value is not None:
        assert normalise(first.value) == first
    else:
        assert first.reason is not None
        assert first.reason.replace("_", "").isalpha()


@settings(max_examples=100)
@given(st.text(min_size=1), st.sampled_from(KINDS))
def test_generic_normalisers_idempotent(raw: str, kind: Literal["text", "date", "code"]) -> None:
    """Every generic normaliser is idempotent on any text."""
    normalise = generic_normaliser(kind, date_formats=DATE_FORMATS, today=TODAY)
    first = normalise(raw)
    if first.value is not None:
        assert normalise(first.value) == first
