"""Encoded inputs: read with their metadata, refused when they cannot be linked together."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.encoding_schema import load_encoding_schema
from connectors.keys import Key, generate_key
from connectors.mapping import load_mapping
from connectors.pipeline import PseudonymiseJob, pseudonymise
from linkage.errors import InputMismatchError, LinkageError
from linkage.inputs import check_linkable, filter_word_columns, filter_word_count, read_encoded
from tests.conftest import REPO, VECTORS


def _encode(tmp: Path, name: str, linkage: Key, schema: str = "v1") -> Path:
    out = tmp / f"{name}.parquet"
    pseudonymise(
        PseudonymiseJob(
            mapping=load_mapping(REPO / "config" / "mappings" / "ae.toml"),
            schema=load_encoding_schema(REPO / "config" / "encoding" / f"{schema}.toml"),
            linkage_key=linkage,
            record_key=generate_key("record-key"),
            input=VECTORS / "golden" / "input.csv",
            output=out,
            agency=name,
            today=dt.date(2026, 1, 1),
        )
    )
    return out


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("inputs")
    key = generate_key("linkage-secret")
    return {
        "a": _encode(tmp, "agency-a", key),
        "b": _encode(tmp, "agency-b", key),
        "other-key": _encode(tmp, "agency-c", generate_key("linkage-secret")),
    }


def test_reads_table_and_metadata(encoded: dict[str, Path]) -> None:
    """A dataset is named by its agency and lists its token and filter columns."""
    ds = read_encoded(encoded["a"])
    assert ds.name == "agency-a"
    assert "tok_name_dob" in ds.token_columns
    assert "bf_given_name" in ds.filter_columns
    assert ds.table.num_rows == ds.metadata["row_count"]


def test_same_schema_and_key_are_linkable(encoded: dict[str, Path]) -> None:
    """Two uploads under one schema and secret pass the check."""
    check_linkable([read_encoded(encoded["a"]), read_encoded(encoded["b"])])


def test_different_key_is_refused(encoded: dict[str, Path]) -> None:
    """Uploads made with different linkage secrets are refused, naming both."""
    with pytest.raises(InputMismatchError, match="different linkage secret"):
        check_linkable([read_encoded(encoded["a"]), read_encoded(encoded["other-key"])])


def test_different_schema_is_refused(encoded: dict[str, Path], tmp_path: Path) -> None:
    """Uploads encoded with different schemas are refused."""
    changed = tmp_path / "changed.parquet"
    table = pq.read_table(encoded["b"])
    meta = json.loads(pq.read_metadata(encoded["b"]).metadata[b"pprl"])
    meta["schema"]["hash"] = "0" * 64
    pq.write_table(table.replace_schema_metadata({b"pprl": json.dumps(meta)}), changed)
    with pytest.raises(InputMismatchError, match="different schemas"):
        check_linkable([read_encoded(encoded["a"]), read_encoded(changed)])


def test_non_encoded_file_is_refused(tmp_path: Path) -> None:
    """A Parquet file without pprl metadata, or not Parquet at all, is refused clearly."""
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"x": [1]}), plain)
    with pytest.raises(LinkageError, match="not a pprl-hub encoded file"):
        read_encoded(plain)
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"junk")
    with pytest.raises(LinkageError, match="not a readable Parquet file"):
        read_encoded(junk)


def test_one_dataset_or_duplicate_names_are_refused(encoded: dict[str, Path]) -> None:
    """Linkage needs two or more datasets with distinct names."""
    a = read_encoded(encoded["a"])
    with pytest.raises(LinkageError, match="at least two"):
        check_linkable([a])
    with pytest.raises(LinkageError, match="distinct"):
        check_linkable([a, read_encoded(encoded["b"], name="agency-a")])


def _words_back(columns: dict[str, pa.Array], row: int, words: int) -> bytes | None:
    """Row ``row`` of the word columns of filter ``f``, as the filter's bytes (None if null)."""
    values = [columns[f"f_w{i}"][row].as_py() for i in range(words)]
    if values[0] is None:
        return None
    return b"".join(int(w).to_bytes(8, "big", signed=True) for w in values)


def test_filter_word_columns_names_types_and_msb_first() -> None:
    """Word columns f_w0.. are int64 (first filter bit = sign bit of f_w0), then f_n int32."""
    column = pa.array(
        [b"\x80" + bytes(15), None, bytes(15) + b"\x01", bytes(16), b"\xff" * 16], pa.binary(16)
    )
    columns = filter_word_columns("f", column)
    assert list(columns) == ["f_w0", "f_w1", "f_n"]
    assert [columns[c].type for c in columns] == [pa.int64(), pa.int64(), pa.int32()]
    assert columns["f_w0"].to_pylist() == [-(2**63), None, 0, 0, -1]
    assert columns["f_w1"].to_pylist() == [0, None, 1, 0, -1]
    # an all-zero filter is present (popcount 0), not null
    assert columns["f_n"].to_pylist() == [1, None, 1, 0, 128]


filters24 = st.one_of(st.none(), st.binary(min_size=24, max_size=24))


@settings(max_examples=60, deadline=None)
@given(st.lists(filters24, min_size=1, max_size=12))
def test_filter_word_columns_round_trip(values: list[bytes | None]) -> None:
    """For any 192-bit filters: the words give back the bytes, nulls stay null in every column,
    and the popcount is the number of set bits."""
    columns = filter_word_columns("f", pa.array(values, pa.binary(24)))
    assert set(columns) == {"f_w0", "f_w1", "f_w2", "f_n"}
    for row, value in enumerate(values):
        assert _words_back(columns, row, 3) == value
        expected_n = None if value is None else int.from_bytes(value, "big").bit_count()
        assert columns["f_n"][row].as_py() == expected_n
        if value is None:
            assert all(not columns[c][row].is_valid for c in columns)


def test_filter_word_columns_reads_slices_and_chunks_at_their_offset() -> None:
    """A slice or a chunked column gives the same columns as the same rows of the whole one."""
    rng = np.random.default_rng(3)
    raw = [rng.integers(0, 256, 16, dtype=np.uint8).tobytes() for _ in range(6)]
    column = pa.array([raw[0], None, *raw[2:]], pa.binary(16))
    whole = {k: v.to_pylist() for k, v in filter_word_columns("f", column).items()}
    sliced = filter_word_columns("f", column.slice(2, 3))
    assert {k: v.to_pylist() for k, v in sliced.items()} == {k: v[2:5] for k, v in whole.items()}
    chunked = filter_word_columns("f", pa.chunked_array([column.slice(0, 2), column.slice(2)]))
    assert {k: v.to_pylist() for k, v in chunked.items()} == whole


def test_filter_word_columns_refuses_partial_words_and_other_types() -> None:
    """A filter that is not whole 64-bit words, or not fixed-size binary, is refused."""
    with pytest.raises(InputMismatchError, match="64-bit words"):
        filter_word_columns("f", pa.array([bytes(12)], pa.binary(12)))
    with pytest.raises(InputMismatchError):
        filter_word_columns("f", pa.array([b"abc"], pa.binary()))


def test_filter_word_count() -> None:
    """The words one filter takes: its bytes / 8; a partial word is refused."""
    assert filter_word_count(pa.array([bytes(16)], pa.binary(16))) == 2
    assert filter_word_count(pa.chunked_array([pa.array([bytes(128)], pa.binary(128))])) == 16
    with pytest.raises(InputMismatchError):
        filter_word_count(pa.array([bytes(20)], pa.binary(20)))


def test_encoded_filters_convert_whole(encoded: dict[str, Path]) -> None:
    """Every filter of a real encoded file converts; balanced filters have half their bits set."""
    ds = read_encoded(encoded["a"])
    for name in ds.filter_columns:
        filters = ds.table.column(name)
        words = filter_word_count(filters)
        columns = filter_word_columns(name, filters)
        assert len(columns) == words + 1
        counts = columns[f"{name}_n"].to_pylist()
        for row, value in enumerate(filters.to_pylist()):
            expected = None if value is None else int.from_bytes(value, "big").bit_count()
            assert counts[row] == expected
        assert {c for c in counts if c is not None} == {words * 64 // 2}  # v1 is balanced
