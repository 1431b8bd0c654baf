"""Audit entries: one typed record per access, and its canonical byte encoding (version 1).

An ``AuditEntry`` says who (actor, role, agency, authentication method, source address),
when (UTC time), what (action, resource), under which agreement and why (DSA id and
version, purpose, lawful basis, approvers), how (query/parameter hash, model version,
threshold), what left (rows, columns, disclosure-control actions, output file hash,
recipients) and how it ended (outcome, refusal reason). It is frozen and validated on
construction; every problem raises ``EntryError``.

No plaintext identifiers. An entry has no field for a name, date of birth, address or
any other identifier of a data subject, and the hub passes only ids (of staff, agencies,
resources, agreements), SHA-256 hashes (of queries and output files) and counts. Every
string is a short label (at most 200 characters) except the refusal reason (at most
1,000); none may contain control characters, line breaks or format characters.
``tests/unit/audit/test_entry.py`` pins the list of fields, so adding one is a
reviewed change.

Canonical encoding, version 1 (``encode``; ``decode`` is its strict inverse):

- UTF-8 JSON object (RFC 8259), keys sorted, no whitespace (separators ``,`` and ``:``),
  ``ensure_ascii``: every non-ASCII character is written as a ``\\uXXXX`` escape, so the
  bytes are pure ASCII and no Unicode normalisation question arises.
- A top-level ``"v": 1``. Other keys are the field names below. Fields that are ``None``
  and tuples that are empty are omitted; tuples are arrays, in their order.
- ``time`` is RFC 3339 in UTC with exactly six fractional digits and ``Z``:
  ``2025-01-31T09:30:00.000000Z``.
- ``threshold`` (the only float) is written as Python's ``repr``: the shortest decimal
  that reads back to the same double (``0.85``, ``1e-05``, ``-3.5``). NaN and infinities
  are refused; ``-0.0`` is stored as ``0.0``; an int is stored as a float.
- Integers are at most 2**53 - 1 (I-JSON, RFC 7493), so any JSON reader keeps them exact.

``decode`` refuses anything ``encode`` would not have produced byte for byte (unknown or
missing keys, another version, whitespace, key order, escapes, number spellings):
``encode(decode(data)) == data`` for every accepted ``data``.

``leaf_data(entry)`` is the Merkle leaf input: ``encode(entry)`` of a sequenced entry.
The log stores these bytes and hashes them with ``audit.merkle.leaf_hash``; a verifier
recomputes the hash from the stored bytes, so it never has to re-encode.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import math
import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

from audit.errors import EntryError

__all__ = [
    "ACTIONS",
    "ENCODING_VERSION",
    "OUTCOMES",
    "Action",
    "AuditEntry",
    "Outcome",
    "decode",
    "encode",
    "leaf_data",
    "parse_time",
    "with_sequence",
]

ENCODING_VERSION: Final = 1

Action = Literal[
    "upload",
    "link-run",
    "extract-request",
    "approve",
    "refuse",
    "extract-build",
    "download",
    "view",
    "erase",
    "key-check-mismatch",
    "config-change",
    "login",
    "login-failure",
    "logout",
    "token-create",
    "token-revoke",
    "agreement-change",
    "user-change",
    "audit-read",
    "audit-cosign",
]
Outcome = Literal["allowed", "refused", "error"]

ACTIONS: Final[frozenset[str]] = frozenset(get_args(Action))
OUTCOMES: Final[frozenset[str]] = frozenset(get_args(Outcome))

LABEL_MAX: Final = 200
TEXT_MAX: Final = 1000
INT_MAX: Final = 2**53 - 1

_LABEL_FIELDS: Final = (
    "role",
    "agency",
    "auth_method",
    "resource",
    "dsa_id",
    "purpose",
    "lawful_basis",
    "model_version",
)
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_str(name: str, value: object, max_len: int) -> None:
    if not isinstance(value, str):
        raise EntryError(f"{name} must be a string, not {type(value).__name__}")
    if not value:
        raise EntryError(f"{name} must not be empty")
    if len(value) > max_len:
        raise EntryError(f"{name} is {len(value)} characters, more than {max_len}")
    if not value.isprintable():
        raise EntryError(f"{name} contains a control, line-break or format character")
    if value != value.strip():
        raise EntryError(f"{name} has leading or trailing whitespace")


def _check_optional_str(name: str, value: object, max_len: int = LABEL_MAX) -> None:
    if value is not None:
        _check_str(name, value, max_len)


def _check_labels(name: str, value: object, *, unique: bool) -> None:
    if not isinstance(value, tuple):
        raise EntryError(f"{name} must be a tuple, not {type(value).__name__}")
    for i, item in enumerate(value):
        _check_str(f"{name}[{i}]", item, LABEL_MAX)
    if unique and len(set(value)) != len(value):
        raise EntryError(f"{name} has duplicates")


def _check_int(name: str, value: object, minimum: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise EntryError(f"{name} must be an int, not {type(value).__name__}")
    if not minimum <= value <= INT_MAX:
        raise EntryError(f"{name} {value} is outside {minimum}..2**53-1")


def _check_sha256(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not _SHA256_HEX.fullmatch(value):
        raise EntryError(f"{name} must be a SHA-256 digest as 64 lowercase hex digits")


@functools.lru_cache(maxsize=4096)
def _canonical_address(value: str) -> str | None:
    """``ipaddress``'s canonical spelling of ``value``; None if it is no IP address.
    Cached: a hub sees the same few addresses again and again."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _check_address(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise EntryError("source_address must be a string")
    canonical = _canonical_address(value)
    if canonical is None:
        raise EntryError("source_address is not an IP address")
    if canonical != value:
        raise EntryError(f"source_address must be written canonically, as {canonical!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One audit log record, keyword-only. Required: ``time`` (``tzinfo`` must be
    ``datetime.UTC``), ``actor``, ``action``, ``outcome``. Strings are labels (see the
    module docstring); ``source_address`` is an IP address in ``ipaddress``'s canonical
    form; ``dsa_id`` and ``dsa_version`` (an int >= 1) come together; ``query_hash`` and
    ``output_hash`` are 64 lowercase hex digits; ``approvers``, ``columns`` and
    ``recipients`` hold no duplicates; ``refusal_reason`` is set exactly when ``outcome``
    is ``"refused"``.

    ``sequence`` is ``None`` until the log's single writer assigns it (with
    ``dataclasses.replace``); ``leaf_data`` refuses an unsequenced entry.
    """

    time: datetime
    actor: str
    action: Action
    outcome: Outcome
    sequence: int | None = None
    role: str | None = None
    agency: str | None = None
    auth_method: str | None = None
    source_address: str | None = None
    resource: str | None = None
    dsa_id: str | None = None
    dsa_version: int | None = None
    purpose: str | None = None
    lawful_basis: str | None = None
    approvers: tuple[str, ...] = ()
    query_hash: str | None = None
    model_version: str | None = None
    threshold: float | None = None
    rows: int | None = None
    columns: tuple[str, ...] = ()
    disclosure_controls: tuple[str, ...] = ()
    output_hash: str | None = None
    recipients: tuple[str, ...] = ()
    refusal_reason: str | None = None

    def __post_init__(self) -> None:
        _check_int("sequence", self.sequence, 0)
        t: object = self.time
        if not isinstance(t, datetime):
            raise EntryError(f"time must be a datetime, not {type(t).__name__}")
        if t.tzinfo is not UTC:
            raise EntryError("time must be timezone-aware UTC (tzinfo=datetime.UTC)")
        _check_str("actor", self.actor, LABEL_MAX)
        for name in _LABEL_FIELDS:
            _check_optional_str(name, getattr(self, name))
        _check_address(self.source_address)
        if not isinstance(self.action, str) or self.action not in ACTIONS:
            raise EntryError(f"unknown action {self.action!r}")
        if not isinstance(self.outcome, str) or self.outcome not in OUTCOMES:
            raise EntryError(f"unknown outcome {self.outcome!r}")
        _check_int("dsa_version", self.dsa_version, 1)
        if (self.dsa_id is None) != (self.dsa_version is None):
            raise EntryError("dsa_id and dsa_version go together: give both or neither")
        _check_labels("approvers", self.approvers, unique=True)
        _check_labels("columns", self.columns, unique=True)
        _check_labels("disclosure_controls", self.disclosure_controls, unique=False)
        _check_labels("recipients", self.recipients, unique=True)
        _check_sha256("query_hash", self.query_hash)
        _check_sha256("output_hash", self.output_hash)
        _check_int("rows", self.rows, 0)
        self._normalise_threshold()
        _check_optional_str("refusal_reason", self.refusal_reason, TEXT_MAX)
        if (self.outcome == "refused") != (self.refusal_reason is not None):
            raise EntryError("refusal_reason is required when, and only when, outcome is 'refused'")

    def _normalise_threshold(self) -> None:
        value: object = self.threshold
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EntryError(f"threshold must be a float, not {type(value).__name__}")
        value = float(value)
        if not math.isfinite(value):
            raise EntryError("threshold must be finite, not NaN or infinite")
        object.__setattr__(self, "threshold", value + 0.0)  # -0.0 + 0.0 == +0.0


_FIELDS: Final = tuple(f.name for f in fields(AuditEntry))
_TUPLE_FIELDS: Final = frozenset({"approvers", "columns", "disclosure_controls", "recipients"})
_REQUIRED: Final = frozenset({"time", "actor", "action", "outcome"})


def _format_time(t: datetime) -> str:
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T"
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}Z"
    )


def parse_time(value: object) -> datetime:
    """An entry's ``time`` text (the canonical RFC 3339 form) as a UTC datetime."""
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise EntryError("time must be RFC 3339 UTC with six fractional digits and 'Z'")
    try:  # the pattern fixed every position, so slicing replaces strptime (the hot path)
        return datetime(
            int(value[0:4]),
            int(value[5:7]),
            int(value[8:10]),
            int(value[11:13]),
            int(value[14:16]),
            int(value[17:19]),
            int(value[20:26]),
            tzinfo=UTC,
        )
    except ValueError:
        raise EntryError(f"time {value!r} is not a valid date and time") from None


# One encoder for every call: json.dumps with non-default options builds a new one each time.
_ENCODER: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)


def encode(entry: AuditEntry) -> bytes:
    """The canonical version-1 bytes of ``entry`` (see the module docstring)."""
    doc: dict[str, Any] = {"v": ENCODING_VERSION}
    for name in _FIELDS:
        value = getattr(entry, name)
        if value is None or value == ():
            continue
        if name == "time":
            value = _format_time(value)
        elif name in _TUPLE_FIELDS:
            value = list(value)
        doc[name] = value
    return _ENCODER.encode(doc).encode("ascii")


def decode(data: bytes) -> AuditEntry:
    """The entry whose canonical encoding is exactly ``data``; ``EntryError`` otherwise."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError, JSONDecodeError
        raise EntryError(f"not UTF-8 JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise EntryError("an entry must be a JSON object")
    version = doc.pop("v", None)
    if not _is_int(version) or version != ENCODING_VERSION:
        raise EntryError(f"unsupported entry encoding version {version!r}")
    unknown = sorted(set(doc) - set(_FIELDS))
    if unknown:
        raise EntryError(f"unknown keys {unknown}")
    missing = sorted(_REQUIRED - set(doc))
    if missing:
        raise EntryError(f"missing keys {missing}")
    doc["time"] = parse_time(doc["time"])
    for name in _TUPLE_FIELDS & set(doc):
        if not isinstance(doc[name], list):
            raise EntryError(f"{name} must be an array")
        doc[name] = tuple(doc[name])
    entry = AuditEntry(**doc)
    if encode(entry) != data:
        raise EntryError("not the canonical encoding of the entry it describes")
    return entry


def with_sequence(entry: AuditEntry, sequence: int) -> AuditEntry:
    """``entry`` with its sequence number set: ``dataclasses.replace`` without validating
    every field again (the entry was validated when it was made; only ``sequence`` is new).
    This is the writer's hot path."""
    _check_int("sequence", sequence, 0)
    if sequence is None:
        raise EntryError("sequence must be an int")
    new = object.__new__(AuditEntry)
    for name in _FIELDS:
        object.__setattr__(new, name, getattr(entry, name))
    object.__setattr__(new, "sequence", sequence)
    return new


def leaf_data(entry: AuditEntry) -> bytes:
    """The Merkle leaf input for ``entry``: ``encode(entry)``. The entry must be sequenced."""
    if entry.sequence is None:
        raise EntryError("an entry must be sequenced before it becomes a leaf")
    return encode(entry)
