"""Fuzzing the export readers with Hypothesis: a CSV, Parquet or Excel file that is valid,
mutated (bytes flipped, cut short, spliced) or plain noise either reads as rows of text or
is refused with ``InputFileError``: never another exception, never a hang."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.errors import InputFileError
from connectors.mapping import load_mapping
from connectors.readers import open_export
from tests.conftest import REPO

MAPPING = load_mapping(REPO / "config" / "mappings" / "ae.toml")
WANTED = ["attendance_id", "forename", "surname", "dob"]

cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
rows = st.lists(st.lists(cells, min_size=4, max_size=4), min_size=1, max_size=6)


def _csv(data: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(WANTED)
    writer.writerows(data)
    return out.getvalue().encode("utf-8", "surrogatepass")


def _parquet(data: list[list[str]]) -> bytes:
    table = pa.table({c: [r[i] for r in data] for i, c in enumerate(WANTED)})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _xlsx(data: list[list[str]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(WANTED)
    for row in data:
        sheet.append([c if c.isprintable() else "" for c in row])
    sink = io.BytesIO()
    book.save(sink)
    return sink.getvalue()


#: A mutation: how, and where as fractions of the file (so that what Hypothesis draws does not
#: depend on the file's length, which for .xlsx varies with the zip's timestamps).
mutations = st.tuples(
    st.sampled_from(["flip", "cut", "splice", "noise", "as-is"]),
    st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=8),
    st.binary(max_size=2048),
)


def _mutate(valid: bytes, mutation: tuple[str, list[tuple[float, int]], bytes]) -> bytes:
    how, places, extra = mutation
    data = bytearray(valid)
    at = [min(int(f * len(data)), max(len(data) - 1, 0)) for f, _ in places]
    if how == "flip" and data:
        for i, (_, bits) in zip(at, places, strict=True):
            data[i] ^= bits
    elif how == "cut":
        data = data[: at[0]]
    elif how == "splice":
        data[at[0] : at[0]] = extra[:64]
    elif how == "noise":
        data = bytearray(extra)
    return bytes(data)


def _read(path: Path) -> None:
    reader = open_export(path, MAPPING)
    wanted = [c for c in WANTED if c in reader.columns]
    for batch in reader.batches(wanted, 3):
        for column in batch.values():
            assert all(v is None or isinstance(v, str) for v in column)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=rows, mutation=mutations)
def test_readers_read_or_refuse_clearly(
    suffix: str,
    data: list[list[str]],
    mutation: tuple[str, list[tuple[float, int]], bytes],
    tmp_path: Path,
) -> None:
    build = {".csv": _csv, ".parquet": _parquet, ".xlsx": _xlsx}[suffix]
    path = tmp_path / f"export{suffix}"
    path.write_bytes(_mutate(build(data), mutation))
    try:
        _read(path)
    except InputFileError as exc:
        message = str(exc)
    else:
        return
    assert message.startswith(str(path)) or "column" in message, message
