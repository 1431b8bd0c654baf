"""Upload validation on a real encoded file from the connector: the happy path, and each
way an upload can be wrong refused with a message that says what."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hub.errors import Unprocessable
from hub.validate import Expected, validate_encoded
from tests.conftest import encode_synthetic_ae


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Expected]:
    out = encode_synthetic_ae(tmp_path_factory.mktemp("validate"), 300, 5)
    meta = json.loads(pq.read_metadata(out).metadata[b"pprl"])
    expected = Expected(
        agency=meta["agency"],
        schema_id=meta["schema"]["id"],
        schema_hash=meta["schema"]["hash"],
        key_check_value=meta["key_check_value"],
        permitted_fields=frozenset(a["name"] for a in meta["attributes"]),
    )
    return out, expected


def _rewrite(src: Path, dst: Path, table_fn=None, meta_fn=None) -> Path:  # type: ignore[no-untyped-def]
    table = pq.read_table(src)
    meta = json.loads(pq.read_metadata(src).metadata[b"pprl"])
    if table_fn is not None:
        table = table_fn(table)
    if meta_fn is not None:
        meta_fn(meta)
    with pq.ParquetWriter(dst, table.schema) as writer:
        writer.add_key_value_metadata({"pprl": json.dumps(meta)})
        writer.write_table(table)
    return dst


def test_a_good_upload_passes(encoded: tuple[Path, Expected]) -> None:
    path, expected = encoded
    info = validate_encoded(path, expected)
    assert info.rows == info.metadata["row_count"] > 0
    assert "record_pseudonym" in info.columns and info.attributes


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_hash": "0" * 64}, "another encoding schema"),
        ({"key_check_value": "0" * 16}, "another linkage secret"),
        ({"agency": "police-sw"}, "not your agency"),
        ({"permitted_fields": frozenset()}, "not permitted"),
    ],
)
def test_mismatches_with_the_project_are_refused(
    encoded: tuple[Path, Expected], change: dict[str, object], message: str
) -> None:
    path, expected = encoded
    with pytest.raises(Unprocessable, match=message):
        validate_encoded(path, replace(expected, **change))  # type: ignore[arg-type]


def test_an_extra_plaintext_column_is_refused(
    encoded: tuple[Path, Expected], tmp_path: Path
) -> None:
    path, expected = encoded
    bad = _rewrite(
        path,
        tmp_path / "extra.parquet",
        table_fn=lambda t: t.append_column("surname", pa.array(["SMITH"] * t.num_rows)),
    )
    with pytest.raises(Unprocessable, match="'surname' is not declared"):
        validate_encoded(bad, expected)


def test_text_in_a_token_column_is_refused(encoded: tuple[Path, Expected], tmp_path: Path) -> None:
    path, expected = encoded
    column = next(n for n in pq.read_schema(path).names if n.startswith("tok_"))

    def to_text(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index(column)
        return t.set_column(i, column, pa.array(["JOHN SMITH 1980-01-01"] * t.num_rows))

    bad = _rewrite(path, tmp_path / "text.parquet", table_fn=to_text)
    with pytest.raises(Unprocessable, match="must be binary"):
        validate_encoded(bad, expected)


def test_row_count_mismatch_is_refused(encoded: tuple[Path, Expected], tmp_path: Path) -> None:
    path, expected = encoded
    bad = _rewrite(path, tmp_path / "rows.parquet", meta_fn=lambda m: m.update(row_count=7))
    with pytest.raises(Unprocessable, match="rows but its metadata says 7"):
        validate_encoded(bad, expected)


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.9])
def test_truncated_files_are_refused(
    encoded: tuple[Path, Expected], tmp_path: Path, keep: float
) -> None:
    path, expected = encoded
    data = path.read_bytes()
    bad = tmp_path / "cut.parquet"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(Unprocessable, match=r"not a readable Parquet file|damaged"):
        validate_encoded(bad, expected)


def test_a_file_without_pprl_metadata_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"surname": ["SMITH"]}), plain)
    expected = Expected("a", "s", "0" * 64, "0" * 16, frozenset())
    with pytest.raises(Unprocessable, match="no pprl metadata"):
        validate_encoded(plain, expected)
