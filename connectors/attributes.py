"""Parsing attribute columns (non-identifying fields shared under the DSA) into typed Arrow arrays.

Each parser is pure: values in, an Arrow array and the reason for each refused value out. A value
that cannot be read as its declared type becomes null and is counted in the quality report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date, datetime

import pyarrow as pa

from connectors.mapping import AttributeSource

_TRUE = frozenset({"y", "yes", "true", "t", "1"})
_FALSE = frozenset({"n", "no", "false", "f", "0"})
MAX_TEXT = 1000

Parsed = tuple[object | None, str | None]

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "category": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("s"),
}


def _text(spec: AttributeSource) -> Callable[[str], Parsed]:
    allowed = frozenset(spec.values)

    def parse(value: str) -> Parsed:
        if len(value) > MAX_TEXT:
            return None, "too_long"
        if allowed and value not in allowed:
            return None, "not_allowed"
        return value, None

    return parse


def _integer(value: str) -> Parsed:
    try:
        return int(value.replace(",", "")), None
    except ValueError:
        return None, "not_integer"


def _float(value: str) -> Parsed:
    try:
        number = float(value.replace(",", ""))
    except ValueError:
        return None, "not_number"
    return (number, None) if math.isfinite(number) else (None, "not_number")


def _boolean(value: str) -> Parsed:
    low = value.lower()
    if low in _TRUE:
        return True, None
    if low in _FALSE:
        return False, None
    return None, "not_boolean"


def _dates(spec: AttributeSource, as_date: bool) -> Callable[[str], Parsed]:
    formats = spec.formats

    def parse(value: str) -> Parsed:
        for fmt in formats:
            try:
                parsed = datetime.strptime(value, fmt)
            except ValueError:
                continue
            result: date | datetime = parsed.date() if as_date else parsed
            return result, None
        return None, "unparseable"

    return parse


def attribute_parser(spec: AttributeSource) -> Callable[[str], Parsed]:
    """The parser for one attribute column's present (non-blank) values."""
    if spec.type in ("string", "category"):
        return _text(spec)
    if spec.type == "integer":
        return _integer
    if spec.type == "float":
        return _float
    if spec.type == "boolean":
        return _boolean
    return _dates(spec, as_date=spec.type == "date")


def to_arrow(spec: AttributeSource, values: Sequence[object | None]) -> pa.Array:
    """An Arrow array of the attribute's declared type."""
    return pa.array(values, type=ARROW_TYPES[spec.type])
