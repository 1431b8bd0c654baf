"""One batch through normalise -> encode -> attributes: the per-process work of the pipeline.

A :class:`BatchProcessor` holds the memoised normalisers, attribute parsers and the encoder for
one job. It is built once per process (the main process, or each worker of a pool) and turns a
batch of raw string columns into an Arrow table plus the batch's quality counts. Decisions that
need the whole file (duplicate record ids, the report) stay with the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa

from connectors.attributes import ARROW_TYPES, attribute_parser, to_arrow
from connectors.encode import PSEUDONYM_BYTES, TOKEN_BYTES, Encoder
from connectors.encoding_schema import EncodingSchema, ExtraKind
from connectors.fields import generic_normaliser, normaliser_for
from connectors.keys import Key
from connectors.mapping import AttributeSource, ColumnMapping, FieldSource
from connectors.normalise import Normalised, Normaliser
from connectors.quality import FieldStats
from connectors.readers import Batch, open_export

_MEMO_LIMIT = 20_000
_EXTRA_KINDS: dict[str, ExtraKind] = {"text": "text", "date": "date", "code": "code"}


@dataclass(frozen=True, slots=True)
class BatchSpec:
    """What a process needs to build its :class:`BatchProcessor` (picklable)."""

    mapping: ColumnMapping
    schema: EncodingSchema
    linkage_key: Key
    record_key: Key
    today: date


@dataclass(slots=True)
class BatchResult:
    """An encoded batch before file-wide checks, with its own quality counts."""

    first_row: int
    table: pa.Table
    record_ids: list[str | None]
    record_id_blank: list[bool]
    usable: list[bool]
    fields: dict[str, FieldStats] = field(default_factory=dict)
    attributes: dict[str, FieldStats] = field(default_factory=dict)


def output_schema(mapping: ColumnMapping, schema: EncodingSchema) -> pa.Schema:
    """The Arrow schema of the encoded output file."""
    fields = [pa.field("record_pseudonym", pa.binary(PSEUDONYM_BYTES), nullable=False)]
    fields += [pa.field(f"tok_{t.name}", pa.binary(TOKEN_BYTES)) for t in schema.tokens]
    fields += [pa.field(f"bf_{f.name}", pa.binary(schema.filter_bytes(f))) for f in schema.filters]
    fields += [pa.field(a.name, ARROW_TYPES[a.type]) for a in mapping.attributes]
    return pa.schema(fields)


def _is_missing(raw: str | None, missing: frozenset[str]) -> str | None:
    """The stripped value, or None when it is blank or a declared missing-value marker."""
    if raw is None:
        return None
    text = raw.strip()
    return None if not text or text in missing else text


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
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        for i, raw in enumerate(values):
            text = _is_missing(raw, missing)
            if text is None:
                stats.missing += 1
                out.append(None)
                continue
            stats.present += 1
            result = memo.get(text)
            if result is None:
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
    kind: ExtraKind = _EXTRA_KINDS[src.kind]
    return generic_normaliser(kind, date_formats=src.formats, today=today)


def normalise_export(
    path: Path, mapping: ColumnMapping, today: date, *, rows: int = 50_000
) -> Iterator[dict[str, list[str | None]]]:
    """The export's identifier columns, normalised, batch by batch (canonical field names).

    This is the plaintext the encoders see. The connector never writes it; ``bench/`` uses it to
    give the plaintext linkage tools exactly the cleaning our encoders get.
    """
    reader = open_export(path, mapping)
    mapping.check_columns(reader.columns, path)
    missing = frozenset(mapping.missing_values)
    normalisers = [
        (src, _MemoNormaliser(_normaliser(src, mapping, today), missing))
        for src in mapping.identifiers
    ]
    first = 0
    for batch in reader.batches(mapping.source_columns(), rows):
        yield {
            src.field: memo.column(batch[src.column], first, FieldStats())
            for src, memo in normalisers
        }
        first += len(next(iter(batch.values()), []))


class BatchProcessor:
    """Normalises, encodes and parses one batch at a time for one job."""

    def __init__(self, spec: BatchSpec) -> None:
        mapping, schema = spec.mapping, spec.schema
        self._missing = frozenset(mapping.missing_values)
        self._normalisers = [
            (src, _MemoNormaliser(_normaliser(src, mapping, spec.today), self._missing))
            for src in mapping.identifiers
        ]
        self._parsers: list[tuple[AttributeSource, Callable[[str], tuple[object, str | None]]]]
        self._parsers = [(a, attribute_parser(a)) for a in mapping.attributes]
        self._needed = schema.fields_used()
        self._encoder = Encoder(schema, spec.linkage_key.secret, spec.record_key.secret)
        self._schema = output_schema(mapping, schema)
        rid = mapping.field("record_id")
        assert rid is not None  # the mapping parser guarantees it
        self._rid_column = rid.column

    def process(self, batch: Batch, first_row: int) -> BatchResult:
        n = len(batch[self._rid_column])
        result = BatchResult(first_row, pa.table({}), [], [], [])
        canon: dict[str, list[str | None]] = {}
        for src, memo in self._normalisers:
            stats = result.fields[src.field] = FieldStats()
            canon[src.field] = memo.column(batch[src.column], first_row, stats)
        for name in self._needed - canon.keys():
            canon[name] = [None] * n
        record_ids = canon["record_id"]
        encoded = self._encoder.encode(canon, [r or "" for r in record_ids])
        usable = [False] * n
        for arr in [*encoded.tokens.values(), *encoded.filters.values()]:
            if arr.null_count == n:
                continue
            for i, valid in enumerate(arr.is_valid().to_pylist()):
                usable[i] = usable[i] or valid
        columns: list[pa.Array] = [encoded.pseudonyms]
        columns += list(encoded.tokens.values())
        columns += list(encoded.filters.values())
        for spec, parse in self._parsers:
            stats = result.attributes[spec.name] = FieldStats()
            columns.append(to_arrow(spec, self._parse(parse, batch[spec.column], first_row, stats)))
        result.table = pa.Table.from_arrays(columns, schema=self._schema)
        result.record_ids = record_ids
        result.record_id_blank = [
            _is_missing(r, self._missing) is None for r in batch[self._rid_column]
        ]
        result.usable = usable
        return result

    def _parse(
        self,
        parse: Callable[[str], tuple[object, str | None]],
        values: list[str | None],
        first_row: int,
        stats: FieldStats,
    ) -> list[object | None]:
        out: list[object | None] = []
        for i, raw in enumerate(values):
            text = _is_missing(raw, self._missing)
            if text is None:
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


_WORKER: BatchProcessor | None = None


def init_worker(spec: BatchSpec) -> None:
    """Pool initializer: build this worker process's processor once."""
    global _WORKER
    _WORKER = BatchProcessor(spec)


def process_in_worker(batch: Batch, first_row: int) -> BatchResult:
    """Pool task: process one batch with this worker's processor."""
    assert _WORKER is not None, "init_worker was not called"
    return _WORKER.process(batch, first_row)
