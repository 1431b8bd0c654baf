"""Registering agencies' client certificates for mutual TLS (admins), listing them
(anyone who may list agencies) and revoking them."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from hub.auth import new_id
from hub.certificates import parse_certificate
from hub.context import Context
from hub.errors import Conflict, NotFound
from hub.store.schema import agencies, client_certificates


async def list_certificates(ctx: Context) -> web.Response:
    agency_id = ctx.request.match_info["agency_id"]
    t = client_certificates
    async with ctx.services.store.read() as conn:
        if await conn.scalar(select(agencies.c.id).where(agencies.c.id == agency_id)) is None:
            raise NotFound(f"no agency {agency_id!r}")
        rows = (await conn.execute(select(t).where(t.c.agency_id == agency_id))).all()
    await ctx.audit(resource=f"agency/{agency_id}/certificates", rows=len(rows))
    listed = [
        {
            "id": r.id,
            "fingerprint": r.fingerprint,
            "subject": r.subject,
            "not_after_us": r.not_after_us,
            "revoked": r.revoked_us is not None,
        }
        for r in sorted(rows, key=lambda r: r.created_us)
    ]
    return web.json_response({"certificates": listed})


async def add_certificate(ctx: Context) -> web.Response:
    agency_id = ctx.request.match_info["agency_id"]
    doc = await ctx.json_body(frozenset({"certificate"}), frozenset({"certificate"}))
    cert = parse_certificate(doc["certificate"], datetime.fromtimestamp(ctx.services.clock(), UTC))
    p = ctx.principal
    assert p is not None
    cert_id = new_id("crt_")
    try:
        async with ctx.services.store.write() as conn:
            if await conn.scalar(select(agencies.c.id).where(agencies.c.id == agency_id)) is None:
                raise NotFound(f"no agency {agency_id!r}")
            await conn.execute(
                insert(client_certificates).values(
                    id=cert_id,
                    agency_id=agency_id,
                    fingerprint=cert.fingerprint,
                    subject=cert.subject,
                    not_after_us=cert.not_after_us,
                    created_us=ctx.services.now_us(),
                    created_by=p.user_id,
                )
            )
            await ctx.audit_in(conn, resource=f"agency/{agency_id}/certificate/{cert_id}")
    except IntegrityError:
        raise Conflict("that certificate is already registered") from None
    ctx.settle()
    body = {"id": cert_id, "agency": agency_id, "fingerprint": cert.fingerprint}
    return web.json_response({**body, "audit_entry": ctx.last_entry()}, status=201)


async def revoke_certificate(ctx: Context) -> web.Response:
    cert_id = ctx.request.match_info["certificate_id"]
    t = client_certificates
    async with ctx.services.store.write() as conn:
        result = await conn.execute(
            update(t)
            .where(t.c.id == cert_id, t.c.revoked_us.is_(None))
            .values(revoked_us=ctx.services.now_us())
        )
        if result.rowcount == 0:
            raise NotFound(f"no registered certificate {cert_id!r}")
        await ctx.audit_in(conn, resource=f"certificate/{cert_id}")
    ctx.settle()
    return web.json_response({"id": cert_id, "revoked": True, "audit_entry": ctx.last_entry()})
