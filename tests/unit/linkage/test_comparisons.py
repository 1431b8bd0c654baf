"""Tests for the encoded-field comparison library in linkage.comparisons, on DuckDB and Spark.

Filters reach the engines as 64-bit word columns and a popcount
(:func:`linkage.inputs.filter_word_columns`); every Dice the SQL computes is checked against a
reference from Python integer popcounts, which shares no code with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from splink import DuckDBAPI, Linker, SettingsCreator
from splink.comparison_level_library import And

from linkage.comparisons import (
    AndLevel,
    DiceLevel,
    NullLevel,
    OrLevel,
    TokenMatchLevel,
    dice_sql,
    filter_comparison,
    ladder_comparison,
    token_comparison,
)
from linkage.errors import SettingsError
from linkage.inputs import filter_word_columns

NAME_BYTES = 128  # balanced 512-bit name filters: 1,024 bits, 16 words
NAME_WORDS = NAME_BYTES // 8

Filter = bytes | None


def reference_dice(a: Filter, b: Filter) -> float | None:
    """Dice from Python integer popcounts, independent of any SQL; None where undefined."""
    if a is None or b is None:
        return None
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    total = x.bit_count() + y.bit_count()
    return None if total == 0 else 2 * (x & y).bit_count() / total


def balanced(rng: np.random.Generator, nbytes: int = NAME_BYTES) -> bytes:
    """A random filter with exactly half its bits set."""
    bits = np.zeros(nbytes * 8, dtype=np.uint8)
    bits[rng.permutation(nbytes * 8)[: nbytes * 4]] = 1
    return np.packbits(bits).tobytes()


def flip(filter_: bytes, pairs: int, rng: np.random.Generator) -> bytes:
    """Move ``pairs`` set bits to unset positions: stays balanced, Dice drops by pairs / (L/2)."""
    bits = np.unpackbits(np.frombuffer(filter_, dtype=np.uint8))
    ones, zeros = np.flatnonzero(bits == 1), np.flatnonzero(bits == 0)
    bits[rng.choice(ones, pairs, replace=False)] = 0
    bits[rng.choice(zeros, pairs, replace=False)] = 1
    return np.packbits(bits).tobytes()


def fixed_cases() -> list[tuple[Filter, Filter]]:
    """Hand-picked pairs (nulls, identical, all-zero sides, near) and random ones."""
    rng = np.random.default_rng(20240601)
    zero, ones = bytes(NAME_BYTES), b"\xff" * NAME_BYTES
    a = balanced(rng)
    cases: list[tuple[Filter, Filter]] = [
        (None, a),
        (a, None),
        (None, None),
        (a, a),
        (zero, a),
        (a, zero),
        (zero, zero),
        (ones, a),
        (a, flip(a, 26, rng)),
        (ones, ones),
        (None, zero),
    ]
    cases += [(balanced(rng), balanced(rng)) for _ in range(40)]
    cases += [(rng.bytes(NAME_BYTES), rng.bytes(NAME_BYTES)) for _ in range(40)]
    return cases


def sided(name: str, filters: Sequence[Filter], nbytes: int, side: str) -> dict[str, pa.Array]:
    """One side's word and popcount columns of filter ``name``, as Splink names them (``_l``)."""
    columns = filter_word_columns(name, pa.array(list(filters), pa.binary(nbytes)))
    return {f"{column}_{side}": values for column, values in columns.items()}


def pair_table(cases: Sequence[tuple[Filter, Filter]], nbytes: int) -> pa.Table:
    """Column i, then filter ``bf`` of each side of each pair as word columns."""
    columns: dict[str, pa.Array] = {"i": pa.array(range(len(cases)), pa.int64())}
    columns |= sided("bf", [c[0] for c in cases], nbytes, "l")
    columns |= sided("bf", [c[1] for c in cases], nbytes, "r")
    return pa.table(columns)


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-process DuckDB connection."""
    connection = duckdb.connect()
    yield connection
    connection.close()


def duckdb_dice(con: duckdb.DuckDBPyConnection, table: pa.Table, words: int) -> list[float | None]:
    """Evaluate dice_sql over a registered Arrow table, in row order."""
    con.register("pairs", table)
    try:
        sql = f"SELECT {dice_sql('bf', words, 'duckdb')} FROM pairs ORDER BY i"
        rows = con.sql(sql).fetchall()
    finally:
        con.unregister("pairs")
    return [r[0] for r in rows]


# --- Dice SQL against the reference -------------------------------------------------------------


def test_dice_sql_is_one_shape_for_both_engines() -> None:
    """With a dialect name, both engines get the same SQL on unquoted word and popcount columns."""
    expected = (
        "(2 * (CAST(bit_count(bf_x_w0_l & bf_x_w0_r) AS INTEGER) + "
        "CAST(bit_count(bf_x_w1_l & bf_x_w1_r) AS INTEGER)) / nullif(bf_x_n_l + bf_x_n_r, 0))"
    )
    assert dice_sql("bf_x", 2, "duckdb") == expected
    assert dice_sql("bf_x", 2, "spark") == expected


def test_duckdb_dice_matches_reference_on_fixed_cases(con: duckdb.DuckDBPyConnection) -> None:
    """DuckDB's Dice equals the popcount reference on nulls, identical, zero and random pairs."""
    cases = fixed_cases()
    got = duckdb_dice(con, pair_table(cases, NAME_BYTES), NAME_WORDS)
    assert got == [reference_dice(a, b) for a, b in cases]
    assert got[0] is None and got[1] is None and got[2] is None  # a null filter: NULL
    assert got[3] == 1.0  # identical
    assert got[4] == 0.0 and got[5] == 0.0  # all-zero on one side: 0, no division error
    assert got[6] is None  # both all-zero: undefined, NULL
    assert got[8] == pytest.approx(1 - 26 / (NAME_BYTES * 4))
    assert got[9] == 1.0  # all ones: the popcount sum (2 x 1,024) does not overflow
    unrelated = np.array(got[11:51], dtype=float)
    assert abs(unrelated.mean() - 0.5) < 0.02  # balanced unrelated filters sit near 0.5


filters16 = st.one_of(st.none(), st.just(bytes(16)), st.binary(min_size=16, max_size=16))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(filters16, filters16), min_size=1, max_size=8))
def test_duckdb_dice_matches_reference_on_any_filters(
    con: duckdb.DuckDBPyConnection, cases: list[tuple[Filter, Filter]]
) -> None:
    """For any 128-bit filters (nulls and all-zero included), DuckDB's Dice equals the reference
    exactly."""
    assert duckdb_dice(con, pair_table(cases, 16), 2) == [reference_dice(a, b) for a, b in cases]


def test_spark_dice_matches_reference(spark: Any) -> None:
    """Spark's Dice over the same word columns equals the reference on the same cases."""
    cases = fixed_cases()
    spark.createDataFrame(pair_table(cases, NAME_BYTES)).createOrReplaceTempView("pairs")
    sql = f"SELECT {dice_sql('bf', NAME_WORDS, 'spark')} AS d FROM pairs ORDER BY i"
    rows = spark.sql(sql).collect()
    assert [r["d"] for r in rows] == [reference_dice(a, b) for a, b in cases]


# --- levels and comparisons as Splink objects ---------------------------------------------------


def level_sqls(comparison: Any, dialect: str) -> list[str]:
    """The SQL condition of every level of a comparison creator, in order."""
    return [
        lvl["sql_condition"]
        for lvl in comparison.create_comparison_dict(dialect)["comparison_levels"]
    ]


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_filter_comparison_builds_engine_specific_sql(dialect: str) -> None:
    """The filter comparison has null / three Dice / else levels, in the engine's quoting."""
    comparison = filter_comparison("bf_given_name", NAME_WORDS)
    built = comparison.get_comparison(dialect)  # Splink's own Comparison: parses every level
    assert [lvl.is_null_level for lvl in built.comparison_levels] == [True] + [False] * 4
    sqls = level_sqls(comparison, dialect)
    q = '"' if dialect == "duckdb" else "`"
    assert sqls[0] == f"{q}bf_given_name_n_l{q} IS NULL OR {q}bf_given_name_n_r{q} IS NULL"
    assert sqls[-1] == "ELSE"
    for sql, threshold in zip(sqls[1:4], (0.9, 0.8, 0.6), strict=True):
        assert sql.endswith(f">= {threshold}")
        assert f"nullif({q}bf_given_name_n_l{q} + {q}bf_given_name_n_r{q}, 0)" in sql
        assert sql.count("bit_count(") == NAME_WORDS
        assert f"bit_count({q}bf_given_name_w15_l{q} & {q}bf_given_name_w15_r{q})" in sql
        assert "::" not in sql and "zip_with" not in sql
        sqlglot.parse_one(sql, read=dialect)


def test_dice_level_reads_the_popcount_column() -> None:
    """A Dice level's null evidence is its popcount column (NULL exactly when the filter is)."""
    level = DiceLevel("bf_x", 0.8, 4)
    assert level.columns == ("bf_x_n",)
    assert level.create_sql(_dialect("duckdb")).endswith(">= 0.8")


def _dialect(name: str) -> Any:
    from splink.internals.dialects import SplinkDialect

    return SplinkDialect.from_string(name)


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_token_comparison_with_tf_adjustment(dialect: str) -> None:
    """The token comparison is null / agree / else, and TF-adjusts the agree level on request."""
    levels = token_comparison("tok_nhs", tf_adjustment=True).create_comparison_dict(dialect)[
        "comparison_levels"
    ]
    q = '"' if dialect == "duckdb" else "`"
    assert levels[0]["sql_condition"] == f"{q}tok_nhs_l{q} IS NULL OR {q}tok_nhs_r{q} IS NULL"
    assert levels[1]["sql_condition"] == f"{q}tok_nhs_l{q} = {q}tok_nhs_r{q}"
    assert levels[1]["tf_adjustment_column"] == "tok_nhs"
    assert levels[1]["tf_adjustment_weight"] == 1.0
    plain = token_comparison("tok_nhs").create_comparison_dict(dialect)["comparison_levels"]
    assert "tf_adjustment_column" not in plain[1]


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_and_level_writes_what_splinks_and_writes(dialect: str) -> None:
    """Our AndLevel's SQL equals Splink's And over the same Dice levels (which keeps our SQL)."""
    ours = AndLevel.all_dice(["bf_given_name", "bf_family_name"], 0.9, NAME_WORDS)
    theirs = And(
        DiceLevel("bf_given_name", 0.9, NAME_WORDS), DiceLevel("bf_family_name", 0.9, NAME_WORDS)
    )
    assert ours.get_comparison_level(dialect).sql_condition == (
        theirs.get_comparison_level(dialect).sql_condition
    )
    assert ours.columns == ("bf_given_name_n", "bf_family_name_n")


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_or_level_joins_parts_with_null_as_false(dialect: str) -> None:
    """OrLevel is each part's condition in coalesce(..., false), joined by OR."""
    token, dice = TokenMatchLevel("tok_landline"), DiceLevel("bf_address", 0.8, 2)
    level = OrLevel(token, dice)
    sql = level.get_comparison_level(dialect).sql_condition
    parts = [p.create_sql(_dialect(dialect)) for p in (token, dice)]
    assert sql == " OR ".join(f"coalesce(({p}), false)" for p in parts)
    assert level.columns == ("tok_landline", "bf_address_n")
    sqlglot.parse_one(sql, read=dialect)


def test_or_level_truth_table_in_duckdb(con: duckdb.DuckDBPyConnection) -> None:
    """A part that is NULL (missing on a side) counts as false, never makes the level NULL."""
    rng = np.random.default_rng(5)
    f = balanced(rng, 16)
    far = balanced(rng, 16)
    t1, t2 = bytes([1]) * 16, bytes([2]) * 16
    # tokens l/r, filters l/r, expected
    rows: list[tuple[Filter, Filter, Filter, Filter, bool]] = [
        (t1, t1, None, None, True),  # token agrees, filters missing
        (None, t1, f, f, True),  # token missing, filters identical
        (t1, t2, f, far, False),  # both disagree
        (None, None, None, None, False),  # all missing: false, not NULL
        (t1, None, f, None, False),
        (t1, t2, f, f, True),
    ]
    table = pa.table(
        {
            "i": pa.array(range(len(rows)), pa.int64()),
            "tok_l": pa.array([r[0] for r in rows], pa.binary(16)),
            "tok_r": pa.array([r[1] for r in rows], pa.binary(16)),
            **sided("bf", [r[2] for r in rows], 16, "l"),
            **sided("bf", [r[3] for r in rows], 16, "r"),
        }
    )
    sql = OrLevel(TokenMatchLevel("tok"), DiceLevel("bf", 0.9, 2)).create_sql(_dialect("duckdb"))
    con.register("ortable", table)
    try:
        got = [r[0] for r in con.sql(f"SELECT {sql} FROM ortable ORDER BY i").fetchall()]
    finally:
        con.unregister("ortable")
    assert got == [r[4] for r in rows]


def name_dob_ladder() -> Any:
    """A ladder using every level type: tokens, AND of Dice, OR of token and Dice, Dice."""
    return ladder_comparison(
        "name_dob",
        [
            TokenMatchLevel("tok_name_dob"),
            TokenMatchLevel("tok_name_dob_swapped"),
            AndLevel.all_dice(["bf_given_name", "bf_family_name"], 0.9, NAME_WORDS),
            OrLevel(TokenMatchLevel("tok_name_dob_swapped"), DiceLevel("bf_family_name", 0.8, 16)),
        ],
        description="name and date of birth",
    )


def test_ladder_null_level_needs_every_column_null_on_one_side() -> None:
    """The ladder's null level lists every column once, all NULL on the left or on the right."""
    dictionary = name_dob_ladder().create_comparison_dict("duckdb")
    assert dictionary["comparison_description"] == "name and date of birth"
    assert dictionary["output_column_name"] == "name_dob"
    null_sql = dictionary["comparison_levels"][0]["sql_condition"]
    columns = ("tok_name_dob", "tok_name_dob_swapped", "bf_given_name_n", "bf_family_name_n")
    left = " AND ".join(f'"{c}_l" IS NULL' for c in columns)
    right = " AND ".join(f'"{c}_r" IS NULL' for c in columns)
    assert null_sql == f"({left}) OR ({right})"


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: filter_comparison("bf_x", 2, (0.8, 0.9)), id="ascending"),
        pytest.param(lambda: filter_comparison("bf_x", 2, (0.9, 0.9)), id="repeated"),
        pytest.param(lambda: filter_comparison("bf_x", 2, (1.2, 0.9)), id="above-one"),
        pytest.param(lambda: filter_comparison("bf_x", 2, (0.9, 0.0)), id="zero"),
        pytest.param(lambda: filter_comparison("bf_x", 2, ()), id="empty"),
        pytest.param(lambda: DiceLevel("bf_x", True, 2), id="bool-threshold"),
        pytest.param(lambda: DiceLevel("bf_x; DROP TABLE t", 0.9, 2), id="not-identifier"),
        pytest.param(lambda: ladder_comparison("x", []), id="empty-ladder"),
        pytest.param(lambda: AndLevel(DiceLevel("bf_x", 0.9, 2)), id="and-of-one"),
        pytest.param(lambda: OrLevel(DiceLevel("bf_x", 0.9, 2)), id="or-of-one"),
        pytest.param(lambda: NullLevel([]), id="null-of-none"),
        pytest.param(lambda: dice_sql("bf_x", 2, "sqlite"), id="unsupported-dialect"),
        pytest.param(lambda: dice_sql("bf_x", 0, "duckdb"), id="no-words"),
        pytest.param(lambda: dice_sql("bf_x", True, "duckdb"), id="bool-words"),
    ],
)
def test_invalid_settings_are_refused(build: Any) -> None:
    """Bad thresholds, names, word counts, empty ladders and unsupported engines are refused."""
    with pytest.raises(SettingsError):
        build()


# --- the comparison vectors the SQL produces ----------------------------------------------------


def gamma_sql(comparison: Any, dialect: str) -> str:
    """A CASE giving Splink's comparison vector value: -1 for null, then n-1 down to 0 (else)."""
    levels = comparison.create_comparison_dict(dialect)["comparison_levels"]
    value = sum(1 for lvl in levels if not lvl.get("is_null_level")) - 1
    whens = []
    for lvl in levels:
        if lvl.get("is_null_level"):
            whens.append(f"WHEN {lvl['sql_condition']} THEN -1")
        elif lvl["sql_condition"] == "ELSE":
            whens.append(f"ELSE {value}")
        else:
            whens.append(f"WHEN {lvl['sql_condition']} THEN {value}")
            value -= 1
    return "CASE " + " ".join(whens) + " END"


def ladder_pairs() -> tuple[pa.Table, list[int]]:
    """Pairs in _l/_r columns for the name/dob ladder, with the gamma each should get."""
    rng = np.random.default_rng(7)
    tok = [bytes([i]) * 16 for i in range(4)]
    given, family = balanced(rng), balanced(rng)
    near_given, far_family = flip(given, 20, rng), flip(family, 200, rng)  # Dice .96 / .61
    near_family = flip(family, 60, rng)  # Dice 0.88
    rows: list[tuple[Any, ...]] = [
        # tok_name_dob l/r, tok_swapped l/r, given l/r, family l/r, expected gamma
        (tok[0], tok[0], tok[1], tok[2], given, near_given, family, far_family, 4),
        (tok[0], tok[1], tok[2], tok[2], given, near_given, family, far_family, 3),
        (None, tok[1], None, tok[2], given, near_given, family, family, 2),
        (tok[0], tok[1], tok[2], tok[3], given, far_family, family, near_family, 1),
        (tok[0], tok[1], tok[2], tok[3], given, near_given, family, far_family, 0),
        (None, tok[1], None, tok[2], None, given, None, family, -1),
        (tok[0], None, None, None, given, None, family, None, -1),
        (tok[0], None, tok[1], None, given, None, family, near_family, 1),
        (tok[0], tok[1], None, None, None, None, family, family, 1),  # the AND's NULL half
        (tok[0], tok[1], tok[2], tok[3], bytes(NAME_BYTES), bytes(NAME_BYTES), family, None, 0),
    ]
    columns: dict[str, pa.Array] = {"i": pa.array(range(len(rows)), pa.int64())}
    for k, name in enumerate(["tok_name_dob", "tok_name_dob_swapped"]):
        for side, offset in (("l", 0), ("r", 1)):
            columns[f"{name}_{side}"] = pa.array([r[2 * k + offset] for r in rows], pa.binary(16))
    for k, name in enumerate(["bf_given_name", "bf_family_name"], start=2):
        for side, offset in (("l", 0), ("r", 1)):
            columns |= sided(name, [r[2 * k + offset] for r in rows], NAME_BYTES, side)
    return pa.table(columns), [r[-1] for r in rows]


def test_ladder_gammas_in_duckdb(con: duckdb.DuckDBPyConnection) -> None:
    """Run in DuckDB, the ladder's levels give the expected comparison vector values."""
    table, expected = ladder_pairs()
    con.register("ladder", table)
    try:
        sql = f"SELECT {gamma_sql(name_dob_ladder(), 'duckdb')} FROM ladder ORDER BY i"
        assert [r[0] for r in con.sql(sql).fetchall()] == expected
    finally:
        con.unregister("ladder")


def test_ladder_gammas_in_spark(spark: Any) -> None:
    """Run in Spark on the same word columns, the ladder gives the same values as in DuckDB."""
    table, expected = ladder_pairs()
    spark.createDataFrame(table).createOrReplaceTempView("ladder")
    sql = f"SELECT {gamma_sql(name_dob_ladder(), 'spark')} AS g FROM ladder ORDER BY i"
    assert [r["g"] for r in spark.sql(sql).collect()] == expected


def linker_inputs() -> tuple[pa.Table, pa.Table, Any, Any]:
    """Two agencies' hand-made records and the token and filter comparisons with fixed m/u."""
    rng = np.random.default_rng(11)
    given = balanced(rng)
    tok = [bytes([i]) * 16 for i in range(4)]

    def agency(ids: list[int], tokens: list[Filter], names: list[Filter]) -> pa.Table:
        return pa.table(
            {
                "unique_id": pa.array(ids, pa.int64()),
                "tok_nhs": pa.array(tokens, pa.binary(16)),
                **filter_word_columns("bf_given_name", pa.array(names, pa.binary(NAME_BYTES))),
            }
        )

    agency_a = agency([1, 2, 3], [tok[1], tok[2], None], [given, given, None])
    agency_b = agency(
        [11, 12, 13], [tok[1], tok[3], tok[3]], [given, flip(given, 80, rng), balanced(rng)]
    )  # Dice 1, 0.84, ~0.5
    tokens = token_comparison("tok_nhs", tf_adjustment=True).configure(
        m_probabilities=[0.9, 0.1], u_probabilities=[0.001, 0.999]
    )
    names = filter_comparison("bf_given_name", NAME_WORDS).configure(
        m_probabilities=[0.7, 0.2, 0.05, 0.05], u_probabilities=[0.01, 0.02, 0.07, 0.9]
    )
    return agency_a, agency_b, tokens, names


EXPECTED_GAMMAS = {
    (1, 11): (1, 3),
    (1, 12): (0, 2),
    (1, 13): (0, 0),
    (2, 11): (0, 3),
    (2, 12): (0, 2),
    (2, 13): (0, 0),
    (3, 11): (-1, -1),
    (3, 12): (-1, -1),
    (3, 13): (-1, -1),
}


def predicted_gammas(db: Any, frames: list[Any], comparisons: list[Any]) -> dict[Any, Any]:
    """Run Splink's predict (link_only, every pair, fixed m/u) and read the gamma columns."""
    linker = Linker(
        [db.register(frame) for frame in frames],
        SettingsCreator(
            link_type="link_only",
            comparisons=comparisons,
            blocking_rules_to_generate_predictions=["1=1"],
        ),
    )
    frame = linker.inference.predict(warning_mode="never").as_pandas_dataframe()
    return {
        (int(r.unique_id_l), int(r.unique_id_r)): (int(r.gamma_tok_nhs), int(r.gamma_bf_given_name))
        for r in frame.itertuples()
    }


def test_duckdb_linker_predicts_expected_comparison_vectors() -> None:
    """A Splink DuckDB Linker with fixed m/u scores hand-made records with the expected gammas."""
    agency_a, agency_b, tokens, names = linker_inputs()
    got = predicted_gammas(DuckDBAPI(), [agency_a, agency_b], [tokens, names])
    assert got == EXPECTED_GAMMAS


def test_spark_linker_predicts_the_same_comparison_vectors(spark: Any) -> None:
    """Splink's Spark backend, on the same word columns, gives the same gammas as DuckDB."""
    from splink import SparkAPI  # here, not at the top: it needs pyspark, which may be absent

    agency_a, agency_b, tokens, names = linker_inputs()
    frames = [spark.createDataFrame(t) for t in (agency_a, agency_b)]
    db = SparkAPI(spark_session=spark, register_udfs_automatically=False)
    assert predicted_gammas(db, frames, [tokens, names]) == EXPECTED_GAMMAS
