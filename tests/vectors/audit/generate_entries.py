"""Write ``entry-v1.json``: known-answer vectors for the version-1 audit entry encoding.

    .venv/bin/python tests/vectors/audit/generate_entries.py

Each case is a plain dict written with ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=True)`` (the rules in ``audit/entry.py``'s docstring, applied by hand: ``"v": 1``,
absent fields omitted, time as RFC 3339 with six fractional digits and ``Z``) and its
RFC 6962 leaf hash, SHA-256(0x00 || bytes), computed here with hashlib. This script does not
import ``audit``, so the encoder under test cannot shape its own expected bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

CASES: list[tuple[str, dict[str, Any]]] = [
    (
        "minimal",
        {
            "v": 1,
            "sequence": 0,
            "time": "2025-01-31T09:30:00.000000Z",
            "actor": "u-0001",
            "action": "login",
            "outcome": "allowed",
        },
    ),
    (
        "login-failure-ipv6",
        {
            "v": 1,
            "sequence": 1,
            "time": "2025-01-31T09:30:01.250000Z",
            "actor": "unknown",
            "auth_method": "password+totp",
            "source_address": "2001:db8::7",
            "action": "login-failure",
            "outcome": "error",
        },
    ),
    (
        "extract-refused",
        {
            "v": 1,
            "sequence": 2,
            "time": "2025-02-03T14:05:06.000001Z",
            "actor": "u-0042",
            "role": "analyst",
            "agency": "agency-b",
            "auth_method": "oidc",
            "source_address": "10.1.2.3",
            "action": "extract-request",
            "resource": "run-7/extract",
            "dsa_id": "dsa-2025-003",
            "dsa_version": 2,
            "purpose": "evaluate service outcomes",
            "lawful_basis": "UK GDPR 6(1)(e); DPA 2018 s8",
            "query_hash": hashlib.sha256(b"query parameters").hexdigest(),
            "columns": ["cluster_id", "agency_a_ref", "agency_b_ref"],
            "outcome": "refused",
            "refusal_reason": "purpose not covered by the agreement",
        },
    ),
    (
        "extract-build-full",
        {
            "v": 1,
            "sequence": 3,
            "time": "2025-02-04T08:00:00.999999Z",
            "actor": "u-0007",
            "role": "data-steward",
            "agency": "hub",
            "auth_method": "oidc",
            "source_address": "192.0.2.10",
            "action": "extract-build",
            "resource": "run-7/extract-1",
            "dsa_id": "dsa-2025-003",
            "dsa_version": 2,
            "purpose": "evaluate service outcomes",
            "lawful_basis": "UK GDPR 6(1)(e)",
            "approvers": ["u-0009", "u-0011"],
            "query_hash": hashlib.sha256(b"extract spec").hexdigest(),
            "model_version": "splink-4.0.6/m-2025-01",
            "threshold": 0.85,
            "rows": 12345,
            "columns": ["cluster_id", "agency_b_ref"],
            "disclosure_controls": ["suppress<10", "round:5"],
            "output_hash": hashlib.sha256(b"output file").hexdigest(),
            "recipients": ["agency-b"],
            "outcome": "allowed",
        },
    ),
    (
        "non-ascii-escaped-small-threshold",
        {
            "v": 1,
            "sequence": 9007199254740991,
            "time": "0999-12-31T23:59:59.000000Z",
            "actor": "u-\u00e9l\u00e8ve-\u6f22",
            "agency": "Cyngor Sir Ynys M\u00f4n",
            "action": "link-run",
            "model_version": "m-1",
            "threshold": 1e-05,
            "rows": 0,
            "outcome": "allowed",
        },
    ),
]


def main() -> None:
    cases = []
    for name, doc in CASES:
        encoded = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        leaf = hashlib.sha256(b"\x00" + encoded.encode("ascii")).hexdigest()
        cases.append({"name": name, "encoded": encoded, "leaf_hash": leaf})
    out = {
        "description": "audit entry encoding v1: canonical bytes and RFC 6962 leaf hashes",
        "generator": "tests/vectors/audit/generate_entries.py (does not import audit)",
        "cases": cases,
    }
    (HERE / "entry-v1.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
