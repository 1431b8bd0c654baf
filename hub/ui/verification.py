"""The console's "Verify now": the full offline verification (``audit.logcheck.check_log``, what
``audit verify --db`` runs) over the hub's own database, and its record.

The check reads the database through its own synchronous engine, in a thread, with one
process (a web server does not fork a pool per click). The log's public key is the one
the hub holds for its log (checked against the signing key at start-up), not anything
read from the database being checked. Each run is stored in ``log_verifications`` (who,
when, what it found) in the same transaction as its audit entry.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from audit.db import open_engine
from audit.errors import AuditError
from audit.logcheck import Report, check_log
from audit.sources import DatabaseSource
from hub.auth import new_id
from hub.context import Services
from hub.store.schema import log_verifications, users

__all__ = ["Verification", "latest_verifications", "record_verification", "verify_database"]


@dataclass(frozen=True, slots=True)
class Verification:
    """What one run of "Verify now" found."""

    ok: bool
    entries: int
    checkpoint_size: int | None
    problem: str | None
    seconds: float


def _check(url: str, services: Services) -> Verification:
    log = services.trail.log
    started = time.perf_counter()
    engine = open_engine(url)
    try:
        report: Report = check_log(
            DatabaseSource(engine, description="the hub's database"),
            log.log_key,
            log.origin,
            workers=1,
        )
    except AuditError as exc:
        return Verification(False, 0, None, str(exc), time.perf_counter() - started)
    finally:
        engine.dispose()
    problem = None if report.problem is None else report.problem.message
    size = None if report.latest is None else report.latest.size
    return Verification(report.ok, report.entries, size, problem, time.perf_counter() - started)


async def verify_database(services: Services) -> Verification:
    """Run the full verification of the hub's log (in a thread)."""
    return await asyncio.to_thread(_check, services.config.database_url(), services)


async def record_verification(conn: Any, services: Services, who: str, found: Verification) -> str:
    """Store ``found`` as run by ``who`` (in the caller's write transaction)."""
    verification_id = new_id("ver_")
    await conn.execute(
        insert(log_verifications).values(
            id=verification_id,
            verified_by=who,
            verified_us=services.now_us(),
            ok=found.ok,
            entries=found.entries,
            checkpoint_size=found.checkpoint_size,
            problem=None if found.problem is None else found.problem[:2000],
            seconds=round(found.seconds, 3),
        )
    )
    return verification_id


async def latest_verifications(conn: Any, limit: int = 5) -> list[dict[str, Any]]:
    """The newest verifications with the name of who ran them, newest first."""
    t = log_verifications
    rows = (
        await conn.execute(
            select(t, users.c.name.label("name"))
            .outerjoin(users, users.c.id == t.c.verified_by)
            .order_by(t.c.verified_us.desc())
            .limit(limit)
        )
    ).all()
    return [dict(r._mapping) for r in rows]
