"""Checking an uploaded encoded file before it becomes a dataset version.

An upload is accepted only if it is exactly what the project expects from that agency:

- a readable Parquet file carrying ``pprl`` metadata in the connector's format;
- encoded with the project's encoding schema (id and SHA-256) and the project's linkage
  secret (key check value), by the agency that uploads it;
- with the row count its metadata declares;
- holding only the columns the encoding declares (``record_pseudonym``, ``tok_*``,
  ``bf_*``, each binary) and the attribute fields the agreement permits that agency to
  contribute. Anything else is refused, and so is a declared pseudonym, token or filter
  column that is not binary: text there would be an identifier in the clear.

Pure apart from reading the file; every refusal is ``Unprocessable`` naming what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from hub.errors import Unprocessable

__all__ = ["ENCODED_FORMAT", "DatasetInfo", "Expected", "validate_encoded"]

ENCODED_FORMAT = "pprl-hub/encoded"
_FORMAT_VERSIONS = frozenset({1})


@dataclass(frozen=True, slots=True)
class Expected:
    """What the project and agreement require of an upload from one agency."""

    agency: str
    schema_id: str
    schema_hash: str
    key_check_value: str
    permitted_fields: frozenset[str]


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """What a valid upload holds (stored with the dataset version)."""

    rows: int
    columns: tuple[str, ...]
    attributes: tuple[str, ...]
    schema_version: int
    metadata: dict[str, Any]


def _metadata(path: Path) -> tuple[pq.ParquetFile, dict[str, Any]]:
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException):
        raise Unprocessable("the upload is not a readable Parquet file") from None
    raw = (parquet.metadata.metadata or {}).get(b"pprl")
    if raw is None:
        raise Unprocessable("the upload carries no pprl metadata: encode it with the connector")
    try:
        doc = json.loads(raw)
    except ValueError:
        raise Unprocessable("the upload's pprl metadata is not valid JSON") from None
    if not isinstance(doc, dict):
        raise Unprocessable("the upload's pprl metadata is not a JSON object")
    if doc.get("format") != ENCODED_FORMAT or doc.get("format_version") not in _FORMAT_VERSIONS:
        raise Unprocessable("the upload is not in a supported pprl-hub encoded format")
    return parquet, doc


def _declared(doc: dict[str, Any], key: str) -> list[str]:
    items = doc.get(key)
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and isinstance(i.get("column" if key != "attributes" else "name"), str)
        for i in items
    ):
        raise Unprocessable(f"the upload's metadata has a malformed {key!r} list")
    return [str(i["column" if key != "attributes" else "name"]) for i in items]


def _binary(field: pa.Field) -> bool:
    return bool(pa.types.is_binary(field.type) or pa.types.is_fixed_size_binary(field.type))


def validate_encoded(path: Path, expected: Expected) -> DatasetInfo:
    """Check the file at ``path`` against ``expected`` (see the module docstring)."""
    parquet, doc = _metadata(path)
    schema = doc.get("schema")
    if not isinstance(schema, dict):
        raise Unprocessable("the upload's metadata names no encoding schema")
    if schema.get("id") != expected.schema_id or schema.get("hash") != expected.schema_hash:
        raise Unprocessable(
            "the upload was encoded with another encoding schema than the project's "
            f"({schema.get('id')!r}, hash {str(schema.get('hash'))[:12]}...)"
        )
    if doc.get("key_check_value") != expected.key_check_value:
        raise Unprocessable(
            "the upload was encoded with another linkage secret: its key check value does not "
            "match the project's (check `connector key-check` against the project)"
        )
    if doc.get("agency") != expected.agency:
        raise Unprocessable(f"the upload says it is from {doc.get('agency')!r}, not your agency")
    declared = {"record_pseudonym", *_declared(doc, "tokens"), *_declared(doc, "filters")}
    attributes = _declared(doc, "attributes")
    not_permitted = sorted(set(attributes) - expected.permitted_fields)
    if not_permitted:
        raise Unprocessable(
            f"attribute fields not permitted for your agency by the agreement: "
            f"{', '.join(not_permitted)}"
        )
    arrow = parquet.schema_arrow
    for field in arrow:
        if field.name in declared:
            if not _binary(field):
                raise Unprocessable(
                    f"column {field.name!r} must be binary (pseudonyms, tokens and filters are "
                    "bytes): text there would be an identifier in the clear"
                )
        elif field.name not in attributes:
            raise Unprocessable(
                f"column {field.name!r} is not declared by the encoding schema or permitted by "
                "the agreement: the hub refuses columns it cannot account for"
            )
    missing = sorted(declared - set(arrow.names))
    if missing:
        raise Unprocessable(f"declared columns are missing: {', '.join(missing)}")
    rows = parquet.metadata.num_rows
    if rows != doc.get("row_count"):
        declared_rows = doc.get("row_count")
        raise Unprocessable(f"the file holds {rows} rows but its metadata says {declared_rows}")
    try:  # read every column once: a truncated or corrupt page fails here, not at linkage
        for batch in parquet.iter_batches(batch_size=65_536):
            del batch
    except (OSError, pa.ArrowException):
        raise Unprocessable("the upload's Parquet data is damaged or truncated") from None
    version = schema.get("version")
    return DatasetInfo(
        rows=rows,
        columns=tuple(arrow.names),
        attributes=tuple(attributes),
        schema_version=version if isinstance(version, int) else 0,
        metadata=doc,
    )
