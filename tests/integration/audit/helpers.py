"""Shared helpers for the audit log's database tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from audit.entry import AuditEntry
from audit.log import AuditLog
from audit.note import SigningKey

ORIGIN = "hub.test.invalid/audit"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def draft(i: int, **overrides: object) -> AuditEntry:
    """A plausible unsequenced entry; ``i`` varies the time, actor and resource."""
    fields: dict[str, object] = {
        "time": T0 + timedelta(seconds=i),
        "actor": f"user-{i % 7}",
        "role": "analyst",
        "agency": ("police", "ed", "council")[i % 3],
        "action": ("view", "download", "upload", "link-run")[i % 4],
        "outcome": "allowed",
        "resource": f"dataset/{i}",
        "dsa_id": "dsa-svd-01",
        "dsa_version": 1,
    }
    fields.update(overrides)
    return AuditEntry(**fields)  # type: ignore[arg-type]


def new_log(url: str, key: SigningKey | None = None, **kwargs: object) -> AuditLog:
    key = key or SigningKey.generate(ORIGIN)
    return AuditLog.open(
        url,
        origin=ORIGIN,
        log_key=key.verifier(),
        key=key,
        create=True,
        **kwargs,  # type: ignore[arg-type]
    )
