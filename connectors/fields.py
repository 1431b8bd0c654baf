"""Which normaliser each canonical identifier field, and each kind of extra field, uses.

The canonical fields of person schema v1, in schema order, are :data:`CANONICAL_FIELDS`.
``record_id`` is the agency's own record key: it is only stripped, refused as ``too_long`` over
:data:`MAX_RECORD_ID_CHARS` characters and as ``bad_format`` if it contains control characters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Literal

from connectors.nhs import normalise_nhs_number
from connectors.normalise import (
    Normalised,
    Normaliser,
    bounded,
    make_date_normaliser,
    make_generic_date_normaliser,
    normalise_code,
    normalise_email,
    normalise_free_text,
    normalise_name,
    normalise_other_names,
    normalise_sex,
)
from connectors.phone import make_phone_normaliser
from connectors.pnc import normalise_pnc_id
from connectors.postcode import normalise_postcode

#: Canonical identifier fields of person schema v1, in schema order.
CANONICAL_FIELDS: tuple[str, ...] = (
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
MAX_RECORD_ID_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc


@bounded
def normalise_record_id(raw: str) -> Normalised:
    """Normalise a source record key: stripped, at most 200 characters, no control characters."""
    value = raw.strip()
    if len(value) > MAX_RECORD_ID_CHARS:
        return Normalised.refused("too_long")
    if not value or _CONTROL.search(value):
        return Normalised.refused("bad_format")
    return Normalised.ok(value)


_FIXED: dict[str, Normaliser] = {
    "record_id": normalise_record_id,
    "given_name": normalise_name,
    "family_name": normalise_name,
    "other_names": normalise_other_names,
    "sex": normalise_sex,
    "nhs_number": normalise_nhs_number,
    "postcode": normalise_postcode,
    "address": normalise_free_text,
    "email": normalise_email,
    "pnc_id": normalise_pnc_id,
}


def normaliser_for(
    field: str, *, date_formats: Sequence[str], phone_region: str, today: date
) -> Normaliser:
    """The normaliser of canonical ``field``; ValueError for a field that is not canonical."""
    if field == "date_of_birth":
        return make_date_normaliser(date_formats, today=today)
    if field == "phone":
        return make_phone_normaliser(phone_region)
    normaliser = _FIXED.get(field)
    if normaliser is None:
        raise ValueError(f"unknown identifier field {field!r}")
    return normaliser


def generic_normaliser(
    kind: Literal["text", "date", "code"], *, date_formats: Sequence[str], today: date
) -> Normaliser:
    """The normaliser of an extra field of ``kind``; ValueError for an unknown kind."""
    if kind == "text":
        return normalise_free_text
    if kind == "date":
        return make_generic_date_normaliser(date_formats, today=today)
    if kind == "code":
        return normalise_code
    raise ValueError(f"unknown extra field kind {kind!r}")
