"""The synthetic scenario generator: determinism, files, truth, overlap and corruption rates."""

from __future__ import annotations

import collections
import csv
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from connectors import _synth_names as names
from connectors import synth
from connectors.nhs import normalise_nhs_number
from connectors.phone import make_phone_normaliser
from connectors.pnc import normalise_pnc_id
from connectors.postcode import normalise_postcode

PEOPLE = 2000
SEED = 11
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def scenario() -> synth.Scenario:
    return synth.build_scenario(PEOPLE, SEED)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> synth.SynthSummary:
    return synth.synthesise(PEOPLE, SEED, tmp_path_factory.mktemp("synth") / "out")


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return next(csv.reader(fh))


def _rate(
    records: Sequence[synth.SynthRecord],
    tag: str,
    eligible: Callable[[synth.SynthRecord], bool] = lambda r: True,
) -> float:
    pool = [r for r in records if eligible(r)]
    assert pool, f"no records eligible for {tag}"
    return sum(tag in r.corruptions for r in pool) / len(pool)


def _masculine(family: str) -> str:
    """Polish surnames agree with sex (Kowalski, Kowalska): compare their masculine forms."""
    return re.sub(r"(sk|ck)a\b", r"\1i", family)


def _people(scenario: synth.Scenario) -> dict[str, synth.SynthPerson]:
    return {p.person_id: p for p in scenario.people}


# --- Determinism and files ---------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    """Two runs with the same seed write byte-identical files."""
    a = synth.synthesise(300, 5, tmp_path / "a")
    b = synth.synthesise(300, 5, tmp_path / "b")
    for left, right in ((a.ae_path, b.ae_path), (a.police_path, b.police_path)):
        assert left.read_bytes() == right.read_bytes()
    assert a.truth_path.read_bytes() == b.truth_path.read_bytes()


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    """A different seed gives different exports."""
    a = synth.synthesise(300, 5, tmp_path / "a")
    b = synth.synthesise(300, 6, tmp_path / "b")
    assert a.ae_path.read_bytes() != b.ae_path.read_bytes()
    assert a.police_path.read_bytes() != b.police_path.read_bytes()


def test_output_does_not_depend_on_hash_seed(tmp_path: Path) -> None:
    """A fresh interpreter with another PYTHONHASHSEED writes the same bytes."""
    local = synth.synthesise(150, 9, tmp_path / "here")
    code = (
        "import sys; from pathlib import Path; from connectors.synth import synthesise; "
        "synthesise(150, 9, Path(sys.argv[1]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "there")], check=True, env=env, cwd=REPO
    )
    for path in (local.ae_path, local.police_path, local.truth_path):
        assert path.read_bytes() == (tmp_path / "there" / path.name).read_bytes()


def test_today_moves_the_record_window() -> None:
    """Records fall in the two years before ``today``, which defaults to 2026-01-01."""
    default = synth.build_scenario(200, 3)
    later = synth.build_scenario(200, 3, today=date(2030, 6, 1))
    for scen, today in ((default, date(2026, 1, 1)), (later, date(2030, 6, 1))):
        start = datetime.combine(today, datetime.min.time()) - timedelta(days=731)
        for rec in scen.ae:
            when = datetime.strptime(rec.row[10], "%Y-%m-%d %H:%M")
            assert start <= when < datetime.combine(today, datetime.min.time())


def test_headers_are_exactly_as_specified(written: synth.SynthSummary) -> None:
    """Each file's header row is the documented column list, in order."""
    assert _header(written.ae_path) == [
        "attendance_id", "forename", "surname", "dob", "gender", "nhs_no", "postcode",
        "address_line", "tel", "email", "arrival_datetime", "assault_method", "location_type",
        "da_flag",
    ]  # fmt: skip
    assert _header(written.police_path) == [
        "IncidentRef", "FirstName", "LastName", "Aliases", "DateOfBirth", "Sex", "PNCId",
        "NHSNumber", "HomePostcode", "HomeAddress", "ContactPhone", "Email", "IncidentDateTime",
        "OffenceCode", "DashRisk", "Role",
    ]  # fmt: skip
    assert _header(written.truth_path) == ["person_id", "source", "record_id"]


def test_files_are_utf8_with_newline_endings(written: synth.SynthSummary) -> None:
    """Files decode as UTF-8, use bare newlines and keep accented names."""
    text = ""
    for path in (written.ae_path, written.police_path, written.truth_path):
        data = path.read_bytes()
        assert b"\r\n" not in data
        assert data.endswith(b"\n")
        text += data.decode("utf-8")
    assert re.search(r"[À-ž]", text)


def test_out_dir_is_created_and_no_temporary_files_remain(written: synth.SynthSummary) -> None:
    """The output directory holds exactly the three files."""
    names_there = sorted(p.name for p in written.ae_path.parent.iterdir())
    assert names_there == ["ae_attendances.csv", "police_incidents.csv", "truth.csv"]


def test_summary_counts_match_the_files(written: synth.SynthSummary) -> None:
    """The summary's counts are those of the written files."""
    ae, police = _read(written.ae_path), _read(written.police_path)
    truth = _read(written.truth_path)
    owner = {(t["source"], t["record_id"]): t["person_id"] for t in truth}
    ae_people = {owner["ae", r["attendance_id"]] for r in ae}
    police_people = {owner["police", r["IncidentRef"]] for r in police}
    assert written.people == PEOPLE
    assert (written.ae_rows, written.police_rows) == (len(ae), len(police))
    assert (written.ae_people, written.police_people) == (len(ae_people), len(police_people))
    assert written.people_in_both == len(ae_people & police_people)


def test_zero_people_writes_header_only_files(tmp_path: Path) -> None:
    """No people gives three files with only their headers."""
    summary = synth.synthesise(0, 1, tmp_path)
    assert summary.ae_rows == summary.police_rows == summary.people_in_both == 0
    assert summary.truth_path.read_text(encoding="utf-8") == "person_id,source,record_id\n"


def test_negative_people_is_refused(tmp_path: Path) -> None:
    """A negative population size raises ValueError."""
    with pytest.raises(ValueError, match="non-negative"):
        synth.synthesise(-1, 1, tmp_path)


# --- Truth ------------------------------------------------------------------------------------


def test_truth_names_every_record_exactly_once(written: synth.SynthSummary) -> None:
    """Every record id of both exports is in exactly one truth row, and nothing else is."""
    truth = _read(written.truth_path)
    keys = [(t["source"], t["record_id"]) for t in truth]
    assert len(keys) == len(set(keys))
    ae_ids = [r["attendance_id"] for r in _read(written.ae_path)]
    police_ids = [r["IncidentRef"] for r in _read(written.police_path)]
    assert len(ae_ids) == len(set(ae_ids))
    assert len(police_ids) == len(set(police_ids))
    expected = {("ae", i) for i in ae_ids} | {("police", i) for i in police_ids}
    assert set(keys) == expected
    assert {t["source"] for t in truth} == {"ae", "police"}
    assert all(re.fullmatch(r"P[0-9]{7}", t["person_id"]) for t in truth)


# --- Formats ----------------------------------------------------------------------------------


def test_ae_fields_have_the_documented_formats(written: synth.SynthSummary) -> None:
    """A&E ids, dates, codes and NHS number layout follow the spec."""
    for row in _read(written.ae_path):
        assert re.fullmatch(r"AE[0-9]{2}-[0-9]{7}", row["attendance_id"])
        assert row["dob"] == "" or re.fullmatch(r"[0-9]{2}/[0-9]{2}/[0-9]{4}", row["dob"])
        assert row["gender"] in {"Male", "Female", "Not known", "Not stated"}
        assert row["nhs_no"] == "" or re.fullmatch(r"[0-9]{3} [0-9]{3} [0-9]{4}", row["nhs_no"])
        datetime.strptime(row["arrival_datetime"], "%Y-%m-%d %H:%M")
        assert row["assault_method"] in {
            "", "Fist", "Kick", "Knife", "Glass or bottle", "Blunt object", "Other"
        }  # fmt: skip
        assert row["location_type"] in {
            "", "Street", "Home", "Pub or club", "Other public place", "Other"
        }  # fmt: skip
        assert row["da_flag"] in {"Y", "N"}
        assert (row["location_type"] == "") == (row["assault_method"] == "")


def test_police_fields_have_the_documented_formats(written: synth.SynthSummary) -> None:
    """Police refs, dates, codes, PNC ids and phone styles follow the spec."""
    rows = _read(written.police_path)
    for row in rows:
        assert re.fullmatch(r"DA/[0-9]{4}/[0-9]{6}", row["IncidentRef"])
        if row["DateOfBirth"]:
            datetime.strptime(row["DateOfBirth"], "%d-%b-%Y")
        assert row["Sex"] in {"M", "F", "U"}
        assert row["PNCId"] == "" or normalise_pnc_id(row["PNCId"]).value == row["PNCId"]
        assert row["NHSNumber"] == "" or re.fullmatch(r"[0-9]{10}", row["NHSNumber"])
        datetime.strptime(row["IncidentDateTime"], "%Y-%m-%dT%H:%M:%S")
        assert row["OffenceCode"] in {"8N", "8L", "105A", "8H", "5D"}
        assert row["DashRisk"] in {"Standard", "Medium", "High"}
        assert row["Role"] in {"Victim", "Suspect"}
    phones = [r["ContactPhone"] for r in rows if r["ContactPhone"]]
    assert any(p.startswith("+44 7") for p in phones)
    assert any(re.fullmatch(r"07[0-9]{9}", p) for p in phones)
    assert 0.3 <= sum(bool(r["PNCId"]) for r in rows) / len(rows) <= 0.5
    assert 0.02 <= sum(bool(r["NHSNumber"]) for r in rows) / len(rows) <= 0.1
    assert {"Victim", "Suspect"} <= {r["Role"] for r in rows}


# --- Population and overlap -------------------------------------------------------------------


def test_overlap_between_sources_is_realistic(scenario: synth.Scenario) -> None:
    """About a third of A&E people (and of assault victims) are known to police."""
    ae_people = {r.person_id for r in scenario.ae}
    police_people = {r.person_id for r in scenario.police}
    assault = {r.person_id for r in scenario.ae if r.row[11]}
    assert 0.2 <= len(ae_people & police_people) / len(ae_people) <= 0.45
    assert 0.25 <= len(assault & police_people) / len(assault) <= 0.45
    assert 0.6 <= len(assault) / len(ae_people) <= 0.8
    assert police_people - ae_people


def test_some_people_have_repeat_records(scenario: synth.Scenario) -> None:
    """Most people have one record per source; some have several, at most six."""
    for records in (scenario.ae, scenario.police):
        counts = collections.Counter(r.person_id for r in records).values()
        assert max(counts) <= 6
        assert sum(c >= 3 for c in counts) >= 5
        assert sum(c == 1 for c in counts) / len(counts) >= 0.55


def test_household_members_share_surname_and_postcode_in_exports(
    written: synth.SynthSummary,
) -> None:
    """Distinct people with the same surname and postcode appear in the exports."""
    owner = {(t["source"], t["record_id"]): t["person_id"] for t in _read(written.truth_path)}
    keyed: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for row in _read(written.ae_path):
        key = (row["surname"].upper(), normalise_postcode(row["postcode"] or "x").value or "")
        keyed[key].add(owner["ae", row["attendance_id"]])
    assert sum(len(ids) >= 2 for (_, pc), ids in keyed.items() if pc) >= 20


def test_households_have_realistic_sizes(scenario: synth.Scenario) -> None:
    """Households have one to six members, most of one or two."""
    sizes = collections.Counter(p.household_id for p in scenario.people).values()
    assert max(sizes) <= 6
    assert sum(s <= 2 for s in sizes) / len(sizes) >= 0.5
    assert any(s >= 5 for s in sizes)


def test_twins_share_dob_and_surname_with_different_names(scenario: synth.Scenario) -> None:
    """Twins exist, share date of birth, surname and address, and differ in given name."""
    people = _people(scenario)
    appearing = {r.person_id for r in (*scenario.ae, *scenario.police)}
    twins = [p for p in scenario.people if p.relation.endswith("twin")]
    assert twins
    for p in twins:
        other = people[p.related_id]
        assert other.related_id == p.person_id
        assert (other.dob, other.household_id) == (p.dob, p.household_id)
        assert _masculine(other.family_name) == _masculine(p.family_name)
        assert other.given_name != p.given_name
    assert any(p.relation == "similar-twin" for p in twins)
    assert any(p.person_id in appearing and p.related_id in appearing for p in twins)


def test_seniors_and_juniors_share_a_given_name(scenario: synth.Scenario) -> None:
    """Some fathers and sons share given and family name but not date of birth."""
    people = _people(scenario)
    juniors = [p for p in scenario.people if p.relation == "junior"]
    assert juniors
    for p in juniors:
        senior = people[p.related_id]
        assert senior.relation == "senior"
        assert senior.given_name == p.given_name
        assert senior.dob < p.dob


def test_ages_are_ten_to_ninety_and_skewed_young(scenario: synth.Scenario) -> None:
    """People in the exports are 10 to 90, mostly young adults."""
    people = _people(scenario)
    appearing = {r.person_id for r in (*scenario.ae, *scenario.police)}
    ages = [(date(2026, 1, 1) - people[i].dob).days // 365 for i in appearing]
    assert min(ages) >= 10
    assert max(ages) <= 91
    assert sum(18 <= a <= 34 for a in ages) / len(ages) >= 0.35


def test_names_come_from_many_communities(scenario: synth.Scenario) -> None:
    """Every community table is used, accented names occur and Polish surnames agree with sex."""
    assert {p.group for p in scenario.people} == {g for g, _, _ in names.GROUPS}
    assert any(not p.given_name.isascii() or not p.family_name.isascii() for p in scenario.people)
    polish = [p for p in scenario.people if p.family_name.endswith(("ski", "ska"))]
    assert polish
    assert all(p.family_name.endswith("ska" if p.sex == "F" else "ski") for p in polish)


def test_nhs_numbers_are_unique_and_valid(scenario: synth.Scenario) -> None:
    """Every person has a distinct NHS number that passes the normaliser."""
    numbers = [p.nhs_number for p in scenario.people]
    assert len(set(numbers)) == len(numbers)
    assert all(normalise_nhs_number(n).value == n for n in numbers)


# --- Validity of identifiers in the exports ---------------------------------------------------


def test_most_exported_nhs_numbers_are_valid(written: synth.SynthSummary) -> None:
    """At least 97% of present NHS numbers normalise; A&E has one for about 90% of rows."""
    ae = _read(written.ae_path)
    values = [r["nhs_no"] for r in ae if r["nhs_no"]]
    values += [r["NHSNumber"] for r in _read(written.police_path) if r["NHSNumber"]]
    assert sum(normalise_nhs_number(v).value is not None for v in values) / len(values) >= 0.97
    assert 0.85 <= sum(bool(r["nhs_no"]) for r in ae) / len(ae) <= 0.95


def test_most_exported_phones_are_valid(written: synth.SynthSummary) -> None:
    """At least 95% of present phone numbers normalise; the rest are placeholders."""
    normalise = make_phone_normaliser("GB")
    values = [r["tel"] for r in _read(written.ae_path) if r["tel"]]
    values += [r["ContactPhone"] for r in _read(written.police_path) if r["ContactPhone"]]
    results = [normalise(v) for v in values]
    assert sum(r.value is not None for r in results) / len(results) >= 0.95
    assert {r.reason for r in results if r.value is None} == {"placeholder"}


def test_all_person_phones_are_valid(scenario: synth.Scenario) -> None:
    """Every mobile and landline drawn for a person is a valid GB number."""
    normalise = make_phone_normaliser("GB")
    for p in scenario.people:
        for number in (p.mobile, p.landline, p.new_mobile):
            assert not number or normalise(number).value is not None, number


def test_postcodes_are_valid_or_pseudo(written: synth.SynthSummary) -> None:
    """Present postcodes are valid UK postcodes except ZZ99 pseudo postcodes."""
    values = [r["postcode"] for r in _read(written.ae_path) if r["postcode"]]
    values += [r["HomePostcode"] for r in _read(written.police_path) if r["HomePostcode"]]
    reasons = collections.Counter(normalise_postcode(v).reason for v in values)
    assert set(reasons) <= {None, "pseudo_postcode"}
    assert reasons[None] / len(values) >= 0.95
    assert any(v.islower() and " " not in v for v in values)


# --- Corruption -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "tag", "field"),
    [
        ("ae", "dob_placeholder", "dob_placeholder"),
        ("police", "dob_placeholder", "dob_placeholder"),
        ("ae", "postcode_zz99", "postcode_zz99"),
        ("ae", "upper_case", "upper_case"),
        ("police", "upper_case", "upper_case"),
        ("police", "postcode_unformatted", "postcode_unformatted"),
        ("ae", "sex_unknown", "sex_unknown"),
        ("ae", "address_missing", "address_missing"),
        ("police", "alias", "alias"),
        ("ae", "phone_placeholder", "phone_placeholder"),
    ],
)
def test_unconditional_corruptions_occur_at_about_their_rate(
    scenario: synth.Scenario, source: str, tag: str, field: str
) -> None:
    """Corruptions that apply to any record occur at 0.4x to 2x their configured rate."""
    records = scenario.ae if source == "ae" else scenario.police
    rates = synth.AE_RATES if source == "ae" else synth.POLICE_RATES
    want = getattr(rates, field)
    assert 0.4 * want <= _rate(records, tag) <= 2 * want


def test_name_typos_occur_at_about_their_rate(scenario: synth.Scenario) -> None:
    """Each of forename and surname gets a typo at about the configured rate."""
    for records, rates in ((scenario.ae, synth.AE_RATES), (scenario.police, synth.POLICE_RATES)):
        typos = sum(r.corruptions.count("name_typo") for r in records) / (2 * len(records))
        assert 0.5 * rates.name_typo <= typos <= 1.5 * rates.name_typo


def test_nicknames_occur_for_names_that_have_them(scenario: synth.Scenario) -> None:
    """Formal names with a nickname are shown as one at about the configured rate."""
    people = _people(scenario)

    def eligible(r: synth.SynthRecord) -> bool:
        return people[r.person_id].given_name in names.NICKNAMES

    for records, rates in ((scenario.ae, synth.AE_RATES), (scenario.police, synth.POLICE_RATES)):
        assert 0.4 * rates.nickname <= _rate(records, "nickname", eligible) <= 2 * rates.nickname
    other = {"name_typo", "name_swap", "upper_case"}
    shown = [r for r in (*scenario.ae, *scenario.police) if "nickname" in r.corruptions]
    for r in shown:
        if not other & set(r.corruptions):
            forename = r.row[1].split(" ")[0]
            assert forename in names.NICKNAMES[people[r.person_id].given_name]


def test_placeholder_dobs_and_zz99_are_visible_in_files(written: synth.SynthSummary) -> None:
    """Placeholder dates of birth and ZZ99 postcodes appear in the files at about their rates."""
    ae, police = _read(written.ae_path), _read(written.police_path)
    placeholder = sum(r["dob"] == "01/01/1900" for r in ae) / len(ae)
    assert 0.4 * synth.AE_RATES.dob_placeholder <= placeholder <= 2 * synth.AE_RATES.dob_placeholder
    assert any(r["DateOfBirth"] == "01-Jan-1900" for r in police)
    zz99 = sum(r["postcode"].startswith("ZZ99") for r in ae) / len(ae)
    assert 0.4 * synth.AE_RATES.postcode_zz99 <= zz99 <= 2 * synth.AE_RATES.postcode_zz99


def test_day_month_swaps_only_where_both_are_twelve_or_less(scenario: synth.Scenario) -> None:
    """A swapped date of birth is the true one with day and month exchanged."""
    people = _people(scenario)
    swapped = [r for r in scenario.ae if "dob_day_month_swap" in r.corruptions]
    assert swapped
    for r in swapped:
        dob = people[r.person_id].dob
        assert dob.day <= 12 and dob.month <= 12
        if "dob_typo" not in r.corruptions:
            assert r.row[3] == f"{dob.month:02d}/{dob.day:02d}/{dob.year}"


def test_other_corruptions_all_occur(scenario: synth.Scenario) -> None:
    """Every kind of corruption shows up somewhere in a 2,000-person scenario."""
    seen = {t for r in (*scenario.ae, *scenario.police) for t in r.corruptions}
    assert {
        "variant", "accent_drop", "name_swap", "previous_surname", "surname_part",
        "second_surname", "middle_in_forename", "dob_typo", "dob_missing", "nhs_missing",
        "nhs_typo", "postcode_typo", "postcode_missing", "address_typo", "address_abbrev",
        "phone_missing", "phone_landline", "moved", "phone_changed",
    } <= seen  # fmt: skip


def test_movers_show_a_new_address_in_later_records(scenario: synth.Scenario) -> None:
    """Records after a move carry the new postcode; earlier ones the old."""
    people = _people(scenario)
    moved = [r for r in scenario.ae if "moved" in r.corruptions]
    assert moved
    for r in moved:
        p = people[r.person_id]
        assert p.moved_on is not None
        assert r.row[10][:10] >= p.moved_on.isoformat()
    plain = [
        r
        for r in scenario.ae
        if people[r.person_id].moved_on is not None
        and "moved" not in r.corruptions
        and not {"postcode_missing", "postcode_zz99", "postcode_typo", "postcode_unformatted"}
        & set(r.corruptions)
    ]
    assert all(r.row[6] == people[r.person_id].postcode for r in plain)


def test_police_aliases_are_other_names(scenario: synth.Scenario) -> None:
    """Filled Aliases hold one or two full names separated by semicolons."""
    aliases = [r.row[3] for r in scenario.police if r.row[3]]
    assert aliases
    for value in aliases:
        parts = value.split(";")
        assert 1 <= len(parts) <= 2
        assert all(" " in part for part in parts)
