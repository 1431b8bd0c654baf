"""Tests for the text, name, code, sex, email and date normalisers in connectors.normalise."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.normalise import (
    DEFAULT_DATE_PLACEHOLDERS,
    MAX_INPUT_CHARS,
    Normalised,
    Normaliser,
    birth_year,
    fold_text,
    make_date_normaliser,
    make_generic_date_normaliser,
    normalise_code,
    normalise_email,
    normalise_free_text,
    normalise_name,
    normalise_other_names,
    normalise_sex,
    swap_day_month,
    unordered_day_month,
)

TODAY = date(2024, 6, 1)
FORMATS = ("%d/%m/%Y", "%d/%m/%y", "%d-%b-%Y", "%Y%m%d")
DOB = make_date_normaliser(FORMATS, today=TODAY)
GENERIC_DATE = make_generic_date_normaliser(FORMATS, today=TODAY)

STRING_NORMALISERS: dict[str, Normaliser] = {
    "name": normalise_name,
    "other_names": normalise_other_names,
    "free_text": normalise_free_text,
    "code": normalise_code,
    "sex": normalise_sex,
    "email": normalise_email,
    "date_of_birth": DOB,
    "generic_date": GENERIC_DATE,
}
REASON = re.compile(r"[a-z][a-z_]*")


def assert_idempotent(normalise: Normaliser, raw: str) -> None:
    """Shared check: an accepted value normalises to itself; a refusal carries a code only."""
    first = normalise(raw)
    if first.value is not None:
        assert first.reason is None
        assert normalise(first.value) == Normalised.ok(first.value)
    else:
        assert first.reason is not None
        assert REASON.fullmatch(first.reason)


# --- fold_text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Zoë", "zoe"),
        ("José", "jose"),
        ("Łukasz", "lukasz"),
        ("Siobhán Ní Bhriain", "siobhan ni bhriain"),
        ("O'Brien", "obrien"),
        ("O\u2019Brien", "obrien"),
        ("O\u00b4Brien", "obrien"),
        ("Hawai\u02bbi", "hawaii"),
        ("ʿAbd al-Raḥmān", "abd al rahman"),
        ("Muḥammad ibn ʾIsḥāq", "muhammad ibn ishaq"),  # noqa: RUF001
        ("Jürgen Groß", "jurgen gross"),
        ("Øystein Ærø", "oystein aero"),
        ("Þórunn Ðís", "thorunn dis"),
        ("Œdipe", "oedipe"),
        ("İbrahim Yıldız", "ibrahim yildiz"),  # noqa: RUF001
        ("Nguyễn Thị", "nguyen thi"),
        ("Ｆｕｌｌ　Ｗｉｄｔｈ", "full width"),  # noqa: RUF001
        ("ﬁnn", "finn"),
        ("Smith-Jones", "smith jones"),
        ("  lots \t of \n space  ", "lots of space"),
        ("Flat 2/10, High St.", "flat 2 10 high st"),
        ("محمَّد", "محمد"),
        ("राम", "राम"),
        ("Ἀλέξανδρος", "αλεξανδροσ"),
        ("---", ""),
    ],
)
def test_fold_text_examples(raw: str, folded: str) -> None:
    """fold_text folds case, accents, apostrophes and punctuation as documented."""
    assert fold_text(raw) == folded


def test_fold_text_keeps_indic_vowel_signs() -> None:
    """Vowel signs of abugida scripts are kept, so राम (Ram) and रम (Rum) stay distinct."""
    assert fold_text("राम") != fold_text("रम")


@settings(max_examples=500)
@given(st.text())
def test_fold_text_idempotent(raw: str) -> None:
    """fold_text applied twice equals fold_text applied once, for any text."""
    once = fold_text(raw)
    assert fold_text(once) == once


@settings(max_examples=300)
@given(st.text())
def test_fold_text_output_is_words(raw: str) -> None:
    """fold_text output is single-space-separated words with no outer whitespace."""
    folded = fold_text(raw)
    assert folded == folded.strip()
    assert "  " not in folded
    assert folded == " ".join(folded.split())


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (" Mrs. MARY-Ann ", "mary ann"),
        ("Zoë", "zoe"),
        ("José", "jose"),
        ("Łukasz", "lukasz"),
        ("Siobhán Ní Bhriain", "siobhan ni bhriain"),
        ("O'Connor", "oconnor"),
        ("Smith-Jones", "smith jones"),
        ("Muhammad Abdul-Rahman", "muhammad abdul rahman"),
        ("Chaudhry", "chaudhry"),
        ("Syed Ali Raza Naqvi", "syed ali raza naqvi"),
        ("Sir John Smith III", "john smith"),
        ("Prof. Dr. Anne Jnr", "anne"),
        ("Rev Fr Michael", "michael"),
        ("Mx Sam", "sam"),
        ("Martin Luther King Jr.", "martin luther king"),
        ("Baby Smith", "baby smith"),
        ("John 2", "john 2"),
        ("Lord", "lord"),
        ("John Lord", "john lord"),
        ("Sir John Master", "john master"),
    ],
)
def test_normalise_name_examples(raw: str, name: str) -> None:
    """Names are folded; leading titles and trailing suffixes go while a name word remains."""
    assert normalise_name(raw) == Normalised.ok(name)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("Mr", "no_name"),
        ("Dr. Prof.", "no_name"),
        ("123", "no_letters"),
        ("---", "no_letters"),
        ("Mrs 42", "no_letters"),
        ("Unknown", "placeholder"),
        ("NOT KNOWN", "placeholder"),
        ("N/K", "placeholder"),
        ("nk", "placeholder"),
        ("XXX", "placeholder"),
        ("Baby", "placeholder"),
        ("TEST", "placeholder"),
        ("zz", "placeholder"),
        ("Anon", "placeholder"),
        ("Anonymous", "placeholder"),
        ("Unnamed", "placeholder"),
        ("No Name", "placeholder"),
        ("Test Test", "placeholder"),
        ("Mr Unknown", "placeholder"),
    ],
)
def test_normalise_name_refusals(raw: str, reason: str) -> None:
    """Names that are only titles, have no letter, or are placeholders are refused."""
    assert normalise_name(raw) == Normalised.refused(reason)


NAME_PARTS = st.sampled_from(
    [
        "Mary",
        "ANN",
        "Zoë",
        "José",
        "Łukasz",
        "Siobhán",
        "Ní",
        "Bhriain",
        "O'Connor",
        "O\u2019Neill",
        "Muḥammad",
        "ʿAbd",
        "al-Raḥmān",
        "Øystein",
        "Groß",
        "Mr",
        "Mrs.",
        "Dr",
        "Jr",
        "III",
        "unknown",
        "baby",
        "Smith-Jones",
        "李",
        "राम",
        "2",
    ]
)
SEPARATORS = st.sampled_from([" ", "  ", "-", ". ", ", ", "\t", "'", " / ", ";", "|"])


@st.composite
def name_like(draw: st.DrawFn) -> str:
    """Strategy: names built from real-looking parts, titles and odd separators."""
    parts = draw(st.lists(NAME_PARTS, min_size=1, max_size=5))
    seps = draw(st.lists(SEPARATORS, min_size=len(parts), max_size=len(parts)))
    text = "".join(p + s for p, s in zip(parts, seps, strict=True))
    return draw(st.sampled_from([text, text.upper(), text.lower(), f"  {text} "]))


@settings(max_examples=300)
@given(st.one_of(st.text(), name_like()))
def test_normalise_name_idempotent(raw: str) -> None:
    """normalise_name is idempotent on any text and on name-like text."""
    assert_idempotent(normalise_name, raw)


@pytest.mark.parametrize(
    ("raw", "aliases"),
    [
        ("Jon Smith; J Smith|Johnny / Unknown", "j smith|johnny|jon smith"),
        ("Zoë|zoe;ZOE", "zoe"),
        ("Mrs Begum / Aisha Begum", "aisha begum|begum"),
        ("Smith-Jones", "smith jones"),
    ],
)
def test_normalise_other_names_examples(raw: str, aliases: str) -> None:
    """Aliases are each normalised, refused ones dropped, then de-duplicated and sorted."""
    assert normalise_other_names(raw) == Normalised.ok(aliases)


@pytest.mark.parametrize("raw", ["Unknown; N/K", "Mr|Dr", ";;|", "123/456"])
def test_normalise_other_names_refuses_no_alias(raw: str) -> None:
    """A list whose every alias is refused is refused with no_name."""
    assert normalise_other_names(raw) == Normalised.refused("no_name")


@settings(max_examples=300)
@given(st.one_of(st.text(), name_like()))
def test_normalise_other_names_idempotent(raw: str) -> None:
    """normalise_other_names is idempotent on any text and on alias lists."""
    assert_idempotent(normalise_other_names, raw)


# --- free text and codes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("Flat 2, 10 Downing St.", "flat 2 10 downing st"),
        ("Tŷ Mawr, Heol-y-Cyw", "ty mawr heol y cyw"),
        ("  12a   HIGH  street ", "12a high street"),
    ],
)
def test_normalise_free_text_examples(raw: str, text: str) -> None:
    """Free text is folded."""
    assert normalise_free_text(raw) == Normalised.ok(text)


def test_normalise_free_text_refuses_punctuation_only() -> None:
    """Text with no letter or digit is refused no_letters_or_digits."""
    assert normalise_free_text("--- / ---") == Normalised.refused("no_letters_or_digits")


@settings(max_examples=300)
@given(st.text())
def test_normalise_free_text_idempotent(raw: str) -> None:
    """normalise_free_text is idempotent."""
    assert_idempotent(normalise_free_text, raw)


@pytest.mark.parametrize(
    ("raw", "code"),
    [("ab 12 34 56 c", "AB123456C"), ("ab-123/x", "AB123X"), ("ＡＢ１２", "AB12")],  # noqa: RUF001
)
def test_normalise_code_examples(raw: str, code: str) -> None:
    """Codes are upper-cased and keep only A-Z and 0-9."""
    assert normalise_code(raw) == Normalised.ok(code)


def test_normalise_code_refuses_empty() -> None:
    """A code with no A-Z or 0-9 character is refused bad_format."""
    assert normalise_code("-/- é") == Normalised.refused("bad_format")


@settings(max_examples=300)
@given(st.one_of(st.text(), st.text(alphabet="abcXYZ0123456789 -/.ß")))
def test_normalise_code_idempotent(raw: str) -> None:
    """normalise_code is idempotent."""
    assert_idempotent(normalise_code, raw)


# --- sex ------------------------------------------------------------------------------------

SEX_WORDS = {
    "M": ["m", "Male", "MAN", "boy", "1", " M "],
    "F": ["f", "Female", "woman", "GIRL", "2"],
    "U": [
        "u",
        "Unknown",
        "Not Known",
        "not_known",
        "Not stated",
        "not specified",
        "Indeterminate",
        "x",
        "I",
        "0",
        "9",
        "Other",
    ],
}


@pytest.mark.parametrize(
    ("raw", "code"), [(w, code) for code, words in SEX_WORDS.items() for w in words]
)
def test_normalise_sex_examples(raw: str, code: str) -> None:
    """Recognised sex words and codes map to M, F or U."""
    assert normalise_sex(raw) == Normalised.ok(code)


@pytest.mark.parametrize("raw", ["maybe", "mf", "3", "males"])
def test_normalise_sex_refuses_unrecognised(raw: str) -> None:
    """Anything else is refused unrecognised."""
    assert normalise_sex(raw) == Normalised.refused("unrecognised")


@settings(max_examples=300)
@given(st.one_of(st.text(), st.sampled_from([w for ws in SEX_WORDS.values() for w in ws])))
def test_normalise_sex_idempotent(raw: str) -> None:
    """normalise_sex is idempotent."""
    assert_idempotent(normalise_sex, raw)


# --- email ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "email"),
    [
        (" John.Smith@NHS.net ", "john.smith@nhs.net"),
        ("a.begum+ae@police.uk", "a.begum+ae@police.uk"),
        ("o'connor@mail.co.uk", "o'connor@mail.co.uk"),
        ("ｊｏｈｎ@nhs.net", "john@nhs.net"),  # noqa: RUF001
    ],
)
def test_normalise_email_examples(raw: str, email: str) -> None:
    """Emails are stripped, NFKC-normalised and lower-cased."""
    assert normalise_email(raw) == Normalised.ok(email)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("john.smith", "bad_format"),
        ("john smith@nhs.net", "bad_format"),
        ("a@b@nhs.net", "bad_format"),
        ("@nhs.net", "bad_format"),
        ("john@localhost", "bad_format"),
        ("john@-nhs.net", "bad_format"),
        ("john..smith@nhs.net", "bad_format"),
        ("john@192.168.0.1", "bad_format"),
        ("x" * 65 + "@nhs.net", "bad_format"),
        ("none@nhs.net", "placeholder"),
        ("noemail@nhs.net", "placeholder"),
        ("No-Email@nhs.net", "placeholder"),
        ("unknown@nhs.net", "placeholder"),
        ("na@nhs.net", "placeholder"),
        ("test@nhs.net", "placeholder"),
        ("john@example.com", "placeholder"),
        ("john@mail.example.org", "placeholder"),
        ("john@test.com", "placeholder"),
        ("john@none.com", "placeholder"),
        ("john@nhs.invalid", "placeholder"),
    ],
)
def test_normalise_email_refusals(raw: str, reason: str) -> None:
    """Malformed emails are bad_format; no-email markers and example domains are placeholder."""
    assert normalise_email(raw) == Normalised.refused(reason)


@settings(max_examples=150)
@given(
    st.one_of(
        st.text(),
        st.emails().map(lambda e: e.upper()),
        st.emails().map(lambda e: f"  {e} "),
    )
)
def test_normalise_email_idempotent(raw: str) -> None:
    """normalise_email is idempotent on any text and on generated addresses."""
    assert_idempotent(normalise_email, raw)


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("1985-03-14", "1985-03-14"),
        ("1985-3-4", "1985-03-04"),
        ("14/03/1985", "1985-03-14"),
        ("14/3/85", "1985-03-14"),
        ("14-Mar-1985", "1985-03-14"),
        ("19850314", "1985-03-14"),
        (" 14/03/1985 ", "1985-03-14"),
        ("1985-03-14 00:00:00", "1985-03-14"),
        ("1985-03-14T00:00:00", "1985-03-14"),
        ("1985-03-14T13:45:10.123Z", "1985-03-14"),
        ("1985-03-14 00:00:00+01:00", "1985-03-14"),
        ("14/03/1985 00:00", "1985-03-14"),
        ("1970-01-01", "1970-01-01"),
        ("29/02/2000", "2000-02-29"),
        ("2024-06-01", "2024-06-01"),
        ("1904-06-01", "1904-06-01"),
    ],
)
def test_date_of_birth_examples(raw: str, iso: str) -> None:
    """Dates in ISO, a declared format, or a datetime are written as ISO."""
    assert DOB(raw) == Normalised.ok(iso)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("14/14/1985", "unparseable"),
        ("31/02/1985", "unparseable"),
        ("03/14/1985", "unparseable"),
        ("yesterday", "unparseable"),
        ("1985-03-14 noon", "unparseable"),
        *[(p, "placeholder") for p in sorted(DEFAULT_DATE_PLACEHOLDERS)],
        ("01/01/1900", "placeholder"),
        ("2024-06-02", "future"),
        ("2030-01-01", "future"),
        ("1890-05-05", "implausible_age"),
        ("1904-05-31", "implausible_age"),
    ],
)
def test_date_of_birth_refusals(raw: str, reason: str) -> None:
    """Unparseable, placeholder, future and implausibly old dates of birth are refused."""
    assert DOB(raw) == Normalised.refused(reason)


@pytest.mark.parametrize(
    ("today", "raw", "iso_or_reason"),
    [
        (date(2024, 6, 1), "01/01/24", "2024-01-01"),
        (date(2024, 6, 1), "01/12/24", "future"),
        (date(2024, 6, 1), "01/01/25", "1925-01-01"),
        (date(2024, 6, 1), "01/01/68", "1968-01-01"),
        (date(2024, 6, 1), "01/01/69", "1969-01-01"),
        (date(2024, 6, 1), "01/01/00", "2000-01-01"),
        (date(2080, 6, 1), "01/01/70", "2070-01-01"),
        (date(2099, 6, 1), "29/02/00", "2000-02-29"),
    ],
)
def test_two_digit_year_pivot(today: date, raw: str, iso_or_reason: str) -> None:
    """A two-digit year takes the latest century that does not put it after today's year."""
    result = make_date_normaliser(["%d/%m/%y"], today=today, max_age_years=None)(raw)
    assert iso_or_reason in (result.value, result.reason)


def test_two_digit_year_leap_day_in_non_leap_century() -> None:
    """29/02/00 pivoted into 1900 (not a leap year) is unparseable rather than a wrong date."""
    dob = make_date_normaliser(["%d/%m/%y"], today=date(1999, 6, 1), min_year=1800)
    assert dob("29/02/00") == Normalised.refused("unparseable")


def test_date_options() -> None:
    """allow_future, max_age_years=None, min_year and custom placeholders change the checks."""
    lenient = make_date_normaliser(
        [], today=TODAY, allow_future=True, max_age_years=None, min_year=1800, placeholders=()
    )
    assert lenient("2030-01-01") == Normalised.ok("2030-01-01")
    assert lenient("1850-01-01") == Normalised.ok("1850-01-01")
    assert lenient("1900-01-01") == Normalised.ok("1900-01-01")
    assert lenient("1799-12-31") == Normalised.refused("implausible_age")
    strict = make_date_normaliser([], today=TODAY, placeholders={"1980-01-01"}, max_age_years=18)
    assert strict("1980-01-01") == Normalised.refused("placeholder")
    assert strict("2006-06-01") == Normalised.ok("2006-06-01")
    assert strict("2006-05-31") == Normalised.refused("implausible_age")


def test_max_age_from_leap_day() -> None:
    """The age limit counted back from 29 February lands on 28 February."""
    dob = make_date_normaliser([], today=date(2024, 2, 29), max_age_years=1, min_year=1)
    assert dob("2023-02-28") == Normalised.ok("2023-02-28")
    assert dob("2023-02-27") == Normalised.refused("implausible_age")


def test_generic_date_has_no_plausibility_checks() -> None:
    """The generic date normaliser accepts placeholders, old and future dates."""
    assert GENERIC_DATE("01/01/1900") == Normalised.ok("1900-01-01")
    assert GENERIC_DATE("0001-01-01") == Normalised.ok("0001-01-01")
    assert GENERIC_DATE("31/12/9999") == Normalised.ok("9999-12-31")
    assert GENERIC_DATE("2024-13-01") == Normalised.refused("unparseable")


def test_date_normaliser_rejects_bad_formats() -> None:
    """A single string as formats, or a format without a year, is a construction error."""
    with pytest.raises(TypeError):
        make_date_normaliser("%d/%m/%Y", today=TODAY)
    with pytest.raises(ValueError, match="year"):
        make_date_normaliser(["%d/%m"], today=TODAY)
    with pytest.raises(ValueError, match="year"):
        make_date_normaliser(["%d/%m/%%Y"], today=TODAY)


@st.composite
def formatted_dates(draw: st.DrawFn) -> str:
    """Strategy: a date written in one of the declared formats, maybe as a datetime."""
    day = draw(st.dates(min_value=date(1000, 1, 1), max_value=date(2200, 12, 31)))
    fmt = draw(st.sampled_from(["%Y-%m-%d", *FORMATS]))
    text = day.strftime(fmt)
    suffix = draw(st.sampled_from(["", " 00:00:00", "T00:00:00", "T12:30:00Z", " 23:59"]))
    return text + suffix


@settings(max_examples=400)
@given(st.one_of(st.text(), formatted_dates()))
def test_date_normalisers_idempotent(raw: str) -> None:
    """Both date normalisers are idempotent on any text and on dates in the declared formats."""
    assert_idempotent(DOB, raw)
    assert_idempotent(GENERIC_DATE, raw)


@settings(max_examples=300)
@given(st.dates(min_value=date(1904, 6, 1), max_value=TODAY), st.sampled_from(FORMATS))
def test_date_of_birth_round_trips_four_digit_formats(day: date, fmt: str) -> None:
    """A plausible date written in a declared format normalises to its ISO form."""
    if "%y" in fmt and day.year <= TODAY.year - 100:
        return  # two-digit years cannot say which century
    written = day.strftime(fmt)
    if day.isoformat() in DEFAULT_DATE_PLACEHOLDERS:
        assert DOB(written) == Normalised.refused("placeholder")
    else:
        assert DOB(written) == Normalised.ok(day.isoformat())


def test_swap_day_month() -> None:
    """swap_day_month swaps when the result is a date, else returns None."""
    assert swap_day_month("1985-03-04") == "1985-04-03"
    assert swap_day_month("1985-03-14") is None
    assert swap_day_month("1985-05-05") == "1985-05-05"


def test_unordered_day_month() -> None:
    """unordered_day_month gives the same string for a date and its day/month swap."""
    assert unordered_day_month("1985-03-04") == "1985-03-04"
    assert unordered_day_month("1985-04-03") == "1985-03-04"
    assert unordered_day_month("1985-12-25") == "1985-12-25"


@given(st.dates())
def test_unordered_day_month_invariant_under_swap(day: date) -> None:
    """For every date whose swap is a date, both give the same unordered form."""
    iso = day.isoformat()
    swapped = swap_day_month(iso)
    if swapped is not None:
        assert unordered_day_month(swapped) == unordered_day_month(iso)
    assert birth_year(iso) == f"{day.year:04d}"


@pytest.mark.parametrize("bad", ["1985/03/04", "85-03-04", "1985-02-30", "19850304", ""])
def test_date_helpers_reject_non_iso(bad: str) -> None:
    """The ISO helpers raise ValueError on anything but a real ISO date."""
    for helper in (swap_day_month, unordered_day_month, birth_year):
        with pytest.raises(ValueError, match="ISO"):
            helper(bad)


# --- shared contract ------------------------------------------------------------------------


@pytest.mark.parametrize("normalise", STRING_NORMALISERS.values(), ids=list(STRING_NORMALISERS))
def test_too_long_input_refused(normalise: Normaliser) -> None:
    """Every normaliser refuses input over MAX_INPUT_CHARS with too_long."""
    assert normalise("a" * (MAX_INPUT_CHARS + 1)) == Normalised.refused("too_long")
    assert normalise("1" * (MAX_INPUT_CHARS + 1)) == Normalised.refused("too_long")


@pytest.mark.parametrize(
    ("normalise", "raw"),
    [
        (normalise_name, "ß" * 600),
        (normalise_free_text, "ß" * 600),
        (normalise_code, "ß" * 600),
        (normalise_other_names, "ß" * 300 + ";" + "æ" * 300),
    ],
)
def test_output_growing_past_limit_refused(normalise: Normaliser, raw: str) -> None:
    """Folding that lengthens a value past the limit is refused, keeping idempotency."""
    assert normalise(raw) == Normalised.refused("too_long")


@settings(max_examples=200)
@given(st.text(min_size=1), st.sampled_from(sorted(STRING_NORMALISERS)))
def test_reason_codes_are_fixed_codes(raw: str, which: str) -> None:
    """A refusal reason is a snake_case code from a fixed set, never derived from the value."""
    known = {
        "too_long",
        "no_name",
        "no_letters",
        "placeholder",
        "no_letters_or_digits",
        "bad_format",
        "unrecognised",
        "unparseable",
        "future",
        "implausible_age",
    }
    result = STRING_NORMALISERS[which](raw)
    assert result.reason is None or result.reason in known


@settings(max_examples=500)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_ascii_fast_path_equals_full_fold(text: str) -> None:
    """The ASCII fast path of fold_text gives exactly what the full Unicode fold gives."""
    from connectors.normalise import _fold_once

    full = _fold_once(text)
    assert fold_text(text) == full


_FAST_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%d-%b-%Y", "%Y%m%d", "%m/%d/%Y", "%d.%m.%Y"]


@settings(max_examples=2000)
@given(
    fmt=st.sampled_from(_FAST_FORMATS),
    text=st.one_of(
        st.from_regex(r"\A[0-9]{1,4}[-/.]?[0-9A-Za-z]{1,3}[-/.]?[0-9]{1,4}\Z"),
        st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
        st.dates().map(lambda d: d.strftime("%d-%b-%Y")),
        st.dates().map(lambda d: d.isoformat()),
    ),
)
def test_fast_date_parse_agrees_with_strptime(fmt: str, text: str) -> None:
    """Where the fast date path gives a date, strptime gives the same date."""
    from datetime import datetime

    from connectors.normalise import _fast_date

    quick = _fast_date(fmt, text)
    if quick is None:
        return
    assert datetime.strptime(text, fmt).date() == quick
