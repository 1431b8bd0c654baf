"""Feedback lookup: map a hub feedback file back to the agency's own record ids, at the agency.

The hub never sees record ids, so the agency re-reads its export (the record-id column only),
normalises each record id and computes its record pseudonym exactly as ``connector pseudonymise``
does (the pipeline's missing-value rule, :func:`~connectors.fields.normalise_record_id` and
:meth:`~connectors.encode.Encoder.pseudonym` under the agency's record key), and keeps the record
ids whose pseudonym is in the feedback file. Memory holds the feedback file and the matched
record ids; the export is streamed.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pyarrow as pa

from connectors.batch import _is_missing  # the pipeline's own blank / missing-marker rule
from connectors.encode import Encoder
from connectors.encoding_schema import EncodingSchema, Hardening
from connectors.errors import FeedbackError, KeyFileError, MappingError, OutputError
from connectors.feedback import Feedback
from connectors.fields import normalise_record_id
from connectors.keys import Key
from connectors.mapping import ColumnMapping
from connectors.pipeline import DEFAULT_BATCH_ROWS
from connectors.readers import open_export

LOOKUP_COLUMNS = ("record_id", "linked_agency", "linked_records")
NO_MATCH = "no pseudonym matched: wrong record key or wrong export?"

#: An encoding schema with no tokens and no filters: an :class:`Encoder` built on it derives only
#: the record-pseudonym key, so lookup uses the pipeline's own pseudonym code without the
#: project's linkage secret.
_RECORD_PSEUDONYMS_ONLY = EncodingSchema(
    schema_id="record-pseudonyms-only",
    version=1,
    description="",
    tokens=(),
    filters=(),
    hardening=Hardening(salt=None, balance=False),
    extra_fields=(),
    hash="",
)


@dataclass(frozen=True, slots=True)
class LookupResult:
    """The feedback rows mapped to record ids, and how many of them matched."""

    table: pa.Table  # record_id, linked_agency, linked_records; sorted
    feedback_rows: int
    matched: int

    @property
    def unmatched(self) -> int:
        """Feedback rows whose pseudonym is no record of the export (not in ``table``)."""
        return self.feedback_rows - self.matched

    def summary(self) -> dict[str, int]:
        return {
            "feedback_rows": self.feedback_rows,
            "matched": self.matched,
            "unmatched": self.unmatched,
            "records": len(set(self.table.column("record_id").to_pylist())),
        }


def record_pseudonymiser(record_key: Key) -> Callable[[str], bytes]:
    """The pipeline's record pseudonym of a normalised record id, under ``record_key``."""
    if record_key.kind != "record-key":
        raise KeyFileError(f"lookup needs the agency's record key, not a {record_key.kind}")
    # No tokens or filters: the linkage secret is never used, so none is passed.
    return Encoder(_RECORD_PSEUDONYMS_ONLY, b"", record_key.secret).pseudonym


def export_record_ids(
    path: Path, mapping: ColumnMapping, *, batch_rows: int = DEFAULT_BATCH_ROWS
) -> Iterator[str]:
    """The export's usable record ids, normalised as the pipeline does; reads no other column.

    Blank ids, missing-value markers and ids the normaliser refuses are skipped: the pipeline
    rejects those rows, so they have no pseudonym in the encoded file.
    """
    source = mapping.field("record_id")
    if source is None:  # the mapping parser guarantees it
        raise MappingError(f"{mapping.path}: [identifiers] must map record_id")
    reader = open_export(path, mapping)
    if source.column not in reader.columns:
        raise MappingError(
            f"{mapping.path}: record_id maps to column {source.column!r}, which {path} does not "
            "have"
        )
    missing = frozenset(mapping.missing_values)
    for batch in reader.batches([source.column], batch_rows):
        for raw in batch[source.column]:
            text = _is_missing(raw, missing)
            if text is None:
                continue
            value = normalise_record_id(text).value
            if value is not None:
                yield value


def lookup(
    feedback: Feedback, record_ids: Iterable[str], *, record_key: Key, agency: str
) -> LookupResult:
    """Map each feedback row to the record id whose pseudonym it names.

    ``record_ids`` are the export's normalised record ids (:func:`export_record_ids`); ``agency``
    is the export's agency (the mapping's), which must be the feedback file's. Rows matching no
    record id are counted, not output. A non-empty feedback file of which no row matches is a
    :class:`FeedbackError`: the record key or the export is not the one the upload was made with.
    """
    if feedback.metadata.agency != agency:
        raise FeedbackError(
            f"this feedback file is for agency {feedback.metadata.agency!r}, "
            f"but the export is {agency!r}'s"
        )
    pseudonym = record_pseudonymiser(record_key)
    wanted = set(feedback.table.column("record_pseudonym").to_pylist())
    found: dict[bytes, str] = {}
    for record_id in record_ids:
        p = pseudonym(record_id)
        if p in wanted:
            found.setdefault(p, record_id)
    out_ids: list[str] = []
    out_agencies: list[str] = []
    out_counts: list[int] = []
    columns = (feedback.table.column(c).to_pylist() for c in LOOKUP_COLUMNS[1:])
    pseudonyms = feedback.table.column("record_pseudonym").to_pylist()
    for p, linked, count in zip(pseudonyms, *columns, strict=True):
        match = found.get(p)
        if match is not None:
            out_ids.append(match)
            out_agencies.append(linked)
            out_counts.append(count)
    rows = feedback.table.num_rows
    if rows and not out_ids:
        raise FeedbackError(f"{NO_MATCH} (none of the {rows} feedback rows matched a record id)")
    table = pa.table(
        {
            "record_id": pa.array(out_ids, type=pa.string()),
            "linked_agency": pa.array(out_agencies, type=pa.string()),
            "linked_records": pa.array(out_counts, type=pa.int32()),
        }
    ).sort_by([("record_id", "ascending"), ("linked_agency", "ascending")])
    return LookupResult(table, rows, len(out_ids))


def write_lookup_csv(table: pa.Table, fh: TextIO) -> None:
    """Write the lookup table as CSV (header ``record_id,linked_agency,linked_records``)."""
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(LOOKUP_COLUMNS)
    writer.writerows(zip(*(table.column(c).to_pylist() for c in LOOKUP_COLUMNS), strict=True))


def save_lookup_csv(table: pa.Table, path: Path) -> None:
    """Write the lookup CSV to ``path`` atomically (a temporary file beside it, then a rename)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            write_lookup_csv(table, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
