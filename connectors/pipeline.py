"""The pseudonymisation pipeline: read -> normalise -> check -> encode -> write, batch by batch.

Memory is bounded by the batch size (plus the set of record pseudonyms used to catch duplicate
record ids: 16 bytes and a little overhead per row). Outputs are written to temporary files beside
their destinations and renamed into place only when the whole input has been read without error,
so a failure leaves no partial output behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.attributes import ARROW_TYPES, attribute_parser, to_arrow
from connectors.encode import PSEUDONYM_BYTES, TOKEN_BYTES, Encoder
from connectors.encoding_schema import EncodingSchema
from connectors.errors import ConnectorError, MappingError, OutputError
from connectors.fields import generic_normaliser, normaliser_for
from connectors.keys import Key
from connectors.mapping import ColumnMapping, FieldSource
from connectors.normalise import Normalised, Normaliser
from connectors.quality import FieldStats, QualityReport
from connectors.readers import open_export

FORMAT_NAME = "pprl-hub/encoded"
FORMAT_VERSION = 1
METADATA_KEY = b"pprl"
KEYMAP_FORMAT = "pprl-hub/keymap"
DEFAULT_BATCH_ROWS = 20_000
_MEMO_LIMIT = 200_000
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
    today: date = date(1970, 1, 1)
    now: datetime = datetime(1970, 1, 1, tzinfo=UTC)


class _MemoNormaliser:
    """Applies a normaliser to a column, remembering results for repeated values."""

    def __init__(self, normaliser: Normaliser, missing: frozenset[str]) -> None:
        self._fn = normaliser
        self._missing = missing
        self._memo: dict[str, Normalised] = {}

    def column(
        self, values: list[str | None], first_row: int, stats: FieldStats
    ) -> list[str | None]:
        out: list[str | None] = []
        memo, fn, missing = self._memo, self._fn, self._missing
        for i, raw in enumerate(values):
            text = raw.strip() if raw is not None else ""
            if not text or text in missing:
                stats.missing += 1
                out.append(None)
                continue
            stats.present += 1
            result = memo.get(text)
            if result is None:
                if len(memo) >= _MEMO_LIMIT:
                    memo.clear()
                result = memo[text] = fn(text)
            if result.value is None:
                stats.add_invalid(result.reason or "invalid", first_row + i)
            else:
                stats.valid += 1
            out.append(result.value)
        return out


def _normaliser(src: FieldSource, mapping: ColumnMapping, today: date) -> Normaliser:
    if src.kind == "person":
        return normaliser_for(
            src.field, date_formats=src.formats, phone_region=mapping.phone_region, today=today
        )
    return generic_normaliser(src.kind, date_formats=src.formats, today=today)  # type: ignore[arg-type]


def output_schema(job: PseudonymiseJob) -> pa.Schema:
    """The Arrow schema of the encoded output file."""
    fields = [pa.field("record_pseudonym", pa.binary(PSEUDONYM_BYTES), nullable=False)]
    fields += [pa.field(f"tok_{t.name}", pa.binary(TOKEN_BYTES)) for t in job.schema.tokens]
    fields += [
        pa.field(f"bf_{f.name}", pa.binary(job.schema.filter_bytes(f))) for f in job.schema.filters
    ]
    fields += [pa.field(a.name, ARROW_TYPES[a.type]) for a in job.mapping.attributes]
    return pa.schema(fields)


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
    """The ``pprl`` metadata of an encoded file."""
    meta = pq.read_metadata(path).metadata or {}
    raw = meta.get(METADATA_KEY)
    if raw is None:
        raise ConnectorError(f"{path}: not a pprl-hub encoded file (no pprl metadata)")
    doc: dict[str, Any] = json.loads(raw)
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
    missing = frozenset(mapping.missing_values)
    normalisers = {
        src.field: (src, _MemoNormaliser(_normaliser(src, mapping, job.today), missing))
        for src in mapping.identifiers
    }
    for name in normalisers:
        report.fields[name] = FieldStats()
    parsers = {a.name: (a, attribute_parser(a)) for a in mapping.attributes}
    for name in parsers:
        report.attributes[name] = FieldStats()
    needed = schema.fields_used()
    encoder = Encoder(schema, job.linkage_key.secret, job.record_key.secret)
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
        first_row = 1
        rid_column = normalisers["record_id"][0].column
        for batch_no, batch in enumerate(reader.batches(mapping.source_columns(), job.batch_rows)):
            n = len(next(iter(batch.values())))
            report.rows_read += n
            canon: dict[str, list[str | None]] = {}
            for name, (src, memo) in normalisers.items():
                canon[name] = memo.column(batch[src.column], first_row, report.fields[name])
                if batch_no == 0 and src.formats:
                    _check_date_format(src, mapping, report.fields[name])
            for name in needed - canon.keys():
                canon[name] = [None] * n
            keep, record_ids = _row_checks(canon, batch[rid_column], first_row, report)
            encoded = encoder.encode(canon, [r or "" for r in record_ids])
            pseudonyms: list[bytes] = encoded.pseudonyms.to_pylist()
            usable = _usable_rows(encoded, n)
            for i in range(n):
                if not keep[i]:
                    continue
                if not usable[i]:
                    keep[i] = False
                    report.reject("no_identifiers", first_row + i)
                elif pseudonyms[i] in seen:
                    keep[i] = False
                    report.duplicate_record_ids += 1
                    report.reject("duplicate_record_id", first_row + i)
                else:
                    seen.add(pseudonyms[i])
            mask = pa.array(keep, type=pa.bool_())
            columns: list[pa.Array] = [encoded.pseudonyms]
            columns += [encoded.tokens[t.name] for t in schema.tokens]
            columns += [encoded.filters[f.name] for f in schema.filters]
            for name, (spec, parse) in parsers.items():
                columns.append(
                    to_arrow(
                        spec,
                        _parse_column(
                            parse, batch[spec.column], first_row, report.attributes[name], missing
                        ),
                    )
                )
            table = pa.Table.from_arrays(columns, schema=out_schema).filter(mask)
            for t in schema.tokens:
                nulls = table.column(f"tok_{t.name}").null_count
                report.count_encoded("token", t.name, table.num_rows - nulls, nulls)
            for f in schema.filters:
                nulls = table.column(f"bf_{f.name}").null_count
                report.count_encoded("filter", f.name, table.num_rows - nulls, nulls)
            writer.write_table(table)
            if keymap_writer is not None:
                kept_ids = [r for r, k in zip(record_ids, keep, strict=True) if k]
                kept_ps = [p for p, k in zip(pseudonyms, keep, strict=True) if k]
                keymap_writer.write_table(
                    pa.Table.from_arrays(
                        [
                            pa.array(kept_ids, type=pa.string()),
                            pa.array(kept_ps, type=pa.binary(PSEUDONYM_BYTES)),
                        ],
                        schema=keymap_writer.schema,
                    )
                )
            report.rows_written += table.num_rows
            first_row += n
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


def _row_checks(
    canon: dict[str, list[str | None]],
    raw_ids: list[str | None],
    first_row: int,
    report: QualityReport,
) -> tuple[list[bool], list[str | None]]:
    """Reject rows without a usable record id (blank: missing; present but refused: invalid)."""
    record_ids = canon["record_id"]
    keep = [True] * len(record_ids)
    for i, rid in enumerate(record_ids):
        if rid is None:
            keep[i] = False
            blank = raw_ids[i] is None or not str(raw_ids[i]).strip()
            report.reject("missing_record_id" if blank else "invalid_record_id", first_row + i)
    return keep, record_ids


def _usable_rows(encoded: Any, n: int) -> list[bool]:
    usable = [False] * n
    for arr in [*encoded.tokens.values(), *encoded.filters.values()]:
        if arr.null_count == n:
            continue
        for i, valid in enumerate(arr.is_valid().to_pylist()):
            if valid:
                usable[i] = True
    return usable


def _parse_column(
    parse: Callable[[str], tuple[object | None, str | None]],
    values: list[str | None],
    first_row: int,
    stats: FieldStats,
    missing: frozenset[str],
) -> list[object | None]:
    out: list[object | None] = []
    for i, raw in enumerate(values):
        text = raw.strip() if raw is not None else ""
        if not text or text in missing:
            stats.missing += 1
            out.append(None)
            continue
        stats.present += 1
        value, reason = parse(text)
        if reason is not None:
            stats.add_invalid(reason, first_row + i)
        else:
            stats.valid += 1
        out.append(value)
    return out


def _check_date_format(src: FieldSource, mapping: ColumnMapping, stats: FieldStats) -> None:
    bad = stats.reasons.get("unparseable", 0)
    if stats.present and bad > _DATE_FORMAT_FAILURE_SHARE * stats.present:
        raise MappingError(
            f"{mapping.path}: {bad} of the first {stats.present} values of column {src.column!r} "
            f"({src.field}) match none of the declared date formats {list(src.formats)}; "
            "fix 'formats' in the mapping"
        )
