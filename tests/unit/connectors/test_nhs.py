"""Tests for NHS number normalisation and synthetic NHS numbers in connectors.nhs."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.nhs import (
    nhs_check_digit,
    nhs_check_digit_ok,
    normalise_nhs_number,
    random_valid_nhs_number,
)
from connectors.normalise import Normalised


def reference_check_digit_ok(number: str) -> bool:
    """Naive modulus-11 check written from the NHS Data Dictionary, independent of the code."""
    total = 0
    for position, digit in enumerate(number[:9], start=1):
        total += int(digit) * (11 - position)
    remainder = total % 11
    expected = 11 - remainder
    if expected == 11:
        expected = 0
    return expected != 10 and expected == int(number[9])


@pytest.mark.parametrize(
    "raw", ["943 476 5919", "9434765919", "943-476-5919", "943.476.5919", " 943 4765 919 "]
)
def test_published_example_is_valid(raw: str) -> None:
    """943 476 5919, the NHS's published example, is accepted in any spacing."""
    assert normalise_nhs_number(raw) == Normalised.ok("9434765919")


def test_published_example_with_wrong_check_digit() -> None:
    """943 476 5918 fails the check digit."""
    assert normalise_nhs_number("943 476 5918") == Normalised.refused("check_digit")


@pytest.mark.parametrize(
    "raw",
    ["94347659", "94347659190", "943476591X", "", "nhs 9434765919", "９４３４７６５９１９x"],  # noqa: RUF001
)
def test_bad_format(raw: str) -> None:
    """Anything but ten digits after removing separators is bad_format."""
    assert normalise_nhs_number(raw) == Normalised.refused("bad_format")


def test_full_width_digits_are_read() -> None:
    """Full-width digits are NFKC-normalised to ASCII before checking."""
    assert normalise_nhs_number("９４３４７６５９１９") == Normalised.ok("9434765919")  # noqa: RUF001


def test_arabic_indic_digits_are_bad_format() -> None:
    """Non-ASCII decimal digits that NFKC leaves alone are bad_format."""
    assert normalise_nhs_number("٩٤٣٤٧٦٥٩١٩") == Normalised.refused("bad_format")


@pytest.mark.parametrize("digit", "0123456789")
def test_all_same_digit_refused_though_they_pass_mod_11(digit: str) -> None:
    """Every all-same-digit number passes modulus 11, and every one is refused."""
    number = digit * 10
    assert nhs_check_digit_ok(number)
    assert normalise_nhs_number(number) == Normalised.refused("all_same_digit")


@pytest.mark.parametrize(("number", "passes_mod_11"), [("0123456789", True), ("1234567890", False)])
def test_dummy_numbers_refused_regardless_of_check_digit(number: str, passes_mod_11: bool) -> None:
    """The dummies 0123456789 (passes mod 11) and 1234567890 (fails) are test_number."""
    assert nhs_check_digit_ok(number) is passes_mod_11
    assert normalise_nhs_number(number) == Normalised.refused("test_number")


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=9_999_999))
def test_test_range_refused(tail: int) -> None:
    """Every number in 999 000 0000 - 999 999 9999 is refused test_number."""
    number = f"999{tail:07d}"
    if len(set(number)) > 1:
        assert normalise_nhs_number(number) == Normalised.refused("test_number")


def test_test_range_example_passing_mod_11() -> None:
    """999 000 0018 passes modulus 11 but is in the test range."""
    assert reference_check_digit_ok("9990000018")
    assert normalise_nhs_number("999 000 0018") == Normalised.refused("test_number")


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=9_999_999_999))
def test_check_digit_agrees_with_reference(value: int) -> None:
    """The code's modulus-11 check agrees with an independent naive implementation."""
    number = f"{value:010d}"
    assert nhs_check_digit_ok(number) == reference_check_digit_ok(number)


@settings(max_examples=200)
@given(st.randoms(use_true_random=False))
def test_random_valid_nhs_numbers_validate(rng: random.Random) -> None:
    """random_valid_nhs_number always returns a number the normaliser accepts, in range."""
    number = random_valid_nhs_number(rng)
    assert normalise_nhs_number(number) == Normalised.ok(number)
    assert reference_check_digit_ok(number)
    assert number[0] in "467"


def test_random_valid_nhs_number_deterministic() -> None:
    """The same seed gives the same numbers."""
    first = [random_valid_nhs_number(random.Random(7)) for _ in range(3)]
    assert first == [random_valid_nhs_number(random.Random(7)) for _ in range(3)]


@st.composite
def spaced_nhs_numbers(draw: st.DrawFn) -> str:
    """Strategy: ten digits with a valid-or-not check digit and random separators."""
    first_nine = f"{draw(st.integers(min_value=0, max_value=999_999_999)):09d}"
    check = nhs_check_digit(first_nine)
    last = str(check) if check is not None and draw(st.booleans()) else str(draw(st.integers(0, 9)))
    out = []
    for digit in first_nine + last:
        out.append(digit)
        out.append(draw(st.sampled_from(["", "", "", " ", "-", ".", "\u00a0", "\t"])))
    return "".join(out)


@settings(max_examples=400)
@given(st.one_of(st.text(), spaced_nhs_numbers()))
def test_normalise_nhs_number_idempotent(raw: str) -> None:
    """normalise_nhs_number is idempotent on any text and on spaced numbers."""
    first = normalise_nhs_number(raw)
    if first.value is not None:
        assert normalise_nhs_number(first.value) == first
        assert reference_check_digit_ok(first.value)
    else:
        assert first.reason in {
            "bad_format",
            "all_same_digit",
            "test_number",
            "check_digit",
            "too_long",
        }


def test_too_long_refused() -> None:
    """Input over 1000 characters is refused too_long."""
    assert normalise_nhs_number(" " * 1000 + "9434765919") == Normalised.refused("too_long")
