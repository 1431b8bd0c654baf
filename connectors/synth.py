"""Deterministic synthetic scenario data: an A&E export, a police export and the truth linking them.

:func:`synthesise` draws a population of households in one city region, decides who attended A&E
(mostly assault victims) and who appears in police domestic-abuse incidents (victims and
suspects), renders each person's records in the two exports' own formats with realistic
corruption, and writes three CSV files::

    ae_attendances.csv    one row per attendance      (AE_COLUMNS)
    police_incidents.csv  one row per person-incident (POLICE_COLUMNS)
    truth.csv             person_id, source, record_id (one row per record in either export)

The same ``seed`` (and ``today``) always gives byte-identical files for the same versions of this
module and of Faker. All randomness comes from one ``random.Random(seed)`` (split into
independent streams) and one ``Faker("en_GB")`` seeded with ``seed``; Faker is only used to
pre-draw small pools (names, streets, postcodes), so generation is fast (roughly 10 seconds
for 100,000 records, which takes about 95,000 people). :func:`build_scenario` returns the same
data in memory, with each person's clean values and each record's applied corruptions, for tests
and quality measurements.

Every rate used is a documented constant below: the population and participation constants,
and one :class:`CorruptionRates` table per export (:data:`AE_RATES`, :data:`POLICE_RATES`).
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import itertools
import os
import random
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Generic, TypeVar

from faker import Faker

from connectors import _synth_names as names
from connectors.nhs import random_valid_nhs_number
from connectors.pnc import make_pnc_id

__all__ = [
    "AE_COLUMNS",
    "AE_RATES",
    "POLICE_COLUMNS",
    "POLICE_RATES",
    "TRUTH_COLUMNS",
    "CorruptionRates",
    "Scenario",
    "SynthPerson",
    "SynthRecord",
    "SynthSummary",
    "build_scenario",
    "synthesise",
]

AE_COLUMNS = (
    "attendance_id",
    "forename",
    "surname",
    "dob",
    "gender",
    "nhs_no",
    "postcode",
    "address_line",
    "tel",
    "email",
    "arrival_datetime",
    "assault_method",
    "location_type",
    "da_flag",
)
POLICE_COLUMNS = (
    "IncidentRef",
    "FirstName",
    "LastName",
    "Aliases",
    "DateOfBirth",
    "Sex",
    "PNCId",
    "NHSNumber",
    "HomePostcode",
    "HomeAddress",
    "ContactPhone",
    "Email",
    "IncidentDateTime",
    "OffenceCode",
    "DashRisk",
    "Role",
)
TRUTH_COLUMNS = ("person_id", "source", "record_id")

DEFAULT_TODAY = date(2026, 1, 1)
"""Reference date when none is given, so output never depends on the clock."""
WINDOW_DAYS = 730
"""Records fall in the two years before ``today``."""


def _districts_for(units: int) -> tuple[str, ...]:
    """The city districts, extended with further South Wales districts when ``units`` postcode
    units would fill more than half of what they can hold (each district holds 10 x 20 x 20
    inward codes). Populations up to about 450,000 people use the city districts alone, so their
    files are unchanged; larger ones spread over more districts instead of looping forever."""
    capacity = 10 * len(_INWARD_LETTERS) ** 2
    districts = list(names.CITY_DISTRICTS)
    taken = set(districts) | set(names.OTHER_DISTRICTS)
    extra = (f"{area}{k}" for k in range(1, 100) for area in ("CF", "NP", "SA"))
    while units > len(districts) * capacity // 2:
        district = next(extra, None)
        if district is None:
            raise ValueError(f"too many postcode units for the synthetic districts: {units}")
        if district not in taken:
            districts.append(district)
            taken.add(district)
    return tuple(districts)


# --- Population -------------------------------------------------------------------------------
HOUSEHOLD_SIZE_WEIGHTS = (0.29, 0.34, 0.16, 0.13, 0.05, 0.03)
"""Share of households of size 1..6 (roughly the ONS distribution)."""
SHARED_HOUSE_RATE = 0.12
"""Multi-person households of unrelated adults (own surnames)."""
SINGLE_PARENT_RATE = 0.3
"""Families with children that have one parent."""
COUPLE_SHARED_SURNAME_RATE = 0.8
"""Couples sharing a family name; the other partner then often has a previous surname."""
PREVIOUS_SURNAME_RATE = 0.6
"""Partners who took the other's surname and have a recorded previous (maiden) surname."""
CHILD_OTHER_SURNAME_RATE = 0.1
"""Children who carry the other parent's (previous) surname."""
DOUBLE_BARRELLED_RATE = 0.03
"""Households whose family name is double-barrelled ("Smith-Jones")."""
TWIN_RATE = 0.1
"""Families with two or more children that include a twin pair."""
SIMILAR_TWIN_NAME_RATE = 0.3
"""Same-sex twin pairs given near-identical names (Jayden/Jaden)."""
JUNIOR_RATE = 0.08
"""Families where a son has his father's given name ("John Smith" senior and junior)."""
MIDDLE_NAME_RATE = 0.35
MOBILE_RATE = 0.93
"""People (aged 12+) with a mobile phone."""
LANDLINE_RATE = 0.3
"""Households with a landline."""
EMAIL_RATE = 0.5
"""People (aged 14+) with an email address."""
MOVE_RATE = 0.1
"""People who move house during the record window (later records show the new address)."""
MOVE_OUT_OF_AREA_RATE = 0.15
"""Moves that go to another city (postcode outside the region)."""
PHONE_CHANGE_RATE = 0.12
"""People who change mobile number during the record window."""
FLAT_RATE = 0.12
"""Addresses that are flats ("Flat 3, 27 Albany Road")."""
LEAD_AGE_BANDS = ((18, 24, 0.2), (25, 34, 0.27), (35, 44, 0.2), (45, 54, 0.14), (55, 64, 0.09))
LEAD_AGE_BANDS_OLD = ((65, 74, 0.06), (75, 90, 0.04))
"""Age bands (inclusive) and weights of household adults: skewed to young adults."""

# --- Who appears where -------------------------------------------------------------------------
AE_PERSON_RATE = 0.45
"""Share of the population with at least one A&E attendance (before age weighting)."""
AE_ASSAULT_SHARE = 0.7
"""A&E people who attend for assault; the rest attend for other reasons (no assault fields)."""
POLICE_GIVEN_AE_ASSAULT = 0.35
"""A&E assault victims known to police (South Wales found 59% unknown)."""
POLICE_GIVEN_AE_OTHER = 0.15
POLICE_GIVEN_NOT_AE = 0.25
"""People not in A&E who appear in police incidents."""
RELATIVE_CO_OCCURRENCE = 0.5
"""When one twin (or senior/junior namesake) is in a source, the other is added at this rate."""
PARTNER_SUSPECT_RATE = 0.35
"""Police victims whose household partner appears as the suspect."""
VICTIM_RATE = {"F": 0.75, "M": 0.45}
"""Probability a police person is mainly a victim (otherwise a suspect), by sex."""
ROLE_FLIP_RATE = 0.1
"""Records where a person has the other role."""
PNC_RATE = {"Victim": 0.3, "Suspect": 0.65}
"""People with a PNC record, by main police role."""
PNC_MIN_AGE = 14
"""Youngest age at which a synthetic PNC record is created."""
AE_RECORD_WEIGHTS = (0.78, 0.13, 0.05, 0.02, 0.012, 0.008)
POLICE_RECORD_WEIGHTS = (0.65, 0.18, 0.08, 0.045, 0.025, 0.02)
"""Share of people with 1..6 records in each source (repeat victims)."""
LINKED_TIME_RATE = 0.4
"""People in both sources whose first police incident happened hours before an A&E arrival."""
AE_DA_RATE = 0.2
AE_DA_RATE_POLICE_VICTIM = 0.5
"""Assault attendances flagged as domestic abuse (higher for people police know as victims)."""
AGE_PROPENSITY = ((15, 0.25), (17, 0.7), (24, 1.6), (34, 1.5), (44, 1.1), (54, 0.7), (64, 0.4))
"""(max age, relative weight) of appearing in either source; older than 64: 0.2."""


@dataclass(frozen=True, slots=True)
class CorruptionRates:
    """Per-record probabilities of each corruption in one export."""

    name_typo: float  # per name field: one char inserted, deleted, substituted or transposed
    nickname: float  # given name -> nickname (William -> Bill), where it has one
    variant: float  # per name field: another spelling (Mohammed -> Muhammad), where one exists
    accent_drop: float  # accented name written without accents
    accent_add: float  # plain name written with its accent (Zoe -> Zoë), where it has one
    middle_in_forename: float  # forename field holds "given middle"
    name_swap: float  # forename and surname swapped
    name_swap_family_first: float  # the same, for communities that write family name first
    previous_surname: float  # recorded under the previous (maiden) surname, where there is one
    surname_part: float  # double-barrelled name recorded as one part, or with a space
    second_surname: float  # a second surname appended ("Khan-Ahmed")
    upper_case: float  # names and address typed in capitals
    dob_day_month_swap: float  # only applied when day and month are both <= 12 and differ
    dob_placeholder: float  # 01/01/1900
    dob_typo: float  # year +-1 or +-10, or day +-1
    dob_missing: float
    nhs_present: float
    nhs_typo: float  # one digit changed (usually fails the check digit)
    pnc_present: float  # PNC id shown, for people who have one
    postcode_zz99: float  # NHS pseudo-postcode (ZZ99 3VZ no fixed abode, ZZ99 3WZ unknown)
    postcode_unformatted: float  # lower case and/or no space
    postcode_typo: float  # one character of the inward code changed
    postcode_missing: float
    address_typo: float
    address_abbrev: float  # Road -> Rd, Street -> St, Avenue -> Ave
    address_missing: float
    phone_missing: float
    phone_placeholder: float  # 00000000000, 01234 567890, 07000000000
    phone_landline: float  # household landline given instead of mobile, where there is one
    email_present: float  # for people who have an email
    sex_unknown: float
    alias: float  # police Aliases column filled


AE_RATES = CorruptionRates(
    name_typo=0.03,
    nickname=0.08,
    variant=0.15,
    accent_drop=0.4,
    accent_add=0.05,
    middle_in_forename=0.04,
    name_swap=0.015,
    name_swap_family_first=0.08,
    previous_surname=0.15,
    surname_part=0.3,
    second_surname=0.01,
    upper_case=0.05,
    dob_day_month_swap=0.02,
    dob_placeholder=0.01,
    dob_typo=0.01,
    dob_missing=0.005,
    nhs_present=0.9,
    nhs_typo=0.005,
    pnc_present=0.0,
    postcode_zz99=0.03,
    postcode_unformatted=0.08,
    postcode_typo=0.01,
    postcode_missing=0.02,
    address_typo=0.03,
    address_abbrev=0.1,
    address_missing=0.03,
    phone_missing=0.15,
    phone_placeholder=0.02,
    phone_landline=0.2,
    email_present=0.3,
    sex_unknown=0.02,
    alias=0.0,
)
"""Corruption rates of the A&E export."""

POLICE_RATES = CorruptionRates(
    name_typo=0.03,
    nickname=0.12,
    variant=0.2,
    accent_drop=0.6,
    accent_add=0.03,
    middle_in_forename=0.01,
    name_swap=0.02,
    name_swap_family_first=0.1,
    previous_surname=0.2,
    surname_part=0.3,
    second_surname=0.01,
    upper_case=0.2,
    dob_day_month_swap=0.015,
    dob_placeholder=0.01,
    dob_typo=0.01,
    dob_missing=0.01,
    nhs_present=0.05,
    nhs_typo=0.01,
    pnc_present=0.92,
    postcode_zz99=0.005,
    postcode_unformatted=0.25,
    postcode_typo=0.01,
    postcode_missing=0.04,
    address_typo=0.04,
    address_abbrev=0.15,
    address_missing=0.04,
    phone_missing=0.1,
    phone_placeholder=0.02,
    phone_landline=0.15,
    email_present=0.5,
    sex_unknown=0.02,
    alias=0.08,
)
"""Corruption rates of the police export."""

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MOBILE_PREFIXES = (
    *(f"07{d}" for d in "12345"),
    *(f"077{d}" for d in "123456789"),
    "078",
    "0790",
    *(f"079{d}" for d in "2345689"),
)
"""Mobile ranges phonenumbers accepts as valid (07700 900xxx drama numbers are not)."""
_PHONE_PLACEHOLDERS = ("00000000000", "01234 567890", "07000000000")
_ZZ99 = ("ZZ99 3VZ", "ZZ99 3WZ")
_ABBREVIATIONS = ((" Road", " Rd"), (" Street", " St"), (" Avenue", " Ave"))
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
_NON_DECOMPOSING = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "ß": "ss", "Đ": "D"})

T = TypeVar("T")


class _Table(Generic[T]):
    """Values with weights, sampled with one ``rng.random()`` call and a bisection."""

    def __init__(self, pairs: Iterable[tuple[T, float]]) -> None:
        items = list(pairs)
        self.values = tuple(v for v, _ in items)
        self.cum = tuple(itertools.accumulate(w for _, w in items))

    def pick(self, rng: random.Random) -> T:
        k = bisect.bisect_right(self.cum, rng.random() * self.cum[-1])
        return self.values[min(k, len(self.values) - 1)]


_HOUSEHOLD_SIZES = _Table(enumerate(HOUSEHOLD_SIZE_WEIGHTS, start=1))
_ADULT_AGES = _Table(((lo, hi), w) for lo, hi, w in LEAD_AGE_BANDS + LEAD_AGE_BANDS_OLD)
_AE_COUNTS = _Table(enumerate(AE_RECORD_WEIGHTS, start=1))
_POLICE_COUNTS = _Table(enumerate(POLICE_RECORD_WEIGHTS, start=1))
_HOURS = _Table(enumerate((5, 4, 4, 3, 2, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 4, 4, 5, 6, 6, 6)))
_ASSAULT_METHODS = _Table(
    (
        ("Fist", 0.35),
        ("Kick", 0.15),
        ("Knife", 0.08),
        ("Glass or bottle", 0.1),
        ("Blunt object", 0.07),
        ("Other", 0.25),
    )
)
_LOCATIONS = _Table(
    (
        ("Street", 0.35),
        ("Home", 0.2),
        ("Pub or club", 0.2),
        ("Other public place", 0.15),
        ("Other", 0.1),
    )
)
_OFFENCE_CODES = _Table((("8N", 0.35), ("105A", 0.3), ("8L", 0.15), ("8H", 0.1), ("5D", 0.1)))
_DASH_RISK = _Table((("Standard", 0.55), ("Medium", 0.3), ("High", 0.15)))


@dataclass(frozen=True, slots=True)
class SynthPerson:
    """One synthetic person's true (clean) values; ``person_id`` is the truth-file key."""

    person_id: str
    household_id: int
    group: str
    given_name: str
    middle_name: str
    family_name: str
    previous_family_name: str
    sex: str  # "M" or "F"
    dob: date
    nhs_number: str
    postcode: str
    address_line: str
    mobile: str
    landline: str
    email: str
    related_id: str = ""  # twin, or senior/junior namesake, in the same household
    relation: str = ""  # "twin", "similar-twin", "senior" or "junior"
    partner_id: str = ""
    pnc_id: str = ""
    moved_on: date | None = None
    new_postcode: str = ""
    new_address_line: str = ""
    phone_changed_on: date | None = None
    new_mobile: str = ""


@dataclass(frozen=True, slots=True)
class SynthRecord:
    """One rendered export row, the person it belongs to and the corruptions applied to it."""

    source: str  # "ae" or "police"
    record_id: str
    person_id: str
    row: tuple[str, ...]
    corruptions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole synthetic scenario in memory: the population and both exports (in file order)."""

    people: tuple[SynthPerson, ...]
    ae: tuple[SynthRecord, ...]
    police: tuple[SynthRecord, ...]

    def truth_rows(self) -> list[tuple[str, str, str]]:
        """Rows of the truth file: one per record, A&E first, each in export order."""
        return [(r.person_id, r.source, r.record_id) for r in (*self.ae, *self.police)]


@dataclass(frozen=True, slots=True)
class SynthSummary:
    """Counts and paths of one :func:`synthesise` run."""

    people: int
    ae_rows: int
    police_rows: int
    people_in_both: int
    ae_people: int
    police_people: int
    ae_path: Path
    police_path: Path
    truth_path: Path


def synthesise(people: int, seed: int, out_dir: Path, *, today: date | None = None) -> SynthSummary:
    """Write ``ae_attendances.csv``, ``police_incidents.csv`` and ``truth.csv`` under ``out_dir``.

    Deterministic: the same ``people``, ``seed`` and ``today`` give byte-identical files. Each
    file is written to a temporary name in ``out_dir`` and then atomically renamed.
    """
    scenario = build_scenario(people, seed, today=today)
    out_dir.mkdir(parents=True, exist_ok=True)
    ae_path = out_dir / "ae_attendances.csv"
    police_path = out_dir / "police_incidents.csv"
    truth_path = out_dir / "truth.csv"
    _write_csv_atomic(ae_path, AE_COLUMNS, (r.row for r in scenario.ae))
    _write_csv_atomic(police_path, POLICE_COLUMNS, (r.row for r in scenario.police))
    _write_csv_atomic(truth_path, TRUTH_COLUMNS, scenario.truth_rows())
    ae_people = {r.person_id for r in scenario.ae}
    police_people = {r.person_id for r in scenario.police}
    return SynthSummary(
        people=len(scenario.people),
        ae_rows=len(scenario.ae),
        police_rows=len(scenario.police),
        people_in_both=len(ae_people & police_people),
        ae_people=len(ae_people),
        police_people=len(police_people),
        ae_path=ae_path,
        police_path=police_path,
        truth_path=truth_path,
    )


def build_scenario(people: int, seed: int, *, today: date | None = None) -> Scenario:
    """Draw the population and render both exports in memory (no I/O, deterministic)."""
    if isinstance(people, bool) or not isinstance(people, int) or people < 0:
        raise ValueError("people must be a non-negative integer")
    today = DEFAULT_TODAY if today is None else today
    root = random.Random(seed)
    pop_rng, sel_rng, rec_rng = (random.Random(root.getrandbits(64)) for _ in range(3))
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    pools = _Pools(fake, pop_rng, people)
    population = _population(people, pop_rng, pools, today)
    return _Renderer(population, pools, sel_rng, rec_rng, today).render()


# --- Pools ---------------------------------------------------------------------------------


class _Pools:
    """Values drawn once (from Faker and the tables) and then sampled per person."""

    def __init__(self, fake: Faker, rng: random.Random, people: int) -> None:
        groups = {name: table for name, table, _ in names.GROUPS}
        white = groups["white_british_irish"]
        groups["white_british_irish"] = names.NameGroup(
            male=white.male + tuple(fake.first_name_male() for _ in range(120)),
            female=white.female + tuple(fake.first_name_female() for _ in range(120)),
            family=white.family + tuple(fake.last_name() for _ in range(150)),
        )
        self.groups = groups
        self.group_table = _Table((name, weight) for name, _, weight in names.GROUPS)
        self.streets = names.STREETS + tuple(
            f"{fake.last_name()} {rng.choice(names.STREET_SUFFIXES)}" for _ in range(160)
        )
        seen: set[str] = set()
        n_units = max(60, people // 12)
        self.units = self._postcodes(fake, rng, _districts_for(n_units), n_units, seen)
        self.other_units = self._postcodes(fake, rng, names.OTHER_DISTRICTS, 40, seen)

    def _postcodes(
        self, fake: Faker, rng: random.Random, districts: Sequence[str], n: int, seen: set[str]
    ) -> tuple[tuple[str, str], ...]:
        """``n`` distinct (postcode, street) units: a district plus a Faker inward code."""
        units: list[tuple[str, str]] = []
        while len(units) < n:
            inward = str(fake.postcode())[-3:]
            if not (inward[0].isdigit() and all(c in _INWARD_LETTERS for c in inward[1:])):
                continue
            postcode = f"{rng.choice(districts)} {inward}"
            if postcode not in seen:
                seen.add(postcode)
                units.append((postcode, rng.choice(self.streets)))
        return tuple(units)


# --- Population ----------------------------------------------------------------------------


def _population(n: int, rng: random.Random, pools: _Pools, today: date) -> list[SynthPerson]:
    people: list[SynthPerson] = []
    nhs_seen: set[str] = set()
    household = 0
    while len(people) < n:
        size = min(_HOUSEHOLD_SIZES.pick(rng), n - len(people))
        group = pools.group_table.pick(rng)
        people.extend(_household(household, len(people), size, group, rng, pools, today, nhs_seen))
        household += 1
    return people


@dataclass(slots=True)
class _Member:
    """A household member being drawn (mutable until turned into a :class:`SynthPerson`)."""

    sex: str
    age: int
    family: str
    previous: str = ""
    given: str = ""


def _household(
    hid: int,
    first: int,
    size: int,
    group: str,
    rng: random.Random,
    pools: _Pools,
    today: date,
    nhs_seen: set[str],
) -> list[SynthPerson]:
    """Members of one household: a single adult, a couple, a family or a shared house."""
    table = pools.groups[group]
    family = rng.choice(table.family)
    if rng.random() < DOUBLE_BARRELLED_RATE:
        family = f"{family}-{rng.choice(table.family)}"
    postcode, street = rng.choice(pools.units)
    address = f"{rng.randint(1, 180)} {street}"
    if rng.random() < FLAT_RATE:
        address = f"Flat {rng.randint(1, 12)}, {address}"
    landline = _landline(rng) if rng.random() < LANDLINE_RATE else ""
    specs: list[_Member] = []
    related: dict[int, tuple[int, str]] = {}
    partners: dict[int, int] = {}
    shared = size > 1 and rng.random() < SHARED_HOUSE_RATE
    if size == 1 or shared:
        for _ in range(size):
            specs.append(_Member(_sex(rng), _adult_age(rng), rng.choice(table.family)))
        if not shared:
            specs[0].family = family
    else:
        parents = 1 if size >= 3 and rng.random() < SINGLE_PARENT_RATE else min(2, size)
        children = size - parents
        lead = _Member(_sex(rng), rng.randint(32, 58) if children else _adult_age(rng), family)
        specs.append(lead)
        if parents == 2:
            other = ("F" if lead.sex == "M" else "M") if rng.random() < 0.95 else lead.sex
            partner = _Member(other, max(18, min(90, lead.age + round(rng.gauss(0, 4)))), family)
            if rng.random() >= COUPLE_SHARED_SURNAME_RATE:
                partner.family = rng.choice(table.family)
            elif rng.random() < PREVIOUS_SURNAME_RATE:
                partner.previous = rng.choice(table.family)
            specs.append(partner)
            partners = {0: 1, 1: 0}
        for _ in range(children):
            child = _Member(_sex(rng), rng.randint(10, max(10, min(25, lead.age - 18))), family)
            if parents == 2 and rng.random() < CHILD_OTHER_SURNAME_RATE:
                child.family = specs[1].previous or specs[1].family
            specs.append(child)
        if children >= 2 and rng.random() < TWIN_RATE:
            a, b = specs[parents], specs[parents + 1]
            b.age, b.family, kind = a.age, a.family, "twin"
            if rng.random() < SIMILAR_TWIN_NAME_RATE:
                b.sex, kind = a.sex, "similar-twin"
                a.given, b.given = rng.choice(names.SIMILAR_TWIN_NAMES[a.sex])
            related[parents], related[parents + 1] = (parents + 1, kind), (parents, kind)
        fathers = [i for i in range(parents) if specs[i].sex == "M"]
        sons = [i for i in range(parents, size) if specs[i].sex == "M" and i not in related]
        if fathers and sons and rng.random() < JUNIOR_RATE:
            related[fathers[0]], related[sons[0]] = (sons[0], "senior"), (fathers[0], "junior")
    members: list[SynthPerson] = []
    twin_dob: dict[int, date] = {}
    for i, spec in enumerate(specs):
        pool = table.male if spec.sex == "M" else table.female
        given = spec.given
        while not given or any(given == m.given_name for m in members):
            given = rng.choice(pool)
        rel, kind = related.get(i, (-1, ""))
        if kind == "junior":
            given = members[rel].given_name
        middle = rng.choice(pool) if rng.random() < MIDDLE_NAME_RATE else ""
        dob = twin_dob.get(i) or _dob(rng, spec.age, today)
        if kind.endswith("twin"):
            twin_dob[rel] = dob
        nhs = random_valid_nhs_number(rng)
        while nhs in nhs_seen:
            nhs = random_valid_nhs_number(rng)
        nhs_seen.add(nhs)
        has_mobile = spec.age >= 12 and rng.random() < MOBILE_RATE
        has_email = spec.age >= 14 and rng.random() < EMAIL_RATE
        person = SynthPerson(
            person_id=_pid(first + i),
            household_id=hid,
            group=group,
            given_name=given,
            middle_name="" if middle == given else middle,
            family_name=_gendered(spec.family, spec.sex),
            previous_family_name=_gendered(spec.previous, spec.sex),
            sex=spec.sex,
            dob=dob,
            nhs_number=nhs,
            postcode=postcode,
            address_line=address,
            mobile=_mobile(rng) if has_mobile else "",
            landline=landline,
            email=_email(rng, given, _gendered(spec.family, spec.sex)) if has_email else "",
            related_id=_pid(first + rel) if rel >= 0 else "",
            relation=kind,
            partner_id=_pid(first + partners[i]) if i in partners else "",
        )
        members.append(_life_events(person, rng, pools, today))
    return members


def _life_events(
    person: SynthPerson, rng: random.Random, pools: _Pools, today: date
) -> SynthPerson:
    """Maybe move house and/or change mobile number during the record window."""
    start = today.toordinal() - WINDOW_DAYS
    if rng.random() < MOVE_RATE:
        units = pools.other_units if rng.random() < MOVE_OUT_OF_AREA_RATE else pools.units
        postcode, street = rng.choice(units)
        person = replace(
            person,
            moved_on=date.fromordinal(start + rng.randrange(WINDOW_DAYS)),
            new_postcode=postcode,
            new_address_line=f"{rng.randint(1, 180)} {street}",
        )
    if person.mobile and rng.random() < PHONE_CHANGE_RATE:
        person = replace(
            person,
            phone_changed_on=date.fromordinal(start + rng.randrange(WINDOW_DAYS)),
            new_mobile=_mobile(rng),
        )
    return person


def _pid(index: int) -> str:
    return f"P{index + 1:07d}"


def _sex(rng: random.Random) -> str:
    return "M" if rng.random() < 0.5 else "F"


def _adult_age(rng: random.Random) -> int:
    low, high = _ADULT_AGES.pick(rng)
    return rng.randint(low, high)


def _dob(rng: random.Random, age: int, today: date) -> date:
    return date.fromordinal(today.toordinal() - int((age + rng.random()) * 365.2425) - 1)


def _mobile(rng: random.Random) -> str:
    prefix = rng.choice(_MOBILE_PREFIXES)
    width = 11 - len(prefix)
    return f"{prefix}{rng.randrange(10**width):0{width}d}"


def _landline(rng: random.Random) -> str:
    prefix = rng.choice(names.LANDLINE_PREFIXES)
    width = 11 - len(prefix)
    return f"{prefix}{rng.randrange(10**width):0{width}d}"


def _email(rng: random.Random, given: str, family: str) -> str:
    first, last = (_ascii(x).lower().replace("'", "").replace(" ", "") for x in (given, family))
    local = rng.choice((f"{first}.{last}", f"{first}{last}", f"{first[0]}{last}", first))
    if rng.random() < 0.6:
        local += str(rng.randint(1, 99))
    return f"{local}@{rng.choice(names.EMAIL_DOMAINS)}"


# --- Selection and rendering ----------------------------------------------------------------


class _Renderer:
    """Decides who appears in each source and renders their records with corruption."""

    def __init__(
        self,
        people: list[SynthPerson],
        pools: _Pools,
        sel_rng: random.Random,
        rec_rng: random.Random,
        today: date,
    ) -> None:
        self.people = people
        self.pools = pools
        self.sel = sel_rng
        self.rng = rec_rng
        self.today = today
        self.index = {p.person_id: i for i, p in enumerate(people)}
        self.variants = _variant_table()

    def render(self) -> Scenario:
        ae_kind, role = self._select()
        ae_rows: list[tuple[datetime, int, list[str], tuple[str, ...]]] = []
        police_rows: list[tuple[datetime, int, list[str], tuple[str, ...]]] = []
        start = datetime.combine(self.today, datetime.min.time()) - timedelta(days=WINDOW_DAYS)
        pnc_serials: set[int] = set()
        for i, person in enumerate(self.people):
            assault_times: list[datetime] = []
            if ae_kind[i]:
                count = _AE_COUNTS.pick(self.rng)
                for when in sorted(self._when(start) for _ in range(count)):
                    row, tags = self._ae_row(person, when, ae_kind[i] == 1, role[i] == "Victim")
                    ae_rows.append((when, i, row, tags))
                    if ae_kind[i] == 1:
                        assault_times.append(when)
            if role[i]:
                old_enough = self.today.year - person.dob.year > PNC_MIN_AGE
                if old_enough and self.sel.random() < PNC_RATE[role[i]]:
                    person = self._with_pnc(person, pnc_serials)
                    self.people[i] = person
                count = _POLICE_COUNTS.pick(self.rng)
                times = [self._when(start) for _ in range(count)]
                if assault_times and self.rng.random() < LINKED_TIME_RATE:
                    hours_before = timedelta(minutes=self.rng.randint(20, 480))
                    times[0] = self.rng.choice(assault_times) - hours_before
                for when in sorted(times):
                    row_role = role[i]
                    if self.rng.random() < ROLE_FLIP_RATE:
                        row_role = "Suspect" if row_role == "Victim" else "Victim"
                    police_rows.append((when, i, *self._police_row(person, when, row_role)))
        return Scenario(
            tuple(self.people), self._records("ae", ae_rows), self._records("police", police_rows)
        )

    def _records(
        self, source: str, rows: list[tuple[datetime, int, list[str], tuple[str, ...]]]
    ) -> tuple[SynthRecord, ...]:
        """Sort rows by time, number them and attach the owning person."""
        rows.sort(key=lambda r: (r[0], r[1]))
        ids = _ids((r[0] for r in rows), police=source == "police")
        return tuple(
            SynthRecord(source, rid, self.people[i].person_id, (rid, *row), tags)
            for (_, i, row, tags), rid in zip(rows, ids, strict=True)
        )

    def _select(self) -> tuple[list[int], list[str]]:
        """Per person: A&E kind (0 none, 1 assault, 2 other) and main police role ("" none)."""
        rng, people = self.sel, self.people
        weights = [_propensity(p.dob, self.today) for p in people]
        mean = sum(weights) / len(weights) if weights else 1.0
        ae_kind = [0] * len(people)
        for i, w in enumerate(weights):
            if rng.random() < min(0.95, AE_PERSON_RATE * w / mean):
                ae_kind[i] = 1 if rng.random() < AE_ASSAULT_SHARE else 2
        self._co_occur(ae_kind)
        in_police = [False] * len(people)
        for i, w in enumerate(weights):
            rate = (POLICE_GIVEN_NOT_AE, POLICE_GIVEN_AE_ASSAULT, POLICE_GIVEN_AE_OTHER)[ae_kind[i]]
            in_police[i] = rng.random() < min(0.95, rate * (w / mean if not ae_kind[i] else 1.0))
        police = [int(x) for x in in_police]
        self._co_occur(police)
        role = ["" for _ in people]
        for i, person in enumerate(people):
            if police[i]:
                role[i] = "Victim" if rng.random() < VICTIM_RATE[person.sex] else "Suspect"
        for i, person in enumerate(people):
            if role[i] == "Victim" and person.partner_id and rng.random() < PARTNER_SUSPECT_RATE:
                j = self.index[person.partner_id]
                if not role[j]:
                    role[j] = "Suspect"
        return ae_kind, role

    def _co_occur(self, flags: list[int]) -> None:
        """Add the twin (or senior/junior namesake) of some people who appear."""
        for i, person in enumerate(self.people):
            if flags[i] and person.related_id:
                j = self.index[person.related_id]
                if not flags[j] and self.sel.random() < RELATIVE_CO_OCCURRENCE:
                    flags[j] = flags[i]

    def _with_pnc(self, person: SynthPerson, serials: set[int]) -> SynthPerson:
        first_year = max(person.dob.year + PNC_MIN_AGE, 1995)
        year = self.sel.randint(min(first_year, self.today.year - 1), self.today.year - 1)
        serial = self.sel.randrange(1, 1_000_000)
        while serial in serials:
            serial = self.sel.randrange(1, 1_000_000)
        serials.add(serial)
        return replace(person, pnc_id=make_pnc_id(year, serial))

    def _when(self, start: datetime) -> datetime:
        day = self.rng.randrange(WINDOW_DAYS)
        hour = _HOURS.pick(self.rng)
        return start + timedelta(days=day, hours=hour, minutes=self.rng.randrange(60))

    # Shared field rendering -------------------------------------------------------------------

    def _names(self, p: SynthPerson, r: CorruptionRates, tags: list[str]) -> tuple[str, str]:
        rng = self.rng
        given, family = p.given_name, p.family_name
        if p.previous_family_name and rng.random() < r.previous_surname:
            family = p.previous_family_name
            tags.append("previous_surname")
        if "-" in family and rng.random() < r.surname_part:
            family = rng.choice((*family.split("-"), family.replace("-", " ")))
            tags.append("surname_part")
        elif rng.random() < r.second_surname:
            second = _gendered(rng.choice(self.pools.groups[p.group].family), p.sex)
            family = f"{family}-{second}"
            tags.append("second_surname")
        if given in names.NICKNAMES and rng.random() < r.nickname:
            given = rng.choice(names.NICKNAMES[given])
            tags.append("nickname")
        elif given in self.variants and rng.random() < r.variant:
            given = rng.choice(self.variants[given])
            tags.append("variant")
        if family in self.variants and rng.random() < r.variant:
            family = rng.choice(self.variants[family])
            tags.append("variant")
        given = self._accent(given, r, tags)
        family = self._accent(family, r, tags)
        if p.middle_name and rng.random() < r.middle_in_forename:
            given = f"{given} {p.middle_name}"
            tags.append("middle_in_forename")
        if rng.random() < r.name_typo:
            given = _typo(given, rng)
            tags.append("name_typo")
        if rng.random() < r.name_typo:
            family = _typo(family, rng)
            tags.append("name_typo")
        swap = (
            r.name_swap_family_first if p.group in names.FAMILY_NAME_FIRST_GROUPS else r.name_swap
        )
        if rng.random() < swap:
            given, family = family, given
            tags.append("name_swap")
        return given, family

    def _accent(self, name: str, r: CorruptionRates, tags: list[str]) -> str:
        plain = _ascii(name)
        if plain != name:
            if self.rng.random() < r.accent_drop:
                tags.append("accent_drop")
                return plain
        elif name in names.ACCENTED and self.rng.random() < r.accent_add:
            tags.append("accent_add")
            return names.ACCENTED[name]
        return name

    def _dob(self, p: SynthPerson, r: CorruptionRates, tags: list[str]) -> date | None:
        rng, dob = self.rng, p.dob
        if rng.random() < r.dob_missing:
            tags.append("dob_missing")
            return None
        if rng.random() < r.dob_placeholder:
            tags.append("dob_placeholder")
            return date(1900, 1, 1)
        swappable = dob.day <= 12 and dob.month <= 12 and dob.day != dob.month
        if swappable and rng.random() < r.dob_day_month_swap:
            tags.append("dob_day_month_swap")
            dob = date(dob.year, dob.day, dob.month)
        if rng.random() < r.dob_typo:
            tags.append("dob_typo")
            kind = rng.randrange(3)
            if kind == 2:
                dob += timedelta(days=rng.choice((-1, 1)))
            else:
                year = dob.year + rng.choice((-1, 1)) * (1 if kind == 0 else 10)
                dob = dob.replace(year=year, day=28 if (dob.month, dob.day) == (2, 29) else dob.day)
        return dob

    def _nhs(self, p: SynthPerson, r: CorruptionRates, tags: list[str]) -> str:
        if self.rng.random() >= r.nhs_present:
            tags.append("nhs_missing")
            return ""
        nhs = p.nhs_number
        if self.rng.random() < r.nhs_typo:
            tags.append("nhs_typo")
            k = self.rng.randrange(10)
            nhs = nhs[:k] + str((int(nhs[k]) + self.rng.randint(1, 9)) % 10) + nhs[k + 1 :]
        return nhs

    def _address(
        self, p: SynthPerson, when: datetime, r: CorruptionRates, tags: list[str]
    ) -> tuple[str, str]:
        rng = self.rng
        moved = p.moved_on is not None and when.date() >= p.moved_on
        postcode, address = (
            (p.new_postcode, p.new_address_line) if moved else (p.postcode, p.address_line)
        )
        if moved:
            tags.append("moved")
        if rng.random() < r.postcode_missing:
            postcode = ""
            tags.append("postcode_missing")
        elif rng.random() < r.postcode_zz99:
            postcode = rng.choice(_ZZ99)
            tags.append("postcode_zz99")
        else:
            if rng.random() < r.postcode_typo:
                k = len(postcode) - rng.randint(1, 2)
                letter = rng.choice(_INWARD_LETTERS.replace(postcode[k], ""))
                postcode = postcode[:k] + letter + postcode[k + 1 :]
                tags.append("postcode_typo")
            if rng.random() < r.postcode_unformatted:
                postcode = rng.choice((postcode.lower(), postcode.replace(" ", "")))
                if rng.random() < 0.5:
                    postcode = postcode.lower().replace(" ", "")
                tags.append("postcode_unformatted")
        if rng.random() < r.address_missing:
            tags.append("address_missing")
            return postcode, ""
        if rng.random() < r.address_abbrev:
            for long, short in _ABBREVIATIONS:
                if long in address:
                    address = address.replace(long, short)
                    tags.append("address_abbrev")
                    break
        if rng.random() < r.address_typo:
            words = address.split(" ")
            k = rng.randrange(len(words))
            if words[k].isalpha() and len(words[k]) >= 3:
                words[k] = _typo(words[k], rng)
                address = " ".join(words)
                tags.append("address_typo")
        return postcode, address

    def _phone(
        self, p: SynthPerson, when: datetime, r: CorruptionRates, tags: list[str]
    ) -> tuple[str, str]:
        """(raw 11-digit number or placeholder text, kind): kind is "mobile", "landline" or ""."""
        rng = self.rng
        if rng.random() < r.phone_missing:
            tags.append("phone_missing")
            return "", ""
        if rng.random() < r.phone_placeholder:
            tags.append("phone_placeholder")
            return rng.choice(_PHONE_PLACEHOLDERS), ""
        mobile = p.mobile
        if p.phone_changed_on is not None and when.date() >= p.phone_changed_on:
            mobile = p.new_mobile
            tags.append("phone_changed")
        if p.landline and (not mobile or rng.random() < r.phone_landline):
            if mobile:
                tags.append("phone_landline")
            return p.landline, "landline"
        if not mobile:
            tags.append("phone_missing")
            return "", ""
        return mobile, "mobile"

    def _email(self, p: SynthPerson, r: CorruptionRates) -> str:
        return p.email if p.email and self.rng.random() < r.email_present else ""

    # Per-export rows -----------------------------------------------------------------------------

    def _ae_row(
        self, p: SynthPerson, when: datetime, assault: bool, police_victim: bool
    ) -> tuple[list[str], tuple[str, ...]]:
        rng, r = self.rng, AE_RATES
        tags: list[str] = []
        forename, surname = self._names(p, r, tags)
        dob = self._dob(p, r, tags)
        postcode, address = self._address(p, when, r, tags)
        if rng.random() < r.upper_case:
            forename, surname, address = forename.upper(), surname.upper(), address.upper()
            tags.append("upper_case")
        gender = "Male" if p.sex == "M" else "Female"
        if rng.random() < r.sex_unknown:
            gender = rng.choice(("Not known", "Not stated"))
            tags.append("sex_unknown")
        nhs = self._nhs(p, r, tags)
        phone, kind = self._phone(p, when, r, tags)
        method = location = ""
        da = "N"
        if assault:
            method = _ASSAULT_METHODS.pick(rng)
            domestic = rng.random() < (AE_DA_RATE_POLICE_VICTIM if police_victim else AE_DA_RATE)
            da = "Y" if domestic else "N"
            location = "Home" if domestic and rng.random() < 0.8 else ""
            location = location or _LOCATIONS.pick(rng)
        row = [
            forename,
            surname,
            "" if dob is None else f"{dob.day:02d}/{dob.month:02d}/{dob.year:04d}",
            gender,
            f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}" if nhs else "",
            postcode,
            address,
            _format_phone_ae(phone, kind, rng),
            self._email(p, r),
            f"{when:%Y-%m-%d %H:%M}",
            method,
            location,
            da,
        ]
        return row, tuple(tags)

    def _police_row(
        self, p: SynthPerson, when: datetime, role: str
    ) -> tuple[list[str], tuple[str, ...]]:
        rng, r = self.rng, POLICE_RATES
        tags: list[str] = []
        forename, surname = self._names(p, r, tags)
        aliases = ""
        if rng.random() < r.alias:
            aliases = ";".join(self._aliases(p, forename, surname))
            tags.append("alias")
        dob = self._dob(p, r, tags)
        postcode, address = self._address(p, when, r, tags)
        if rng.random() < r.upper_case:
            forename, surname, address = forename.upper(), surname.upper(), address.upper()
            aliases = aliases.upper()
            tags.append("upper_case")
        sex = p.sex
        if rng.random() < r.sex_unknown:
            sex = "U"
            tags.append("sex_unknown")
        pnc = p.pnc_id if p.pnc_id and rng.random() < r.pnc_present else ""
        phone, kind = self._phone(p, when, r, tags)
        row = [
            forename,
            surname,
            aliases,
            "" if dob is None else f"{dob.day:02d}-{_MONTHS[dob.month - 1]}-{dob.year:04d}",
            sex,
            pnc,
            self._nhs(p, r, tags),
            postcode,
            address,
            _format_phone_police(phone, kind, rng),
            self._email(p, r),
            f"{when:%Y-%m-%dT%H:%M:%S}",
            _OFFENCE_CODES.pick(rng),
            _DASH_RISK.pick(rng),
            role,
        ]
        return row, tuple(tags)

    def _aliases(self, p: SynthPerson, forename: str, surname: str) -> list[str]:
        """One or two other names: previous surname, nickname, spelling variant or made up."""
        rng = self.rng
        given, family = p.given_name, p.family_name
        options = [_gendered(rng.choice(self.pools.groups[p.group].family), p.sex)]
        if p.previous_family_name:
            options.append(p.previous_family_name)
        given_options = [given, *names.NICKNAMES.get(given, ()), *self.variants.get(given, ())]
        out: list[str] = []
        for _ in range(rng.choice((1, 1, 1, 2))):
            alias = f"{rng.choice(given_options)} {rng.choice((family, *options))}"
            if alias != f"{forename} {surname}" and alias not in out:
                out.append(alias)
        return out or [f"{given} {options[0]}"]


def _propensity(dob: date, today: date) -> float:
    age = today.year - dob.year
    for max_age, weight in AGE_PROPENSITY:
        if age <= max_age:
            return weight
    return 0.2


def _ids(times: Iterable[datetime], *, police: bool = False) -> list[str]:
    """Record ids numbered per calendar year in time order: AE25-0001234 or DA/2025/012345."""
    counters: dict[int, int] = {}
    out = []
    for when in times:
        n = counters[when.year] = counters.get(when.year, 0) + 1
        out.append(f"DA/{when.year}/{n:06d}" if police else f"AE{when.year % 100:02d}-{n:07d}")
    return out


def _format_phone_ae(number: str, kind: str, rng: random.Random) -> str:
    if not kind or rng.random() < 0.4:
        return number
    if number.startswith("02"):
        return f"{number[:3]} {number[3:7]} {number[7:]}"
    return f"{number[:5]} {number[5:]}"


def _format_phone_police(number: str, kind: str, rng: random.Random) -> str:
    if not kind or rng.random() < 0.5:
        return number
    if number.startswith("02"):
        return f"+44 {number[1:3]} {number[3:7]} {number[7:]}"
    return f"+44 {number[1:5]} {number[5:]}"


def _typo(text: str, rng: random.Random) -> str:
    """One inserted, deleted, substituted or transposed character (case follows the text)."""
    if len(text) < 2:
        return text
    k = rng.randrange(len(text))
    char = rng.choice(_LOWER)
    if text[k].isupper():
        char = char.upper()
    op = rng.randrange(4)
    if op == 0:
        return text[:k] + char + text[k:]
    if op == 1:
        return text[:k] + text[k + 1 :]
    if op == 3 and k + 1 < len(text) and text[k] != text[k + 1]:
        return text[:k] + text[k + 1] + text[k] + text[k + 2 :]
    if char == text[k]:
        char = "x" if char != "x" else "y"
    return text[:k] + char + text[k + 1 :]


@lru_cache(maxsize=4096)
def _ascii(text: str) -> str:
    """Drop accents (Zoë -> Zoe, Łukasz -> Lukasz)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_NON_DECOMPOSING))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _variant_table() -> dict[str, tuple[str, ...]]:
    """Name -> other spellings: transliteration groups (any way) and anglicisations (one way)."""
    table: dict[str, list[str]] = {}
    for group in names.VARIANT_GROUPS:
        for name in group:
            others = table.setdefault(name, [])
            others.extend(o for o in group if o != name and o not in others)
    for name, english in names.ANGLICISED.items():
        others = table.setdefault(name, [])
        others.extend(o for o in english if o not in others)
    return {name: tuple(others) for name, others in table.items()}


def _gendered(family: str, sex: str) -> str:
    """Polish adjectival surnames agree with sex: Kowalski (M), Kowalska (F)."""
    parts = family.split("-")
    for k, part in enumerate(parts):
        if sex == "F" and part.endswith(("ski", "cki", "dzki")):
            parts[k] = part[:-1] + "a"
        elif sex == "M" and part.endswith(("ska", "cka", "dzka")):
            parts[k] = part[:-1] + "i"
    return "-".join(parts)


def _write_csv_atomic(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Write a UTF-8 CSV with ``\\n`` line ends to a temporary file, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
