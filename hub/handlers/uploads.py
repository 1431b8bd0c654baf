"""Uploads: resumable, chunked, idempotent, validated on commit, published atomically; and
the dataset versions they become, listed and erased.

1. ``POST /v1/projects/{project}/uploads`` ``{"size", "sha256"}`` opens a session for the
   caller's agency (a party to the project's agreement, which must be in force). The hub
   fixes the chunk size and count.
2. ``PUT /v1/uploads/{id}/chunks/{index}`` with ``X-Chunk-SHA256``: stores one chunk,
   encrypted. Sending a chunk again with the same hash is harmless; another hash is a 409.
3. ``GET /v1/uploads/{id}``: which chunks arrived (to resume after an interruption).
4. ``POST /v1/uploads/{id}/commit``: decrypts and joins the chunks into a temporary file,
   checks size and SHA-256, validates it (``hub.validate``), encrypts it under a new data key
   as the dataset version's file, and only then records the version, its audit entry and the
   session's end in one transaction. Committing again returns the same version. A file that
   fails validation ends the session and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from typing import Any

from aiohttp import web
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from audit.checkpoint import parse_decimal
from hub.auth import new_id
from hub.context import Context
from hub.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    HubError,
    NotFound,
    PayloadTooLarge,
)
from hub.governance import project_terms
from hub.permissions import Role
from hub.store.schema import dataset_versions, upload_chunks, upload_sessions
from hub.validate import Expected, validate_encoded

_HEX64 = re.compile(r"[0-9a-f]{64}")


def _own_agency(ctx: Context) -> str:
    p = ctx.principal
    assert p is not None
    if p.agency_id is None:
        raise Forbidden("only a data officer of an agency may upload")
    return p.agency_id


async def _expected(
    conn: AsyncConnection, project_id: str, agency: str
) -> tuple[Expected, str, int]:
    terms = await project_terms(conn, project_id)
    party = terms.agreement.party(agency)
    if party is None:
        raise Forbidden(f"your agency is not a party to agreement {terms.agreement_id}")
    project = terms.project
    expected = Expected(
        agency=agency,
        schema_id=project.schema_id,
        schema_hash=project.schema_hash,
        key_check_value=project.key_check_value,
        permitted_fields=frozenset(party.fields),
    )
    return expected, terms.agreement_id, terms.version


async def _session(conn: AsyncConnection, ctx: Context, session_id: str) -> Any:
    row = (
        await conn.execute(select(upload_sessions).where(upload_sessions.c.id == session_id))
    ).first()
    p = ctx.principal
    assert p is not None
    if row is None or row.user_id != p.user_id:
        raise NotFound(f"no upload {session_id!r} of yours")
    return row


async def create_upload(ctx: Context) -> web.Response:
    project_id = ctx.request.match_info["project_id"]
    agency = _own_agency(ctx)
    doc = await ctx.json_body(frozenset({"size", "sha256"}), frozenset({"size", "sha256"}))
    size, digest = doc["size"], doc["sha256"]
    limits = ctx.services.config.limits
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise BadRequest("size must be the file's size in bytes")
    if size > limits.max_upload_bytes:
        raise PayloadTooLarge(f"uploads may be at most {limits.max_upload_bytes} bytes")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise BadRequest("sha256 must be the file's SHA-256, 64 lowercase hex digits")
    chunk_size = limits.max_chunk_bytes
    chunk_count = math.ceil(size / chunk_size)
    session_id = new_id("up_")
    store = ctx.services.datastore
    now = ctx.services.now_us()
    async with ctx.services.store.write() as conn:
        _, agreement_id, agreement_version = await _expected(conn, project_id, agency)
        p = ctx.principal
        assert p is not None
        await conn.execute(
            insert(upload_sessions).values(
                id=session_id,
                project_id=project_id,
                agency_id=agency,
                user_id=p.user_id,
                size=size,
                sha256=digest,
                chunk_size=chunk_size,
                chunk_count=chunk_count,
                wrapped_key=store.new_wrapped_key(session_id),
                status="open",
                created_us=now,
                expires_us=now + limits.upload_session_hours * 3_600_000_000,
            )
        )
        await ctx.audit_in(
            conn,
            resource=f"upload/{session_id}",
            dsa_id=agreement_id,
            dsa_version=agreement_version,
        )
    ctx.settle()
    body = {
        "id": session_id,
        "chunk_size": chunk_size,
        "chunk_count": chunk_count,
        "expires_us": now + limits.upload_session_hours * 3_600_000_000,
        "audit_entry": ctx.last_entry(),
    }
    return web.json_response(body, status=201)


async def upload_status(ctx: Context) -> web.Response:
    session_id = ctx.request.match_info["upload_id"]
    async with ctx.services.store.read() as conn:
        row = await _session(conn, ctx, session_id)
        received = (
            await conn.scalars(
                select(upload_chunks.c.idx)
                .where(upload_chunks.c.session_id == session_id)
                .order_by(upload_chunks.c.idx)
            )
        ).all()
        version = await conn.scalar(
            select(dataset_versions.c.id).where(dataset_versions.c.upload_session_id == session_id)
        )
    await ctx.audit(resource=f"upload/{session_id}")
    return web.json_response(
        {
            "id": session_id,
            "status": row.status,
            "chunk_size": row.chunk_size,
            "chunk_count": row.chunk_count,
            "received": list(received),
            "dataset_version": version,
        }
    )


async def put_chunk(ctx: Context) -> web.Response:
    session_id = ctx.request.match_info["upload_id"]
    index = parse_decimal(ctx.request.match_info["index"])
    if index is None:
        raise BadRequest("the chunk index must be an integer")
    claimed = ctx.request.headers.get("X-Chunk-SHA256", "")
    if not _HEX64.fullmatch(claimed):
        raise BadRequest("send the chunk's SHA-256 as 64 lowercase hex digits in X-Chunk-SHA256")
    async with ctx.services.store.read() as conn:
        row = await _session(conn, ctx, session_id)
    if row.status != "open":
        raise Conflict(f"upload {session_id} is {row.status}: no more chunks are accepted")
    if row.expires_us < ctx.services.now_us():
        raise Gone(f"upload {session_id} expired: start a new one")
    if index >= row.chunk_count:
        raise BadRequest(f"the upload has chunks 0 to {row.chunk_count - 1}")
    want = row.chunk_size if index < row.chunk_count - 1 else row.size - row.chunk_size * index
    if ctx.request.content_length is not None and ctx.request.content_length != want:
        raise BadRequest(f"chunk {index} must be exactly {want} bytes")
    data = await ctx.read_body(want, f"chunk {index} must be exactly {want} bytes")
    if len(data) != want:
        raise BadRequest(f"chunk {index} must be exactly {want} bytes, not {len(data)}")
    if hashlib.sha256(data).hexdigest() != claimed:
        raise BadRequest(f"chunk {index} does not match its X-Chunk-SHA256: resend it")
    store = ctx.services.datastore
    async with ctx.services.store.write() as conn:
        existing = await conn.scalar(
            select(upload_chunks.c.sha256).where(
                upload_chunks.c.session_id == session_id, upload_chunks.c.idx == index
            )
        )
        if existing is not None and existing != claimed:
            raise Conflict(f"chunk {index} was already received with other content")
        if existing is None:
            key = store.data_key(row.wrapped_key, session_id)
            await asyncio.to_thread(store.write_chunk, session_id, index, data, key)
            await conn.execute(
                insert(upload_chunks).values(
                    session_id=session_id,
                    idx=index,
                    size=want,
                    sha256=claimed,
                    received_us=ctx.services.now_us(),
                )
            )
        await ctx.audit_in(conn, resource=f"upload/{session_id}/chunk/{index}")
    ctx.settle()
    return web.json_response({"index": index, "stored": existing is None})


async def commit_upload(ctx: Context) -> web.Response:
    session_id = ctx.request.match_info["upload_id"]
    agency = _own_agency(ctx)
    async with ctx.services.store.read() as conn:
        row = await _session(conn, ctx, session_id)
        done = (
            await conn.execute(
                select(dataset_versions).where(dataset_versions.c.upload_session_id == session_id)
            )
        ).first()
        received = await conn.scalar(
            select(func.count()).where(upload_chunks.c.session_id == session_id)
        )
        expected, agreement_id, agreement_version = await _expected(conn, row.project_id, agency)
    if done is not None:  # committed before: the same answer again
        await ctx.audit(resource=f"dataset/{done.id}")
        return web.json_response(_version_json(done))
    if row.status != "open":
        raise Conflict(f"upload {session_id} is {row.status}")
    if received != row.chunk_count:
        raise Conflict(f"{received} of {row.chunk_count} chunks have arrived: send the rest")
    store = ctx.services.datastore
    key = store.data_key(row.wrapped_key, session_id)
    version_id = "dv_" + session_id.removeprefix("up_")
    try:
        with store.assembled(session_id, row.chunk_count, key) as assembled:
            if assembled.size != row.size or assembled.sha256 != row.sha256:
                raise BadRequest("the joined chunks do not match the declared size and SHA-256")
            info = await asyncio.to_thread(validate_encoded, assembled.path, expected)
            wrapped = store.new_wrapped_key(version_id)
            await asyncio.to_thread(
                store.publish, assembled.path, version_id, store.data_key(wrapped, version_id)
            )
    except HubError as exc:
        if exc.status < 500:  # the file itself is wrong: resending it cannot help
            await _abort(ctx, session_id)
        raise
    p = ctx.principal
    assert p is not None
    try:
        async with ctx.services.store.write() as conn:
            # The entry first: it takes the audit log's write lock (on PostgreSQL an advisory
            # lock; SQLite's write lock is already held), so concurrent commits of one agency
            # number their versions one after another instead of colliding on max() + 1.
            await ctx.audit_in(
                conn,
                resource=f"dataset/{version_id}",
                dsa_id=agreement_id,
                dsa_version=agreement_version,
                rows=info.rows,
                columns=tuple(info.columns),
                output_hash=row.sha256,
            )
            number = await conn.scalar(
                select(func.coalesce(func.max(dataset_versions.c.version), 0) + 1).where(
                    dataset_versions.c.project_id == row.project_id,
                    dataset_versions.c.agency_id == agency,
                )
            )
            values = {
                "id": version_id,
                "project_id": row.project_id,
                "agency_id": agency,
                "version": number,
                "upload_session_id": session_id,
                "rows": info.rows,
                "size": row.size,
                "sha256": row.sha256,
                "columns": json.dumps(list(info.columns)),
                "schema_hash": expected.schema_hash,
                "key_check_value": expected.key_check_value,
                "agreement_id": agreement_id,
                "agreement_version": agreement_version,
                "wrapped_key": wrapped,
                "created_us": ctx.services.now_us(),
                "created_by": p.user_id,
            }
            await conn.execute(insert(dataset_versions).values(**values))
            await conn.execute(
                update(upload_sessions)
                .where(upload_sessions.c.id == session_id)
                .values(status="committed")
            )
    except IntegrityError:  # a concurrent commit of the same session won
        ctx.discard()
        async with ctx.services.store.read() as conn:
            done = (
                await conn.execute(
                    select(dataset_versions).where(
                        dataset_versions.c.upload_session_id == session_id
                    )
                )
            ).first()
        if done is None:
            raise
        await ctx.audit(resource=f"dataset/{done.id}")
        return web.json_response(_version_json(done))
    ctx.settle()
    store.drop_session(session_id)
    async with ctx.services.store.read() as conn:
        done = (
            await conn.execute(select(dataset_versions).where(dataset_versions.c.id == version_id))
        ).first()
    return web.json_response({**_version_json(done), "audit_entry": ctx.last_entry()}, status=201)


async def _abort(ctx: Context, session_id: str) -> None:
    async with ctx.services.store.write() as conn:
        await conn.execute(
            update(upload_sessions)
            .where(upload_sessions.c.id == session_id, upload_sessions.c.status == "open")
            .values(status="rejected")
        )
    ctx.services.datastore.drop_session(session_id)


def _version_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "project": row.project_id,
        "agency": row.agency_id,
        "version": row.version,
        "rows": row.rows,
        "size": row.size,
        "sha256": row.sha256,
        "columns": json.loads(row.columns),
        "agreement": row.agreement_id,
        "agreement_version": row.agreement_version,
        "created_us": row.created_us,
        "erased": row.erased_us is not None,
    }


async def list_datasets(ctx: Context) -> web.Response:
    project_id = ctx.request.match_info["project_id"]
    p = ctx.principal
    assert p is not None
    query = select(dataset_versions).where(dataset_versions.c.project_id == project_id)
    if ctx.role == Role.DATA_OFFICER:  # data officers see their own agency's only
        query = query.where(dataset_versions.c.agency_id == p.agency_id)
    async with ctx.services.store.read() as conn:
        rows = (await conn.execute(query.order_by(dataset_versions.c.created_us))).all()
    await ctx.audit(resource=f"project/{project_id}/datasets", rows=len(rows))
    return web.json_response({"datasets": [_version_json(r) for r in rows]})


async def erase_dataset(ctx: Context) -> web.Response:
    version_id = ctx.request.match_info["dataset_id"]
    p = ctx.principal
    assert p is not None
    async with ctx.services.store.write() as conn:
        row = (
            await conn.execute(select(dataset_versions).where(dataset_versions.c.id == version_id))
        ).first()
        if row is None or row.agency_id != p.agency_id:
            raise NotFound(f"no dataset version {version_id!r} of your agency")
        if row.erased_us is not None:
            raise Gone(f"dataset version {version_id} was already erased")
        await conn.execute(
            update(dataset_versions)
            .where(dataset_versions.c.id == version_id)
            .values(wrapped_key=None, erased_us=ctx.services.now_us(), erased_by=p.user_id)
        )
        await ctx.audit_in(
            conn,
            resource=f"dataset/{version_id}",
            dsa_id=row.agreement_id,
            dsa_version=row.agreement_version,
            rows=row.rows,
        )
    ctx.settle()
    ctx.services.datastore.shred(version_id)
    return web.json_response({"id": version_id, "erased": True, "audit_entry": ctx.last_entry()})
