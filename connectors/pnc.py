"""Police National Computer (PNC) identifier check letter (modulus 23).

A PNC id is written ``YY/NNNNNNNL`` (or with a four-digit year, ``YYYY/NNNNNNNL``): the year the
record was created, a serial number of up to seven digits and a check letter. The check letter is
the remainder of the nine-digit number formed by the two-digit year and the serial padded to
seven digits, divided by 23, looked up in the alphabet below (which omits I, O and S).

:func:`normalise_pnc_id` accepts either form (serial of one to seven digits, surrounding spaces
and lower case tolerated) and writes the canonical ``YY/NNNNNNNL``: two-digit year, serial
zero-padded to seven digits, check letter. :func:`make_pnc_id` builds one for synthetic data.
"""

from __future__ import annotations

import re

from connectors.normalise import Normalised, bounded

PNC_CHECK_ALPHABET = "ZABCDEFGHJKLMNPQRTUVWXY"


def pnc_check_letter(year: int, serial: int) -> str:
    """Return the check letter for a PNC id created in ``year`` with serial number ``serial``."""
    if not 0 <= serial <= 9_999_999:
        raise ValueError("serial must have at most seven digits")
    if year < 0:
        raise ValueError("year must be non-negative")
    number = int(f"{year % 100:02d}{serial:07d}")
    return PNC_CHECK_ALPHABET[number % 23]


_PNC_ID = re.compile(r"(?P<year>[0-9]{2}|[0-9]{4})/(?P<serial>[0-9]{1,7})(?P<check>[A-Z])")


def make_pnc_id(year: int, serial: int) -> str:
    """The canonical PNC id ``YY/NNNNNNNL`` for ``year`` (last two digits kept) and ``serial``."""
    letter = pnc_check_letter(year, serial)
    return f"{year % 100:02d}/{serial:07d}{letter}"


@bounded
def normalise_pnc_id(raw: str) -> Normalised:
    """Normalise a PNC id to ``YY/NNNNNNNL``, refusing ``bad_format`` and ``check_digit``."""
    match = _PNC_ID.fullmatch(raw.strip().upper())
    if match is None:
        return Normalised.refused("bad_format")
    year, serial = int(match["year"]), int(match["serial"])
    if pnc_check_letter(year, serial) != match["check"]:
        return Normalised.refused("check_digit")
    return Normalised.ok(make_pnc_id(year, serial))
