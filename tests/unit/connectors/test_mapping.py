"""Column mappings: shipped ones load; faults are reported with file, line and column."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connectors.encoding_schema import load_encoding_schema
from connectors.errors import MappingError
from connectors.mapping import load_mapping
from tests.conftest import REPO, VECTORS

BAD = sorted((VECTORS / "mappings" / "bad").glob("*.toml"))


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_mapping_is_refused(path: Path) -> None:
    """Each faulty mapping raises MappingError with the file (and line where one is named)."""
    expect = path.read_text().splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    message = str(info.value)
    line = re.match(r"line (\d+): (.*)", expect)
    if line:
        assert f"{path}:{line.group(1)}:" in message and line.group(2) in message
    else:
        assert expect in message and str(path) in message


@pytest.mark.parametrize("name", ["ae", "police", "febrl"])
def test_shipped_mappings_load(name: str) -> None:
    """The shipped mappings load and map a record id."""
    mapping = load_mapping(REPO / "config" / "mappings" / f"{name}.toml")
    assert mapping.field("record_id") is not None


def test_missing_source_column_names_mapping_line_and_column(tmp_path: Path) -> None:
    """An input without a mapped column is refused naming the mapping line and the column."""
    mapping = load_mapping(REPO / "config" / "mappings" / "ae.toml")
    columns = [c for c in mapping.source_columns() if c != "nhs_no"]
    with pytest.raises(MappingError) as info:
        mapping.check_columns(columns, tmp_path / "in.csv")
    message = str(info.value)
    line = next(i for i, t in enumerate(mapping.path.read_text().splitlines(), 1) if "nhs_no" in t)
    assert f"ae.toml:{line}:" in message and "'nhs_no'" in message and "in.csv" in message


def test_febrl_mapping_fits_febrl_schema_but_not_v1() -> None:
    """Extra fields must be declared by the encoding schema with the same kind."""
    mapping = load_mapping(REPO / "config" / "mappings" / "febrl.toml")
    mapping.check_schema(load_encoding_schema(REPO / "config" / "encoding" / "febrl.toml"))
    with pytest.raises(MappingError, match="not declared in encoding schema uk-person"):
        mapping.check_schema(load_encoding_schema(REPO / "config" / "encoding" / "v1.toml"))
