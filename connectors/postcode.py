"""UK postcode normalisation and the coarser units derived from a postcode.

A postcode is an outward code (area letters and district) and an inward code (sector digit and
unit letters). The normaliser upper-cases the value, drops whitespace and punctuation and checks
the Royal Mail grammar:

- outward code, one of ``A9``, ``A99``, ``A9A``, ``AA9``, ``AA99``, ``AA9A``, where the first
  letter is not Q, V or X; a second letter is not I, J or Z; the letter of ``A9A`` is one of
  ABCDEFGHJKPSTUW and the last letter of ``AA9A`` one of ABEHMNPRVWXY;
- inward code ``9AA`` whose letters are not C, I, K, M, O or V;
- or the special ``GIR 0AA``.

Output is ``OUTWARD INWARD`` with one space. Refused: ``pseudo_postcode`` for the ``ZZ99``
pseudo postcodes (no fixed abode, not known, overseas, ...), ``bad_format`` for everything else
that does not fit, including British Forces, overseas-territory (``ASCN 1ZZ``) and Crown
dependency formats that do not follow the grammar.
"""

from __future__ import annotations

import itertools
import re
import unicodedata

from connectors.normalise import Normalised, bounded

_OUTWARD = re.compile(
    r"[A-PR-UWYZ](?:[0-9][0-9]?|[A-HK-Y][0-9][0-9]?|[0-9][A-HJKPSTUW]|[A-HK-Y][0-9][ABEHMNPRVWXY])"
)
_INWARD = re.compile(r"[0-9][ABD-HJLNP-UW-Z]{2}")
_PSEUDO = re.compile(r"ZZ99[0-9A-Z]{0,3}")
_SPECIAL = "GIR0AA"


@bounded
def normalise_postcode(raw: str) -> Normalised:
    """Normalise a UK postcode to ``OUTWARD INWARD`` (module doc for the grammar)."""
    compact = "".join(c for c in unicodedata.normalize("NFKC", raw).upper() if c.isalnum())
    if _PSEUDO.fullmatch(compact):
        return Normalised.refused("pseudo_postcode")
    outward, inward = compact[:-3], compact[-3:]
    if compact != _SPECIAL and not (_OUTWARD.fullmatch(outward) and _INWARD.fullmatch(inward)):
        return Normalised.refused("bad_format")
    return Normalised.ok(f"{outward} {inward}")


def _split(postcode: str) -> tuple[str, str]:
    outward, _, inward = postcode.partition(" ")
    if normalise_postcode(postcode).value != postcode:
        raise ValueError("expected a canonical postcode")
    return outward, inward


def postcode_district(postcode: str) -> str:
    """The outward code (postcode district) of a canonical postcode: ``CF10 1AA`` -> ``CF10``."""
    return _split(postcode)[0]


def postcode_sector(postcode: str) -> str:
    """The postcode sector of a canonical postcode: ``CF10 1AA`` -> ``CF10 1``."""
    outward, inward = _split(postcode)
    return f"{outward} {inward[0]}"


def postcode_area(postcode: str) -> str:
    """The postcode area (leading letters) of a canonical postcode: ``CF10 1AA`` -> ``CF``."""
    return "".join(itertools.takewhile(str.isalpha, _split(postcode)[0]))
