"""Column mapping files: how one agency export's columns become canonical fields and attributes.

A mapping is TOML, one per export layout (see ``config/mappings/``). It is parsed once into a
frozen :class:`ColumnMapping`; every problem is reported with the mapping file and line, and the
source column concerned, before any row is processed. Unmapped columns are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast, get_args

import phonenumbers

from connectors._toml import TomlSource, read_toml
from connectors.encoding_schema import EncodingSchema, ExtraKind
from connectors.errors import MappingError
from connectors.fields import CANONICAL_FIELDS

InputFormat = Literal["csv", "parquet", "xlsx"]
AttributeType = Literal["string", "category", "integer", "float", "boolean", "date", "datetime"]

#: Canonical identifier fields of person schema v1, in order.
IDENTIFIER_FIELDS = CANONICAL_FIELDS
DEFAULT_MISSING = ("NULL", "null", "N/A", "n/a", "#N/A", "-")
_DATE_FIELDS = frozenset({"date_of_birth"})
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_AGENCY = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_RESERVED_PREFIXES = ("tok_", "bf_", "record_")
_EXTENSIONS: dict[str, InputFormat] = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "xlsx",
}


@dataclass(frozen=True, slots=True)
class FieldSource:
    """Where one identifier field comes from, and how to read it."""

    field: str
    column: str
    kind: str  # "person" for schema v1 fields, else the extra field's kind
    formats: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AttributeSource:
    """A non-identifying column shared under the data sharing agreement."""

    name: str
    column: str
    type: AttributeType
    formats: tuple[str, ...] = ()
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """A parsed, validated column mapping."""

    path: Path
    agency: str | None
    format: InputFormat | None
    delimiter: str
    encoding: str
    sheet: str | None
    phone_region: str
    missing_values: tuple[str, ...]
    identifiers: tuple[FieldSource, ...]
    attributes: tuple[AttributeSource, ...]
    _source: TomlSource

    def source_columns(self) -> list[str]:
        """Every input column the mapping reads, in mapping order, without repeats."""
        cols = [f.column for f in self.identifiers] + [a.column for a in self.attributes]
        return list(dict.fromkeys(cols))

    def field(self, name: str) -> FieldSource | None:
        return next((f for f in self.identifiers if f.field == name), None)

    def input_format(self, path: Path) -> InputFormat:
        """The declared format, else the one the file name's extension implies."""
        if self.format is not None:
            return self.format
        fmt = _EXTENSIONS.get(path.suffix.lower())
        if fmt is None:
            raise MappingError(
                f"{path}: cannot tell the format from the extension; set format in {self.path}"
            )
        return fmt

    def check_columns(self, columns: list[str], input_path: Path) -> None:
        """Refuse an input that lacks a mapped column, naming the mapping line and the column."""
        present = set(columns)
        named: list[tuple[str, str]] = [(f.field, f.column) for f in self.identifiers]
        named += [(a.name, a.column) for a in self.attributes]
        for what, column in named:
            if column not in present:
                shown = ", ".join(columns[:20]) + (" ..." if len(columns) > 20 else "")
                raise MappingError(
                    f"{self._source.where(column)}: {what} maps to column {column!r}, "
                    f"which {input_path} does not have (its columns: {shown})"
                )

    def check_schema(self, schema: EncodingSchema) -> None:
        """Refuse a mapping whose extra fields disagree with the encoding schema."""
        kinds = {e.name: e.kind for e in schema.extra_fields}
        for src in self.identifiers:
            if src.kind == "person" or src.field == "record_id":
                continue
            if src.field not in kinds:
                raise MappingError(
                    f"{self._source.where(src.field)}: extra field {src.field!r} is not declared "
                    f"in encoding schema {schema.schema_id} v{schema.version}"
                )
            if kinds[src.field] != src.kind:
                raise MappingError(
                    f"{self._source.where(src.field)}: extra field {src.field!r} is {src.kind!r} "
                    f"here but {kinds[src.field]!r} in the encoding schema"
                )


def load_mapping(path: Path) -> ColumnMapping:
    """Read and validate a mapping file; raise :class:`MappingError` naming file and line."""
    return _parse(read_toml(path, MappingError))


def _err(src: TomlSource, message: str, *needles: str) -> MappingError:
    return MappingError(f"{src.where(*needles) if needles else src.path}: {message}")


def _parse(src: TomlSource) -> ColumnMapping:
    data = src.data
    for key in data:
        if key not in {"source", "identifiers", "extra", "attributes"}:
            raise _err(
                src,
                f"unknown section {key!r} (expected source, identifiers, extra, attributes)",
                key,
            )
    source = _table(src, data, "source")
    allowed = {
        "agency",
        "format",
        "delimiter",
        "encoding",
        "sheet",
        "phone_region",
        "date_formats",
        "unmapped",
        "missing_values",
    }
    for key in source:
        if key not in allowed:
            raise _err(src, f"unknown key {key!r} in [source]", key)

    agency = source.get("agency")
    if agency is not None and (not isinstance(agency, str) or not _AGENCY.match(agency)):
        raise _err(src, "agency must be a lower-case id like 'ae-cardiff'", "agency")
    fmt = source.get("format")
    if fmt is not None and fmt not in get_args(InputFormat):
        raise _err(src, "format must be csv, parquet or xlsx", "format")
    delimiter = source.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
        raise _err(src, "delimiter must be one character", "delimiter")
    encoding = source.get("encoding", "utf-8")
    if not isinstance(encoding, str) or encoding.lower().replace("_", "-") not in (
        "utf-8",
        "utf8",
        "utf-8-sig",
    ):
        raise _err(
            src, "encoding must be utf-8 (convert other encodings before reading)", "encoding"
        )
    sheet = source.get("sheet")
    if sheet is not None and not isinstance(sheet, str):
        raise _err(src, "sheet must be a worksheet name", "sheet")
    region = source.get("phone_region", "GB")
    if not isinstance(region, str) or region not in phonenumbers.SUPPORTED_REGIONS:
        raise _err(
            src, f"phone_region {region!r} is not a known region code (e.g. GB)", "phone_region"
        )
    default_formats = _formats(src, source.get("date_formats", ["%Y-%m-%d"]), "date_formats")
    unmapped = source.get("unmapped", "drop")
    if unmapped != "drop":
        raise _err(src, "unmapped must be 'drop': columns not mapped are never read", "unmapped")
    missing = source.get("missing_values", list(DEFAULT_MISSING))
    if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
        raise _err(src, "missing_values must be a list of strings", "missing_values")

    identifiers: list[FieldSource] = []
    for field, spec in _table(src, data, "identifiers").items():
        if field not in IDENTIFIER_FIELDS:
            raise _err(
                src,
                f"unknown identifier field {field!r}; person schema v1 has "
                f"{', '.join(IDENTIFIER_FIELDS)} (declare others under [extra.NAME])",
                field,
            )
        column, formats = _column_spec(src, field, spec, {"column", "formats"})
        if field in _DATE_FIELDS:
            formats = _formats(src, formats, field) if formats else default_formats
        elif formats:
            raise _err(src, f"{field} is not a date: 'formats' does not apply", field)
        identifiers.append(FieldSource(field, column, "person", formats))
    if not any(f.field == "record_id" for f in identifiers):
        raise _err(
            src, "[identifiers] must map record_id (the agency's own record key)", "identifiers"
        )

    for name, spec in _table(src, data, "extra").items():
        if not _NAME.match(name) or name in IDENTIFIER_FIELDS:
            raise _err(src, f"extra field name {name!r} must be a new lower-case name", name)
        if not isinstance(spec, dict):
            raise _err(src, f"[extra.{name}] must be a table with column and kind", name)
        column, formats = _column_spec(src, name, spec, {"column", "kind", "formats"})
        kind = spec.get("kind")
        if kind not in get_args(ExtraKind):
            raise _err(
                src,
                f"extra field {name!r}: kind must be text, date or code",
                f"extra.{name}",
                "kind",
            )
        if kind == "date":
            formats = _formats(src, formats, name) if formats else default_formats
        elif formats:
            raise _err(src, f"extra field {name!r} is not a date: 'formats' does not apply", name)
        identifiers.append(FieldSource(name, column, str(kind), formats))

    attributes: list[AttributeSource] = []
    id_columns = {f.column for f in identifiers}
    for name, spec in _table(src, data, "attributes").items():
        if (
            not _NAME.match(name)
            or name in IDENTIFIER_FIELDS
            or name.startswith(_RESERVED_PREFIXES)
        ):
            raise _err(
                src,
                f"attribute name {name!r} must be a lower-case name that is not an "
                "identifier field and does not start with tok_, bf_ or record_",
                name,
            )
        if not isinstance(spec, dict):
            raise _err(src, f"[attributes.{name}] must be a table with column and type", name)
        column, formats = _column_spec(src, name, spec, {"column", "type", "formats", "values"})
        if column in id_columns:
            raise _err(
                src,
                f"attribute {name!r} reads column {column!r}, which is an identifier "
                "column: identifiers never leave the agency in plain text",
                name,
            )
        typ = spec.get("type")
        if typ not in get_args(AttributeType):
            raise _err(
                src,
                f"attribute {name!r}: type must be one of {', '.join(get_args(AttributeType))}",
                f"attributes.{name}",
                "type",
            )
        if typ in ("date", "datetime"):
            formats = (
                _formats(src, formats, name, datetime_ok=typ == "datetime")
                if formats
                else (
                    default_formats if typ == "date" else ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
                )
            )
        elif formats:
            raise _err(src, f"attribute {name!r} is {typ}: 'formats' does not apply", name)
        values = spec.get("values", [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise _err(src, f"attribute {name!r}: values must be a list of strings", name)
        if values and typ != "category":
            raise _err(src, f"attribute {name!r}: 'values' applies only to type category", name)
        attributes.append(
            AttributeSource(name, column, cast(AttributeType, typ), formats, tuple(values))
        )

    return ColumnMapping(
        path=src.path,
        agency=agency,
        format=fmt,
        delimiter=delimiter,
        encoding="utf-8",
        sheet=sheet,
        phone_region=region,
        missing_values=tuple(missing),
        identifiers=tuple(identifiers),
        attributes=tuple(attributes),
        _source=src,
    )


def _table(src: TomlSource, data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise _err(src, f"[{key}] must be a table", key)
    return value


def _column_spec(
    src: TomlSource, name: str, spec: object, allowed: set[str]
) -> tuple[str, tuple[str, ...]]:
    column: object
    formats: tuple[str, ...]
    if isinstance(spec, str):
        column, formats = spec, ()
    elif isinstance(spec, dict):
        for key in spec:
            if key not in allowed:
                raise _err(src, f"{name}: unknown key {key!r}", name)
        column = spec.get("column")
        raw = spec.get("formats", [])
        if not isinstance(raw, list) or not all(isinstance(f, str) for f in raw):
            raise _err(src, f"{name}: formats must be a list of strptime formats", name)
        formats = tuple(raw)
    else:
        raise _err(src, f"{name}: expected a column name or a table", name)
    if not isinstance(column, str) or not column:
        raise _err(src, f"{name}: 'column' must be the source column's name", name)
    return str(column), formats


def _formats(
    src: TomlSource, raw: object, where: str, *, datetime_ok: bool = False
) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list | tuple) or not raw or not all(isinstance(f, str) for f in raw):
        raise _err(
            src, f"{where}: date formats must be a non-empty list of strptime formats", where
        )
    sample = datetime(2003, 11, 27, 13, 45, 56)
    for fmt in raw:
        needed = ("%d", "%Y")
        if not all(d in fmt or d.lower() in fmt for d in needed) or not (
            "%m" in fmt or "%b" in fmt or "%B" in fmt
        ):
            raise _err(
                src,
                f"{where}: date format {fmt!r} needs day, month and year (%d, %m or %b, %Y or %y)",
                where,
            )
        try:
            parsed = datetime.strptime(sample.strftime(fmt), fmt)
        except ValueError:
            raise _err(src, f"{where}: {fmt!r} is not a valid strptime format", where) from None
        if parsed.date() != sample.date():
            raise _err(src, f"{where}: {fmt!r} does not read back the date it writes", where)
    return tuple(raw)
