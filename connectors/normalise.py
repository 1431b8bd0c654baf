"""Normalisers: small pure callables that turn one raw identifier value into its canonical form.

A normaliser is called only on a present (non-blank) raw value and returns a :class:`Normalised`:
either the canonical value, or no value and a short reason code saying why the input was refused.
Every normaliser is idempotent: normalising a canonical value returns it unchanged. Reason codes
are fixed snake_case strings and never contain the value. Inputs (and outputs) longer than
:data:`MAX_INPUT_CHARS` characters are refused with ``too_long``.

Rules, by normaliser (reason codes in brackets):

- :func:`fold_text`: NFKC, case folding, accent folding (NFKD, then combining marks dropped as
  below, and a few letters NFKD leaves alone are spelt out: ø->o, ł->l, đ/ð->d, æ->ae, œ->oe,
  þ->th, dotless i->i, ...), apostrophes removed (O'Brien -> obrien), every other character that
  is not a letter or digit becomes a space, whitespace collapsed. Letters of other scripts are
  kept. Marks are dropped after Latin, Greek, Cyrillic, Arabic and Hebrew letters (accents,
  harakat, niqqud) but kept after letters of scripts that write vowels as marks (Devanagari,
  Bengali, Tamil, ...), where dropping them would merge different names. Applied until stable.
- :func:`normalise_name`: folded; leading title words (mr, mrs, dr, ...) and trailing suffixes
  (jr, iii, ...) are removed while another word remains, so "Lord" and "John Lord" keep their
  surname [``no_name`` for a bare title such as "Mr", ``no_letters`` if no letter is left,
  ``placeholder`` for "unknown", "baby", "test", ...].
- :func:`normalise_other_names`: aliases separated by ``;``, ``|`` or ``/`` (but "N/K" and "N/A"
  are dropped as placeholders, not split), each a name; refused aliases are dropped; the rest
  de-duplicated, sorted and joined with ``|`` [``no_name``].
- :func:`normalise_free_text`: folded [``no_letters_or_digits``].
- :func:`normalise_code`: NFKC, upper case, only A-Z and 0-9 kept [``bad_format``].
- :func:`normalise_sex`: to ``M``, ``F`` or ``U`` [``unrecognised``].
- :func:`normalise_email`: NFKC, lower case, a conservative address pattern [``bad_format``,
  ``placeholder`` for noemail@..., ...@example.com, ...]. Provider-specific rewriting (Gmail dots,
  ``+tags``) is deliberately not done.
- :func:`make_date_normaliser`: ISO ``YYYY-MM-DD`` first, then each declared ``strptime`` format;
  a datetime (``1985-03-14 00:00:00``, ``1985-03-14T00:00:00Z``) is accepted by taking its date
  part as written (no time-zone conversion) when the whole value matches no format. Output is
  ISO [``unparseable``, ``placeholder``, ``future``, ``implausible_age``]. Two-digit years
  (``%y``) take the century that puts the year at or before today's year: ``yy`` becomes the
  latest year ending in ``yy`` that is not after ``today.year`` (so with today in 2025, "25" is
  2025 and "26" is 1926). A date later in the current year is then refused as ``future``, not
  moved back a century.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime

#: Inputs longer than this, and outputs that would be, are refused with ``too_long``.
MAX_INPUT_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Normalised:
    """The result of normalising one present value: ``value`` or, if refused, ``reason``."""

    value: str | None
    reason: str | None = None

    @classmethod
    def ok(cls, value: str) -> Normalised:
        return cls(value, None)

    @classmethod
    def refused(cls, reason: str) -> Normalised:
        return cls(None, reason)


Normaliser = Callable[[str], Normalised]

_TOO_LONG = Normalised.refused("too_long")


def bounded(normaliser: Normaliser) -> Normaliser:
    """Wrap ``normaliser`` so inputs or outputs over :data:`MAX_INPUT_CHARS` are ``too_long``.

    Refusing long outputs too keeps the wrapped normaliser idempotent when folding lengthens a
    value (``ß`` -> ``ss``).
    """

    @functools.wraps(normaliser)
    def wrapper(raw: str) -> Normalised:
        if len(raw) > MAX_INPUT_CHARS:
            return _TOO_LONG
        result = normaliser(raw)
        if result.value is not None and len(result.value) > MAX_INPUT_CHARS:
            return _TOO_LONG
        return result

    return wrapper


# --- text folding ---------------------------------------------------------------------------

# Apostrophe-like characters are removed, so O'Brien, O-right-quote-Brien and
# OBrien all fold to "obrien". The modifier letters (apostrophe, turned comma, half rings used for
# ayn and hamza in transliterated Arabic) count as letters to str.isalnum, so they must be named
# here; the acute accent is named because NFKC turns it into a space and a combining mark.
_APOSTROPHES = "'\u2019\u2018\u201b\u02bc\u02bb\u02bf\u02be\u00b4`\u2032\uff07\u00b7"
# Letters (after case folding) that NFKD does not decompose into a base letter and marks.
_LETTER_FOLDS = {
    "ø": "o",
    "ł": "l",
    "đ": "d",
    "ð": "d",
    "æ": "ae",
    "œ": "oe",
    "þ": "th",
    "\u0131": "i",  # dotless i
    "ħ": "h",
    "ŧ": "t",
    "ŋ": "n",
    "ĸ": "k",
    "ƒ": "f",
    "ə": "e",
    "ɨ": "i",
    "ŀ": "l",
    "ß": "ss",
}
_FOLD_TABLE = str.maketrans({**_LETTER_FOLDS, **dict.fromkeys(_APOSTROPHES)})


# Scripts whose marks are optional diacritics (accents, harakat, niqqud), dropped when folding.
_DIACRITIC_SCRIPTS = ("LATIN ", "GREEK ", "CYRILLIC ", "ARABIC ", "HEBREW ")


def _drops_marks(base: str) -> bool:
    """True if combining marks after ``base`` are diacritics to drop rather than vowel signs."""
    return not base.isalpha() or unicodedata.name(base, "").startswith(_DIACRITIC_SCRIPTS)


def _fold_once(text: str) -> str:
    text = unicodedata.normalize("NFKC", text.translate(_FOLD_TABLE)).casefold()
    text = unicodedata.normalize("NFKD", text.translate(_FOLD_TABLE))
    out: list[str] = []
    drop_marks = True
    for c in text:
        if unicodedata.category(c).startswith("M"):
            if not drop_marks:
                out.append(c)
            continue
        drop_marks = _drops_marks(c)
        out.append(c if c.isalnum() else " ")
    return " ".join("".join(out).split())


_ASCII_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_ASCII_APOSTROPHES = str.maketrans("", "", "'`")


def fold_text(text: str) -> str:
    """Fold ``text`` for comparison: case, accents, apostrophes and punctuation (module doc)."""
    if text.isascii():
        # Fast path with the same result: NFKC and NFKD leave ASCII alone, casefold is lower.
        lowered = text.translate(_ASCII_APOSTROPHES).lower()
        return _ASCII_NON_ALNUM.sub(" ", lowered).strip()
    folded = _fold_once(text)
    # One pass is stable for almost all text; a few compatibility characters need a second.
    for _ in range(3):
        again = _fold_once(folded)
        if again == folded:
            break
        folded = again
    return folded


def _has_letter(text: str) -> bool:
    return any(c.isalpha() for c in text)


# --- names ----------------------------------------------------------------------------------

_TITLES = frozenset(
    {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "rev", "sir", "dame", "lord", "lady"}
    | {"master", "fr"}
)
_SUFFIXES = frozenset({"jr", "jnr", "snr", "sr", "ii", "iii"})
# Titles that are never a name on their own ("Lord", "Master", "Dame" and "Sir" can be surnames).
_BARE_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "rev", "fr"}) | _SUFFIXES
_PLACEHOLDER_WORDS = frozenset(
    {"unknown", "nk", "xxx", "xx", "baby", "test", "zz", "zzz", "anon", "anonymous", "unnamed"}
    | {"null", "none"}
)
_PLACEHOLDER_PHRASES = frozenset({"not known", "no name", "n k", "not stated", "name unknown"})


@bounded
def normalise_name(raw: str) -> Normalised:
    """Normalise a given or family name: folded, without titles or suffixes (module doc)."""
    folded = fold_text(raw)
    if not _has_letter(folded):
        return Normalised.refused("no_letters")
    words = folded.split(" ")
    while len(words) > 1 and words[0] in _TITLES:
        words.pop(0)
    while len(words) > 1 and words[-1] in _SUFFIXES:
        words.pop()
    if len(words) == 1 and words[0] in _BARE_TITLES:
        return Normalised.refused("no_name")
    name = " ".join(words)
    if not _has_letter(name):
        return Normalised.refused("no_letters")
    if name in _PLACEHOLDER_PHRASES or all(w in _PLACEHOLDER_WORDS for w in words):
        return Normalised.refused("placeholder")
    return Normalised.ok(name)


_ALIAS_SEPARATORS = re.compile(r"[;|/]")
# "N/K" and "N/A" are placeholders, not two aliases "n" and "k".
_SLASH_PLACEHOLDER = re.compile(r"\bn\s*/\s*[ak]\b", re.IGNORECASE)


@bounded
def normalise_other_names(raw: str) -> Normalised:
    """Normalise a list of aliases to ``a|b|c``: each a name, de-duplicated and sorted."""
    aliases = {
        alias
        for part in _ALIAS_SEPARATORS.split(_SLASH_PLACEHOLDER.sub(";", raw))
        if (alias := normalise_name(part).value) is not None
    }
    if not aliases:
        return Normalised.refused("no_name")
    return Normalised.ok("|".join(sorted(aliases)))


# --- free text and codes --------------------------------------------------------------------


@bounded
def normalise_free_text(raw: str) -> Normalised:
    """Normalise an address line or other free text by folding it."""
    folded = fold_text(raw)
    if not folded:
        return Normalised.refused("no_letters_or_digits")
    return Normalised.ok(folded)


_NOT_CODE = re.compile(r"[^A-Z0-9]+")


@bounded
def normalise_code(raw: str) -> Normalised:
    """Normalise a generic code (e.g. a social-security id): upper case A-Z and 0-9 only."""
    code = _NOT_CODE.sub("", unicodedata.normalize("NFKC", raw).upper())
    if not code:
        return Normalised.refused("bad_format")
    return Normalised.ok(code)


# --- sex ------------------------------------------------------------------------------------

_SEX_WORDS = {
    **dict.fromkeys(("m", "male", "man", "boy", "1"), "M"),
    **dict.fromkeys(("f", "female", "woman", "girl", "2"), "F"),
    **dict.fromkeys(
        (
            "u",
            "unknown",
            "not known",
            "not stated",
            "not specified",
            "indeterminate",
            "x",
            "i",
            "0",
            "9",
            "other",
        ),
        "U",
    ),
}


@bounded
def normalise_sex(raw: str) -> Normalised:
    """Normalise a sex code to ``M``, ``F`` or ``U`` (NHS Data Dictionary codes 1, 2, 0, 9 too)."""
    word = " ".join(raw.casefold().replace("_", " ").split())
    code = _SEX_WORDS.get(word)
    if code is None:
        return Normalised.refused("unrecognised")
    return Normalised.ok(code)


# --- email ----------------------------------------------------------------------------------

_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_EMAIL = re.compile(rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>(?:{_LABEL}\.)+{_LABEL})")
_PLACEHOLDER_LOCALS = frozenset(
    {"none", "noemail", "no-email", "no.email", "no_email", "nomail", "no-mail", "unknown"}
    | {"na", "n/a", "test", "null", "dummy", "notknown", "not-known", "noreply", "no-reply"}
)
_PLACEHOLDER_DOMAINS = frozenset(
    {"example.com", "example.org", "example.net", "test.com", "none.com", "noemail.com"}
    | {"nomail.com"}
)
# Top-level domains reserved by RFC 2606 that never carry real mail.
_RESERVED_TLDS = frozenset({"test", "example", "invalid", "localhost"})


@bounded
def normalise_email(raw: str) -> Normalised:
    """Normalise an email address: lower case, conservative pattern, placeholders refused."""
    address = unicodedata.normalize("NFKC", raw.strip()).lower()
    match = _EMAIL.fullmatch(address)
    if match is None or len(address) > 254 or len(match["local"]) > 64:
        return Normalised.refused("bad_format")
    domain = match["domain"]
    tld = domain.rsplit(".", 1)[1]
    if tld.isdigit():
        return Normalised.refused("bad_format")
    if (
        match["local"] in _PLACEHOLDER_LOCALS
        or tld in _RESERVED_TLDS
        or any(domain == d or domain.endswith("." + d) for d in _PLACEHOLDER_DOMAINS)
    ):
        return Normalised.refused("placeholder")
    return Normalised.ok(address)


# --- dates ----------------------------------------------------------------------------------

#: Dates that source systems use to mean "not known"; 1970-01-01 is deliberately not one.
DEFAULT_DATE_PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "1900-01-01",
        "1800-01-01",
        "1901-01-01",
        "1111-11-11",
        "9999-12-31",
        "1753-01-01",
        "1899-12-31",
    }
)
ISO_DATE_FORMAT = "%Y-%m-%d"
# A trailing time of day (and optional fraction, am/pm and zone) after the date part.
_DATETIME = re.compile(
    r"(?P<date>.+?)[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:\s*[ap]m)?"
    r"(?:\s*(?:z|utc|gmt|[+-]\d{2}(?::?\d{2})?))?",
    re.ASCII | re.IGNORECASE,
)
_ISO_STRICT = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)


def _has_directive(fmt: str, directives: str) -> bool:
    unescaped = fmt.replace("%%", "")
    return any(f"%{d}" in unescaped for d in directives)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_FAST_DIRECTIVES = {"d": r"(\d{1,2})", "m": r"(\d{1,2})", "Y": r"(\d{4})", "b": r"([A-Za-z]{3})"}


@functools.lru_cache(maxsize=64)
def _fast_date_pattern(fmt: str) -> tuple[re.Pattern[str], tuple[str, ...]] | None:
    """A regex for formats made only of %d, %m or %b, %Y and punctuation; else None."""
    parts: list[str] = []
    order: list[str] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c == "%":
            directive = fmt[i + 1 : i + 2]
            if directive not in _FAST_DIRECTIVES or directive in order:
                return None
            parts.append(_FAST_DIRECTIVES[directive])
            order.append(directive)
            i += 2
        elif c.isascii() and not c.isalnum() and not c.isspace():
            parts.append(re.escape(c))
            i += 1
        else:
            return None
    if sorted(order) not in (["Y", "d", "m"], ["Y", "b", "d"]):
        return None
    return re.compile("".join(parts), re.ASCII), tuple(order)


def _fast_date(fmt: str, text: str) -> date | None:
    """The date ``strptime(text, fmt)`` gives, computed without strptime when that is easy.

    Only a fast path for values that parse: None means "ask strptime", never "invalid".
    """
    compiled = _fast_date_pattern(fmt)
    if compiled is None:
        return None
    pattern, order = compiled
    match = pattern.fullmatch(text)
    if match is None:
        return None
    fields = dict(zip(order, match.groups(), strict=True))
    month = _MONTHS.get(fields["b"].lower()) if "b" in fields else int(fields["m"])
    if month is None:
        return None
    try:
        return date(int(fields["Y"]), month, int(fields["d"]))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class DateNormaliser:
    """A date normaliser for declared ``formats``; build it with :func:`make_date_normaliser`."""

    formats: tuple[str, ...]
    today: date
    min_year: int
    placeholders: frozenset[str]
    max_age_years: int | None
    allow_future: bool

    def __call__(self, raw: str) -> Normalised:
        if len(raw) > MAX_INPUT_CHARS:
            return _TOO_LONG
        text = raw.strip()
        parsed = self._parse(text)
        if parsed is None and (match := _DATETIME.fullmatch(text)) is not None:
            parsed = self._parse(match["date"].strip())
        if parsed is None:
            return Normalised.refused("unparseable")
        iso = parsed.isoformat()
        if iso in self.placeholders:
            return Normalised.refused("placeholder")
        if parsed > self.today and not self.allow_future:
            return Normalised.refused("future")
        if parsed.year < self.min_year:
            return Normalised.refused("implausible_age")
        if self.max_age_years is not None and parsed < _years_before(
            self.today, self.max_age_years
        ):
            return Normalised.refused("implausible_age")
        return Normalised.ok(iso)

    def _parse(self, text: str) -> date | None:
        for fmt in self.formats:
            quick = _fast_date(fmt, text)
            if quick is not None:
                return quick
            try:
                parsed = datetime.strptime(text, fmt).date()
            except ValueError:
                continue
            if not _has_directive(fmt, "y"):
                return parsed
            year = self.today.year // 100 * 100 + parsed.year % 100
            if year > self.today.year:
                year -= 100
            try:
                return parsed.replace(year=year)
            except ValueError:  # 29 February moved into a year that has none
                continue
        return None


def make_date_normaliser(
    formats: Sequence[str],
    *,
    today: date,
    min_year: int = 1900,
    placeholders: Collection[str] = DEFAULT_DATE_PLACEHOLDERS,
    max_age_years: int | None = 120,
    allow_future: bool = False,
) -> Normaliser:
    """A date-of-birth normaliser: ISO first, then ``formats`` (``strptime``), output ISO.

    Refuses ``unparseable``, ``placeholder`` (a date in ``placeholders``), ``future`` (after
    ``today`` unless ``allow_future``) and ``implausible_age`` (year before ``min_year``, or
    more than ``max_age_years`` before ``today``). Raises ValueError for a format without a year.
    """
    if isinstance(formats, str):
        raise TypeError("formats must be a sequence of strptime formats, not one string")
    for fmt in formats:
        if not _has_directive(fmt, "Yy"):
            raise ValueError("every date format needs a year directive (%Y or %y)")
    ordered = tuple(dict.fromkeys((ISO_DATE_FORMAT, *formats)))
    if max_age_years is not None and max_age_years < 0:
        raise ValueError("max_age_years must not be negative")
    return DateNormaliser(
        formats=ordered,
        today=today,
        min_year=min_year,
        placeholders=frozenset(placeholders),
        max_age_years=max_age_years,
        allow_future=allow_future,
    )


def make_generic_date_normaliser(formats: Sequence[str], *, today: date) -> Normaliser:
    """A date normaliser for extra fields: same parsing; no placeholder, age or future check."""
    return make_date_normaliser(
        formats,
        today=today,
        min_year=1,
        placeholders=(),
        max_age_years=None,
        allow_future=True,
    )


def _iso_parts(iso: str) -> tuple[int, int, int]:
    match = _ISO_STRICT.fullmatch(iso)
    if match is None:
        raise ValueError("expected an ISO date YYYY-MM-DD")
    year, month, day = (int(g) for g in match.groups())
    try:
        date(year, month, day)
    except ValueError:
        raise ValueError("expected an ISO date YYYY-MM-DD") from None
    return year, month, day


def swap_day_month(iso: str) -> str | None:
    """The ISO date with day and month swapped, or None if that is not a real date."""
    year, month, day = _iso_parts(iso)
    try:
        return date(year, day, month).isoformat()
    except ValueError:
        return None


def unordered_day_month(iso: str) -> str:
    """``YYYY-aa-bb`` with ``aa <= bb`` the month and day in either order: a swap gives the same."""
    year, month, day = _iso_parts(iso)
    low, high = sorted((month, day))
    return f"{year:04d}-{low:02d}-{high:02d}"


def birth_year(iso: str) -> str:
    """The four-digit year of an ISO date."""
    return f"{_iso_parts(iso)[0]:04d}"
