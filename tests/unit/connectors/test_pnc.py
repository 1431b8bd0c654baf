"""Tests for PNC id normalisation and synthetic PNC ids in connectors.pnc."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.normalise import Normalised
from connectors.pnc import PNC_CHECK_ALPHABET, make_pnc_id, normalise_pnc_id


def reference_letter(year: int, serial: int) -> str:
    """Check letter computed arithmetically, independent of the module's string formatting."""
    return "ZABCDEFGHJKLMNPQRTUVWXY"[((year % 100) * 10_000_000 + serial) % 23]


def test_hand_worked_check_letter() -> None:
    """85/0123456: 850123456 mod 23 = 9, the tenth letter of the alphabet without I, O, S: J."""
    assert 850_123_456 % 23 == 9
    assert make_pnc_id(85, 123456) == "85/0123456J"
    assert make_pnc_id(1985, 123456) == "85/0123456J"


@pytest.mark.parametrize(
    "raw",
    ["85/0123456J", "85/123456J", "1985/0123456J", "1985/123456j", " 85/0123456j ", "2085/123456J"],
)
def test_accepted_layouts(raw: str) -> None:
    """Two- or four-digit year, unpadded serial, lower case and spaces give the canonical id."""
    assert normalise_pnc_id(raw) == Normalised.ok("85/0123456J")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("85/0123456K", "check_digit"),
        ("85/0123456I", "check_digit"),
        ("86/0123456J", "check_digit"),
        ("85-0123456J", "bad_format"),
        ("85/12345678J", "bad_format"),
        ("85/J", "bad_format"),
        ("985/0123456J", "bad_format"),
        ("85/0123456", "bad_format"),
        ("85 / 0123456J", "bad_format"),
        ("８５/0123456J", "bad_format"),  # noqa: RUF001
        ("85/0123456J" + " " * 1000, "too_long"),
    ],
)
def test_refusals(raw: str, reason: str) -> None:
    """Wrong check letters are check_digit; other layouts are bad_format."""
    assert normalise_pnc_id(raw) == Normalised.refused(reason)


def test_make_pnc_id_rejects_out_of_range() -> None:
    """make_pnc_id refuses serials over seven digits and negative years."""
    with pytest.raises(ValueError, match="serial"):
        make_pnc_id(85, 10_000_000)
    with pytest.raises(ValueError, match="year"):
        make_pnc_id(-1, 1)


@settings(max_examples=300)
@given(st.integers(0, 2099), st.integers(0, 9_999_999))
def test_make_pnc_id_is_canonical_and_valid(year: int, serial: int) -> None:
    """make_pnc_id output is accepted unchanged and carries the reference check letter."""
    pnc_id = make_pnc_id(year, serial)
    assert normalise_pnc_id(pnc_id) == Normalised.ok(pnc_id)
    assert pnc_id[-1] == reference_letter(year, serial)
    assert pnc_id[-1] in PNC_CHECK_ALPHABET


@st.composite
def pnc_layouts(draw: st.DrawFn) -> str:
    """Strategy: a valid id, 2- or 4-digit year, padded or not, any case, maybe a wrong letter."""
    year = draw(st.integers(1900, 2099))
    serial = draw(st.integers(0, 9_999_999))
    letter = make_pnc_id(year, serial)[-1]
    if draw(st.booleans()):
        letter = draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    year_text = str(year) if draw(st.booleans()) else f"{year % 100:02d}"
    serial_text = f"{serial:07d}" if draw(st.booleans()) else str(serial)
    text = f"{year_text}/{serial_text}{letter}"
    return draw(st.sampled_from([text, text.lower(), f"  {text}\t"]))


@settings(max_examples=300)
@given(st.one_of(st.text(), pnc_layouts()))
def test_normalise_pnc_id_idempotent(raw: str) -> None:
    """normalise_pnc_id is idempotent on any text and on ids in every accepted layout."""
    first = normalise_pnc_id(raw)
    if first.value is not None:
        assert normalise_pnc_id(first.value) == first
        year, rest = first.value.split("/")
        assert rest[-1] == reference_letter(int(year), int(rest[:-1]))
    else:
        assert first.reason in {"bad_format", "check_digit", "too_long"}
