"""Reading encoded datasets for linkage, and checking that they can be linked together.

Every encoded file carries ``pprl`` metadata (see ``docs/architecture.md``). Files made with
different encoding schemas (hash) or different linkage secrets (key check value) cannot be
linked: their tokens and filters are unrelated. They are refused here, before any work, with a
message that says which file differs and how.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from linkage.errors import InputMismatchError, LinkageError
from linkage.lsh import filter_bytes

ENCODED_FORMAT = "pprl-hub/encoded"
SUPPORTED_FORMAT_VERSIONS = frozenset({1})


@dataclass(frozen=True, slots=True)
class EncodedDataset:
    """One agency's encoded upload: its table and the metadata that describes it."""

    name: str
    table: pa.Table
    metadata: dict[str, Any]

    @property
    def schema_hash(self) -> str:
        return str(self.metadata["schema"]["hash"])

    @property
    def key_check_value(self) -> str:
        return str(self.metadata["key_check_value"])

    @property
    def token_columns(self) -> list[str]:
        return [str(t["column"]) for t in self.metadata["tokens"]]

    @property
    def filter_columns(self) -> list[str]:
        return [str(f["column"]) for f in self.metadata["filters"]]


def read_encoded(path: Path, name: str | None = None) -> EncodedDataset:
    """Read one encoded Parquet file; ``name`` defaults to the agency id in its metadata."""
    return _read(path, str(path), name)


def read_encoded_bytes(data: bytes, name: str | None = None) -> EncodedDataset:
    """An encoded Parquet file held in memory (the hub decrypts uploads into memory)."""
    return _read(pa.BufferReader(data), "the encoded file", name)


def _read(source: Any, where: str, name: str | None) -> EncodedDataset:
    try:
        meta = pq.read_metadata(source).metadata or {}
    except (OSError, pa.ArrowException) as exc:
        raise LinkageError(f"{where}: not a readable Parquet file ({exc})") from None
    raw = meta.get(b"pprl")
    if raw is None:
        raise LinkageError(f"{where}: not a pprl-hub encoded file (no pprl metadata)")
    try:
        doc = json.loads(raw)
    except ValueError:
        raise LinkageError(f"{where}: its pprl metadata is not valid JSON") from None
    if doc.get("format") != ENCODED_FORMAT or doc.get("format_version") not in (
        SUPPORTED_FORMAT_VERSIONS
    ):
        found = f"{doc.get('format')!r} version {doc.get('format_version')!r}"
        raise LinkageError(f"{where}: unsupported format {found}")
    if isinstance(source, pa.BufferReader):
        source.seek(0)
    table = pq.read_table(source)
    if table.num_rows != doc.get("row_count"):
        raise LinkageError(
            f"{where}: holds {table.num_rows} rows but its metadata says {doc.get('row_count')}"
        )
    return EncodedDataset(name or str(doc["agency"]), table, doc)


def check_linkable(datasets: Sequence[EncodedDataset]) -> None:
    """Refuse datasets that cannot be linked together, naming the first one that differs."""
    if len(datasets) < 2:
        raise LinkageError("linkage needs at least two datasets")
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise LinkageError(f"dataset names must be distinct (got {names})")
    first = datasets[0]
    for other in datasets[1:]:
        if other.schema_hash != first.schema_hash:
            raise InputMismatchError(
                f"{other.name} was encoded with schema {other.metadata['schema']['id']} "
                f"v{other.metadata['schema']['version']} (hash {other.schema_hash[:12]}...) but "
                f"{first.name} with {first.metadata['schema']['id']} "
                f"v{first.metadata['schema']['version']} (hash {first.schema_hash[:12]}...): "
                "files encoded with different schemas cannot be linked"
            )
        if other.key_check_value != first.key_check_value:
            raise InputMismatchError(
                f"{other.name} was encoded with a different linkage secret (key check value "
                f"{other.key_check_value}) from {first.name} ({first.key_check_value}): "
                "files encoded under different secrets cannot be linked"
            )


def filter_word_columns(name: str, filters: pa.Array | pa.ChunkedArray) -> dict[str, pa.Array]:
    """A filter column as the engines compare it: 64-bit words and the popcount, nulls kept.

    ``<name>_w0 .. <name>_w{k-1}`` are ``int64`` words (most significant bit first) and
    ``<name>_n`` the number of set bits. Both engines then compute Dice with integer AND and
    popcount on plain columns, which is an order of magnitude faster than casting a BLOB to
    ``BIT`` per pair in DuckDB, and Spark has no bitwise operators on BINARY at all.
    """
    matrix, valid = filter_bytes(filters)
    if matrix.shape[1] % 8:
        raise InputMismatchError(
            f"a filter of {matrix.shape[1] * 8} bits is not a whole number of 64-bit words"
        )
    words = np.ascontiguousarray(matrix).view(">i8").astype(np.int64)
    mask = ~np.asarray(valid, dtype=bool)
    out = {
        f"{name}_w{i}": pa.array(words[:, i], type=pa.int64(), mask=mask)
        for i in range(words.shape[1])
    }
    counts = np.bitwise_count(words.view(np.uint64)).sum(axis=1, dtype=np.int32)
    out[f"{name}_n"] = pa.array(counts, type=pa.int32(), mask=mask)
    return out


def filter_word_count(filters: pa.Array | pa.ChunkedArray) -> int:
    """How many 64-bit words one filter of the column takes."""
    width = filters.type.byte_width
    if width % 8:
        raise InputMismatchError(f"a filter of {width * 8} bits is not a whole number of words")
    return int(width // 8)
