"""``hub worker``: a process that claims jobs from the queue and runs them.

Workers are synchronous processes (linkage is CPU work in DuckDB or Spark, not I/O), each
with its own database engine, audit log writer and data store over the same data directory
as the API. ``hub serve`` starts ``workers.count`` of them next to the API; ``hub worker``
starts more, on the same machine or (with PostgreSQL) on others sharing the data directory.

While a job runs, a heartbeat thread renews its lease every ``workers.heartbeat_seconds``; a
job whose lease runs out is taken over by another worker (see ``hub.jobs``). SIGTERM or
SIGINT stops the worker: a job in progress goes back to the queue without counting the
attempt, and nothing of it is stored. If the database goes away (restarting, unreachable)
the worker keeps trying, waiting longer each time (up to 30 s), instead of exiting.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import structlog
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from audit.db import open_engine
from audit.entry import AuditEntry
from audit.log import AuditLog, PendingAppend
from hub.auth import new_id
from hub.cipher import CipherError, MasterKey
from hub.config import HubConfig
from hub.datastore import DataStore
from hub.errors import ConfigError, HubError
from hub.jobs import (
    Job,
    JobCancelled,
    JobLost,
    claim,
    finish,
    heartbeat,
    release,
    write_transaction,
)
from hub.store.db import database_error

__all__ = ["JobContext", "Worker", "WorkerStopping", "run_worker"]

#: The longest wait between attempts to reach a database that went away, in seconds.
_OUTAGE_BACKOFF_MAX = 30.0

log = structlog.get_logger("hub.worker")


class WorkerStopping(BaseException):
    """Raised in the worker's main thread by SIGTERM or SIGINT."""


class JobFailed(HubError):
    """A job cannot succeed (bad input, nothing to do): fail it without retrying."""

    status = 422
    code = "job_failed"


@dataclass
class JobContext:
    """What a job handler gets: the job, the hub's resources and progress reporting."""

    job: Job
    worker: Worker
    stage: str = "starting"
    _lost: list[JobLost] = field(default_factory=list)

    @property
    def config(self) -> HubConfig:
        return self.worker.config

    @property
    def engine(self) -> Engine:
        return self.worker.engine

    @property
    def datastore(self) -> DataStore:
        return self.worker.datastore

    def now_us(self) -> int:
        return int(time.time() * 1_000_000)

    def progress(self, stage: str, fraction: float | None = None) -> None:
        """Report a stage (stored at the next heartbeat, and now); raises ``JobLost`` if the
        job was taken over or cancelled meanwhile."""
        self.stage = stage
        if self._lost:
            raise self._lost[0]
        heartbeat(
            self.engine, self.job.id, self.worker.id, self.now_us(), stage=stage, progress=fraction
        )

    def commit(
        self, store: Callable[[Connection], list[AuditEntry]], *, status: str = "succeeded"
    ) -> list[int]:
        """Store the job's results and mark it finished, in one transaction: ``store`` writes
        the results on the connection and returns the audit entries that record them. The
        indexes of those entries."""
        pending: PendingAppend | None = None
        with write_transaction(self.engine) as conn:
            entries = store(conn)
            finish(conn, self.job.id, self.worker.id, self.now_us(), status=status)
            if entries:
                pending = self.worker.audit.append_in(conn, entries)
        if pending is None:
            return []
        return [r.sequence for r in self.worker.audit.committed(pending)]

    def entry(self, **fields: Any) -> AuditEntry:
        """An audit entry for work done on behalf of the job's requester."""
        base: dict[str, Any] = {
            "time": datetime.now(UTC),
            "actor": self.job.created_by,
            "auth_method": "job",
            "outcome": "allowed",
        }
        base.update(fields)
        return AuditEntry(**base)


Handler = Callable[[JobContext], None]


def _master_key(config: HubConfig) -> MasterKey:
    try:
        return MasterKey.load(config.path(config.keys.master_key))
    except CipherError as exc:
        raise ConfigError(f"the master key: {exc}") from None


class Worker:
    """One worker process's resources and its claim loop."""

    def __init__(self, config: HubConfig, handlers: dict[str, Handler]) -> None:
        from hub.app import load_log_key

        self.config = config
        self.handlers = handlers
        self.id = f"{socket.gethostname()}:{os.getpid()}:{new_id('w')[1:9]}"
        self.engine = open_engine(config.database_url())
        key = load_log_key(config.path(config.keys.log_signing_key), config.origin)
        self.audit = AuditLog(
            self.engine,
            origin=config.origin,
            log_key=key.verifier(),
            key=key,
            trusted_path=config.path(config.keys.log_trusted_head),
        )
        self.datastore = DataStore(config.data_dir, _master_key(config))

    def close(self) -> None:
        self.engine.dispose()

    def run_one(self) -> bool:
        """Claim and run one job; False if the queue had none."""
        settings = self.config.workers
        job = claim(
            self.engine,
            worker=self.id,
            now_us=int(time.time() * 1_000_000),
            lease_us=int(settings.lease_seconds * 1_000_000),
            kinds=tuple(self.handlers),
        )
        if job is None:
            return False
        if job.failing is not None:
            self._fail(JobContext(job, self), job.failing)
            log.warning("job failed", job=job.id, kind=job.kind, error=job.failing)
        else:
            self._run(job)
        return True

    def _run(self, job: Job) -> None:
        ctx = JobContext(job, self)
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(ctx, stop), daemon=True)
        beat.start()
        bound = log.bind(job=job.id, kind=job.kind, attempt=job.attempts)
        bound.info("job started")
        try:
            self.handlers[job.kind](ctx)
            bound.info("job succeeded")
        except JobCancelled:
            with contextlib.suppress(JobLost):
                ctx.commit(lambda conn: [], status="cancelled")
            bound.info("job cancelled")
        except JobLost as exc:
            bound.warning("job lost", reason=str(exc))
        except WorkerStopping:
            release(self.engine, job.id, self.id)
            bound.warning("job released: worker stopping")
            raise
        except HubError as exc:
            self._fail(ctx, exc.message)
            bound.warning("job failed", error=exc.message)
        except Exception as exc:  # noqa: BLE001 - a job's failure must not stop the worker
            message = f"{type(exc).__name__}: {exc}"
            if job.attempts < job.max_attempts:
                bound.error("job error, will retry", error=message, tb=traceback.format_exc())
                try:
                    release_for_retry(self.engine, job, self.id, message)
                except DBAPIError as db:  # its lease runs out and the next claim requeues it
                    bound.warning("could not requeue the job", error=type(db).__name__)
            else:
                self._fail(ctx, message)
                bound.error("job failed", error=message, tb=traceback.format_exc())
        finally:
            stop.set()
            beat.join()

    def _fail(self, ctx: JobContext, message: str) -> None:
        failure = _failure_entries.get(ctx.job.kind)
        with contextlib.suppress(JobLost):
            ctx.commit(lambda conn: failure(ctx, conn, message) if failure else [], status="failed")

    def _beat(self, ctx: JobContext, stop: threading.Event) -> None:
        interval = self.config.workers.heartbeat_seconds
        while not stop.wait(interval):
            try:
                heartbeat(self.engine, ctx.job.id, self.id, ctx.now_us())
            except JobLost as exc:
                ctx._lost.append(exc)
                return
            except Exception as exc:  # noqa: BLE001 - keep beating through a database blip
                log.warning("heartbeat failed", job=ctx.job.id, error=type(exc).__name__)


#: Per job kind: the audit entries (and any state change) recording that a job failed.
FailureHook = Callable[[JobContext, Connection, str], list[AuditEntry]]
_failure_entries: dict[str, FailureHook] = {}


def on_failure(kind: str) -> Callable[[FailureHook], FailureHook]:
    def register(hook: FailureHook) -> FailureHook:
        _failure_entries[kind] = hook
        return hook

    return register


def release_for_retry(engine: Engine, job: Job, worker: str, message: str) -> None:
    """Back to the queue after an unexpected error (the attempt counts)."""
    from sqlalchemy import update

    from hub.store.schema import jobs

    with engine.begin() as conn:
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job.id, jobs.c.worker == worker, jobs.c.status == "running")
            .values(status="queued", stage="retrying after an error", worker=None, error=message)
        )


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise WorkerStopping(signal.Signals(signum).name)


def run_worker(
    config: HubConfig, handlers: dict[str, Handler], *, once: bool = False, poll: float = 1.0
) -> int:
    """The worker's main loop; returns the number of jobs run."""
    worker = Worker(config, handlers)
    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    ran = 0
    outage = 0  # consecutive failures to reach the database
    log.info("worker started", worker=worker.id)
    try:
        while True:
            try:
                found = worker.run_one()
            except DBAPIError as exc:
                if database_error(exc) is None:
                    raise
                # The database went away (restarting, unreachable): wait and try again. A job
                # this worker held comes back to the queue when its lease runs out.
                outage += 1
                wait = min(_OUTAGE_BACKOFF_MAX, poll * 2 ** min(outage, 6))
                log.warning("database unavailable; retrying", error=type(exc).__name__, wait=wait)
                time.sleep(wait)
                continue
            outage = 0
            if found:
                ran += 1
                continue
            if once:
                break
            time.sleep(poll)
    except WorkerStopping as exc:
        log.info("worker stopping", signal=str(exc))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        worker.close()
    return ran
