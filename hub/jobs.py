"""The job queue: a table in the hub's database that API processes fill and worker
processes drain.

A job moves ``queued -> running -> succeeded | failed | cancelled``. Claiming one is safe
with many workers at once: on PostgreSQL the claim is ``SELECT ... FOR UPDATE SKIP LOCKED``
(two workers never see the same row), on SQLite the claim runs under the database's single
writer lock (``BEGIN IMMEDIATE``).

A running job carries a lease: its worker updates ``heartbeat_us`` every few seconds. A job
whose heartbeat is older than the lease belongs to a worker that died (SIGKILL, power
loss): the next claim puts it back in the queue or, once it has used up its attempts,
hands it to the claiming worker to fail (so the failure is recorded and audited by that
kind's failure hook, in the transaction that ends the job, like any other failure).

A worker that lost its lease (another took the job over) finds out on its next heartbeat or
at ``finish``, whose update matches only its own running claim, and rolls its
results back: results are written in the same transaction that marks the job succeeded, so
there are never half-written results.

Everything here takes a synchronous SQLAlchemy ``Connection``/``Engine`` (workers are
synchronous processes; the API calls ``enqueue`` through ``run_sync``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, insert, select, update

from audit.db import immediate_options
from hub.auth import new_id
from hub.store.schema import jobs

__all__ = [
    "JOB_KINDS",
    "STATUSES",
    "Job",
    "JobCancelled",
    "JobLost",
    "claim",
    "enqueue",
    "finish",
    "heartbeat",
    "release",
    "request_cancel",
    "write_transaction",
]

JOB_KINDS: Final = ("link", "extract")
STATUSES: Final = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED: Final = frozenset({"succeeded", "failed", "cancelled"})
ERROR_MAX = 1000


class JobLost(Exception):
    """This worker no longer holds the job (its lease ran out and another took it, or it
    was cancelled): whatever it was doing must be thrown away."""


class JobCancelled(JobLost):
    """Someone cancelled the job while it ran: the worker stops and marks it cancelled."""


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: str
    project_id: str
    subject_id: str
    attempts: int
    max_attempts: int
    created_by: str
    payload: dict[str, Any]
    #: Set when the job is handed over only to be failed: why (its attempts are used up).
    failing: str | None = None


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction that holds SQLite's write lock from its start (on PostgreSQL an
    ordinary transaction)."""
    with engine.connect().execution_options(**immediate_options()) as conn, conn.begin():
        yield conn


def enqueue(
    conn: Connection,
    *,
    kind: str,
    project_id: str,
    subject_id: str,
    created_by: str,
    now_us: int,
    max_attempts: int = 3,
    payload: dict[str, Any] | None = None,
) -> str:
    """Add a queued job in the caller's transaction; its id."""
    if kind not in JOB_KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    job_id = new_id("job_")
    conn.execute(
        insert(jobs).values(
            id=job_id,
            kind=kind,
            project_id=project_id,
            subject_id=subject_id,
            status="queued",
            stage="queued",
            progress=0.0,
            attempts=0,
            max_attempts=max_attempts,
            payload=json.dumps(payload or {}, sort_keys=True),
            created_by=created_by,
            created_us=now_us,
            cancel_requested=False,
        )
    )
    return job_id


#: Why a job whose worker died on its last attempt is failed.
EXHAUSTED = "its worker stopped (killed or lost) on every attempt; no attempts left"


def _stale(now_us: int, lease_us: int) -> Any:
    return (jobs.c.status == "running") & (jobs.c.heartbeat_us < now_us - lease_us)


def _reap(conn: Connection, now_us: int, lease_us: int) -> None:
    """Running jobs whose worker stopped heartbeating: cancelled if that was asked for,
    otherwise back to the queue while they have attempts left. Those without attempts left
    stay running (stale) until a worker of their kind takes them to fail (``_exhausted``)."""
    stale = _stale(now_us, lease_us)
    conn.execute(
        update(jobs)
        .where(stale, jobs.c.cancel_requested.is_(True))
        .values(status="cancelled", stage="cancelled", finished_us=now_us)
    )
    conn.execute(
        update(jobs)
        .where(stale, jobs.c.attempts < jobs.c.max_attempts)
        .values(status="queued", stage="retrying after a lost worker", worker=None, progress=0.0)
    )


def _exhausted(
    conn: Connection, *, worker: str, now_us: int, lease_us: int, kinds: tuple[str, ...]
) -> Any:
    """A stale job of ``kinds`` with no attempts left, now held by ``worker`` to be failed
    (its attempts unchanged); None if there is none."""
    stale = _stale(now_us, lease_us)
    query = (
        select(jobs)
        .where(stale, jobs.c.attempts >= jobs.c.max_attempts, jobs.c.kind.in_(kinds))
        .order_by(jobs.c.created_us, jobs.c.id)
        .limit(1)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = conn.execute(query).first()
    if row is None:
        return None
    taken = conn.execute(
        update(jobs)
        .where(jobs.c.id == row.id, stale)
        .values(worker=worker, heartbeat_us=now_us, stage="failing: " + EXHAUSTED)
    )
    return row if taken.rowcount == 1 else None


def claim(
    engine: Engine, *, worker: str, now_us: int, lease_us: int, kinds: tuple[str, ...] = JOB_KINDS
) -> Job | None:
    """The oldest queued job of ``kinds``, now running for ``worker``; None if none. A job
    whose worker died on its last attempt comes first, with ``failing`` set: the worker
    must fail it, not run it."""
    with write_transaction(engine) as conn:
        _reap(conn, now_us, lease_us)
        dead = _exhausted(conn, worker=worker, now_us=now_us, lease_us=lease_us, kinds=kinds)
        if dead is not None:
            return _job(dead, dead.attempts, failing=EXHAUSTED)
        query = (
            select(jobs)
            .where(jobs.c.status == "queued", jobs.c.kind.in_(kinds))
            .order_by(jobs.c.created_us, jobs.c.id)
            .limit(1)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = conn.execute(query).first()
        if row is None:
            return None
        conn.execute(
            update(jobs)
            .where(jobs.c.id == row.id, jobs.c.status == "queued")
            .values(
                status="running",
                stage="starting",
                worker=worker,
                attempts=row.attempts + 1,
                started_us=now_us,
                heartbeat_us=now_us,
            )
        )
    return _job(row, row.attempts + 1)


def _job(row: Any, attempts: int, *, failing: str | None = None) -> Job:
    """The job a ``jobs`` row describes, at its ``attempts``-th attempt."""
    return Job(
        row.id,
        row.kind,
        row.project_id,
        row.subject_id,
        attempts,
        row.max_attempts,
        row.created_by,
        json.loads(row.payload),
        failing=failing,
    )


def _mine(job_id: str, worker: str) -> Any:
    return (jobs.c.id == job_id) & (jobs.c.worker == worker) & (jobs.c.status == "running")


def heartbeat(
    engine: Engine,
    job_id: str,
    worker: str,
    now_us: int,
    *,
    stage: str | None = None,
    progress: float | None = None,
) -> None:
    """Renew the lease (and report progress); raises :class:`JobLost` if the job is no
    longer this worker's or was cancelled."""
    values: dict[str, Any] = {"heartbeat_us": now_us}
    if stage is not None:
        values["stage"] = stage[:200]
    if progress is not None:
        values["progress"] = min(max(progress, 0.0), 1.0)
    with engine.begin() as conn:
        done = conn.execute(update(jobs).where(_mine(job_id, worker)).values(**values))
        cancelled = conn.execute(
            select(jobs.c.cancel_requested).where(jobs.c.id == job_id)
        ).scalar()
    if done.rowcount != 1:
        raise JobLost(f"job {job_id} is no longer held by {worker}")
    if cancelled:
        raise JobCancelled(f"job {job_id} was cancelled")


def finish(
    conn: Connection,
    job_id: str,
    worker: str,
    now_us: int,
    *,
    status: str,
    error: str | None = None,
) -> None:
    """Mark the job finished, in the caller's transaction (the one that stores its
    results). Raises :class:`JobLost` if this worker no longer holds it, so the caller's
    transaction rolls back and no result of a lost job is ever stored."""
    if status not in FINISHED:
        raise ValueError(f"{status!r} is not a finished status")
    done = conn.execute(
        update(jobs)
        .where(_mine(job_id, worker))
        .values(
            status=status,
            stage=status,
            progress=1.0 if status == "succeeded" else None,
            finished_us=now_us,
            heartbeat_us=now_us,
            error=None if error is None else error[:ERROR_MAX],
        )
    )
    if done.rowcount != 1:
        raise JobLost(f"job {job_id} is no longer held by {worker}")


def release(engine: Engine, job_id: str, worker: str) -> None:
    """Give a claimed job back to the queue without counting the attempt (a worker asked
    to stop in the middle of it)."""
    with engine.begin() as conn:
        conn.execute(
            update(jobs)
            .where(_mine(job_id, worker))
            .values(
                status="queued",
                stage="queued again: its worker stopped",
                worker=None,
                progress=0.0,
                attempts=jobs.c.attempts - 1,
            )
        )


def request_cancel(conn: Connection, job_id: str, now_us: int) -> str | None:
    """Cancel a queued job at once (``"cancelled"``), or ask a running one's worker to stop
    (``"cancelling"``); for a job that had already finished, ``"finished: <status>"``; None
    if there is no such job."""
    row = conn.execute(select(jobs.c.status).where(jobs.c.id == job_id)).first()
    if row is None:
        return None
    if row.status == "queued":
        done = conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == "queued")
            .values(status="cancelled", stage="cancelled", finished_us=now_us)
        )
        if done.rowcount == 1:
            return "cancelled"
        row = conn.execute(select(jobs.c.status).where(jobs.c.id == job_id)).one()
    if row.status == "running":
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(cancel_requested=True))
        return "cancelling"
    return f"finished: {row.status}"
