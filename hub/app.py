"""``create_app(config)``: the hub's aiohttp application.

Resources live in ``cleanup_ctx``: the database (checked to be at the current migration),
the audit log (its signing key read from the file the configuration names, checked
against the stored head) and the audit trail's batching writer. Nothing the hub needs
between requests lives in process memory: a second ``hub serve`` on the same database
serves the same state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from sqlalchemy import select

from audit.log import AuditLog
from audit.note import SigningKey
from hub.audit_trail import AuditTrail
from hub.cipher import CipherError, MasterKey
from hub.config import HubConfig
from hub.context import Services
from hub.datastore import DataStore
from hub.errors import ConfigError
from hub.metrics import METRICS, Metrics, metrics_middleware
from hub.middlewares import error_middleware, request_id_middleware
from hub.release_key import ensure_release_key
from hub.routes import SERVICES, setup_routes
from hub.signing_keys import read_signing_key
from hub.store.db import Store, current_revision, head_revision
from hub.store.schema import (
    dataset_versions,
    extract_outputs,
    jobs,
    run_results,
    upload_sessions,
)
from hub.ui import setup_ui

__all__ = ["create_app", "load_log_key"]


def load_log_key(path: Path, origin: str) -> SigningKey:
    """The log's signing key from its 0600 file; refuses a key readable by others or
    named for another origin."""
    return read_signing_key(path, origin, "log signing key")


def _master_key(config: HubConfig) -> MasterKey:
    try:
        return MasterKey.load(config.path(config.keys.master_key))
    except CipherError as exc:
        raise ConfigError(f"the master key: {exc}") from None


async def _sweep(store: Store, datastore: DataStore) -> None:
    """Remove what a crash left in the data directory (see ``DataStore.sweep``)."""
    async with store.read() as conn:
        live = set(
            (
                await conn.scalars(
                    select(dataset_versions.c.id).where(dataset_versions.c.erased_us.is_(None))
                )
            ).all()
        )
        open_sessions = set(
            (
                await conn.scalars(
                    select(upload_sessions.c.id).where(upload_sessions.c.status == "open")
                )
            ).all()
        )
    # A dataset file being committed right now by another hub process belongs to an open
    # session (its version id is derived from the session id): keep it.
    live |= {"dv_" + s.removeprefix("up_") for s in open_sessions}
    await asyncio.to_thread(datastore.sweep, live, open_sessions)
    async with store.read() as conn:
        owners = set((await conn.scalars(select(run_results.c.run_id))).all())
        owners |= set((await conn.scalars(select(extract_outputs.c.request_id))).all())
        # a job running (or queued for a retry) right now may be writing its outputs
        owners |= set(
            (
                await conn.scalars(
                    select(jobs.c.subject_id).where(jobs.c.status.in_(("queued", "running")))
                )
            ).all()
        )
        owners |= set(
            (await conn.scalars(select(jobs.c.id).where(jobs.c.status == "running"))).all()
        )
    await asyncio.to_thread(datastore.sweep_outputs, owners)


def create_app(config: HubConfig) -> web.Application:
    app = web.Application(
        middlewares=[metrics_middleware, request_id_middleware, error_middleware],
        client_max_size=config.limits.max_chunk_bytes + 64 * 1024,
    )

    async def resources(app: web.Application) -> AsyncIterator[None]:
        url = config.database_url()
        revision = current_revision(url)
        if revision != head_revision():
            raise ConfigError(
                f"the database is at migration {revision}, not {head_revision()}: run `hub migrate`"
            )
        key = load_log_key(config.path(config.keys.log_signing_key), config.origin)
        store = Store(url)
        log = AuditLog(
            store.engine.sync_engine,
            origin=config.origin,
            log_key=key.verifier(),
            key=key,
            trusted_path=config.path(config.keys.log_trusted_head),
        )
        trail = AuditTrail(store, log)
        datastore = DataStore(config.data_dir, _master_key(config))
        release_key = ensure_release_key(config)
        await _sweep(store, datastore)
        trail.start()
        app[SERVICES] = Services(
            config=config,
            store=store,
            trail=trail,
            datastore=datastore,
            release_key=release_key,
        )
        try:
            yield
        finally:
            await trail.close()
            await store.close()

    app[METRICS] = Metrics()
    app.cleanup_ctx.append(resources)
    setup_routes(app)
    setup_ui(app)
    return app
