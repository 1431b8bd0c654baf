"""`connector inspect` on something that is not an encoded file says so clearly."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.cli import main


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "cannot read it"),
        (b"not parquet at all", "cannot read it (not Parquet)"),
        ("plain", "not a pprl-hub encoded file"),
    ],
)
def test_inspect_refuses_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | str | None, words: str
) -> None:
    path = tmp_path / "file.parquet"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "plain":
        pq.write_table(pa.table({"a": [1]}), path)
    assert main(["inspect", str(path)]) == 2
    assert words in capsys.readouterr().err
