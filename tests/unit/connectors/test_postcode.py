"""Tests for UK postcode normalisation and derived units in connectors.postcode."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.normalise import Normalised
from connectors.postcode import (
    normalise_postcode,
    postcode_area,
    postcode_district,
    postcode_sector,
)


@pytest.mark.parametrize(
    ("raw", "postcode"),
    [
        ("cf101aa", "CF10 1AA"),
        ("sw1a 1aa", "SW1A 1AA"),
        ("EC1A1BB", "EC1A 1BB"),
        ("  w1a 0ax ", "W1A 0AX"),
        ("m1-1ae", "M1 1AE"),
        ("B33 8TH", "B33 8TH"),
        ("CR2 6XH", "CR2 6XH"),
        ("DN55 1PT", "DN55 1PT"),
        ("N1C 4AG", "N1C 4AG"),
        ("E1W 1AA", "E1W 1AA"),
        ("BT7 1NN", "BT7 1NN"),
        ("ZE1 0AA", "ZE1 0AA"),
        ("gir 0aa", "GIR 0AA"),
        ("Ｃｆ１０ １ａａ", "CF10 1AA"),  # noqa: RUF001
    ],
)
def test_postcode_examples(raw: str, postcode: str) -> None:
    """Valid postcodes in any case and spacing are written OUTWARD INWARD."""
    assert normalise_postcode(raw) == Normalised.ok(postcode)


@pytest.mark.parametrize(
    "raw",
    [
        "Q1 1AA",  # Q never first
        "V1 1AA",  # V never first
        "X1 1AA",  # X never first
        "AI1 1AA",  # I never second
        "AZ1 1AA",  # Z never second
        "W1L 1AA",  # L is not a third-position letter in A9A
        "EC1C 1BB",  # C is not a fourth-position letter in AA9A
        "CF10 1CA",  # C never in the inward code
        "CF10 1AV",  # V never in the inward code
        "CF10 AAA",
        "CF10 1AAA",
        "CF101 1AA",
        "1AA",
        "CF10",
        "ASCN 1ZZ",
        "CF10 1ÀA",
        "",
    ],
)
def test_bad_format(raw: str) -> None:
    """Values that break the Royal Mail grammar are bad_format."""
    assert normalise_postcode(raw) == Normalised.refused("bad_format")


@pytest.mark.parametrize("raw", ["ZZ99 3VZ", "zz993cz", "ZZ99 3WZ", "ZZ99 1WZ", "ZZ99"])
def test_pseudo_postcodes_refused(raw: str) -> None:
    """ZZ99 pseudo postcodes (no fixed abode, not known, overseas) are pseudo_postcode."""
    assert normalise_postcode(raw) == Normalised.refused("pseudo_postcode")


def test_too_long_refused() -> None:
    """Input over 1000 characters is refused too_long."""
    assert normalise_postcode("CF10 1AA" + " " * 1000) == Normalised.refused("too_long")


@pytest.mark.parametrize(
    ("postcode", "area", "district", "sector"),
    [
        ("CF10 1AA", "CF", "CF10", "CF10 1"),
        ("SW1A 1AA", "SW", "SW1A", "SW1A 1"),
        ("M1 1AE", "M", "M1", "M1 1"),
        ("W1A 0AX", "W", "W1A", "W1A 0"),
        ("GIR 0AA", "GIR", "GIR", "GIR 0"),
    ],
)
def test_derived_units(postcode: str, area: str, district: str, sector: str) -> None:
    """Area, district and sector are derived from a canonical postcode."""
    assert postcode_area(postcode) == area
    assert postcode_district(postcode) == district
    assert postcode_sector(postcode) == sector


@pytest.mark.parametrize("bad", ["cf10 1aa", "CF101AA", "ZZ99 3VZ", "Q1 1AA"])
def test_derived_units_need_canonical_postcode(bad: str) -> None:
    """The helpers raise ValueError on anything but a canonical postcode."""
    for helper in (postcode_area, postcode_district, postcode_sector):
        with pytest.raises(ValueError, match="canonical"):
            helper(bad)


# Letter sets written out from the Royal Mail rules, independently of the module's regexes.
FIRST = "ABCDEFGHIJKLMNOPRSTUWYZ"
SECOND = "ABCDEFGHKLMNOPQRSTUVWXY"
THIRD_A9A = "ABCDEFGHJKPSTUW"
FOURTH_AA9A = "ABEHMNPRVWXY"
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
DIGITS = "0123456789"


@st.composite
def valid_postcodes(draw: st.DrawFn) -> str:
    """Strategy: a canonical postcode built position by position from the Royal Mail rules."""
    layout = draw(st.sampled_from(["A9", "A99", "A9A", "AA9", "AA99", "AA9A"]))
    pick = {
        "A9": [FIRST, DIGITS],
        "A99": [FIRST, DIGITS, DIGITS],
        "A9A": [FIRST, DIGITS, THIRD_A9A],
        "AA9": [FIRST, SECOND, DIGITS],
        "AA99": [FIRST, SECOND, DIGITS, DIGITS],
        "AA9A": [FIRST, SECOND, DIGITS, FOURTH_AA9A],
    }[layout]
    outward = "".join(draw(st.sampled_from(chars)) for chars in pick)
    inward = draw(st.sampled_from(DIGITS)) + "".join(
        draw(st.sampled_from(INWARD_LETTERS)) for _ in range(2)
    )
    return f"{outward} {inward}"


@st.composite
def mangled(draw: st.DrawFn, postcode: str) -> str:
    """Strategy: the postcode in random case with spaces and hyphens inserted or removed."""
    out = []
    for char in postcode.replace(" ", ""):
        out.append(char.lower() if draw(st.booleans()) else char)
        out.append(draw(st.sampled_from(["", "", "", " ", "-", "  "])))
    return "".join(out)


@settings(max_examples=200)
@given(valid_postcodes().flatmap(lambda pc: st.tuples(st.just(pc), mangled(pc))))
def test_valid_postcodes_in_odd_case_and_spacing(pair: tuple[str, str]) -> None:
    """Every grammatical postcode, however cased and spaced, normalises to its canonical form."""
    canonical, raw = pair
    if canonical.startswith("ZZ99"):
        assert normalise_postcode(raw) == Normalised.refused("pseudo_postcode")
    else:
        assert normalise_postcode(raw) == Normalised.ok(canonical)
        assert postcode_district(canonical) + canonical[-4:] == canonical


@settings(max_examples=250)
@given(st.one_of(st.text(), valid_postcodes().flatmap(mangled), st.text(alphabet="AZ09 ")))
def test_normalise_postcode_idempotent(raw: str) -> None:
    """normalise_postcode is idempotent on any text and on mangled valid postcodes."""
    first = normalise_postcode(raw)
    if first.value is not None:
        assert normalise_postcode(first.value) == first
    else:
        assert first.reason in {"bad_format", "pseudo_postcode", "too_long"}
