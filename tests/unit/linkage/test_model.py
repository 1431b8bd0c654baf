"""The model plan derived from an encoding schema (linkage.model), on the shipped schemas.

Definitions are taken the way linkage reads them: ``schema.describe()`` as the connector writes it
into the ``pprl`` metadata (JSON), read back as ``metadata["schema"]["definition"]``.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from splink.internals.parse_sql import get_columns_used_from_sql

from connectors.encoding_schema import load_encoding_schema
from linkage.errors import SettingsError
from linkage.model import (
    DEFAULT_ADDRESS_THRESHOLDS,
    DEFAULT_BASELINE,
    DEFAULT_FAMILY_THRESHOLDS,
    DEFAULT_FIELD_THRESHOLDS,
    DEFAULT_POSTCODE_THRESHOLD,
    NAME_FIELDS,
    Agree,
    AllOf,
    AnyOf,
    Condition,
    Ladder,
    ModelPlan,
    Similar,
    TrainingBlock,
    _rank,
    flip_ceiling,
    flipped_similarity,
    plan_from_schema,
    raw_threshold,
    splink_comparisons,
)
from tests.conftest import REPO

SCHEMAS = ("v1", "v2", "febrl")


def definition_of(path: Path) -> dict[str, Any]:
    """A schema's definition as an encoded file carries it (JSON in the pprl metadata)."""
    return dict(json.loads(json.dumps(load_encoding_schema(path).describe())))


def shipped(name: str) -> dict[str, Any]:
    """The definition of config/encoding/<name>.toml."""
    return definition_of(REPO / "config" / "encoding" / f"{name}.toml")


def written(tmp_path: Path, body: str) -> dict[str, Any]:
    """The definition of a hand-written schema (validated by the connector's own loader)."""
    path = tmp_path / "schema.toml"
    path.write_text('schema_id = "t"\nversion = 1\n' + body)
    return definition_of(path)


def ladder(plan: ModelPlan, name: str) -> Ladder:
    """The plan's ladder called ``name``."""
    found = [x for x in plan.ladders if x.name == name]
    assert len(found) == 1, f"no single ladder {name!r} in {[x.name for x in plan.ladders]}"
    return found[0]


def token_fields(plan: ModelPlan) -> dict[str, frozenset[str]]:
    """The fields each token column reads."""
    return dict(plan.token_fields)


def leaves(condition: Condition) -> list[Agree | Similar]:
    """The token and Dice conditions inside a condition."""
    if isinstance(condition, Agree | Similar):
        return [condition]
    return [leaf for part in condition.parts for leaf in leaves(part)]


# --- the UK schema v2 ---------------------------------------------------------------------------


def raw(normalised: float) -> float:
    """A normalised threshold on the default baseline (no measured baselines)."""
    return raw_threshold(normalised, DEFAULT_BASELINE)


def field_levels(column: str) -> tuple[Similar, ...]:
    """The Dice levels of a field compared on its own, at the default thresholds."""
    return tuple(Similar(column, raw(t)) for t in sorted(DEFAULT_FIELD_THRESHOLDS, reverse=True))


def test_v2_household_joins_family_name_with_landline_address_and_postcode() -> None:
    """v2 compares family name and place jointly: family name identical / similar with the same
    place, the same place alone, the family name alone. The same place is any of an agreeing
    landline token, a similar address, a similar postcode."""
    plan = plan_from_schema(shipped("v2"))
    household = ladder(plan, "household")
    same_place = AnyOf(
        (
            Agree("tok_landline"),
            Similar("bf_address", raw(min(DEFAULT_ADDRESS_THRESHOLDS))),
            Similar("bf_postcode", raw(DEFAULT_POSTCODE_THRESHOLD)),
        )
    )
    family = tuple(
        Similar("bf_family_name", raw(t)) for t in sorted(DEFAULT_FAMILY_THRESHOLDS, reverse=True)
    )
    assert household.levels == (
        *(AllOf((f, same_place)) for f in family),
        same_place,
        *family,
    )
    assert household.fields == {"family_name", "address", "postcode", "landline"}
    assert household.columns() == (
        "bf_family_name_n",
        "tok_landline",
        "bf_address_n",
        "bf_postcode_n",
    )


def test_v2_compares_each_filtered_field_and_unique_identifier_once() -> None:
    """v2: unique identifiers (NHS, PNC, mobile, email) by token; given name and date of birth by
    Dice (date of birth topped by its token with sex); no name-and-dob token ladder, since every
    field those tokens read has a filter; no separate family-name or location comparison."""
    plan = plan_from_schema(shipped("v2"))
    names = [x.name for x in plan.ladders]
    assert {"nhs", "pnc", "mobile", "email", "household", "given_name", "date_of_birth"} <= set(
        names
    )
    assert not {"name_dob", "family_name", "location", "landline"} & set(names)
    for name, field in (
        ("nhs", "nhs_number"),
        ("pnc", "pnc_id"),
        ("mobile", "phone"),
        ("email", "email"),
    ):
        assert ladder(plan, name).levels == (Agree(f"tok_{name}"),)
        assert ladder(plan, name).fields == {field}
    assert ladder(plan, "given_name").levels == field_levels("bf_given_name")
    dob = ladder(plan, "date_of_birth")
    assert dob.levels == (Agree("tok_dob_sex"), *field_levels("bf_date_of_birth"))
    assert dob.fields == {"date_of_birth", "sex"}


def test_v2_filter_words_and_blocking_tokens() -> None:
    """Balanced filters take twice their declared bits, in 64-bit words; every token blocks."""
    definition = shipped("v2")
    plan = plan_from_schema(definition)
    assert definition["hardening"]["balance"] is True
    assert dict(plan.filter_words) == {
        f"bf_{f['name']}": 2 * f["bits"] // 64 for f in definition["filters"]
    }
    assert plan.words("bf_given_name") == 16  # 512 bits declared
    with pytest.raises(SettingsError):
        plan.words("bf_nothing")
    assert plan.blocking_tokens == tuple(f"tok_{t['name']}" for t in definition["tokens"])
    assert plan.name_filter_columns == ("bf_given_name", "bf_family_name")
    assert token_fields(plan)["tok_landline"] == {"landline"}
    assert token_fields(plan)["tok_mobile"] == {"phone"}


# --- the UK schema v1 and FEBRL -----------------------------------------------------------------


def test_v1_keeps_the_name_dob_token_ladder_most_exact_first() -> None:
    """v1 has no date-of-birth filter, so its name-and-dob tokens carry evidence no filter does:
    one ladder, exact tokens before the reordered and phonetic ones."""
    plan = plan_from_schema(shipped("v1"))
    name_dob = ladder(plan, "name_dob")
    assert name_dob.levels == (
        Agree("tok_name_dob"),
        Agree("tok_name_dob_swapped"),
        Agree("tok_name_order_dob"),
        Agree("tok_phonetic_dob"),
    )
    assert name_dob.tokens == tuple(c.column for c in name_dob.levels if isinstance(c, Agree))
    assert name_dob.fields == {"given_name", "family_name", "date_of_birth"}
    assert [x.name for x in plan.ladders] == [
        "nhs",
        "pnc",
        "email",
        "name_dob",
        "household",
        "phone_with",
        "given_name",
    ]
    # v1's postcode has no filter: the postcode tokens are the household's place evidence
    same_place = AnyOf(
        (
            Agree("tok_family_initial_dob_postcode"),
            Agree("tok_name_yob_district"),
            Similar("bf_address", raw(min(DEFAULT_ADDRESS_THRESHOLDS))),
        )
    )
    assert ladder(plan, "household").levels[2] == same_place
    assert ladder(plan, "given_name").levels == field_levels("bf_given_name")
    assert ladder(plan, "phone_with").levels == (Agree("tok_phone_dob"),)


def test_febrl_compares_every_filter_and_no_token() -> None:
    """FEBRL v2 has a filter for every field its tokens read (its unique social security id too),
    and no address or postcode field: one Dice ladder per filter, no token in the model."""
    definition = shipped("febrl")
    plan = plan_from_schema(definition)
    assert [x.name for x in plan.ladders] == [f["name"] for f in definition["filters"]]
    for x in plan.ladders:
        assert all(isinstance(level, Similar) for level in x.levels)
    assert ladder(plan, "soc_sec_id").fields == {"soc_sec_id"}


@pytest.mark.parametrize("name", SCHEMAS)
def test_each_column_enters_the_model_once(name: str) -> None:
    """No token or filter is read by two comparisons (Fellegi-Sunter would count it twice)."""
    plan = plan_from_schema(shipped(name))
    seen: list[str] = [c for x in plan.ladders for c in x.columns()]
    assert len(seen) == len(set(seen))
    filtered = {c.removesuffix("_n") for c in seen if c.startswith("bf_")}
    assert filtered == set(plan.filter_columns)  # every filter is compared


@pytest.mark.parametrize("name", SCHEMAS)
def test_tokens_enter_the_model_only_with_an_unfiltered_field(name: str) -> None:
    """A token in a comparison reads some field that has no filter (else the filters already
    carry its evidence, and it only blocks)."""
    definition = shipped(name)
    plan = plan_from_schema(definition)
    filtered = {str(f["input"]).partition(":")[0] for f in definition["filters"]}
    fields = token_fields(plan)
    for x in plan.ladders:
        for level in x.levels:
            for leaf in leaves(level):
                if isinstance(leaf, Agree):
                    assert fields[leaf.column] - filtered, (x.name, leaf.column)


# --- hand-written schemas: the rules one at a time ----------------------------------------------


FILTER = "ngram = 2\nbits = 256\nhashes = 10\n"


def test_location_without_a_family_filter(tmp_path: Path) -> None:
    """Without a family-name filter there is no household: one location ladder (landline, address
    near-identical, postcode, address similar), and a mobile is a unique identifier."""
    definition = written(
        tmp_path,
        '[[tokens]]\nname = "landline"\ninputs = ["phone:landline"]\n'
        '[[tokens]]\nname = "mobile"\ninputs = ["phone:mobile"]\n'
        f'[[filters]]\nname = "address"\ninput = "address"\n{FILTER}'
        f'[[filters]]\nname = "postcode"\ninput = "postcode"\n{FILTER}'
        f'[[filters]]\nname = "given_name"\ninput = "given_name"\n{FILTER}',
    )
    plan = plan_from_schema(definition, baselines={"bf_address": 0.8})
    assert [x.name for x in plan.ladders] == ["mobile", "location", "given_name"]
    assert ladder(plan, "location").levels == (
        Agree("tok_landline"),
        Similar("bf_address", 0.96),
        Similar("bf_postcode", 0.95),
        Similar("bf_address", 0.9),
    )
    assert ladder(plan, "location").fields == {"landline", "address", "postcode"}
    assert ladder(plan, "mobile").levels == (Agree("tok_mobile"),)


def test_household_with_address_only(tmp_path: Path) -> None:
    """With a family-name and an address filter only, the same place is the address alone."""
    definition = written(
        tmp_path,
        f'[[filters]]\nname = "family_name"\ninput = "family_name"\n{FILTER}'
        f'[[filters]]\nname = "address"\ninput = "address"\n{FILTER}',
    )
    plan = plan_from_schema(definition, family_thresholds=(0.5, 1.0), address_thresholds=(0.9,))
    same = Similar("bf_address", 0.95)
    family = (Similar("bf_family_name", 1.0), Similar("bf_family_name", 0.75))
    assert [x.name for x in plan.ladders] == ["household"]
    assert ladder(plan, "household").levels == (
        AllOf((family[0], same)),
        AllOf((family[1], same)),
        same,
        *family,
    )
    assert plan.training_blocks == ()  # no token: nothing to train on
    assert dict(plan.filter_words) == {"bf_family_name": 8, "bf_address": 8}


def test_unbalanced_filters_take_their_declared_bits(tmp_path: Path) -> None:
    """Without balancing a 256-bit filter is four words, not eight."""
    definition = written(
        tmp_path,
        f'[hardening]\nbalance = false\n[[filters]]\nname = "g"\ninput = "given_name"\n{FILTER}',
    )
    assert plan_from_schema(definition).words("bf_g") == 4


def test_a_schema_without_tokens_or_filters_is_refused() -> None:
    """Nothing to compare: SettingsError (the connector refuses such a schema too)."""
    with pytest.raises(SettingsError):
        plan_from_schema({"tokens": [], "filters": []})


def test_unique_extra_field_without_filter_is_a_token_comparison(tmp_path: Path) -> None:
    """An extra field declared unique is compared by its token when it has no filter."""
    definition = written(
        tmp_path,
        '[extra_fields]\ncase_ref = { kind = "code", unique = true }\n'
        '[[tokens]]\nname = "case"\ninputs = ["case_ref"]\n'
        f'[[filters]]\nname = "given_name"\ninput = "given_name"\n{FILTER}',
    )
    plan = plan_from_schema(definition)
    assert ladder(plan, "case").levels == (Agree("tok_case"),)


# --- thresholds ---------------------------------------------------------------------------------


def test_raw_threshold_examples() -> None:
    """1 stays 1 (identical filters); 0 is the baseline; in between, linear; 4 decimals."""
    assert raw_threshold(1.0, 0.65) == 1.0
    assert raw_threshold(1.2, 0.65) == 1.0
    assert raw_threshold(0.0, 0.65) == 0.65
    assert raw_threshold(0.5, 0.6) == 0.8
    assert raw_threshold(0.7, 0.65) == 0.895
    assert raw_threshold(1 / 3, 0.5) == 0.6667


@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 0.99))
@settings(max_examples=200, deadline=None)
def test_raw_threshold_is_monotone_between_baseline_and_one(
    a: float, b: float, baseline: float
) -> None:
    """Raw thresholds lie in [baseline, 1] and keep the order of the normalised ones."""
    low, high = sorted((a, b))
    raw_low, raw_high = raw_threshold(low, baseline), raw_threshold(high, baseline)
    assert round(baseline, 4) - 1e-9 <= raw_low <= raw_high <= 1.0


def test_baselines_move_each_filters_thresholds() -> None:
    """Each filter's thresholds are normalised on its own measured baseline; others use 0.5."""
    plan = plan_from_schema(
        shipped("v2"),
        baselines={"bf_given_name": 0.65, "bf_postcode": 0.7},
        field_thresholds=(0.25, 1.0, 0.7),  # any order: sorted, strongest first
    )
    assert ladder(plan, "given_name").levels == (
        Similar("bf_given_name", 1.0),
        Similar("bf_given_name", 0.895),
        Similar("bf_given_name", 0.7375),
    )
    same_place = ladder(plan, "household").levels[2]
    assert isinstance(same_place, AnyOf)
    assert same_place.parts[2] == Similar("bf_postcode", raw_threshold(0.9, 0.7))
    assert same_place.parts[1] == Similar("bf_address", raw_threshold(0.5, DEFAULT_BASELINE))


def test_flipped_similarity_and_ceiling() -> None:
    """Flipping each bit with p makes identical filters agree on 1 - 2p(1 - p) of positions
    and unrelated balanced ones (agreeing on half) still on half; no flipping changes nothing."""
    assert flipped_similarity(1.0, 0.1) == pytest.approx(0.82)
    assert flipped_similarity(0.5, 0.1) == pytest.approx(0.5)
    assert flipped_similarity(0.9, 0.0) == pytest.approx(0.9)
    assert flip_ceiling(0.0, 1024) == 1.0
    # three spreads below the mean agreement: sqrt(0.82 * 0.18 / 1024) = 0.012
    assert flip_ceiling(0.1, 1024) == pytest.approx(0.82 - 3 * (0.82 * 0.18 / 1024) ** 0.5)
    assert flip_ceiling(0.1, 256) < flip_ceiling(0.1, 1024) < 0.82


@given(st.floats(0.0, 0.25), st.integers(64, 4096))
@settings(max_examples=100, deadline=None)
def test_identical_values_reach_the_flip_ceiling(p: float, bits: int) -> None:
    """Simulated: two copies of one filter, each flipped with p, agree on at least the ceiling
    in nearly every trial: 99% when many positions are expected to disagree (exactly, at least
    99.5%), 88% when few are (a skewed, nearly Poisson count; exactly, at least 91%)."""
    rng = np.random.default_rng(bits)
    trials = 2000
    a = rng.random((trials, bits)) < p
    b = rng.random((trials, bits)) < p
    agree = (a == b).mean(axis=1)
    expected_disagreements = 2 * p * (1 - p) * bits
    floor = 0.99 if expected_disagreements >= 10 else 0.88
    assert (agree >= flip_ceiling(p, bits) - 1e-12).mean() >= floor


def test_the_flip_ceiling_guarantee_exactly() -> None:
    """What flip_ceiling's docstring states, by the exact binomial count of disagreeing
    positions (each agrees with 1 - 2p(1 - p)) over 64 to 4,096 bits: at least 99.5% of
    identical pairs reach the ceiling when 2p(1 - p)L >= 10, and at least 91% otherwise."""
    from scipy.stats import binom

    for bits in range(64, 4097, 29):
        for p in [10 ** (-4 + i / 10) for i in range(1, 41)] + [
            0.25 * i / 40 for i in range(1, 41)
        ]:
            q = 2 * p * (1 - p)
            allowed = math.floor((1 - flip_ceiling(p, bits)) * bits + 1e-9)
            reached = float(binom.cdf(allowed, bits, q))
            assert reached >= (0.995 if q * bits >= 10 else 0.91), (bits, p, reached)


def test_flipping_schema_lowers_the_identical_level(tmp_path: Path) -> None:
    """With flip_probability the top level of a filter ladder is its ceiling, not 1, and the
    other levels scale between the baseline and the ceiling."""
    text = (REPO / "config" / "encoding" / "v2.toml").read_text()
    path = tmp_path / "v2-flip.toml"
    path.write_text(text.replace("balance = true\n", "balance = true\nflip_probability = 0.1\n"))
    plan = plan_from_schema(definition_of(path), baselines={"bf_given_name": 0.5})
    top = flip_ceiling(0.1, 1024)
    levels = ladder(plan, "given_name").levels
    assert levels[0] == Similar("bf_given_name", round(top, 4))
    assert levels[1] == Similar("bf_given_name", raw_threshold(0.7, 0.5, top))
    assert raw_threshold(0.7, 0.5, top) == round(0.5 + 0.7 * (top - 0.5), 4)
    unflipped = plan_from_schema(shipped("v2"), baselines={"bf_given_name": 0.5})
    assert ladder(unflipped, "given_name").levels[0] == Similar("bf_given_name", 1.0)
    assert plan.flip_probability == 0.1 and unflipped.flip_probability == 0.0


# --- training blocks ----------------------------------------------------------------------------


@functools.cache
def built(name: str, dialect: str) -> tuple[Any, ...]:
    """Splink's own Comparison objects for a shipped schema's default plan (built once: Splink
    parses every level's SQL, seconds per schema)."""
    return tuple(
        c.get_comparison(dialect) for c in splink_comparisons(plan_from_schema(shipped(name)))
    )


@functools.cache
def input_columns(name: str, dialect: str) -> dict[str, frozenset[str]]:
    """The input columns Splink finds in each comparison's SQL, by comparison name."""
    return {
        c.output_column_name: frozenset(
            x.input_name for x in c._input_columns_used_by_case_statement
        )
        for c in built(name, dialect)
    }


def deactivated(name: str, block: TrainingBlock, dialect: str) -> set[str]:
    """The comparisons Splink leaves out of an EM session on ``block`` (as its EM session does:
    those whose input columns the blocking rule names)."""
    rule_columns = set(get_columns_used_from_sql(block.sql(), dialect))
    return {c for c, used in input_columns(name, dialect).items() if rule_columns & used}


def test_training_block_sql() -> None:
    """The rule: the token agrees, and each skipped column is named harmlessly."""
    block = TrainingBlock("tok_a", ("bf_b_n", "tok_c"))
    assert block.sql() == (
        "l.tok_a = r.tok_a AND (l.bf_b_n IS NULL OR l.bf_b_n IS NOT NULL)"
        " AND (l.tok_c IS NULL OR l.tok_c IS NOT NULL)"
    )
    assert TrainingBlock("tok_a", ()).sql() == "l.tok_a = r.tok_a"


@pytest.mark.parametrize("name", SCHEMAS)
def test_first_training_block_is_a_name_and_dob_token(name: str) -> None:
    """The first block is a name-and-date-of-birth token; its skips are one column of each
    comparison that reads one of its fields or the token itself."""
    plan = plan_from_schema(shipped(name))
    block = plan.training_blocks[0]
    fields = token_fields(plan)[block.token]
    assert "date_of_birth" in fields and fields & NAME_FIELDS
    expected = tuple(
        x.columns()[0] for x in plan.ladders if x.fields & fields or block.token in x.columns()
    )
    assert block.skips == expected
    assert expected  # a name-and-dob token always has a comparison to leave out


def test_v1_first_training_block() -> None:
    """v1 (frozen): trained first on the exact name-and-dob token, which leaves out its own
    ladder, the household (family name), the phone-and-dob token and the given name; then the
    unique identifiers."""
    plan = plan_from_schema(shipped("v1"))
    assert plan.training_blocks[0] == TrainingBlock(
        "tok_name_dob", ("tok_name_dob", "bf_family_name_n", "tok_phone_dob", "bf_given_name_n")
    )
    assert [b.token for b in plan.training_blocks[1:]] == ["tok_email", "tok_nhs", "tok_pnc"]


def _loss(token: dict[str, Any]) -> int:
    """Transform loss as linkage.model ranks it (its first element)."""
    return int(_rank(token)[0])


@pytest.mark.parametrize("name", ["v1", "v2", "febrl"])
def test_first_training_block_is_the_most_specific_name_and_dob_token(name: str) -> None:
    """As documented: of the name-and-dob tokens, one with the least transform loss and, among
    those, the most fields (given name, family name and date of birth beat two of them)."""
    definition = shipped(name)
    plan = plan_from_schema(definition)
    fields = token_fields(plan)
    candidates = [
        t
        for t in definition["tokens"]
        if "date_of_birth" in fields[f"tok_{t['name']}"]
        and fields[f"tok_{t['name']}"] & NAME_FIELDS
    ]
    least = min(_loss(t) for t in candidates)
    most = max(len(fields[f"tok_{t['name']}"]) for t in candidates if _loss(t) == least)
    first = plan.training_blocks[0].token
    token = next(t for t in candidates if f"tok_{t['name']}" == first)
    assert (_loss(token), len(fields[first])) == (least, most)


@pytest.mark.parametrize("name", SCHEMAS)
@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_splink_leaves_out_exactly_the_comparisons_a_block_reads(name: str, dialect: str) -> None:
    """In an EM session on each block Splink deactivates exactly the comparisons that read one of
    the token's fields, and later blocks share no field with the first."""
    plan = plan_from_schema(shipped(name))
    fields = token_fields(plan)
    first = fields[plan.training_blocks[0].token]
    for block in plan.training_blocks:
        expected = {x.name for x in plan.ladders if x.fields & fields[block.token]}
        assert deactivated(name, block, dialect) == expected, block.token
        if block is not plan.training_blocks[0]:
            assert not fields[block.token] & first


@pytest.mark.parametrize("name", ["v1", "v2", "febrl"])
def test_complementary_second_blocks_complete_training(name: str) -> None:
    """The run trains on the first block and on the candidate with most agreeing pairs among
    those that leave out none of the comparisons the first leaves out: there is such a
    candidate, and with any of them every comparison is trained in at least one session."""
    plan = plan_from_schema(shipped(name))
    first, *candidates = plan.training_blocks
    complementary = [c for c in candidates if not set(c.skips) & set(first.skips)]
    assert complementary
    names = {x.name for x in plan.ladders}
    for block in complementary:
        untrained = deactivated(name, first, "duckdb") & deactivated(name, block, "duckdb")
        assert not untrained & names, (block.token, untrained)


# --- Splink comparisons -------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEMAS)
@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_splink_comparisons_build_for_both_engines(name: str, dialect: str) -> None:
    """Each ladder becomes a Splink comparison (null, its levels, else) whose every level's SQL
    parses in the engine's dialect and reads the ladder's columns."""
    plan = plan_from_schema(shipped(name))
    comparisons = built(name, dialect)
    assert len(comparisons) == len(plan.ladders)
    for comparison, x in zip(comparisons, plan.ladders, strict=True):
        assert comparison.output_column_name == x.name
        levels = comparison.comparison_levels
        assert len(levels) == len(x.levels) + 2
        assert levels[0].is_null_level and levels[-1].sql_condition == "ELSE"
        used = input_columns(name, dialect)[x.name]
        assert {c for c in used if c.endswith("_n") or c.startswith("tok_")} == set(x.columns())
        for level in levels[1:-1]:
            sqlglot.parse_one(level.sql_condition, read=dialect)
        quote = '"' if dialect == "duckdb" else "`"
        assert all(f"{quote}{c}_l{quote}" in levels[0].sql_condition for c in x.columns())


def test_splink_levels_follow_the_plan() -> None:
    """Agree is a token equality, Similar a Dice threshold, AllOf an AND, AnyOf an OR."""
    plan = plan_from_schema(shipped("v2"))
    household = splink_comparisons(plan)[[x.name for x in plan.ladders].index("household")]
    sqls = [
        lv["sql_condition"]
        for lv in household.create_comparison_dict("duckdb")["comparison_levels"]
    ]
    assert sqls[1].startswith("(") and ") AND (" in sqls[1]  # family AND same place
    assert sqls[3].count("coalesce(") == 3  # landline OR address OR postcode
    assert '"tok_landline_l" = "tok_landline_r"' in sqls[3]
    assert sqls[3].count("bit_count(") == 32 + 8  # address and postcode words
    assert sqls[4].endswith(">= 1.0") and sqls[5].endswith(">= 0.725")
