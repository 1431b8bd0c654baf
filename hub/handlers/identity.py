"""Agencies, users and their roles, API tokens, and ``/v1/me``."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from hub.auth import new_id, new_token
from hub.context import Context
from hub.errors import BadRequest, Conflict, NotFound
from hub.permissions import Role
from hub.store.schema import agencies, tokens, user_roles, users

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
_DAY_US = 86_400 * 1_000_000


def _name(doc: dict[str, Any], key: str = "name") -> str:
    value = doc.get(key)
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > 200
        or not value.isprintable()
    ):
        raise BadRequest(f"{key} must be a printable string of 1 to 200 characters")
    return value.strip()


async def me(ctx: Context) -> web.Response:
    p = ctx.principal
    assert p is not None
    await ctx.audit(resource=f"user/{p.user_id}")
    return web.json_response(
        {
            "user": p.user_id,
            "name": p.name,
            "agency": p.agency_id,
            "roles": sorted(p.roles),
            "token": p.token_id,
        }
    )


async def list_agencies(ctx: Context) -> web.Response:
    async with ctx.services.store.read() as conn:
        rows = (await conn.execute(select(agencies).order_by(agencies.c.id))).all()
    await ctx.audit(resource="agencies", rows=len(rows))
    return web.json_response({"agencies": [{"id": r.id, "name": r.name} for r in rows]})


async def create_agency(ctx: Context) -> web.Response:
    doc = await ctx.json_body(frozenset({"id", "name"}), frozenset({"id", "name"}))
    agency_id = doc["id"]
    if not isinstance(agency_id, str) or not _SLUG.fullmatch(agency_id):
        raise BadRequest("id must be a slug: lowercase letters, digits and '-', 2 to 63 long")
    name = _name(doc)
    try:
        async with ctx.services.store.write() as conn:
            await conn.execute(
                insert(agencies).values(id=agency_id, name=name, created_us=ctx.services.now_us())
            )
            await ctx.audit_in(conn, resource=f"agency/{agency_id}")
    except IntegrityError:
        raise Conflict(f"agency {agency_id!r} already exists") from None
    ctx.settle()
    return web.json_response(
        {"id": agency_id, "name": name, "audit_entry": ctx.last_entry()}, status=201
    )


def _roles(doc: dict[str, Any], agency_id: str | None) -> list[Role]:
    raw = doc.get("roles")
    if not isinstance(raw, list) or not raw or not all(isinstance(r, str) for r in raw):
        raise BadRequest(f"roles must be a non-empty list of: {', '.join(r.value for r in Role)}")
    try:
        roles = sorted({Role(r) for r in raw})
    except ValueError:
        raise BadRequest(f"roles must be among: {', '.join(r.value for r in Role)}") from None
    if Role.DATA_OFFICER in roles and agency_id is None:
        raise BadRequest("a data_officer must belong to an agency")
    if Role.ADMIN in roles and len(roles) > 1:
        raise BadRequest("an admin holds no other role (admins must not read data)")
    return roles


async def list_users(ctx: Context) -> web.Response:
    async with ctx.services.store.read() as conn:
        rows = (await conn.execute(select(users).order_by(users.c.id))).all()
        role_rows = (await conn.execute(select(user_roles))).all()
    roles: dict[str, list[str]] = {}
    for r in role_rows:
        roles.setdefault(r.user_id, []).append(r.role)
    await ctx.audit(resource="users", rows=len(rows))
    return web.json_response(
        {
            "users": [
                {
                    "id": r.id,
                    "name": r.name,
                    "agency": r.agency_id,
                    "roles": sorted(roles.get(r.id, [])),
                    "disabled": bool(r.disabled),
                }
                for r in rows
            ]
        }
    )


async def create_user(ctx: Context) -> web.Response:
    doc = await ctx.json_body(frozenset({"name", "agency", "roles"}), frozenset({"name", "roles"}))
    name = _name(doc)
    agency_id = doc.get("agency")
    if agency_id is not None and not isinstance(agency_id, str):
        raise BadRequest("agency must be an agency id")
    roles = _roles(doc, agency_id)
    user_id = new_id("u_")
    try:
        async with ctx.services.store.write() as conn:
            if agency_id is not None:
                found = await conn.scalar(select(agencies.c.id).where(agencies.c.id == agency_id))
                if found is None:
                    raise NotFound(f"no agency {agency_id!r}")
            await conn.execute(
                insert(users).values(
                    id=user_id,
                    name=name,
                    agency_id=agency_id,
                    disabled=False,
                    created_us=ctx.services.now_us(),
                )
            )
            await conn.execute(
                insert(user_roles), [{"user_id": user_id, "role": str(r)} for r in roles]
            )
            await ctx.audit_in(conn, resource=f"user/{user_id}")
    except IntegrityError:
        raise Conflict("the user could not be created") from None
    ctx.settle()
    body = {
        "id": user_id,
        "name": name,
        "agency": agency_id,
        "roles": [str(r) for r in roles],
        "audit_entry": ctx.last_entry(),
    }
    return web.json_response(body, status=201)


async def create_token(ctx: Context) -> web.Response:
    user_id = ctx.request.match_info["user_id"]
    doc = await ctx.json_body(frozenset({"label", "lifetime_days"}))
    cfg = ctx.services.config.tokens
    days = doc.get("lifetime_days", cfg.default_lifetime_days)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= cfg.max_lifetime_days:
        raise BadRequest(f"lifetime_days must be an integer from 1 to {cfg.max_lifetime_days}")
    label = doc.get("label")
    if label is not None:
        label = _name(doc, "label")
    token, token_hash = new_token()
    token_id = new_id("tok_")
    now = ctx.services.now_us()
    async with ctx.services.store.write() as conn:
        found = await conn.scalar(select(users.c.id).where(users.c.id == user_id))
        if found is None:
            raise NotFound(f"no user {user_id!r}")
        await conn.execute(
            insert(tokens).values(
                id=token_id,
                user_id=user_id,
                token_hash=token_hash,
                label=label,
                created_us=now,
                expires_us=now + days * _DAY_US,
            )
        )
        await ctx.audit_in(conn, resource=f"token/{token_id}", recipients=(user_id,))
    ctx.settle()
    body = {
        "id": token_id,
        "user": user_id,
        "token": token,
        "expires_us": now + days * _DAY_US,
        "note": "shown once: the hub keeps only its hash",
        "audit_entry": ctx.last_entry(),
    }
    return web.json_response(body, status=201)


async def revoke_token(ctx: Context) -> web.Response:
    token_id = ctx.request.match_info["token_id"]
    async with ctx.services.store.write() as conn:
        result = await conn.execute(
            update(tokens)
            .where(tokens.c.id == token_id, tokens.c.revoked_us.is_(None))
            .values(revoked_us=ctx.services.now_us())
        )
        if result.rowcount == 0:
            raise NotFound(f"no active token {token_id!r}")
        await ctx.audit_in(conn, resource=f"token/{token_id}")
    ctx.settle()
    return web.json_response({"id": token_id, "revoked": True, "audit_entry": ctx.last_entry()})
