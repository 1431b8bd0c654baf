"""Reading agency exports (CSV, Parquet, Excel) as batches of string columns.

Readers stream: memory depends on the batch size, not on the file size. Every problem with the
file itself (empty, binary, not UTF-8, a line longer than the limit, ragged rows, not really
Parquet or Excel) is an :class:`InputFileError` that names the file and never echoes its values.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from connectors.errors import InputFileError
from connectors.mapping import ColumnMapping, InputFormat

#: The longest CSV line (or row) accepted; longer ones are refused as malformed.
MAX_LINE_BYTES = 8 * 1024 * 1024
_SNIFF_BYTES = 64 * 1024

Batch = dict[str, list[str | None]]


class ExportReader(Protocol):
    """An open export: its header, then its rows in batches of string columns."""

    columns: list[str]

    def batches(self, wanted: list[str], rows: int) -> Iterator[Batch]: ...


def open_export(path: Path, mapping: ColumnMapping) -> ExportReader:
    """Open ``path`` in the format the mapping declares or its extension implies."""
    fmt: InputFormat = mapping.input_format(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise InputFileError(f"{path}: the file is empty")
    if fmt == "csv":
        return CsvReader(path, mapping.delimiter)
    if fmt == "parquet":
        return ParquetReader(path)
    return ExcelReader(path, mapping.sheet)


def _check_header(path: Path, columns: list[str]) -> list[str]:
    columns = [c.strip() for c in columns]
    if not columns or all(not c for c in columns):
        raise InputFileError(f"{path}: the header row is empty")
    seen: set[str] = set()
    for c in columns:
        if c in seen:
            raise InputFileError(f"{path}: column {c!r} appears twice in the header")
        seen.add(c)
    return columns


@dataclass
class CsvReader:
    """A delimited text file with a header row, read with pyarrow's streaming CSV reader."""

    path: Path
    delimiter: str
    columns: list[str]

    def __init__(self, path: Path, delimiter: str) -> None:
        self.path, self.delimiter = path, delimiter
        with path.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
        if b"\x00" in head:
            raise InputFileError(f"{path}: this is a binary file, not a CSV text file")
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # not just a character cut off by the sniff window
                raise InputFileError(
                    f"{path}: not UTF-8 text (byte {exc.start}); export as UTF-8 CSV"
                ) from None
        with path.open("rb") as fh:
            first = fh.readline(MAX_LINE_BYTES + 1)
        if len(first) > MAX_LINE_BYTES:
            raise InputFileError(
                f"{path}: the header line is longer than {MAX_LINE_BYTES // 2**20} MiB: "
                "not a CSV export"
            )
        text = first.decode("utf-8", errors="replace").lstrip("\ufeff")
        row = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
        self.columns = _check_header(path, row)

    def batches(self, wanted: list[str], rows: int) -> Iterator[Batch]:
        read = pacsv.ReadOptions(block_size=MAX_LINE_BYTES, use_threads=True)
        parse = pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True)
        convert = pacsv.ConvertOptions(
            include_columns=wanted,
            column_types=dict.fromkeys(wanted, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        got_rows = False
        try:
            reader = pacsv.open_csv(
                self.path, read_options=read, parse_options=parse, convert_options=convert
            )
            for record_batch in reader:
                for table_batch in _rechunk(record_batch, rows):
                    got_rows = True
                    yield {name: table_batch.column(name).to_pylist() for name in wanted}
        except (pa.ArrowInvalid, pa.ArrowException) as exc:
            raise InputFileError(f"{self.path}: {_clean_arrow_error(str(exc))}") from None
        if not got_rows:
            raise InputFileError(f"{self.path}: the file has a header but no data rows")


def _rechunk(batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    for offset in range(0, batch.num_rows, rows):
        yield batch.slice(offset, rows)


_AFTER_COUNT = re.compile(r"(got \d+)\s*:.*", re.DOTALL)


def _clean_arrow_error(message: str) -> str:
    """pyarrow quotes the offending row after the column counts; drop it (it holds identifiers)."""
    message = _AFTER_COUNT.sub(r"\1", message)
    if "straddling" in message or "straddles" in message:
        return (
            f"a row is longer than the {MAX_LINE_BYTES // 2**20} MiB limit (or a quote is never "
            "closed): not a well-formed CSV export"
        )
    message = message.strip().removeprefix("CSV parse error:").strip()
    return f"malformed CSV: {message.splitlines()[0]}" if message else "malformed CSV"


@dataclass
class ParquetReader:
    """A Parquet file; non-string columns are cast to their ISO text form."""

    path: Path
    columns: list[str]

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = pq.ParquetFile(path)
            names = list(self._file.schema_arrow.names)
        except (pa.ArrowException, OSError, ValueError) as exc:  # ValueError: bad UTF-8
            raise InputFileError(f"{path}: not a readable Parquet file ({exc})") from None
        self.columns = _check_header(path, names)

    def batches(self, wanted: list[str], rows: int) -> Iterator[Batch]:
        if self._file.metadata.num_rows == 0:
            raise InputFileError(f"{self.path}: the file has no rows")
        try:
            for batch in self._file.iter_batches(batch_size=rows, columns=wanted):
                yield {name: _as_text(batch.column(name)) for name in wanted}
        except (pa.ArrowException, OSError, ValueError) as exc:  # ValueError: bad UTF-8
            raise InputFileError(f"{self.path}: cannot read Parquet data ({exc})") from None


def _as_text(column: pa.Array) -> list[str | None]:
    typ = column.type
    if pa.types.is_floating(typ):
        integral = pc.all(pc.equal(column, pc.floor(column))).as_py()
        if integral:
            column = pc.cast(column, pa.int64(), safe=False)
    elif pa.types.is_timestamp(typ):
        column = pc.strftime(column, format="%Y-%m-%d %H:%M:%S")
    elif pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        raise InputFileError("a mapped Parquet column holds binary data, not text")
    values: list[str | None] = pc.cast(column, pa.string()).to_pylist()
    return values


def _xlsx_errors() -> tuple[type[BaseException], ...]:
    """What a damaged .xlsx raises from openpyxl: a bad zip, a bad deflate stream, broken
    XML, missing parts, bad text."""
    import zipfile
    import zlib
    from xml.etree.ElementTree import ParseError

    from openpyxl.utils.exceptions import InvalidFileException

    return (
        InvalidFileException,
        zipfile.BadZipFile,
        zlib.error,
        ParseError,
        EOFError,
        OSError,
        KeyError,
        ValueError,
        TypeError,
        IndexError,
        AttributeError,
    )


_XLSX_ERRORS = _xlsx_errors()


@dataclass
class ExcelReader:
    """The first (or the named) worksheet of an .xlsx workbook; the first row is the header."""

    path: Path
    columns: list[str]

    def __init__(self, path: Path, sheet: str | None) -> None:
        from openpyxl import load_workbook

        self.path = path
        try:
            self._book = load_workbook(path, read_only=True, data_only=True)
        except _XLSX_ERRORS:
            raise InputFileError(f"{path}: not a readable Excel .xlsx workbook") from None
        if sheet is not None and sheet not in self._book.sheetnames:
            raise InputFileError(f"{path}: no worksheet named {sheet!r}")
        self._sheet = self._book[sheet] if sheet is not None else self._book.worksheets[0]
        try:
            header = next(self._sheet.iter_rows(max_row=1, values_only=True), None)
        except _XLSX_ERRORS:
            raise InputFileError(f"{path}: the workbook is damaged") from None
        if header is None:
            raise InputFileError(f"{path}: the worksheet is empty")
        self.columns = _check_header(path, [_cell_text(v) or "" for v in header])

    def batches(self, wanted: list[str], rows: int) -> Iterator[Batch]:
        try:
            yield from self._batches(wanted, rows)
        except _XLSX_ERRORS:
            raise InputFileError(f"{self.path}: the workbook is damaged") from None

    def _batches(self, wanted: list[str], rows: int) -> Iterator[Batch]:
        index = [self.columns.index(c) for c in wanted]
        batch: Batch = {c: [] for c in wanted}
        count = 0
        got_rows = False
        for row in self._sheet.iter_rows(min_row=2, values_only=True):
            if all(v is None for v in row):
                continue
            for name, i in zip(wanted, index, strict=True):
                batch[name].append(_cell_text(row[i]) if i < len(row) else None)
            count += 1
            if count == rows:
                got_rows = True
                yield batch
                batch, count = {c: [] for c in wanted}, 0
        if count:
            got_rows = True
            yield batch
        self._book.close()
        if not got_rows:
            raise InputFileError(f"{self.path}: the worksheet has a header but no data rows")


def _cell_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
