"""NHS number check digit (modulus 11) and validation.

An NHS number is ten digits; the tenth is a check digit computed from the first nine with
weights 10..2. A remainder that gives a check value of 10 means the nine digits can never form a
valid number.

:func:`normalise_nhs_number` is the field normaliser; :func:`random_valid_nhs_number` makes
synthetic numbers for test data.
"""

from __future__ import annotations

import random
import re
import unicodedata

from connectors.normalise import Normalised, bounded

_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def nhs_check_digit(first_nine: str) -> int | None:
    """Return the modulus-11 check digit for nine digits, or None if no check digit is possible."""
    if len(first_nine) != 9 or not first_nine.isascii() or not first_nine.isdigit():
        raise ValueError("expected exactly nine ASCII digits")
    total = sum(int(d) * w for d, w in zip(first_nine, _WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def nhs_check_digit_ok(number: str) -> bool:
    """True if ten ASCII digits carry a correct modulus-11 check digit."""
    if len(number) != 10 or not number.isascii() or not number.isdigit():
        return False
    return nhs_check_digit(number[:9]) == int(number[9])


# --- normalisation ----------------------------------------------------------------------------

#: Ten-digit numbers refused as ``test_number`` even if their check digit is right. 0123456789
#: passes modulus 11 and 1234567890 does not; both are widely used as dummies.
DUMMY_NHS_NUMBERS = frozenset({"0123456789", "1234567890"})
#: NHS numbers starting 999 are the test range (999 000 0000 to 999 999 9999).
TEST_RANGE_PREFIX = "999"
_SEPARATORS = re.compile(r"[\s.\-\u2010-\u2015\u2212]+")


@bounded
def normalise_nhs_number(raw: str) -> Normalised:
    """Normalise an NHS number to ten digits, refusing test, dummy and mistyped numbers.

    Spaces, hyphens and dots are removed. Refuses ``bad_format`` (not ten ASCII digits),
    ``all_same_digit`` (every such number passes modulus 11), ``test_number`` (the 999 test
    range and the dummies 0123456789 and 1234567890) and ``check_digit``.
    """
    digits = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return Normalised.refused("bad_format")
    if len(set(digits)) == 1:
        return Normalised.refused("all_same_digit")
    if digits.startswith(TEST_RANGE_PREFIX) or digits in DUMMY_NHS_NUMBERS:
        return Normalised.refused("test_number")
    if not nhs_check_digit_ok(digits):
        return Normalised.refused("check_digit")
    return Normalised.ok(digits)


def random_valid_nhs_number(rng: random.Random) -> str:
    """A random NHS number that :func:`normalise_nhs_number` accepts, for synthetic data.

    The first nine digits are uniform over 400 000 000-499 999 999 and 600 000 000-799 999 999;
    about one draw in eleven has no possible check digit and is drawn again.
    """
    while True:
        k = rng.randrange(300_000_000)
        first_nine = f"{400_000_000 + k if k < 100_000_000 else 500_000_000 + k:09d}"
        check = nhs_check_digit(first_nine)
        if check is None:
            continue
        number = f"{first_nine}{check}"
        if normalise_nhs_number(number).value == number:
            return number
