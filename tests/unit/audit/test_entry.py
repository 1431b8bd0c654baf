"""audit.entry: validation, the canonical v1 encoding, known answers and rejections."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import AuditEntry, AuditError, EntryError, leaf_data, leaf_hash
from audit.entry import INT_MAX, Action, Outcome, decode, encode
from tests.conftest import load_vectors

SHA = hashlib.sha256(b"x").hexdigest()
T0 = datetime(2025, 1, 31, 9, 30, tzinfo=UTC)

labels = st.text(st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=12)
label_tuples = st.lists(labels, max_size=3, unique=True).map(tuple)
sha256_hex = st.binary(min_size=32, max_size=32).map(bytes.hex)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def entries(draw: st.DrawFn) -> AuditEntry:
    """Any valid entry: every optional field sometimes absent, sometimes set."""
    outcome: Outcome = draw(st.sampled_from(get_args(Outcome)))
    dsa = draw(optional(st.tuples(labels, st.integers(1, INT_MAX))))
    return AuditEntry(
        sequence=draw(optional(st.integers(0, INT_MAX))),
        time=draw(st.datetimes(timezones=st.just(UTC))),
        actor=draw(labels),
        role=draw(optional(labels)),
        agency=draw(optional(labels)),
        auth_method=draw(optional(labels)),
        source_address=draw(optional(st.ip_addresses().map(str))),
        action=draw(st.sampled_from(get_args(Action))),
        resource=draw(optional(labels)),
        dsa_id=None if dsa is None else dsa[0],
        dsa_version=None if dsa is None else dsa[1],
        purpose=draw(optional(labels)),
        lawful_basis=draw(optional(labels)),
        approvers=draw(label_tuples),
        query_hash=draw(optional(sha256_hex)),
        model_version=draw(optional(labels)),
        threshold=draw(optional(st.floats(allow_nan=False, allow_infinity=False))),
        rows=draw(optional(st.integers(0, INT_MAX))),
        columns=draw(label_tuples),
        disclosure_controls=draw(st.lists(labels, max_size=3).map(tuple)),
        output_hash=draw(optional(sha256_hex)),
        recipients=draw(label_tuples),
        outcome=outcome,
        refusal_reason=draw(labels) if outcome == "refused" else None,
    )


def _entry(**changes: Any) -> AuditEntry:
    base: dict[str, Any] = {
        "sequence": 0,
        "time": T0,
        "actor": "u-1",
        "action": "view",
        "outcome": "allowed",
    }
    return AuditEntry(**{**base, **changes})


# --- round trips and canonical form -------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(entries())
def test_decode_inverts_encode(entry: AuditEntry) -> None:
    """decode(encode(e)) == e, and the bytes survive a second round trip unchanged."""
    data = encode(entry)
    assert decode(data) == entry
    assert encode(decode(data)) == data


@settings(max_examples=100, deadline=None)
@given(entries())
def test_encoding_is_canonical_json(entry: AuditEntry) -> None:
    """ASCII, sorted keys, no whitespace, "v": 1 first-class, absent fields omitted."""
    data = encode(entry)
    assert data == encode(dataclasses.replace(entry))
    assert data.isascii()
    doc = json.loads(data)
    assert list(doc) == sorted(doc)
    assert doc["v"] == 1
    assert None not in doc.values()
    assert [] not in doc.values()
    assert json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() == data


@pytest.mark.parametrize("case", load_vectors("audit/entry-v1.json"))
def test_known_answer_vectors(case: dict[str, Any]) -> None:
    """Each independently generated encoding decodes, re-encodes to itself, and has the
    published RFC 6962 leaf hash."""
    data = case["encoded"].encode("ascii")
    entry = decode(data)
    assert encode(entry) == data
    assert leaf_hash(leaf_data(entry)).hex() == case["leaf_hash"]


def test_known_answer_vector_built_in_python() -> None:
    """An entry built field by field encodes to the generator's bytes (so field names,
    time format and float spelling are the documented ones)."""
    (case,) = (
        c.values[0]
        for c in load_vectors("audit/entry-v1.json")
        if c.values[0]["name"] == "non-ascii-escaped-small-threshold"
    )
    entry = AuditEntry(
        sequence=INT_MAX,
        time=datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),
        actor="u-\u00e9l\u00e8ve-\u6f22",
        agency="Cyngor Sir Ynys M\u00f4n",
        action="link-run",
        model_version="m-1",
        threshold=1e-05,
        rows=0,
        outcome="allowed",
    )
    assert encode(entry) == case["encoded"].encode("ascii")


def test_threshold_is_normalised() -> None:
    """-0.0 is stored as 0.0 and an int as a float, so equal entries encode equally."""
    assert _entry(threshold=-0.0).threshold == 0.0
    assert encode(_entry(threshold=-0.0)) == encode(_entry(threshold=0.0))
    assert b'"threshold":1.0' in encode(_entry(threshold=1))


def test_leaf_data_needs_a_sequence() -> None:
    """An unsequenced entry encodes, but cannot become a Merkle leaf."""
    entry = _entry(sequence=None)
    assert b"sequence" not in encode(entry)
    with pytest.raises(EntryError, match="sequenced"):
        leaf_data(entry)
    assert leaf_data(dataclasses.replace(entry, sequence=5)) == encode(_entry(sequence=5))


def test_entry_is_frozen() -> None:
    """Fields cannot be reassigned once an entry exists."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        _entry().actor = "someone-else"  # type: ignore[misc]


def test_fields_hold_no_plaintext_identifiers() -> None:
    """The reviewed field list: ids, hashes, counts and short labels only. A new field
    (say, a name or NHS number) must be added here deliberately."""
    assert [f.name for f in dataclasses.fields(AuditEntry)] == [
        "time",
        "actor",
        "action",
        "outcome",
        "sequence",
        "role",
        "agency",
        "auth_method",
        "source_address",
        "resource",
        "dsa_id",
        "dsa_version",
        "purpose",
        "lawful_basis",
        "approvers",
        "query_hash",
        "model_version",
        "threshold",
        "rows",
        "columns",
        "disclosure_controls",
        "output_hash",
        "recipients",
        "refusal_reason",
    ]
    with pytest.raises(EntryError, match="1000"):
        _entry(outcome="refused", refusal_reason="x" * 1001)
    with pytest.raises(EntryError, match="200"):
        _entry(purpose="x" * 201)


# --- rejections on construction ------------------------------------------------------------

BAD_ENTRIES = [
    pytest.param({"time": datetime(2025, 1, 31, 9, 30)}, "timezone-aware UTC", id="naive-time"),
    pytest.param(
        {"time": datetime(2025, 1, 31, 9, 30, tzinfo=timezone(timedelta(hours=1)))},
        "UTC",
        id="non-utc-time",
    ),
    pytest.param({"time": "2025-01-31T09:30:00Z"}, "datetime", id="time-as-string"),
    pytest.param({"query_hash": SHA.upper()}, "lowercase hex", id="uppercase-hex"),
    pytest.param({"query_hash": SHA[:-1]}, "64", id="short-hex"),
    pytest.param({"output_hash": SHA[:-1] + "g"}, "hex", id="non-hex-digit"),
    pytest.param({"action": "delete-everything"}, "unknown action", id="unknown-action"),
    pytest.param({"action": ["view"]}, "unknown action", id="action-not-a-string"),
    pytest.param({"outcome": "maybe"}, "unknown outcome", id="unknown-outcome"),
    pytest.param({"outcome": "refused"}, "refusal_reason", id="refused-without-reason"),
    pytest.param({"refusal_reason": "no"}, "refusal_reason", id="reason-without-refusal"),
    pytest.param({"threshold": float("nan")}, "finite", id="nan-threshold"),
    pytest.param({"threshold": float("inf")}, "finite", id="infinite-threshold"),
    pytest.param({"threshold": True}, "float", id="bool-threshold"),
    pytest.param({"threshold": "0.5"}, "float", id="string-threshold"),
    pytest.param({"sequence": -1}, "outside", id="negative-sequence"),
    pytest.param({"sequence": 2**53}, "outside", id="sequence-beyond-2-53"),
    pytest.param({"sequence": True}, "int", id="bool-sequence"),
    pytest.param({"rows": -1}, "outside", id="negative-rows"),
    pytest.param({"rows": 1.0}, "int", id="float-rows"),
    pytest.param({"dsa_id": "dsa-1"}, "together", id="dsa-id-without-version"),
    pytest.param({"dsa_id": "dsa-1", "dsa_version": 0}, "outside", id="dsa-version-0"),
    pytest.param({"actor": ""}, "empty", id="empty-actor"),
    pytest.param({"actor": "u-1\n"}, "control", id="newline-in-actor"),
    pytest.param({"role": "a\x00b"}, "control", id="nul-in-role"),
    pytest.param({"agency": "a\u202eb"}, "format", id="bidi-override-in-agency"),
    pytest.param({"resource": " r"}, "whitespace", id="leading-space"),
    pytest.param({"actor": 7}, "string", id="int-actor"),
    pytest.param({"approvers": ["u-2"]}, "tuple", id="approvers-as-list"),
    pytest.param({"approvers": ("u-2", "u-2")}, "duplicates", id="duplicate-approvers"),
    pytest.param({"columns": ("a", "")}, r"columns\[1\]", id="empty-column-name"),
    pytest.param({"source_address": "localhost"}, "IP address", id="hostname-address"),
    pytest.param({"source_address": "::FFFF:1"}, "canonically", id="non-canonical-address"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_ENTRIES)
def test_invalid_entries_are_refused(changes: dict[str, Any], message: str) -> None:
    """Each invalid field raises EntryError (an AuditError) with a message naming it."""
    with pytest.raises(EntryError, match=message):
        _entry(**changes)
    assert issubclass(EntryError, AuditError)


# --- rejections on decode ------------------------------------------------------------------

GOOD = encode(_entry())
GOOD_DOC: dict[str, Any] = json.loads(GOOD)


def _dumps(doc: dict[str, Any], **options: Any) -> bytes:
    opts: dict[str, Any] = {"sort_keys": True, "separators": (",", ":")}
    return json.dumps(doc, **{**opts, **options}).encode()


BAD_BYTES = [
    pytest.param(_dumps({**GOOD_DOC, "name": "Jane Doe"}), "unknown keys", id="unknown-key"),
    pytest.param(_dumps({**GOOD_DOC, "v": 2}), "version", id="version-2"),
    pytest.param(_dumps({**GOOD_DOC, "v": True}), "version", id="version-true"),
    pytest.param(_dumps({k: v for k, v in GOOD_DOC.items() if k != "v"}), "version", id="no-v"),
    pytest.param(
        _dumps({k: v for k, v in GOOD_DOC.items() if k != "actor"}), "missing", id="no-actor"
    ),
    pytest.param(_dumps(GOOD_DOC, separators=(", ", ": ")), "canonical", id="whitespace"),
    pytest.param(GOOD + b"\n", "canonical", id="trailing-newline"),
    pytest.param(
        _dumps(dict(reversed(GOOD_DOC.items())), sort_keys=False), "canonical", id="unsorted-keys"
    ),
    pytest.param(_dumps({**GOOD_DOC, "approvers": []}), "canonical", id="empty-array-present"),
    pytest.param(_dumps({**GOOD_DOC, "rows": None}), "canonical", id="null-present"),
    pytest.param(
        _dumps({**GOOD_DOC, "threshold": 0.5}).replace(b"0.5", b"0.50"),
        "canonical",
        id="float-spelling",
    ),
    pytest.param(_dumps({**GOOD_DOC, "threshold": 1}), "canonical", id="int-threshold"),
    pytest.param(
        _dumps({**GOOD_DOC, "actor": "\u00e9"}, ensure_ascii=False), "canonical", id="raw-utf8"
    ),
    pytest.param(GOOD.replace(b'"u-1"', b'"\\u0075-1"'), "canonical", id="needless-escape"),
    pytest.param(
        _dumps({**GOOD_DOC, "time": "2025-01-31T09:30:00Z"}), "RFC 3339", id="time-no-fraction"
    ),
    pytest.param(
        _dumps({**GOOD_DOC, "time": "2025-01-31T09:30:00.000000+00:00"}),
        "RFC 3339",
        id="time-offset",
    ),
    pytest.param(
        _dumps({**GOOD_DOC, "time": "2025-02-30T09:30:00.000000Z"}), "valid date", id="time-feb-30"
    ),
    pytest.param(_dumps({**GOOD_DOC, "approvers": "u-2"}), "array", id="approvers-string"),
    pytest.param(_dumps({**GOOD_DOC, "threshold": 1e400}), "finite", id="infinity-literal"),
    pytest.param(GOOD.replace(b'"sequence":0', b'"sequence":NaN'), "int", id="nan-literal"),
    pytest.param(GOOD[:-1] + b',"actor":"u-2"}', "canonical", id="duplicate-key"),
    pytest.param(b"[]", "object", id="array-not-object"),
    pytest.param(b"\xff", "UTF-8", id="not-utf8"),
    pytest.param(b"[" * 100_000, "JSON", id="deep-nesting"),
    pytest.param(b"", "JSON", id="empty"),
]


@pytest.mark.parametrize(("data", "message"), BAD_BYTES)
def test_decode_refuses_non_canonical_or_invalid_bytes(data: bytes, message: str) -> None:
    """decode accepts only the exact bytes encode would write; everything else raises."""
    with pytest.raises(EntryError, match=message):
        decode(data)


def test_with_sequence_equals_replace() -> None:
    from audit.entry import with_sequence

    base = AuditEntry(
        time=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        actor="a",
        action="view",
        outcome="refused",
        refusal_reason="no",
        approvers=("x", "y"),
        threshold=0.5,
    )
    assert with_sequence(base, 9) == dataclasses.replace(base, sequence=9)
    assert leaf_data(with_sequence(base, 9)) == leaf_data(dataclasses.replace(base, sequence=9))
    for bad in (-1, 2**53, True, "1"):
        with pytest.raises(EntryError):
            with_sequence(base, bad)  # type: ignore[arg-type]
