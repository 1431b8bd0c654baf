"""The versioned encoding schema: which tokens and Bloom filters the connector computes.

The schema is parsed once, at the edge, into frozen objects. Its hash is SHA-256 over the canonical
JSON of the parsed content, so comments and layout can change without changing the hash while any
change of meaning does. Every output file carries the schema id, version and hash, and the hub
refuses uploads whose hash differs from the project's.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

from connectors._toml import TomlSource, read_toml
from connectors.errors import SchemaError
from connectors.fields import CANONICAL_FIELDS

Transform = Literal[
    "none",
    "first",
    "initial",
    "metaphone",
    "year",
    "dm_unordered",
    "district",
    "sector",
    "area",
    "mobile",
    "landline",
]
ExtraKind = Literal["text", "date", "code"]

#: Canonical identifier fields of person schema v1 that an encoding schema may use.
ENCODABLE_FIELDS: frozenset[str] = frozenset(CANONICAL_FIELDS) - {"record_id"}
#: Fields that identify a person on their own, so a token may use one of them alone.
UNIQUE_FIELDS: frozenset[str] = frozenset({"nhs_number", "pnc_id", "phone", "email"})
#: Field references whose values are few: a token made only of these would leak by frequency.
_LOW_CARDINALITY: frozenset[tuple[str, str]] = frozenset({("sex", "none"), ("sex", "initial")})
_LOW_TRANSFORMS: frozenset[str] = frozenset({"initial", "year", "area"})
_DATE_TRANSFORMS: frozenset[str] = frozenset({"year", "dm_unordered"})
_POSTCODE_TRANSFORMS: frozenset[str] = frozenset({"district", "sector", "area"})
_TEXT_TRANSFORMS: frozenset[str] = frozenset({"first", "initial", "metaphone"})
#: Phone transforms keep a number or drop it (by kind): a subset of a unique identifier.
_PHONE_TRANSFORMS: frozenset[str] = frozenset({"mobile", "landline"})
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_MAX_BITS = 65536
#: The highest flip probability accepted: the measured linkage loss is already steep there (F1
#: 0.9605 at 0.25 against 0.9780 at 0.2 in bench/attack.py), and at 0.5 a filter is pure noise.
MAX_FLIP_PROBABILITY = 0.25
#: Flip decisions compare 16-bit keystream words against ``round(p * 65536)``.
FLIP_RESOLUTION = 65536


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A field, optionally transformed, used as an input of a token, filter or salt."""

    field: str
    transform: Transform = "none"

    def __str__(self) -> str:
        return self.field if self.transform == "none" else f"{self.field}:{self.transform}"


@dataclass(frozen=True, slots=True)
class TokenSpec:
    """A keyed hash over one or more field references; null if any input is missing."""

    name: str
    inputs: tuple[FieldRef, ...]
    unordered: tuple[FieldRef, ...] = ()


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """A field-level Bloom filter: ``bits`` long, ``hashes`` positions per n-gram."""

    name: str
    input: FieldRef
    ngram: int
    bits: int
    hashes: int


@dataclass(frozen=True, slots=True)
class Hardening:
    """Bloom-filter hardening: keyed salting by a record attribute, balancing, and random bit
    flipping (BLIP: each stored filter bit is flipped with ``flip_probability``, under noise
    keyed per record by the agency's record-key secret)."""

    salt: FieldRef | None
    balance: bool
    flip_probability: float = 0.0


@dataclass(frozen=True, slots=True)
class ExtraField:
    """An identifier field outside person schema v1, normalised by its generic kind."""

    name: str
    kind: ExtraKind
    unique: bool = False


@dataclass(frozen=True, slots=True)
class EncodingSchema:
    """A parsed, validated encoding schema."""

    schema_id: str
    version: int
    description: str
    tokens: tuple[TokenSpec, ...]
    filters: tuple[FilterSpec, ...]
    hardening: Hardening
    extra_fields: tuple[ExtraField, ...]
    hash: str

    def filter_bytes(self, spec: FilterSpec) -> int:
        """Bytes in one encoded filter (twice the declared bits when balanced)."""
        return (spec.bits * (2 if self.hardening.balance else 1)) // 8

    def fields_used(self) -> frozenset[str]:
        """Every field any token, filter or the salt reads."""
        refs: list[FieldRef] = [r for t in self.tokens for r in t.inputs]
        refs += [f.input for f in self.filters]
        if self.hardening.salt is not None:
            refs.append(self.hardening.salt)
        return frozenset(r.field for r in refs)

    def describe(self) -> dict[str, Any]:
        """The canonical content the hash covers (also written into output metadata)."""
        return _canonical(self)


def load_encoding_schema(path: Path) -> EncodingSchema:
    """Read and validate an encoding schema; raise :class:`SchemaError` naming file and line."""
    src = read_toml(path, SchemaError)
    return _parse(src)


def _parse(src: TomlSource) -> EncodingSchema:
    data = src.data
    _only_keys(
        src,
        data,
        {"schema_id", "version", "description", "tokens", "filters", "hardening", "extra_fields"},
        "top level",
    )
    schema_id = _require(src, data, "schema_id", str)
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", schema_id):
        raise SchemaError(f"{src.where('schema_id')}: schema_id must be a short lower-case slug")
    version = _require(src, data, "version", int)
    if version < 1:
        raise SchemaError(f"{src.where('version')}: version must be a positive integer")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SchemaError(f"{src.where('description')}: description must be a string")

    extra = _parse_extra(src, data.get("extra_fields", {}))
    kinds: dict[str, str] = {name: "person" for name in ENCODABLE_FIELDS}
    kinds.update({e.name: e.kind for e in extra})
    unique = UNIQUE_FIELDS | {e.name for e in extra if e.unique}

    tokens = tuple(_parse_token(src, t, kinds, unique) for t in _table_list(src, data, "tokens"))
    filters = tuple(_parse_filter(src, f, kinds) for f in _table_list(src, data, "filters"))
    for label, names in (
        ("token", [t.name for t in tokens]),
        ("filter", [f.name for f in filters]),
    ):
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise SchemaError(
                f"{src.where(sorted(dup)[0])}: duplicate {label} name {sorted(dup)[0]!r}"
            )
    if not tokens and not filters:
        raise SchemaError(f"{src.path}: the schema computes no tokens and no filters")

    hard = data.get("hardening", {})
    if not isinstance(hard, dict):
        raise SchemaError(f"{src.where('hardening')}: [hardening] must be a table")
    _only_keys(src, hard, {"salt", "balance", "flip_probability"}, "[hardening]")
    salt_raw = hard.get("salt")
    salt = None if salt_raw is None else _parse_ref(src, salt_raw, kinds, "salt")
    balance = hard.get("balance", True)
    if not isinstance(balance, bool):
        raise SchemaError(f"{src.where('balance')}: balance must be true or false")
    hardening = Hardening(salt, balance, _flip_probability(src, hard.get("flip_probability", 0)))

    partial = EncodingSchema(schema_id, version, description, tokens, filters, hardening, extra, "")
    digest = hashlib.sha256(_canonical_bytes(partial)).hexdigest()
    return EncodingSchema(
        schema_id, version, description, tokens, filters, hardening, extra, digest
    )


def _flip_probability(src: TomlSource, raw: object) -> float:
    """``[hardening] flip_probability``: from 0 (the default: no flipping) to 0.25.

    The encoder flips a bit when a 16-bit keystream word is below ``round(p * 65536)``, so the
    probability it applies is ``p`` to within 1/65536."""
    where = src.where("flip_probability")
    if not isinstance(raw, int | float) or isinstance(raw, bool):
        raise SchemaError(
            f"{where}: flip_probability must be a number from 0 to {MAX_FLIP_PROBABILITY}"
        )
    p = float(raw)
    if not 0.0 <= p <= MAX_FLIP_PROBABILITY:
        raise SchemaError(
            f"{where}: flip_probability must be from 0 to {MAX_FLIP_PROBABILITY}, not {raw}"
        )
    return p


def _parse_extra(src: TomlSource, raw: object) -> tuple[ExtraField, ...]:
    if not isinstance(raw, dict):
        raise SchemaError(f"{src.where('extra_fields')}: [extra_fields] must be a table")
    out: list[ExtraField] = []
    for name, spec in raw.items():
        where = src.where("extra_fields", name)
        if not _NAME.match(name) or name in ENCODABLE_FIELDS or name == "record_id":
            raise SchemaError(f"{where}: extra field name {name!r} is not a new lower-case name")
        if isinstance(spec, str):
            spec = {"kind": spec}
        if not isinstance(spec, dict):
            raise SchemaError(f"{where}: extra field {name!r} must be a kind or a table")
        kind = spec.get("kind")
        if kind not in get_args(ExtraKind):
            raise SchemaError(f"{where}: extra field {name!r} kind must be text, date or code")
        unique = spec.get("unique", False)
        if not isinstance(unique, bool):
            raise SchemaError(f"{where}: 'unique' must be true or false")
        out.append(ExtraField(name, cast(ExtraKind, kind), unique))
    return tuple(sorted(out, key=lambda e: e.name))


def _parse_ref(src: TomlSource, raw: object, kinds: dict[str, str], ctx: str) -> FieldRef:
    if not isinstance(raw, str):
        raise SchemaError(
            f"{src.where(ctx)}: field reference must be a string like 'field:transform'"
        )
    field, _, transform = raw.partition(":")
    transform = transform or "none"
    where = src.where(raw)
    if field not in kinds:
        raise SchemaError(
            f"{where}: unknown field {field!r} in {ctx} (declare extra fields under [extra_fields])"
        )
    if transform not in get_args(Transform):
        raise SchemaError(f"{where}: unknown transform {transform!r} in {ctx}")
    kind = kinds[field]
    is_date = field == "date_of_birth" or kind == "date"
    ok = (
        transform == "none"
        or (transform in _DATE_TRANSFORMS and is_date)
        or (transform in _POSTCODE_TRANSFORMS and field == "postcode")
        or (transform in _PHONE_TRANSFORMS and field == "phone")
        or (transform in _TEXT_TRANSFORMS and not is_date and field not in ("postcode", "phone"))
    )
    if not ok:
        raise SchemaError(f"{where}: transform {transform!r} does not apply to field {field!r}")
    return FieldRef(field, transform)  # type: ignore[arg-type]


def _parse_token(
    src: TomlSource, raw: dict[str, Any], kinds: dict[str, str], unique: frozenset[str]
) -> TokenSpec:
    _only_keys(src, raw, {"name", "inputs", "unordered"}, "[[tokens]]")
    name = _name(src, raw, "token")
    where = src.where(f'"{name}"')
    inputs_raw = raw.get("inputs")
    if not isinstance(inputs_raw, list) or not inputs_raw:
        raise SchemaError(f"{where}: token {name!r} needs a non-empty 'inputs' list")
    inputs = tuple(_parse_ref(src, r, kinds, f"token {name}") for r in inputs_raw)
    if len(set(inputs)) != len(inputs):
        raise SchemaError(f"{where}: token {name!r} lists an input twice")
    if len(inputs) == 1 and inputs[0].field not in unique:
        raise SchemaError(
            f"{where}: token {name!r} has one input, {inputs[0]}, which is not a unique "
            "identifier; a single-input token would leak by frequency"
        )
    if len(inputs) == 1 and inputs[0].transform not in ("none", *_PHONE_TRANSFORMS):
        raise SchemaError(f"{where}: a single-input token cannot use a transform")
    if all(_is_low(r) for r in inputs):
        raise SchemaError(f"{where}: token {name!r} uses only low-cardinality inputs")
    unordered_raw = raw.get("unordered", [])
    if not isinstance(unordered_raw, list):
        raise SchemaError(f"{where}: 'unordered' must be a list of the token's inputs")
    unordered = tuple(_parse_ref(src, r, kinds, f"token {name}") for r in unordered_raw)
    if unordered and (len(unordered) < 2 or not set(unordered) <= set(inputs)):
        raise SchemaError(f"{where}: 'unordered' must name two or more of the token's inputs")
    return TokenSpec(name, inputs, unordered)


def _parse_filter(src: TomlSource, raw: dict[str, Any], kinds: dict[str, str]) -> FilterSpec:
    _only_keys(src, raw, {"name", "input", "ngram", "bits", "hashes"}, "[[filters]]")
    name = _name(src, raw, "filter")
    where = src.where(f'"{name}"')
    ref = _parse_ref(src, raw.get("input"), kinds, f"filter {name}")
    ngram, bits, hashes = raw.get("ngram", 2), raw.get("bits", 512), raw.get("hashes", 20)
    for label, value in (("ngram", ngram), ("bits", bits), ("hashes", hashes)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SchemaError(f"{where}: filter {name!r} {label} must be a positive integer")
    if ngram > 4:
        raise SchemaError(f"{where}: filter {name!r} ngram must be 1 to 4")
    if bits < 64 or bits > _MAX_BITS or bits & (bits - 1):
        raise SchemaError(f"{where}: filter {name!r} bits must be a power of two from 64 to 65536")
    if hashes > 64:
        raise SchemaError(f"{where}: filter {name!r} hashes must be at most 64")
    if ref.field == "sex" or _is_low(ref):
        raise SchemaError(f"{where}: filter {name!r}: a low-cardinality input is not a filter")
    return FilterSpec(name, ref, ngram, bits, hashes)


def _is_low(ref: FieldRef) -> bool:
    return (
        (ref.field, ref.transform) in _LOW_CARDINALITY
        or ref.field == "sex"
        or (ref.transform in _LOW_TRANSFORMS)
    )


def _name(src: TomlSource, raw: dict[str, Any], what: str) -> str:
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise SchemaError(f"{src.where('name')}: each {what} needs a lower-case 'name'")
    return name


def _table_list(src: TomlSource, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    raw = data.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
        raise SchemaError(f"{src.where(key)}: '{key}' must be an array of tables ([[{key}]])")
    return raw


def _require(src: TomlSource, data: dict[str, Any], key: str, typ: type) -> Any:
    value = data.get(key)
    if not isinstance(value, typ) or isinstance(value, bool):
        raise SchemaError(f"{src.path}: '{key}' is required and must be a {typ.__name__}")
    return value


def _only_keys(src: TomlSource, data: dict[str, Any], allowed: set[str], ctx: str) -> None:
    for key in data:
        if key not in allowed:
            raise SchemaError(f"{src.where(key)}: unknown key {key!r} in {ctx}")


def _canonical(schema: EncodingSchema) -> dict[str, Any]:
    return {
        "schema_id": schema.schema_id,
        "version": schema.version,
        "tokens": [
            {
                "name": t.name,
                "inputs": [str(r) for r in t.inputs],
                "unordered": [str(r) for r in t.unordered],
            }
            for t in schema.tokens
        ],
        "filters": [
            {
                "name": f.name,
                "input": str(f.input),
                "ngram": f.ngram,
                "bits": f.bits,
                "hashes": f.hashes,
            }
            for f in schema.filters
        ],
        "hardening": _canonical_hardening(schema.hardening),
        "extra_fields": [
            {"name": e.name, "kind": e.kind, "unique": e.unique} for e in schema.extra_fields
        ],
    }


def _canonical_hardening(h: Hardening) -> dict[str, Any]:
    out: dict[str, Any] = {
        "salt": None if h.salt is None else str(h.salt),
        "balance": h.balance,
    }
    # absent when off, so that schemas written before flipping existed keep their hash
    if h.flip_probability:
        out["flip_probability"] = h.flip_probability
    return out


def _canonical_bytes(schema: EncodingSchema) -> bytes:
    return json.dumps(_canonical(schema), sort_keys=True, separators=(",", ":")).encode()
