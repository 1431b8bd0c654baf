"""Phone number normalisation to E.164 with the ``phonenumbers`` library.

A number without a country code is read as a number of the normaliser's default region. Refused:
``invalid_number`` when ``phonenumbers`` cannot parse it or does not consider it a valid number
(this includes Ofcom's drama ranges 07700 900xxx and 01632 960xxx, which it treats as
unallocated), and ``placeholder`` for numbers that stand for "no number":

- the whole input's digits all the same (0000000000, 999, 111) or in a short list (0123456789,
  112, 101);
- a national number whose digits are all the same (07777 777777), a run of consecutive digits
  (01234 567890), or one digit followed only by zeros (07000 000000).

Output is E.164 (``+442920345678``), which parses back to itself, so the normaliser is
idempotent. Parsing is slow (tens of microseconds), so callers memoise per distinct value; the
normaliser is pure and deterministic to allow that.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import phonenumbers

from connectors.normalise import MAX_INPUT_CHARS, Normalised, Normaliser

_PLACEHOLDER_DIGITS = frozenset({"0123456789", "01234567890", "112", "101"})
_MIN_SEQUENCE = 7


def _same_digit(digits: str) -> bool:
    return len(digits) >= 3 and len(set(digits)) == 1


def _sequence(digits: str) -> bool:
    """True for a run of consecutive digits, rising or falling, wrapping 9 -> 0 (1234567890)."""
    if len(digits) < _MIN_SEQUENCE:
        return False
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(digits)}
    return steps in ({1}, {9})


def _placeholder_national(nsn: str) -> bool:
    return _same_digit(nsn) or _sequence(nsn) or (len(nsn) >= 8 and set(nsn[1:]) == {"0"})


@dataclass(frozen=True, slots=True)
class PhoneNormaliser:
    """A phone normaliser for ``default_region``; build it with :func:`make_phone_normaliser`."""

    default_region: str

    def __call__(self, raw: str) -> Normalised:
        if len(raw) > MAX_INPUT_CHARS:
            return Normalised.refused("too_long")
        digits = "".join(str(int(c)) for c in raw if c.isdecimal())
        if _same_digit(digits) or digits in _PLACEHOLDER_DIGITS:
            return Normalised.refused("placeholder")
        try:
            number = phonenumbers.parse(raw, self.default_region)
        except phonenumbers.NumberParseException:
            return Normalised.refused("invalid_number")
        if not phonenumbers.is_valid_number(number):
            return Normalised.refused("invalid_number")
        if _placeholder_national(phonenumbers.national_significant_number(number)):
            return Normalised.refused("placeholder")
        e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return Normalised.ok(e164)


def make_phone_normaliser(default_region: str = "GB") -> Normaliser:
    """A phone normaliser reading national numbers as ``default_region`` (ISO 3166 alpha-2).

    Raises ValueError if ``phonenumbers`` does not know the region.
    """
    region = default_region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown phone region {default_region!r}")
    return PhoneNormaliser(region)
