"""Field transforms used by token and filter inputs (``field:transform`` in the encoding schema).

Each transform takes a normalised value and returns a derived value, or None when nothing can be
derived (a token with a None input is null).
"""

from __future__ import annotations

from collections.abc import Callable

import jellyfish

from connectors.encoding_schema import FieldRef
from connectors.normalise import birth_year, unordered_day_month
from connectors.phone import landline_only, mobile_only
from connectors.postcode import postcode_area, postcode_district, postcode_sector


def _first(value: str) -> str | None:
    return value.split(" ", 1)[0] or None


def _initial(value: str) -> str | None:
    return value[:1] or None


def _metaphone(value: str) -> str | None:
    first = _first(value)
    return (jellyfish.metaphone(first) or None) if first else None


_TRANSFORMS: dict[str, Callable[[str], str | None]] = {
    "first": _first,
    "initial": _initial,
    "metaphone": _metaphone,
    "year": birth_year,
    "dm_unordered": unordered_day_month,
    "district": postcode_district,
    "sector": postcode_sector,
    "area": postcode_area,
    "mobile": mobile_only,
    "landline": landline_only,
}


def transformer(ref: FieldRef) -> Callable[[str], str | None]:
    """The function computing ``ref``'s value from its field's normalised value."""
    if ref.transform == "none":
        return lambda value: value
    return _TRANSFORMS[ref.transform]
