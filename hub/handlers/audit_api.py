"""The audit API for auditors and witnesses: entries, checkpoints with cosignatures,
inclusion and consistency proofs, proof bundles, and witness cosignatures.

Every call is itself an audit entry (action ``audit-read``, or ``audit-cosign``), recorded
before the response is sent. Paging is by sequence number (``after``), so a page never
shifts under an auditor while the log grows.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from audit import store as audit_store
from audit.bundle import format_bundle
from audit.checkpoint import parse_decimal, verify_cosignature
from audit.entry import decode
from audit.errors import AuditError, TreeError
from audit.note import format_note, parse_signature_line, parse_vkey
from hub.context import Context
from hub.errors import BadRequest, Conflict, NotFound, Unprocessable

_MAX_PAGE = 1000
_MAX_RAW_PAGE = 10_000


def _int(ctx: Context, name: str, default: int | None = None, minimum: int = 0) -> int:
    raw = ctx.request.query.get(name)
    if raw is None:
        if default is None:
            raise BadRequest(f"query parameter {name} is required")
        return default
    value = parse_decimal(raw)
    if value is None or value < minimum:
        raise BadRequest(f"{name} must be an integer of at least {minimum}")
    return value


def _time(ctx: Context, name: str) -> int | None:
    raw = ctx.request.query.get(name)
    if raw is None:
        return None
    try:
        t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 time") from None
    if t.tzinfo is None:
        raise BadRequest(f"{name} must include a UTC offset or Z")
    return audit_store.time_to_us(t)


def _filter(ctx: Context, after: int) -> audit_store.EntryFilter:
    q = ctx.request.query
    allowed = {"since", "until", "actor", "agency", "action", "dsa", "outcome", "after", "limit"}
    unknown = sorted(set(q) - allowed)
    if unknown:
        raise BadRequest(f"unknown query parameters: {', '.join(unknown)}")
    return audit_store.EntryFilter(
        since_us=_time(ctx, "since"),
        until_us=_time(ctx, "until"),
        actor=q.get("actor"),
        agency=q.get("agency"),
        action=q.get("action"),
        dsa_id=q.get("dsa"),
        outcome=q.get("outcome"),
        min_seq=after,
    )


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode("ascii") for h in hashes]


async def list_entries(ctx: Context) -> web.Response:
    after = _int(ctx, "after", 0)
    limit = min(_int(ctx, "limit", 100, minimum=1), _MAX_PAGE)
    rows = await ctx.services.trail.entries(_filter(ctx, after), limit)
    await ctx.audit(resource="audit/entries", rows=len(rows))
    out: list[dict[str, Any]] = []
    for row in rows:
        entry = decode(row.body)
        out.append({"seq": row.seq, "entry": _entry_json(row.body), "time": entry.time.isoformat()})
    next_after = rows[-1].seq + 1 if len(rows) == limit else None
    return web.json_response({"entries": out, "next_after": next_after})


def _entry_json(body: bytes) -> Any:
    import json

    return json.loads(body)


async def raw_entries(ctx: Context) -> web.Response:
    """Canonical entry bytes, one per line, ``after`` <= seq < ``after + limit``."""
    after = _int(ctx, "after", 0)
    limit = min(_int(ctx, "limit", _MAX_RAW_PAGE, minimum=1), _MAX_RAW_PAGE)
    where = audit_store.EntryFilter(min_seq=after, max_seq=after + limit)
    rows = await ctx.services.trail.entries(where, limit)
    await ctx.audit(resource="audit/entries.jsonl", rows=len(rows))
    body = b"".join(row.body + b"\n" for row in rows)
    return web.Response(body=body, content_type="application/x-ndjson")


async def latest_checkpoint(ctx: Context) -> web.Response:
    log = ctx.services.trail.log
    async with ctx.services.store.read() as conn:
        head = await conn.run_sync(log.latest_in)
    await ctx.audit(resource="audit/checkpoint")
    if head is None:
        raise NotFound("the log is empty")
    cp, note = head
    return web.Response(
        text=format_note(note), content_type="text/plain", headers={"X-Tree-Size": str(cp.size)}
    )


async def list_checkpoints(ctx: Context) -> web.Response:
    after = _int(ctx, "after", 0)
    limit = min(_int(ctx, "limit", _MAX_PAGE, minimum=1), _MAX_RAW_PAGE)

    def query(conn: Connection) -> list[dict[str, Any]]:
        t = audit_store.checkpoints
        rows = conn.execute(
            select(t.c.size, t.c.note).where(t.c.size >= after).order_by(t.c.size).limit(limit)
        ).all()
        cos = audit_store.cosignatures
        lines: dict[int, list[str]] = {}
        if rows:
            for size, line in conn.execute(
                select(cos.c.size, cos.c.line)
                .where(cos.c.size >= rows[0][0], cos.c.size <= rows[-1][0])
                .order_by(cos.c.size, cos.c.witness)
            ):
                lines.setdefault(int(size), []).append(str(line))
        return [
            {"size": int(size), "note": str(note), "cosignatures": lines.get(int(size), [])}
            for size, note in rows
        ]

    async with ctx.services.store.read() as conn:
        out = await conn.run_sync(query)
    await ctx.audit(resource="audit/checkpoints", rows=len(out))
    next_after = out[-1]["size"] + 1 if len(out) == limit else None
    return web.json_response({"checkpoints": out, "next_after": next_after})


async def inclusion_proof(ctx: Context) -> web.Response:
    index, size = _int(ctx, "index"), _int(ctx, "size", minimum=1)
    log = ctx.services.trail.log
    try:
        async with ctx.services.store.read() as conn:
            proof = await conn.run_sync(log.inclusion_proof_in, index, size)
    except TreeError as exc:
        raise BadRequest(str(exc)) from None
    await ctx.audit(resource=f"audit/proofs/inclusion/{index}/{size}")
    return web.json_response({"index": index, "size": size, "proof": _b64(proof)})


async def consistency_proof(ctx: Context) -> web.Response:
    old, new = _int(ctx, "old"), _int(ctx, "new")
    log = ctx.services.trail.log
    try:
        async with ctx.services.store.read() as conn:
            proof = await conn.run_sync(log.consistency_proof_in, old, new)
    except TreeError as exc:
        raise BadRequest(str(exc)) from None
    await ctx.audit(resource=f"audit/proofs/consistency/{old}/{new}")
    return web.json_response({"old": old, "new": new, "proof": _b64(proof)})


async def bundle(ctx: Context) -> web.Response:
    index = parse_decimal(ctx.request.match_info["index"])
    if index is None:
        raise BadRequest("the entry index must be an integer")
    log = ctx.services.trail.log
    try:
        async with ctx.services.store.read() as conn:
            proof = await conn.run_sync(log.bundle_in, index, None)
            entry = await conn.run_sync(log.entry_bytes_in, index)
    except TreeError as exc:
        raise NotFound(str(exc)) from None
    await ctx.audit(resource=f"audit/bundles/{index}")
    return web.json_response(
        {"index": index, "entry": entry.decode("ascii"), "bundle": format_bundle(proof)}
    )


async def add_cosignature(ctx: Context) -> web.Response:
    doc = await ctx.json_body(
        frozenset({"size", "cosignature", "vkey"}), frozenset({"size", "cosignature", "vkey"})
    )
    size = doc["size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise BadRequest("size must be a tree size")
    if not isinstance(doc["cosignature"], str) or not isinstance(doc["vkey"], str):
        raise BadRequest("cosignature and vkey must be strings")
    log = ctx.services.trail.log
    try:
        witness = parse_vkey(doc["vkey"])
        signature = parse_signature_line(doc["cosignature"])
    except AuditError as exc:
        raise BadRequest(f"not a cosignature and witness key: {exc}") from None
    try:
        async with ctx.services.store.write() as conn:
            cp, _ = await conn.run_sync(log.checkpoint_in, size)
            timestamp = verify_cosignature(cp, signature, witness)
            await conn.run_sync(log.add_cosignature_in, size, signature, timestamp)
            await ctx.audit_in(
                conn, resource=f"audit/checkpoints/{size}", recipients=(witness.name,)
            )
    except TreeError as exc:
        raise NotFound(str(exc)) from None
    except IntegrityError:
        raise Conflict(f"{witness.name} has already co-signed size {size}") from None
    except AuditError as exc:
        raise Unprocessable(f"the cosignature does not verify: {exc}") from None
    ctx.settle()
    return web.json_response(
        {"size": size, "witness": witness.name, "audit_entry": ctx.last_entry()}, status=201
    )
