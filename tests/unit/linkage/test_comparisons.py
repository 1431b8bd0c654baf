"""Tests for the encoded-field comparison library in linkage.comparisons, on DuckDB and Spark."""

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
    TokenMatchLevel,
    dice_sql,
    filter_comparison,
    ladder_comparison,
    token_comparison,
)
from linkage.errors import InputMismatchError, SettingsError
from linkage.inputs import filter_words

NAME_BYTES = 128  # v1 name filters: 1,024 bits


def reference_dice(a: bytes | None, b: bytes | None) -> float | None:
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


def fixed_cases() -> list[tuple[bytes | None, bytes | None]]:
    """Hand-picked pairs: nulls, identical, all-zero sides, balanced unrelated and near pairs."""
    rng = np.random.default_rng(20240601)
    zero, ones = bytes(NAME_BYTES), b"\xff" * NAME_BYTES
    a = balanced(rng)
    cases: list[tuple[bytes | None, bytes | None]] = [
        (None, a),
        (a, None),
        (None, None),
        (a, a),
        (zero, a),
        (a, zero),
        (zero, zero),
        (ones, a),
        (a, flip(a, 26, rng)),
    ]
    cases += [(balanced(rng), balanced(rng)) for _ in range(40)]
    cases += [(bytes(rng.bytes(NAME_BYTES)), bytes(rng.bytes(NAME_BYTES))) for _ in range(40)]
    return cases


def pair_table(cases: Sequence[tuple[bytes | None, bytes | None]], nbytes: int) -> pa.Table:
    """Columns i, a, b with the filters as fixed_size_binary, as the connector writes them."""
    return pa.table(
        {
            "i": pa.array(range(len(cases)), pa.int64()),
            "a": pa.array([c[0] for c in cases], pa.binary(nbytes)),
            "b": pa.array([c[1] for c in cases], pa.binary(nbytes)),
        }
    )


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-process DuckDB connection."""
    connection = duckdb.connect()
    yield connection
    connection.close()


def duckdb_dice(con: duckdb.DuckDBPyConnection, table: pa.Table) -> list[float | None]:
    """Evaluate dice_sql over a registered Arrow table, in row order."""
    con.register("pairs", table)
    try:
        rows = con.sql(f"SELECT {dice_sql('a', 'b', 'duckdb')} FROM pairs ORDER BY i").fetchall()
    finally:
        con.unregister("pairs")
    return [r[0] for r in rows]


def spark_frame(spark: Any, table: pa.Table) -> Any:
    """The same table with filters converted to Spark's array<bigint> form."""
    converted = table.set_column(1, "a", filter_words(table["a"])).set_column(
        2, "b", filter_words(table["b"])
    )
    return spark.createDataFrame(converted)


# --- Dice SQL against the reference -------------------------------------------------------------


def test_duckdb_dice_matches_reference_on_fixed_cases(con: duckdb.DuckDBPyConnection) -> None:
    """DuckDB's Dice equals the popcount reference on nulls, identical, zero and random pairs."""
    cases = fixed_cases()
    got = duckdb_dice(con, pair_table(cases, NAME_BYTES))
    assert got == [reference_dice(a, b) for a, b in cases]
    assert got[3] == 1.0  # identical
    assert got[4] == 0.0 and got[5] == 0.0  # all-zero on one side: 0, no division error
    assert got[6] is None  # both all-zero: undefined, NULL
    assert got[8] == pytest.approx(1 - 26 / (NAME_BYTES * 4))
    unrelated = np.array(got[9:49], dtype=float)
    assert abs(unrelated.mean() - 0.5) < 0.02  # balanced unrelated filters sit near 0.5


filters16 = st.one_of(st.none(), st.binary(min_size=16, max_size=16))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(filters16, filters16), min_size=1, max_size=8))
def test_duckdb_dice_matches_reference_on_any_filters(
    con: duckdb.DuckDBPyConnection, cases: list[tuple[bytes | None, bytes | None]]
) -> None:
    """For any 128-bit filters (or nulls), DuckDB's Dice equals the reference exactly."""
    assert duckdb_dice(con, pair_table(cases, 16)) == [reference_dice(a, b) for a, b in cases]


def test_spark_dice_matches_reference(spark: Any) -> None:
    """Spark's Dice over array<bigint> filters equals the reference on the same cases as DuckDB."""
    cases = fixed_cases()
    frame = spark_frame(spark, pair_table(cases, NAME_BYTES))
    frame.createOrReplaceTempView("pairs")
    rows = spark.sql(f"SELECT {dice_sql('a', 'b', 'spark')} AS d FROM pairs ORDER BY i").collect()
    assert [r["d"] for r in rows] == [reference_dice(a, b) for a, b in cases]


def test_filter_words_packs_msb_first_and_keeps_nulls() -> None:
    """The first bit of the filter is the sign bit of the first 64-bit word; nulls stay null."""
    column = pa.array([b"\x80" + bytes(15), None, bytes(8) + b"\x00" * 7 + b"\x01"], pa.binary(16))
    assert filter_words(column).to_pylist() == [[-(2**63), 0], None, [0, 1]]


def test_filter_words_refuses_partial_words_and_other_types() -> None:
    """A filter that is not whole 64-bit words, or not fixed-size binary, is refused."""
    with pytest.raises(InputMismatchError):
        filter_words(pa.array([bytes(12)], pa.binary(12)))
    with pytest.raises(InputMismatchError):
        filter_words(pa.array([b"abc"], pa.binary()))


# --- levels and comparisons as Splink objects ---------------------------------------------------


def level_sqls(comparison: Any, dialect: str) -> list[str]:
    """The SQL condition of every level of a comparison creator, in order."""
    return [
        lvl["sql_condition"]
        for lvl in comparison.create_comparison_dict(dialect)["comparison_levels"]
    ]


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_filter_comparison_builds_engine_specific_sql(dialect: str) -> None:
    """The filter comparison has null / three Dice / else levels, each in the engine's own SQL."""
    comparison = filter_comparison("bf_given_name")
    built = comparison.get_comparison(dialect)  # Splink's own Comparison: parses every level
    assert [lvl.is_null_level for lvl in built.comparison_levels] == [True] + [False] * 4
    sqls = level_sqls(comparison, dialect)
    assert sqls[-1] == "ELSE"
    for sql, threshold in zip(sqls[1:4], (0.9, 0.8, 0.6), strict=True):
        assert sql.endswith(f">= {threshold}")
        assert "nullif(" in sql
        sqlglot.parse_one(sql, read=dialect)
        if dialect == "duckdb":
            assert '"bf_given_name_l"::BIT & "bf_given_name_r"::BIT' in sql
            assert "BOOLEAN" not in sql.upper() and "zip_with" not in sql
        else:
            assert "zip_with(`bf_given_name_l`, `bf_given_name_r`" in sql
            assert "::" not in sql


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
    ours = AndLevel.all_dice(["bf_given_name", "bf_family_name"], 0.9)
    theirs = And(DiceLevel("bf_given_name", 0.9), DiceLevel("bf_family_name", 0.9))
    assert ours.get_comparison_level(dialect).sql_condition == (
        theirs.get_comparison_level(dialect).sql_condition
    )
    assert ours.columns == ("bf_given_name", "bf_family_name")


def name_dob_ladder() -> Any:
    """The name + date-of-birth evidence ladder of the v1 schema."""
    return ladder_comparison(
        "name_dob",
        [
            TokenMatchLevel("tok_name_dob"),
            TokenMatchLevel("tok_name_dob_swapped"),
            AndLevel.all_dice(["bf_given_name", "bf_family_name"], 0.9),
            DiceLevel("bf_family_name", 0.8),
        ],
        description="name and date of birth",
    )


def test_ladder_null_level_needs_every_column_null_on_one_side() -> None:
    """The ladder's null level lists every column, all NULL on the left or all on the right."""
    dictionary = name_dob_ladder().create_comparison_dict("duckdb")
    assert dictionary["comparison_description"] == "name and date of birth"
    assert dictionary["output_column_name"] == "name_dob"
    null_sql = dictionary["comparison_levels"][0]["sql_condition"]
    columns = ("tok_name_dob", "tok_name_dob_swapped", "bf_given_name", "bf_family_name")
    left = " AND ".join(f'"{c}_l" IS NULL' for c in columns)
    right = " AND ".join(f'"{c}_r" IS NULL' for c in columns)
    assert null_sql == f"({left}) OR ({right})"


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: filter_comparison("bf_x", (0.8, 0.9)), id="ascending"),
        pytest.param(lambda: filter_comparison("bf_x", (0.9, 0.9)), id="repeated"),
        pytest.param(lambda: filter_comparison("bf_x", (1.2, 0.9)), id="above-one"),
        pytest.param(lambda: filter_comparison("bf_x", (0.9, 0.0)), id="zero"),
        pytest.param(lambda: filter_comparison("bf_x", ()), id="empty"),
        pytest.param(lambda: DiceLevel("bf_x", True), id="bool-threshold"),
        pytest.param(lambda: DiceLevel("bf_x; DROP TABLE t", 0.9), id="not-identifier"),
        pytest.param(lambda: ladder_comparison("x", []), id="empty-ladder"),
        pytest.param(lambda: AndLevel(DiceLevel("bf_x", 0.9)), id="and-of-one"),
        pytest.param(lambda: NullLevel([]), id="null-of-none"),
        pytest.param(lambda: dice_sql("a", "b", "sqlite"), id="unsupported-dialect"),
    ],
)
def test_invalid_settings_are_refused(build: Any) -> None:
    """Bad thresholds, names, empty ladders and unsupported engines raise SettingsError."""
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
    ]
    names = [
        "tok_name_dob_l", "tok_name_dob_r", "tok_name_dob_swapped_l", "tok_name_dob_swapped_r",
        "bf_given_name_l", "bf_given_name_r", "bf_family_name_l", "bf_family_name_r",
    ]  # fmt: skip
    columns: dict[str, pa.Array] = {"i": pa.array(range(len(rows)), pa.int64())}
    for k, name in enumerate(names):
        width = 16 if name.startswith("tok_") else NAME_BYTES
        columns[name] = pa.array([r[k] for r in rows], pa.binary(width))
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
    """Run in Spark over array<bigint> filters, the ladder gives the same values as in DuckDB."""
    table, expected = ladder_pairs()
    for k, name in enumerate(table.column_names):
        if name.startswith("bf_"):
            table = table.set_column(k, name, filter_words(table[name]))
    spark.createDataFrame(table).createOrReplaceTempView("ladder")
    sql = f"SELECT {gamma_sql(name_dob_ladder(), 'spark')} AS g FROM ladder ORDER BY i"
    assert [r["g"] for r in spark.sql(sql).collect()] == expected


def linker_inputs() -> tuple[pa.Table, pa.Table, Any, Any]:
    """Two agencies' hand-made records and the token and filter comparisons with fixed m/u."""
    rng = np.random.default_rng(11)
    given = balanced(rng)
    tok = [bytes([i]) * 16 for i in range(4)]
    agency_a = pa.table(
        {
            "unique_id": pa.array([1, 2, 3], pa.int64()),
            "tok_nhs": pa.array([tok[1], tok[2], None], pa.binary(16)),
            "bf_given_name": pa.array([given, given, None], pa.binary(NAME_BYTES)),
        }
    )
    agency_b = pa.table(
        {
            "unique_id": pa.array([11, 12, 13], pa.int64()),
            "tok_nhs": pa.array([tok[1], tok[3], tok[3]], pa.binary(16)),
            "bf_given_name": pa.array(
                [given, flip(given, 80, rng), balanced(rng)], pa.binary(NAME_BYTES)
            ),  # Dice 1, 0.84, ~0.5
        }
    )
    tokens = token_comparison("tok_nhs", tf_adjustment=True).configure(
        m_probabilities=[0.9, 0.1], u_probabilities=[0.001, 0.999]
    )
    names = filter_comparison("bf_given_name").configure(
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
    """Splink's Spark backend, with filters as array<bigint>, gives the same gammas as DuckDB."""
    from splink import SparkAPI  # here, not at the top: it needs pyspark, which may be absent

    agency_a, agency_b, tokens, names = linker_inputs()
    frames = [
        spark.createDataFrame(t.set_column(2, "bf_given_name", filter_words(t["bf_given_name"])))
        for t in (agency_a, agency_b)
    ]
    db = SparkAPI(spark_session=spark, register_udfs_automatically=False)
    assert predicted_gammas(db, frames, [tokens, names]) == EXPECTED_GAMMAS
