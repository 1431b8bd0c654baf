"""Generalising attribute columns before they leave the hub (extracts and count tables).

A generalisation is a JSON object naming, per column, one coarsening rule:

- ``{"date": "week" | "month" | "year"}``: the first day of the period, as a date (date32).
  Weeks are ISO weeks, starting on Monday, so 2021-01-03 (a Sunday) -> 2020-12-28. Months
  and years give the 1st of the month and 1 January: always a date, never "2021-03" text, so
  the result sorts, joins and compares like any other date.
- ``{"age_bands": [18, 25, 35, 50, 65]}``: whole-year ages -> band labels "0-17", "18-24",
  "25-34", "35-49", "50-64", "65+". The bounds are the first age of each band after the
  first, strictly increasing positive integers. A negative age becomes null.
- ``{"postcode": "district" | "sector" | "area"}``: a UK postcode -> its outward code
  ("CF10"), sector ("CF10 1") or area letters ("CF"). Case and spacing do not matter; the
  grammar is the connectors' (``connectors.postcode``), and anything that does not fit it,
  including the ZZ99 pseudo postcodes, becomes null.
- ``{"drop_time": true}``: a timestamp -> its date.

Timestamps are accepted wherever dates are and are first cut to their date; a timestamp
with a time zone is cut to the date on the clock in that zone. Nulls stay null throughout.
``parse_generalisation`` checks the document once; ``apply`` then checks the rules against
the table's columns and returns a new table with those columns replaced under the same
names (only the types change: dates stay dates, ages and postcodes become strings).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias, cast

import pyarrow as pa
import pyarrow.compute as pc

from connectors.postcode import (
    normalise_postcode,
    postcode_area,
    postcode_district,
    postcode_sector,
)

__all__ = [
    "AgeBands",
    "DateTrunc",
    "DropTime",
    "FieldRule",
    "GeneralisationError",
    "PostcodeUnit",
    "apply",
    "parse_generalisation",
]

DateUnit: TypeAlias = Literal["week", "month", "year"]
PostcodeLevel: TypeAlias = Literal["district", "sector", "area"]
_DATE_UNITS: Final = ("week", "month", "year")
_POSTCODE_LEVELS: Final[dict[str, Callable[[str], str]]] = {
    "district": postcode_district,
    "sector": postcode_sector,
    "area": postcode_area,
}


class GeneralisationError(ValueError):
    """A generalisation document that does not parse, or rules that do not fit a table."""


@dataclass(frozen=True, slots=True)
class DateTrunc:
    """Date or timestamp -> the first day of its ISO week, month or year."""

    unit: DateUnit

    def __call__(self, name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
        dates = _as_dates(name, column, f"the date rule ({self.unit})")
        options = {"week_starts_monday": True} if self.unit == "week" else {}
        return pc.floor_temporal(dates, 1, self.unit, **options)


@dataclass(frozen=True, slots=True)
class AgeBands:
    """Integer age -> band label; ``bounds`` are the first ages of the second and later bands."""

    bounds: tuple[int, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        starts = (0, *self.bounds[:-1])
        inner = [
            f"{lo}" if lo == hi - 1 else f"{lo}-{hi - 1}"
            for lo, hi in zip(starts, self.bounds, strict=True)
        ]
        return (*inner, f"{self.bounds[-1]}+")

    def __call__(self, name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
        if not pa.types.is_integer(column.type):
            raise GeneralisationError(
                f"column {name!r} is {column.type}; age bands need whole-year integer ages"
            )
        ages = pc.cast(column, pa.int64())
        band = pc.cast(pc.greater_equal(ages, self.bounds[0]), pa.int32())
        for bound in self.bounds[1:]:
            band = pc.add(band, pc.cast(pc.greater_equal(ages, bound), pa.int32()))
        band = pc.if_else(pc.less(ages, 0), pa.scalar(None, pa.int32()), band)
        return pa.array(self.labels, pa.string()).take(band)


@dataclass(frozen=True, slots=True)
class PostcodeUnit:
    """UK postcode -> district (outward code), sector or area; invalid -> null."""

    level: PostcodeLevel

    def __call__(self, name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise GeneralisationError(
                f"column {name!r} is {column.type}; the postcode rule needs text"
            )
        unit = _POSTCODE_LEVELS[self.level]
        distinct = pc.unique(column)  # postcodes repeat: work once per distinct value
        mapped = [_postcode(raw, unit) for raw in distinct.to_pylist()]
        return pa.array(mapped, pa.string()).take(pc.index_in(column, value_set=distinct))


def _postcode(raw: str | None, unit: Callable[[str], str]) -> str | None:
    if raw is None:
        return None
    canonical = normalise_postcode(raw).value
    return None if canonical is None else unit(canonical)


@dataclass(frozen=True, slots=True)
class DropTime:
    """Timestamp -> date (a date column is left as a date)."""

    def __call__(self, name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
        return _as_dates(name, column, "drop_time")


FieldRule: TypeAlias = DateTrunc | AgeBands | PostcodeUnit | DropTime


def _as_dates(name: str, column: pa.ChunkedArray, rule: str) -> pa.ChunkedArray:
    type_ = column.type
    if pa.types.is_timestamp(type_):
        if type_.tz is not None:
            column = pc.local_timestamp(column)  # the wall-clock time in its own zone
        return pc.cast(column, pa.date32())
    if pa.types.is_date(type_):
        return pc.cast(column, pa.date32())
    raise GeneralisationError(f"column {name!r} is {type_}; {rule} needs a date or timestamp")


# --- parsing --------------------------------------------------------------------------------


def parse_generalisation(doc: Mapping[str, object]) -> dict[str, FieldRule]:
    """Column name -> rule, from ``{"column": {"kind": option}, ...}`` (module docstring)."""
    if not isinstance(doc, Mapping):
        raise GeneralisationError("a generalisation must be an object of column -> rule")
    rules: dict[str, FieldRule] = {}
    for name, spec in doc.items():
        if not isinstance(name, str) or not name:
            raise GeneralisationError(f"column names must be non-empty text, not {name!r}")
        rules[name] = _parse_rule(name, spec)
    return rules


def _parse_rule(name: str, spec: object) -> FieldRule:
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise GeneralisationError(
            f"field {name!r}: a rule is an object with exactly one of date, age_bands, "
            "postcode or drop_time"
        )
    [(kind, option)] = spec.items()
    if kind == "date":
        if option not in _DATE_UNITS:
            raise GeneralisationError(
                f"field {name!r}: date must be one of week, month or year, not {option!r}"
            )
        return DateTrunc(cast(DateUnit, option))
    if kind == "age_bands":
        return AgeBands(_bounds(name, option))
    if kind == "postcode":
        if option not in _POSTCODE_LEVELS:
            raise GeneralisationError(
                f"field {name!r}: postcode must be one of district, sector or area, not {option!r}"
            )
        return PostcodeUnit(cast(PostcodeLevel, option))
    if kind == "drop_time":
        if option is not True:
            raise GeneralisationError(f"field {name!r}: drop_time takes true, not {option!r}")
        return DropTime()
    raise GeneralisationError(
        f"field {name!r}: unknown rule {kind!r}; use date, age_bands, postcode or drop_time"
    )


def _bounds(name: str, option: object) -> tuple[int, ...]:
    if not isinstance(option, list | tuple) or not option:
        raise GeneralisationError(f"field {name!r}: age_bands must be a non-empty list of ages")
    bounds: list[int] = []
    for bound in option:
        if not isinstance(bound, int) or isinstance(bound, bool) or bound <= 0:
            raise GeneralisationError(
                f"field {name!r}: age band bounds must be positive integers, not {bound!r}"
            )
        if bounds and bound <= bounds[-1]:
            raise GeneralisationError(
                f"field {name!r}: age band bounds must be strictly increasing "
                f"({bound} follows {bounds[-1]})"
            )
        bounds.append(bound)
    return tuple(bounds)


# --- applying -------------------------------------------------------------------------------


def apply(table: pa.Table, rules: Mapping[str, FieldRule]) -> pa.Table:
    """A new table with each column named in ``rules`` generalised, under the same name."""
    missing = sorted(set(rules) - set(table.column_names))
    if missing:
        raise GeneralisationError(
            f"the generalisation names columns the table does not have: {', '.join(missing)}"
        )
    for name, rule in rules.items():
        if table.column_names.count(name) != 1:
            raise GeneralisationError(f"the table has more than one column named {name!r}")
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, rule(name, table.column(index)))
    return table
