"""Encoded inputs: read with their metadata, refused when they cannot be linked together."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.encoding_schema import load_encoding_schema
from connectors.keys import Key, generate_key
from connectors.mapping import load_mapping
from connectors.pipeline import PseudonymiseJob, pseudonymise
from linkage.errors import InputMismatchError, LinkageError
from linkage.inputs import check_linkable, filter_words, read_encoded
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


def test_filter_words_keeps_bits_and_nulls() -> None:
    """Filters become big-endian int64 lists with the same bits; null filters stay null."""
    rng = np.random.default_rng(3)
    raw = [rng.integers(0, 256, 16, dtype=np.uint8).tobytes() for _ in range(4)]
    column = pa.array([raw[0], None, raw[2], raw[3]], type=pa.binary(16))
    longs = filter_words(column.slice(0)).to_pylist()
    assert longs[1] is None
    for value, words in zip([raw[0], raw[2], raw[3]], [longs[0], longs[2], longs[3]], strict=True):
        assert words is not None
        back = b"".join(int(w).to_bytes(8, "big", signed=True) for w in words)
        assert back == value
    sliced = filter_words(column.slice(2, 2)).to_pylist()
    assert sliced == [longs[2], longs[3]]
