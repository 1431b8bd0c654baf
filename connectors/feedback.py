"""Feedback files: which of an agency's records a linkage run linked to another agency's records.

The hub builds one feedback file per (run, agency) with :func:`feedback_table` and writes it with
:func:`write_feedback` (or :func:`feedback_bytes` for a response body). It names records only by
the agency's own record pseudonyms, so it tells the hub nothing it did not already hold; the agency
maps the pseudonyms back to its record ids locally (``connector lookup``, :mod:`connectors.lookup`).

Format ``pprl-hub-feedback`` version 1 is Parquet with exactly these columns, one row per
(record pseudonym, linked agency) pair, sorted by that pair:

* ``record_pseudonym``, ``fixed_size_binary(16)``: the agency's record pseudonym, as in its
  encoded file;
* ``linked_agency``, ``string``, not null: the other agency the record is linked to;
* ``linked_records``, ``int32``, not null, at least 1: how many of that agency's records it is
  linked to.

The file's key-value metadata ``pprl`` is canonical JSON (sorted keys, no spaces) with exactly
``format``, ``format_version``, ``agency``, ``project``, ``run`` and ``created``
(``YYYY-MM-DDTHH:MM:SSZ``). Every check lives in one place (:func:`_validated`), used by the
builder, the writer and the reader alike; every failure is a :class:`FeedbackError`.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from connectors.encode import PSEUDONYM_BYTES
from connectors.errors import FeedbackError
from connectors.pipeline import FORMAT_NAME as ENCODED_FORMAT
from connectors.pipeline import METADATA_KEY

FEEDBACK_FORMAT = "pprl-hub-feedback"
FEEDBACK_FORMAT_VERSION = 1
#: One feedback row: (record pseudonym, linked agency, number of that agency's records linked).
FeedbackRow = tuple[bytes, str, int]

COLUMNS = ("record_pseudonym", "linked_agency", "linked_records")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")  # agency and project ids, as the hub has them
_RUN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_CREATED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_INT32_MAX = 2**31 - 1
_METADATA_KEYS = frozenset({"format", "format_version", "agency", "project", "run", "created"})


@dataclass(frozen=True, slots=True)
class FeedbackMetadata:
    """What a feedback file says about itself."""

    agency: str
    project: str
    run: str
    created: str
    format_version: int = FEEDBACK_FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FEEDBACK_FORMAT,
            "format_version": self.format_version,
            "agency": self.agency,
            "project": self.project,
            "run": self.run,
            "created": self.created,
        }


@dataclass(frozen=True, slots=True)
class Feedback:
    """A validated feedback file: its metadata and its table (schema of :func:`feedback_schema`)."""

    metadata: FeedbackMetadata
    table: pa.Table


def feedback_schema(*, agency: str, project: str, run: str, created: str) -> pa.Schema:
    """The Arrow schema of a feedback file, with its ``pprl`` metadata."""
    return _schema(_metadata(agency=agency, project=project, run=run, created=created))


def feedback_table(
    rows: Iterable[FeedbackRow], *, agency: str, project: str, run: str, created: str
) -> pa.Table:
    """A validated feedback table from ``(record_pseudonym, linked_agency, linked_records)`` rows.

    Rows are sorted; a repeated (pseudonym, linked agency) pair, a pseudonym of the wrong width, a
    linked agency that is not an agency id or is ``agency`` itself, or a count outside
    1..2**31-1 is a :class:`FeedbackError`.
    """
    meta = _metadata(agency=agency, project=project, run=run, created=created)
    pseudonyms: list[bytes] = []
    agencies: list[str] = []
    counts: list[int] = []
    for i, row in enumerate(rows):
        try:
            pseudonym, linked, count = row
        except (TypeError, ValueError):
            raise FeedbackError(
                f"feedback row {i}: expected (record_pseudonym, linked_agency, linked_records)"
            ) from None
        if isinstance(pseudonym, bytearray | memoryview):
            pseudonym = bytes(pseudonym)
        if not isinstance(pseudonym, bytes) or len(pseudonym) != PSEUDONYM_BYTES:
            raise FeedbackError(
                f"feedback row {i}: record_pseudonym must be {PSEUDONYM_BYTES} bytes"
            )
        if not isinstance(linked, str):
            raise FeedbackError(f"feedback row {i}: linked_agency must be a string")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= _INT32_MAX:
            raise FeedbackError(f"feedback row {i}: linked_records must be an integer >= 1")
        pseudonyms.append(pseudonym)
        agencies.append(linked)
        counts.append(count)
    table = pa.Table.from_arrays(
        [
            pa.array(pseudonyms, type=pa.binary(PSEUDONYM_BYTES)),
            pa.array(agencies, type=pa.string()),
            pa.array(counts, type=pa.int32()),
        ],
        schema=_schema(meta),
    )
    return _validated(table.sort_by([(c, "ascending") for c in COLUMNS[:2]]), "feedback").table


def feedback_bytes(table: pa.Table) -> bytes:
    """A feedback table as the bytes of a Parquet feedback file (e.g. an HTTP response body)."""
    table = _validated(table, "feedback").table
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def write_feedback(table: pa.Table, path: Path) -> None:
    """Write a feedback table to ``path`` atomically (a temporary file beside it, then a rename)."""
    table = _validated(table, str(path)).table
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    except OSError as exc:
        raise FeedbackError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            pq.write_table(table, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise FeedbackError(f"{path}: cannot write: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_feedback(path: Path) -> Feedback:
    """Read and validate a feedback file; anything else is a :class:`FeedbackError`."""
    if not path.is_file():
        raise FeedbackError(f"{path}: no such feedback file")
    try:
        file = pq.ParquetFile(path)
    except (pa.ArrowException, OSError):
        raise FeedbackError(
            f"{path}: not a readable Parquet file (truncated, or not the feedback file?)"
        ) from None
    with file:
        raw = (file.metadata.metadata or {}).get(METADATA_KEY)
        if raw is None:
            raise FeedbackError(f"{path}: not a pprl-hub feedback file (no pprl metadata)")
        _parse_metadata(raw, str(path))  # refuse another format before reading any data
        try:
            table = file.read()
        except (pa.ArrowException, OSError):
            raise FeedbackError(f"{path}: the Parquet data cannot be read (truncated?)") from None
    return _validated(table.replace_schema_metadata({METADATA_KEY: raw}), str(path))


def _schema(meta: FeedbackMetadata) -> pa.Schema:
    return pa.schema(
        [
            pa.field("record_pseudonym", pa.binary(PSEUDONYM_BYTES), nullable=False),
            pa.field("linked_agency", pa.string(), nullable=False),
            pa.field("linked_records", pa.int32(), nullable=False),
        ],
        metadata={METADATA_KEY: _canonical_json(meta.to_json())},
    )


def _canonical_json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _metadata(
    *, agency: str, project: str, run: str, created: str, where: str = "feedback"
) -> FeedbackMetadata:
    for name, value, pattern, what in (
        ("agency", agency, _SLUG, "an agency id like 'ae-cardiff'"),
        ("project", project, _SLUG, "a project id like 'cardiff-2026'"),
        ("run", run, _RUN, "a run id (letters, digits, '.', '_', ':', '-'; at most 128)"),
    ):
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise FeedbackError(f"{where}: {name} must be {what}")
    if not isinstance(created, str) or not _CREATED.fullmatch(created):
        raise FeedbackError(f"{where}: created must be a UTC time like 2026-11-22T21:00:00Z")
    try:
        datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise FeedbackError(f"{where}: created is not a valid time") from None
    return FeedbackMetadata(agency, project, run, created)


def _parse_metadata(raw: bytes, where: str) -> FeedbackMetadata:
    try:
        doc = json.loads(raw)
    except ValueError:
        raise FeedbackError(f"{where}: the pprl metadata is not JSON") from None
    if not isinstance(doc, dict):
        raise FeedbackError(f"{where}: the pprl metadata is not a JSON object")
    fmt = doc.get("format")
    if fmt == ENCODED_FORMAT:
        raise FeedbackError(f"{where}: this is an encoded file, not a feedback file")
    if fmt != FEEDBACK_FORMAT:
        raise FeedbackError(f"{where}: not a pprl-hub feedback file (format {fmt!r})")
    version = doc.get("format_version")
    if version != FEEDBACK_FORMAT_VERSION or isinstance(version, bool):
        raise FeedbackError(
            f"{where}: unsupported feedback format version {version!r} "
            f"(this connector reads version {FEEDBACK_FORMAT_VERSION})"
        )
    if doc.keys() != _METADATA_KEYS:
        raise FeedbackError(
            f"{where}: the pprl metadata must have exactly {', '.join(sorted(_METADATA_KEYS))}"
        )
    return _metadata(
        agency=doc["agency"],
        project=doc["project"],
        run=doc["run"],
        created=doc["created"],
        where=where,
    )


def _validated(table: pa.Table, where: str) -> Feedback:
    """The one place a feedback table is checked: metadata, columns, types and rows."""
    if not isinstance(table, pa.Table):
        raise FeedbackError(f"{where}: expected an Arrow table")
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise FeedbackError(f"{where}: no pprl metadata (build the table with feedback_table)")
    meta = _parse_metadata(raw, where)
    if tuple(table.column_names) != COLUMNS:
        raise FeedbackError(
            f"{where}: the columns must be exactly {', '.join(COLUMNS)} "
            f"(found {', '.join(table.column_names[:10]) or 'none'})"
        )
    expected = _schema(meta)
    for field in expected:
        got = table.schema.field(field.name).type
        if got != field.type and not (field.name == "linked_agency" and got == pa.large_string()):
            raise FeedbackError(f"{where}: column {field.name} is {got}, not {field.type}")
        if table.column(field.name).null_count:
            raise FeedbackError(f"{where}: column {field.name} has missing values")
    table = pa.Table.from_arrays(
        [table.column(f.name).cast(f.type) for f in expected], schema=expected
    )
    if table.num_rows:
        if pc.min(table.column("linked_records")).as_py() < 1:
            raise FeedbackError(f"{where}: linked_records must be at least 1")
        for linked in pc.unique(table.column("linked_agency")).to_pylist():
            if not _SLUG.fullmatch(linked):
                raise FeedbackError(
                    f"{where}: linked_agency holds a value that is not an agency id"
                )
            if linked == meta.agency:
                raise FeedbackError(
                    f"{where}: linked_agency must name another agency, not {meta.agency!r} itself"
                )
        pairs = table.group_by(list(COLUMNS[:2])).aggregate([]).num_rows
        if pairs != table.num_rows:
            raise FeedbackError(
                f"{where}: {table.num_rows - pairs} repeated (record_pseudonym, linked_agency) rows"
            )
    return Feedback(meta, table)
