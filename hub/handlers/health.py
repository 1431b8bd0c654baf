"""``/healthz`` (the process is up) and ``/readyz`` (it can serve: database reachable,
schema at the current migration, audit log head signed by our key)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from audit.errors import AuditError
from hub.context import Context


async def healthz(ctx: Context) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(ctx: Context) -> web.Response:
    trail = ctx.services.trail

    def check(conn: Connection) -> str | None:
        from alembic.runtime.migration import MigrationContext

        from hub.store.db import head_revision

        if MigrationContext.configure(conn).get_current_revision() != head_revision():
            return "the database schema is not at the current migration: run `hub migrate`"
        try:
            trail.log.latest_in(conn)
        except AuditError:
            return "the audit log's newest checkpoint does not verify"
        return None

    try:
        async with ctx.services.store.read() as conn:
            problem = await conn.run_sync(check)
    except SQLAlchemyError:
        problem = "the database is unreachable"
    if problem is not None:
        return web.json_response({"status": "unavailable", "reason": problem}, status=503)
    return web.json_response({"status": "ready"})
