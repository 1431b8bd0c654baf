"""Tests for phone number normalisation to E.164 in connectors.phone."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.encoding_schema import FieldRef
from connectors.normalise import Normalised
from connectors.phone import is_mobile, landline_only, make_phone_normaliser, mobile_only
from connectors.transforms import transformer

GB = make_phone_normaliser("GB")
REASONS = {"invalid_number", "placeholder", "too_long"}

# Ofcom's numbers reserved for drama, as (national prefix, free digits); phonenumbers treats all
# of these as valid numbers, so they are safe for synthetic data.
VALID_DRAMA_RANGES = [
    ("0113 496 0", 3),
    ("0114 496 0", 3),
    ("0116 496 0", 3),
    ("0117 496 0", 3),
    ("0118 496 0", 3),
    ("0121 496 0", 3),
    ("0131 496 0", 3),
    ("0141 496 0", 3),
    ("0151 496 0", 3),
    ("0161 496 0", 3),
    ("0191 498 0", 3),
    ("020 7946 0", 3),
    ("028 9649 6", 3),
    ("029 2018 0", 3),
    ("0808 157 0", 3),
    ("0909 879 0", 3),
    ("03069 990", 3),
]
# Drama ranges phonenumbers considers unallocated: refused, so never use them for synthetic data.
INVALID_DRAMA_RANGES = [("07700 900", 3), ("01632 960", 3), ("0115 496 0", 3)]


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("029 2034 5678", "+442920345678"),
        ("(029) 2034-5678", "+442920345678"),
        ("+44 (0)29 2034 5678", "+442920345678"),
        ("0044 29 2034 5678", "+442920345678"),
        ("+442920345678", "+442920345678"),
        ("029 2034 5678 ext 12", "+442920345678"),
        ("020 7946 0123", "+442079460123"),
        ("0113 496 0999", "+441134960999"),
        ("07911 123456", "+447911123456"),
        ("+1 202 555 0123", "+12025550123"),
        ("+33 6 12 34 56 78", "+33612345678"),
    ],
)
def test_examples(raw: str, e164: str) -> None:
    """Valid numbers, national or international, are written in E.164."""
    assert GB(raw) == Normalised.ok(e164)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("07700 900123", "invalid_number"),
        ("01632 960123", "invalid_number"),
        ("0115 496 0123", "invalid_number"),
        ("hello", "invalid_number"),
        ("", "invalid_number"),
        ("12", "invalid_number"),
        ("029 2034", "invalid_number"),
        ("+999 1234 5678", "invalid_number"),
        ("01234 567890", "placeholder"),
        ("+44 1234 567890", "placeholder"),
        ("07000 000000", "placeholder"),
        ("0800 000 0000", "placeholder"),
        ("07777 777777", "placeholder"),
        ("0000000000", "placeholder"),
        ("00000 000000", "placeholder"),
        ("0123456789", "placeholder"),
        ("999", "placeholder"),
        ("111", "placeholder"),
        ("112", "placeholder"),
        ("9" * 1001, "too_long"),
    ],
)
def test_refusals(raw: str, reason: str) -> None:
    """Unparseable or unallocated numbers are invalid_number; dummies are placeholder."""
    assert GB(raw) == Normalised.refused(reason)


def test_default_region_is_used_for_national_numbers() -> None:
    """A national number is read in the normaliser's default region."""
    us = make_phone_normaliser("US")
    assert us("(202) 555-0123") == Normalised.ok("+12025550123")
    assert us("+44 29 2034 5678") == Normalised.ok("+442920345678")
    assert make_phone_normaliser("gb")("029 2034 5678") == Normalised.ok("+442920345678")
    assert make_phone_normaliser() == GB


@pytest.mark.parametrize("region", ["UK", "XX", "", "ZZ", "GBR"])
def test_unknown_region_refused_at_construction(region: str) -> None:
    """An unknown default region is a ValueError when the normaliser is built."""
    with pytest.raises(ValueError, match="region"):
        make_phone_normaliser(region)


@pytest.mark.parametrize(("prefix", "free"), VALID_DRAMA_RANGES)
def test_valid_drama_ranges_accepted(prefix: str, free: int) -> None:
    """Ofcom drama numbers in the ranges phonenumbers treats as allocated are accepted."""
    number = prefix + "5" * (free - 1) + "4"
    result = GB(number)
    assert result.value is not None
    assert result.value == "+44" + number.replace(" ", "")[1:]


@pytest.mark.parametrize(("prefix", "free"), INVALID_DRAMA_RANGES)
def test_unallocated_drama_ranges_refused(prefix: str, free: int) -> None:
    """The 07700 900xxx, 01632 960xxx and 0115 496 0xxx drama numbers are invalid_number."""
    assert GB(prefix + "1" * (free - 1) + "2") == Normalised.refused("invalid_number")


def test_every_region_example_number() -> None:
    """Each region's phonenumbers example number is accepted as itself or is a placeholder."""
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number(region)
        if example is None:
            continue
        e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        assert GB(e164) in (Normalised.ok(e164), Normalised.refused("placeholder")), region


@st.composite
def drama_numbers(draw: st.DrawFn) -> str:
    """Strategy: a valid drama-range number, written nationally or internationally, oddly spaced."""
    prefix, free = draw(st.sampled_from(VALID_DRAMA_RANGES))
    digits = (prefix + "".join(draw(st.sampled_from("0123456789")) for _ in range(free))).replace(
        " ", ""
    )
    national = digits[1:]
    lead = draw(st.sampled_from(["0", "+44", "+44 (0)", "0044 ", "+44-"]))
    out = [lead]
    for digit in national:
        out.append(digit)
        out.append(draw(st.sampled_from(["", "", "", " ", "-", "."])))
    return "".join(out)


@st.composite
def e164_like(draw: st.DrawFn) -> str:
    """Strategy: a + and 6 to 15 digits, often a real number of some country."""
    return "+" + "".join(
        draw(st.sampled_from("0123456789")) for _ in range(draw(st.integers(6, 15)))
    )


@settings(max_examples=200)
@given(drama_numbers())
def test_drama_numbers_accepted_in_any_layout(raw: str) -> None:
    """A valid drama number in any layout normalises to +44 and its national digits."""
    result = GB(raw)
    assert result.value is not None or result.reason == "placeholder"
    if result.value is not None:
        assert result.value.startswith("+44")


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=40), drama_numbers(), e164_like()))
def test_idempotent(raw: str) -> None:
    """The phone normaliser is idempotent on any text, drama numbers and E.164-like strings."""
    first = GB(raw)
    if first.value is not None:
        assert GB(first.value) == first
        assert make_phone_normaliser("US")(first.value) == first
        assert first.value.startswith("+")
        assert first.value[1:].isdigit()
    else:
        assert first.reason in REASONS


@settings(max_examples=50)
@given(st.text(max_size=20))
def test_deterministic(raw: str) -> None:
    """The same input always gives the same result."""
    assert GB(raw) == GB(raw)


_PREFIXES = st.sampled_from(["0", "+44", "+44 ", "0044 ", "0044", "(0", "+44 (0)"])
_SEPARATORS = st.sampled_from(["", " ", "-", ".", "  "])


@st.composite
def _plain_uk_numbers(draw: st.DrawFn) -> str:
    head = draw(_PREFIXES)
    first = draw(st.sampled_from("123456789"))
    rest = draw(st.text(alphabet="0123456789", min_size=7, max_size=10))
    cut = draw(st.integers(min_value=1, max_value=len(rest)))
    sep = draw(_SEPARATORS)
    close = ")" if head.endswith("(0") else ""
    return f"{head}{first}{rest[:cut]}{close}{sep}{rest[cut:]}"


@settings(max_examples=3000, deadline=None)
@given(raw=_plain_uk_numbers())
def test_fast_path_agrees_with_full_parse(raw: str) -> None:
    """The metadata fast path gives exactly the result of phonenumbers' parse and validation."""
    from connectors.phone import PhoneNormaliser

    fast = make_phone_normaliser("GB")
    assert fast(raw) == PhoneNormaliser("GB")(raw)


_REAL_STARTS = st.sampled_from(
    ["79", "78", "77", "75", "74", "73", "71", "7624", "7781", "7797", "7839", "7911", "2920",
     "2079", "2890", "1624", "1481", "1534", "113", "161", "1633", "1446", "800", "845", "870",
     "3069", "5", "6", "9"]
)  # fmt: skip


@st.composite
def _likely_valid_uk_numbers(draw: st.DrawFn) -> str:
    start = draw(_REAL_STARTS)
    size = draw(st.sampled_from([9, 10, 10, 10]))
    rest = draw(
        st.text(alphabet="0123456789", min_size=size - len(start), max_size=size - len(start))
    )
    return f"{draw(_PREFIXES)}{start}{draw(_SEPARATORS)}{rest}"


@settings(max_examples=3000, deadline=None)
@given(raw=_likely_valid_uk_numbers())
def test_fast_path_agrees_on_likely_valid_numbers(raw: str) -> None:
    """On numbers from real UK ranges (mostly valid), both paths agree too."""
    from connectors.phone import PhoneNormaliser

    assert make_phone_normaliser("GB")(raw) == PhoneNormaliser("GB")(raw)


# --- kept by kind: the mobile and landline transforms -------------------------------------------


def _example(kind: str) -> str:
    """phonenumbers' own GB example number of a kind, in E.164 (independent of our code)."""
    number = phonenumbers.example_number_for_type("GB", getattr(phonenumbers.PhoneNumberType, kind))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@pytest.mark.parametrize(
    ("kind", "mobile"),
    [
        ("MOBILE", True),
        ("FIXED_LINE", False),
        ("VOIP", False),
        ("TOLL_FREE", False),
        ("PERSONAL_NUMBER", False),
    ],
)
def test_mobile_and_landline_keep_a_number_of_their_kind(kind: str, mobile: bool) -> None:
    """A mobile is kept by ``mobile`` only; every other line (one a household may share) by
    ``landline`` only; the schema transforms are these functions."""
    e164 = _example(kind)
    assert is_mobile(e164) is mobile
    assert mobile_only(e164) == (e164 if mobile else None)
    assert landline_only(e164) == (None if mobile else e164)
    assert transformer(FieldRef("phone", "mobile"))(e164) == mobile_only(e164)
    assert transformer(FieldRef("phone", "landline"))(e164) == landline_only(e164)


def test_normalised_numbers_split_by_kind() -> None:
    """After normalisation, a UK mobile in any layout is a mobile; a drama landline is not."""
    mobile, landline = "+447400123456", "+441134960000"
    assert GB("07400 123456") == Normalised.ok(mobile)
    assert GB("0113 496 0000") == Normalised.ok(landline)
    assert is_mobile(mobile) and not is_mobile(landline)
    assert mobile_only(landline) is None and landline_only(mobile) is None


def test_unparseable_number_is_not_a_mobile() -> None:
    """Text that is not a number is not a mobile (the connector only passes E.164 values)."""
    assert is_mobile("not a number") is False
    assert mobile_only("not a number") is None
