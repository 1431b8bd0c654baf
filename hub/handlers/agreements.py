"""Data sharing agreements (versioned, never overwritten) and linkage projects under them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.agreements import DOCUMENT_KEYS, Agreement, parse_agreement
from hub.context import Context
from hub.errors import BadRequest, Conflict, NotFound
from hub.store.schema import agencies, agreement_versions, projects

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
_DOCUMENT = DOCUMENT_KEYS
_REQUIRED = frozenset({"title", "purpose", "parties", "retention_days", "review_date"})


def _slug(value: object, name: str) -> str:
    if not isinstance(value, str) or not _SLUG.fullmatch(value):
        raise BadRequest(f"{name} must be a slug: lowercase letters, digits and '-', 2 to 63 long")
    return value


async def _check_parties(conn: AsyncConnection, agreement: Agreement) -> None:
    wanted = {p.agency for p in agreement.parties}
    found = set((await conn.scalars(select(agencies.c.id).where(agencies.c.id.in_(wanted)))).all())
    missing = sorted(wanted - found)
    if missing:
        raise BadRequest(f"unknown agencies among the parties: {', '.join(missing)}")


def _version_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.agreement_id,
        "version": row.version,
        "status": row.status,
        "created_us": row.created_us,
        "created_by": row.created_by,
        **json.loads(row.document),
    }


async def latest_version(conn: AsyncConnection, agreement_id: str) -> Any:
    """The newest version row of an agreement, or None."""
    t = agreement_versions
    return (
        await conn.execute(
            select(t).where(t.c.agreement_id == agreement_id).order_by(t.c.version.desc()).limit(1)
        )
    ).first()


async def list_agreements(ctx: Context) -> web.Response:
    t = agreement_versions
    newest = (
        select(t.c.agreement_id, func.max(t.c.version).label("version"))
        .group_by(t.c.agreement_id)
        .subquery()
    )
    async with ctx.services.store.read() as conn:
        rows = (
            await conn.execute(
                select(t)
                .join(
                    newest,
                    (t.c.agreement_id == newest.c.agreement_id) & (t.c.version == newest.c.version),
                )
                .order_by(t.c.agreement_id)
            )
        ).all()
    await ctx.audit(resource="agreements", rows=len(rows))
    return web.json_response({"agreements": [_version_json(r) for r in rows]})


async def show_agreement(ctx: Context) -> web.Response:
    agreement_id = ctx.request.match_info["agreement_id"]
    t = agreement_versions
    async with ctx.services.store.read() as conn:
        rows = (
            await conn.execute(
                select(t).where(t.c.agreement_id == agreement_id).order_by(t.c.version)
            )
        ).all()
    if not rows:
        raise NotFound(f"no agreement {agreement_id!r}")
    newest = rows[-1]
    await ctx.audit(
        resource=f"agreement/{agreement_id}", dsa_id=agreement_id, dsa_version=newest.version
    )
    return web.json_response(
        {"agreement": _version_json(newest), "history": [_version_json(r) for r in rows]}
    )


async def create_agreement(ctx: Context) -> web.Response:
    doc = await ctx.json_body(_DOCUMENT | {"id"}, _REQUIRED | {"id"})
    agreement_id = _slug(doc.pop("id"), "id")
    agreement = parse_agreement(doc)
    return await _store_version(ctx, agreement_id, 1, agreement, status=201)


async def revise_agreement(ctx: Context) -> web.Response:
    """A new version: the whole document again, with ``based_on`` the version it revises
    (a stale ``based_on`` is a conflict: someone else revised it first)."""
    agreement_id = ctx.request.match_info["agreement_id"]
    doc = await ctx.json_body(_DOCUMENT | {"based_on"}, _REQUIRED | {"based_on"})
    based_on = doc.pop("based_on")
    if isinstance(based_on, bool) or not isinstance(based_on, int):
        raise BadRequest("based_on must be the version number being revised")
    agreement = parse_agreement(doc)
    return await _store_version(ctx, agreement_id, based_on + 1, agreement, status=200)


async def _store_version(
    ctx: Context, agreement_id: str, version: int, agreement: Agreement, status: int
) -> web.Response:
    p = ctx.principal
    assert p is not None
    try:
        async with ctx.services.store.write() as conn:
            await _check_parties(conn, agreement)
            newest = await latest_version(conn, agreement_id)
            current = 0 if newest is None else newest.version
            if version == 1 and current:
                raise Conflict(f"agreement {agreement_id!r} already exists: revise it instead")
            if version > 1 and current == 0:
                raise NotFound(f"no agreement {agreement_id!r}")
            if version != current + 1:
                raise Conflict(
                    f"agreement {agreement_id!r} is at version {current}, not {version - 1}"
                )
            await conn.execute(
                insert(agreement_versions).values(
                    agreement_id=agreement_id,
                    version=version,
                    status=agreement.status,
                    document=agreement.canonical(),
                    created_us=ctx.services.now_us(),
                    created_by=p.user_id,
                )
            )
            await ctx.audit_in(
                conn,
                resource=f"agreement/{agreement_id}",
                dsa_id=agreement_id,
                dsa_version=version,
                purpose=agreement.title[:200],
            )
    except IntegrityError:
        raise Conflict(
            f"agreement {agreement_id!r} changed meanwhile: fetch it and retry"
        ) from None
    ctx.settle()
    body = {"id": agreement_id, "version": version, "status": agreement.status}
    return web.json_response({**body, "audit_entry": ctx.last_entry()}, status=status)


async def list_projects(ctx: Context) -> web.Response:
    async with ctx.services.store.read() as conn:
        rows = (await conn.execute(select(projects).order_by(projects.c.id))).all()
    await ctx.audit(resource="projects", rows=len(rows))
    return web.json_response({"projects": [_project_json(r) for r in rows]})


def _project_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "agreement": row.agreement_id,
        "schema_id": row.schema_id,
        "schema_hash": row.schema_hash,
        "key_check_value": row.key_check_value,
        "created_us": row.created_us,
    }


async def create_project(ctx: Context) -> web.Response:
    keys = frozenset({"id", "name", "agreement", "schema_id", "schema_hash", "key_check_value"})
    doc = await ctx.json_body(keys, keys)
    project_id = _slug(doc["id"], "id")
    name = doc["name"]
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise BadRequest("name must be a string of 1 to 200 characters")
    schema_id = _slug(doc["schema_id"], "schema_id")
    if not isinstance(doc["schema_hash"], str) or not _HEX64.fullmatch(doc["schema_hash"]):
        raise BadRequest(
            "schema_hash must be the encoding schema's SHA-256, 64 lowercase hex digits"
        )
    if not isinstance(doc["key_check_value"], str) or not _HEX16.fullmatch(doc["key_check_value"]):
        raise BadRequest("key_check_value must be 16 lowercase hex digits (`connector key-check`)")
    agreement_id = _slug(doc["agreement"], "agreement")
    try:
        async with ctx.services.store.write() as conn:
            newest = await latest_version(conn, agreement_id)
            if newest is None:
                raise NotFound(f"no agreement {agreement_id!r}")
            agreement = parse_agreement(json.loads(newest.document))
            if not agreement.in_force(datetime.now(UTC).date()):
                raise Conflict(
                    f"agreement {agreement_id!r} version {newest.version} is not in force "
                    f"(status {agreement.status}, review date {agreement.review_date})"
                )
            await conn.execute(
                insert(projects).values(
                    id=project_id,
                    name=name.strip(),
                    agreement_id=agreement_id,
                    schema_id=schema_id,
                    schema_hash=doc["schema_hash"],
                    key_check_value=doc["key_check_value"],
                    created_us=ctx.services.now_us(),
                )
            )
            await ctx.audit_in(
                conn,
                resource=f"project/{project_id}",
                dsa_id=agreement_id,
                dsa_version=newest.version,
            )
    except IntegrityError:
        raise Conflict(f"project {project_id!r} already exists") from None
    ctx.settle()
    return web.json_response({"id": project_id, "audit_entry": ctx.last_entry()}, status=201)
