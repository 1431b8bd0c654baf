"""CSV, Parquet and Excel exports of the same records encode to the same tokens."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from connectors.encoding_schema import load_encoding_schema
from connectors.errors import InputFileError
from connectors.keys import generate_key
from connectors.mapping import load_mapping
from connectors.pipeline import PseudonymiseJob, pseudonymise
from tests.conftest import REPO, VECTORS

GOLDEN = VECTORS / "golden" / "input.csv"
LINKAGE = generate_key("linkage-secret")
RECORD = generate_key("record-key")


def _job(source: Path, out: Path) -> PseudonymiseJob:
    return PseudonymiseJob(
        mapping=load_mapping(REPO / "config" / "mappings" / "ae.toml"),
        schema=load_encoding_schema(REPO / "config" / "encoding" / "v1.toml"),
        linkage_key=LINKAGE,
        record_key=RECORD,
        input=source,
        output=out,
        agency="ae-test",
        today=dt.date(2026, 1, 1),
    )


def _encode(source: Path, out: Path) -> pa.Table:
    pseudonymise(_job(source, out))
    return pq.read_table(out)


def _golden_strings() -> pa.Table:
    names = GOLDEN.read_text().splitlines()[0].split(",")
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    return pacsv.read_csv(GOLDEN, convert_options=convert)


def _typed(table: pa.Table) -> pa.Table:
    """The golden table as a database export would type it: dates as dates, numbers as ints."""
    dob = [
        dt.datetime.strptime(v, "%d/%m/%Y").date()
        if v and v[2:3] == "/" and v[:2] != "29"
        else None
        for v in table.column("dob").to_pylist()
    ]
    nhs = [int(v.replace(" ", "")) if v else None for v in table.column("nhs_no").to_pylist()]
    table = table.set_column(table.schema.get_field_index("dob"), "dob", pa.array(dob, pa.date32()))
    return table.set_column(
        table.schema.get_field_index("nhs_no"), "nhs_no", pa.array(nhs, pa.int64())
    )


def test_parquet_with_string_columns_matches_csv(tmp_path: Path) -> None:
    """A Parquet export with the same text gives byte-identical encodings."""
    source = tmp_path / "in.parquet"
    pq.write_table(_golden_strings(), source)
    assert _encode(source, tmp_path / "p.parquet").equals(_encode(GOLDEN, tmp_path / "c.parquet"))


def test_parquet_with_typed_columns_encodes_dates_and_numbers(tmp_path: Path) -> None:
    """Date and integer columns are read as ISO dates and digits, giving the same tokens."""
    source = tmp_path / "typed.parquet"
    pq.write_table(_typed(_golden_strings()), source)
    typed = _encode(source, tmp_path / "t.parquet")
    plain = _encode(GOLDEN, tmp_path / "c.parquet")
    for name in ("tok_nhs", "tok_name_dob"):
        got = typed.column(name).to_pylist()
        want = plain.column(name).to_pylist()
        matches = sum(1 for a, b in zip(got, want, strict=True) if a is not None and a == b)
        assert matches >= 2, name


def test_excel_matches_csv(tmp_path: Path) -> None:
    """An .xlsx export of the same cells gives byte-identical encodings."""
    table = _golden_strings()
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(table.column_names)
    for row in table.to_pylist():
        sheet.append([row[c] for c in table.column_names])
    source = tmp_path / "in.xlsx"
    book.save(source)
    assert _encode(source, tmp_path / "x.parquet").equals(_encode(GOLDEN, tmp_path / "c.parquet"))


@pytest.mark.parametrize("suffix", [".parquet", ".xlsx"])
def test_garbage_with_binary_format_extension_is_refused(tmp_path: Path, suffix: str) -> None:
    """A file that only pretends to be Parquet or Excel gets a clear error and no output."""
    source = tmp_path / f"fake{suffix}"
    source.write_bytes(b"this is not really a binary table\n" * 10)
    with pytest.raises(InputFileError, match="not a readable"):
        pseudonymise(_job(source, tmp_path / "out.parquet"))
    assert not (tmp_path / "out.parquet").exists()
