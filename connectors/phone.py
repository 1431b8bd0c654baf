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
import re
from dataclasses import dataclass, field

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


_FAST_BODY = re.compile(r"[0-9 ()./-]+", re.ASCII)
_NON_DIGITS = re.compile(r"[^0-9]", re.ASCII)
_TYPE_DESCS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)

_Desc = tuple[re.Pattern[str], frozenset[int]]


def _desc(number_desc: object) -> _Desc | None:
    pattern = getattr(number_desc, "national_number_pattern", None)
    if not pattern:
        return None
    lengths = frozenset(getattr(number_desc, "possible_length", None) or ())
    return re.compile(pattern), lengths


def _matches(desc: _Desc | None, nsn: str) -> bool:
    if desc is None:
        return False
    pattern, lengths = desc
    return (not lengths or len(nsn) in lengths) and pattern.fullmatch(nsn) is not None


def _metadata(region: str) -> phonenumbers.PhoneMetadata:
    md = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if md is None:
        raise ValueError(f"unknown phone region {region!r}")
    return md


class _RegionRules:
    """One region's validity rules from phonenumbers' metadata, compiled once."""

    def __init__(self, region: str) -> None:
        md = _metadata(region)
        self.leading = re.compile(md.leading_digits) if md.leading_digits else None
        self.general = _desc(md.general_desc)
        self.types = [d for d in (_desc(getattr(md, name)) for name in _TYPE_DESCS) if d]

    def known_type(self, nsn: str) -> bool:
        """phonenumbers' number type is not UNKNOWN (``_number_type_helper``)."""
        return _matches(self.general, nsn) and any(_matches(d, nsn) for d in self.types)


class _FastPath:
    """Validity of plainly written numbers without ``phonenumbers.parse`` (about 50 us a call).

    Follows the library's own rules for the numbers it accepts: the national prefix of the
    default region or ``+``/``00`` and the country code are stripped, the region is the first of
    the country code's regions whose leading digits match (or, without leading digits, whose
    rules give a known type), and the number is valid if that region's rules give a known type.
    Anything else (other characters, a leading zero left, an invalid number) goes to the full
    parse, so refusals always come from the library. A test checks both paths agree.
    """

    def __init__(self, region: str) -> None:
        md = _metadata(region)
        self.cc = str(md.country_code)
        self.national_prefix = md.national_prefix or ""
        self.regions = [
            _RegionRules(r) for r in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[int(self.cc)]
        ]

    @staticmethod
    def supports(region: str) -> bool:
        md = _metadata(region)
        np, npp = md.national_prefix, md.national_prefix_for_parsing
        simple_prefix = npp is None or npp == np or (np is not None and npp.startswith(f"{np}|"))
        return (
            md.international_prefix == "00"
            and md.national_prefix_transform_rule is None
            and simple_prefix
            and md.country_code is not None
            and md.country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE
        )

    def national_number(self, raw: str) -> str | None:
        text = raw.strip()
        plus = text.startswith("+")
        body = text[1:] if plus else text
        if not _FAST_BODY.fullmatch(body):
            return None
        digits = _NON_DIGITS.sub("", body)
        if plus:
            nsn = digits[len(self.cc) :] if digits.startswith(self.cc) else None
        elif digits.startswith("00" + self.cc):
            nsn = digits[2 + len(self.cc) :]
        elif self.national_prefix and digits.startswith(self.national_prefix):
            nsn = digits[len(self.national_prefix) :]
        else:
            nsn = None
        return nsn if nsn and nsn[0] != "0" else None

    def valid(self, nsn: str) -> bool:
        for rules in self.regions:
            if rules.leading is not None:
                if rules.leading.match(nsn):
                    return rules.known_type(nsn)
            elif rules.known_type(nsn):
                return True
        return False


@dataclass(frozen=True, slots=True)
class PhoneNormaliser:
    """A phone normaliser for ``default_region``; build it with :func:`make_phone_normaliser`."""

    default_region: str
    fast: _FastPath | None = field(default=None, compare=False, repr=False)

    def __call__(self, raw: str) -> Normalised:
        if len(raw) > MAX_INPUT_CHARS:
            return Normalised.refused("too_long")
        if raw.isascii():
            digits = _NON_DIGITS.sub("", raw)
        else:
            digits = "".join(str(int(c)) for c in raw if c.isdecimal())
        if _same_digit(digits) or digits in _PLACEHOLDER_DIGITS:
            return Normalised.refused("placeholder")
        if self.fast is not None:
            nsn = self.fast.national_number(raw)
            if nsn is not None and self.fast.valid(nsn):
                if _placeholder_national(nsn):
                    return Normalised.refused("placeholder")
                return Normalised.ok(f"+{self.fast.cc}{nsn}")
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
    return PhoneNormaliser(region, _FastPath(region) if _FastPath.supports(region) else None)


def is_mobile(e164: str) -> bool:
    """Whether a normalised (E.164) number is a mobile number, by phonenumbers' metadata."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE


def mobile_only(e164: str) -> str | None:
    """The number if it is a mobile (one person's), else None."""
    return e164 if is_mobile(e164) else None


def landline_only(e164: str) -> str | None:
    """The number if it is not a mobile (a landline or other line a household may share)."""
    return None if is_mobile(e164) else e164
