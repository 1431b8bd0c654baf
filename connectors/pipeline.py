"""The pseudonymisation pipeline: read -> normalise -> check -> encode -> write, batch by batch.

Memory is bounded by the batch size (plus the set of record pseudonyms used to catch duplicate
record ids: 16 bytes and a little overhead per row). Outputs are written to temporary files beside
their destinations and renamed into place only when the whole input has been read without error,
so a failure leaves no partial output behind.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.batch import (
    BatchProcessor,
    BatchResult,
    BatchSpec,
    init_worker,
    process_in_worker,
)
from connectors.batch import output_schema as batch_output_schema
from connectors.encode import PSEUDONYM_BYTES, TOKEN_BYTES
from connectors.encoding_schema import EncodingSchema
from connectors.errors import ConnectorError, MappingError, OutputError
from connectors.keys import Key
from connectors.mapping import ColumnMapping
from connectors.quality import FieldStats, QualityReport, merge_stats
from connectors.readers import Batch, open_export

FORMAT_NAME = "pprl-hub/encoded"
FORMAT_VERSION = 1
METADATA_KEY = b"pprl"
KEYMAP_FORMAT = "pprl-hub/keymap"
DEFAULT_BATCH_ROWS = 20_000
#: A date column whose first batch has more than this share of unparseable values is a mapping
#: error (wrong declared format), not bad data.
_DATE_FORMAT_FAILURE_SHARE = 0.5


def software_version() -> str:
    try:
        return version("pprl-hub")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


@dataclass(frozen=True, slots=True)
class PseudonymiseJob:
    """Everything one run needs, parsed and validated at the edge."""

    mapping: ColumnMapping
    schema: EncodingSchema
    linkage_key: Key
    record_key: Key
    input: Path
    output: Path
    agency: str
    report: Path | None = None
    keymap: Path | None = None
    batch_rows: int = DEFAULT_BATCH_ROWS
    workers: int = 1
    today: date = date(1970, 1, 1)
    now: datetime = datetime(1970, 1, 1, tzinfo=UTC)


def output_schema(job: PseudonymiseJob) -> pa.Schema:
    """The Arrow schema of the encoded output file."""
    return batch_output_schema(job.mapping, job.schema)


def output_metadata(job: PseudonymiseJob, rows: int) -> dict[str, Any]:
    """The ``pprl`` metadata written into the encoded file."""
    schema = job.schema
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "schema": {
            "id": schema.schema_id,
            "version": schema.version,
            "hash": schema.hash,
            "definition": schema.describe(),
        },
        "key_check_value": job.linkage_key.check_value,
        "linkage_key_id": job.linkage_key.key_id,
        "agency": job.agency,
        "row_count": rows,
        "created": job.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "software": {"name": "pprl-hub", "version": software_version()},
        "record_pseudonym": {"column": "record_pseudonym", "bytes": PSEUDONYM_BYTES},
        "tokens": [
            {"name": t.name, "column": f"tok_{t.name}", "bytes": TOKEN_BYTES} for t in schema.tokens
        ],
        "filters": [
            {"name": f.name, "column": f"bf_{f.name}", "bits": 8 * schema.filter_bytes(f)}
            for f in schema.filters
        ],
        "attributes": [{"name": a.name, "type": a.type} for a in job.mapping.attributes],
    }


def read_metadata(path: Path) -> dict[str, Any]:
    """The ``pprl`` metadata of an encoded file; ``ConnectorError`` for a missing,
    unreadable or foreign file."""
    try:
        meta = pq.read_metadata(path).metadata or {}
    except (OSError, pa.ArrowException) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not Parquet"
        raise ConnectorError(f"{path}: cannot read it ({reason})") from None
    raw = meta.get(METADATA_KEY)
    if raw is None:
        raise ConnectorError(f"{path}: not a pprl-hub encoded file (no pprl metadata)")
    try:
        doc: dict[str, Any] = json.loads(raw)
    except ValueError:
        raise ConnectorError(f"{path}: its pprl metadata is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ConnectorError(f"{path}: its pprl metadata is not a JSON object")
    return doc


@contextmanager
def _staged(final: Path) -> Iterator[Path]:
    """A temporary path beside ``final``; removed unless the caller commits it."""
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _commit(tmp: Path, final: Path) -> None:
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def _check_outputs(job: PseudonymiseJob) -> None:
    outs = [p for p in (job.output, job.report, job.keymap) if p is not None]
    if len({p.resolve() for p in outs}) != len(outs):
        raise OutputError("the output, report and keymap must be different files")
    if job.input.resolve() in {p.resolve() for p in outs}:
        raise OutputError(f"{job.input}: refusing to overwrite the input")
    for p in outs:
        if not p.parent.is_dir():
            raise OutputError(f"{p.parent}: output directory does not exist")


def _results(job: PseudonymiseJob, batches: Iterator[Batch], workers: int) -> Iterator[BatchResult]:
    """Process batches in order, inline or on a pool with a bounded number in flight."""
    spec = BatchSpec(job.mapping, job.schema, job.linkage_key, job.record_key, job.today)
    first_row = 1
    if workers <= 1:
        processor = BatchProcessor(spec)
        for batch in batches:
            result = processor.process(batch, first_row)
            first_row += result.table.num_rows
            yield result
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, context, initializer=init_worker, initargs=(spec,)) as pool:
        pending: deque[Future[BatchResult]] = deque()
        try:
            for batch in batches:
                n = len(next(iter(batch.values())))
                pending.append(pool.submit(process_in_worker, batch, first_row))
                first_row += n
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def pseudonymise(
    job: PseudonymiseJob, progress: Callable[[int], None] | None = None
) -> QualityReport:
    """Run the pipeline; on success the outputs exist, on any error none of them is written."""
    _check_outputs(job)
    mapping, schema = job.mapping, job.schema
    reader = open_export(job.input, mapping)
    mapping.check_columns(reader.columns, job.input)
    mapping.check_schema(schema)
    report = QualityReport(
        input_name=job.input.name,
        mapping_name=mapping.path.name,
        agency=job.agency,
        schema_id=schema.schema_id,
        schema_version=schema.version,
        schema_hash=schema.hash,
    )
    for src in mapping.identifiers:
        report.fields[src.field] = FieldStats()
    for attr in mapping.attributes:
        report.attributes[attr.name] = FieldStats()
    out_schema = output_schema(job)
    seen: set[bytes] = set()

    with ExitStack() as stack:
        tmp_out = stack.enter_context(_staged(job.output))
        tmp_map = stack.enter_context(_staged(job.keymap)) if job.keymap else None
        try:
            writer = stack.enter_context(pq.ParquetWriter(tmp_out, out_schema))
            keymap_writer = (
                stack.enter_context(pq.ParquetWriter(tmp_map, _keymap_schema(job)))
                if tmp_map is not None
                else None
            )
        except OSError as exc:
            raise OutputError(f"{job.output}: cannot write: {exc.strerror or exc}") from None
        batches = reader.batches(mapping.source_columns(), job.batch_rows)
        for result in _results(job, batches, job.workers):
            n = result.table.num_rows
            report.rows_read += n
            merge_stats(report.fields, result.fields)
            merge_stats(report.attributes, result.attributes)
            if result.first_row == 1:
                _check_date_formats(mapping, result.fields, result.attributes)
            keep = _keep_rows(result, report, seen)
            table = result.table.filter(pa.array(keep, type=pa.bool_()))
            for t in schema.tokens:
                nulls = table.column(f"tok_{t.name}").null_count
                report.count_encoded("token", t.name, table.num_rows - nulls, nulls)
            for f in schema.filters:
                nulls = table.column(f"bf_{f.name}").null_count
                report.count_encoded("filter", f.name, table.num_rows - nulls, nulls)
            writer.write_table(table)
            if keymap_writer is not None:
                keymap_writer.write_table(
                    pa.Table.from_arrays(
                        [
                            pa.array(
                                [r for r, k in zip(result.record_ids, keep, strict=True) if k],
                                type=pa.string(),
                            ),
                            table.column("record_pseudonym"),
                        ],
                        schema=keymap_writer.schema,
                    )
                )
            report.rows_written += table.num_rows
            if progress is not None:
                progress(n)
        if report.rows_written == 0:
            raise ConnectorError(
                f"{job.input}: every row was rejected ({dict(report.rejected)}); nothing written"
            )
        writer.add_key_value_metadata(
            {METADATA_KEY: json.dumps(output_metadata(job, report.rows_written), sort_keys=True)}
        )
        writer.close()
        if keymap_writer is not None:
            keymap_writer.close()
        staged_report = None
        if job.report is not None:
            staged_report = stack.enter_context(_staged(job.report))
            staged_report.write_text(report.to_json(), encoding="utf-8")
        _commit(tmp_out, job.output)
        if tmp_map is not None and job.keymap is not None:
            _commit(tmp_map, job.keymap)
        if staged_report is not None and job.report is not None:
            _commit(staged_report, job.report)
    return report


def _keep_rows(result: BatchResult, report: QualityReport, seen: set[bytes]) -> list[bool]:
    """Which rows of a batch to write: a usable record id, something to link on, not a repeat."""
    pseudonyms: list[bytes] = result.table.column("record_pseudonym").to_pylist()
    keep: list[bool] = []
    for i, rid in enumerate(result.record_ids):
        row = result.first_row + i
        if rid is None:
            blank = result.record_id_blank[i]
            report.reject("missing_record_id" if blank else "invalid_record_id", row)
            keep.append(False)
        elif not result.usable[i]:
            report.reject("no_identifiers", row)
            keep.append(False)
        elif pseudonyms[i] in seen:
            report.duplicate_record_ids += 1
            report.reject("duplicate_record_id", row)
            keep.append(False)
        else:
            seen.add(pseudonyms[i])
            keep.append(True)
    return keep


def _keymap_schema(job: PseudonymiseJob) -> pa.Schema:
    meta = {
        "format": KEYMAP_FORMAT,
        "agency": job.agency,
        "record_key_id": job.record_key.key_id,
        "warning": "agency-only: maps record pseudonyms back to record ids; never upload",
    }
    return pa.schema(
        [
            pa.field("record_id", pa.string(), nullable=False),
            pa.field("record_pseudonym", pa.binary(PSEUDONYM_BYTES), nullable=False),
        ],
        metadata={METADATA_KEY: json.dumps(meta, sort_keys=True)},
    )


def _check_date_formats(
    mapping: ColumnMapping, fields: dict[str, FieldStats], attributes: dict[str, FieldStats]
) -> None:
    """A date column whose first batch mostly fails to parse has the wrong declared format."""
    columns = [(f.field, f.column, f.formats, fields[f.field]) for f in mapping.identifiers]
    columns += [(a.name, a.column, a.formats, attributes[a.name]) for a in mapping.attributes]
    for name, column, formats, stats in columns:
        if not formats or not stats.present:
            continue
        bad = stats.reasons.get("unparseable", 0)
        if bad > _DATE_FORMAT_FAILURE_SHARE * stats.present:
            raise MappingError(
                f"{mapping.path}: {bad} of the first {stats.present} values of column "
                f"{column!r} ({name}) match none of the declared date formats "
                f"{list(formats)}; fix 'formats' in the mapping"
            )
