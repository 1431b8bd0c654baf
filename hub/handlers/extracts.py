"""Extract requests, their approval, and the release's download.

1. ``POST /v1/projects/{project}/extracts``: an analyst asks for a record-level extract or
   an aggregate table from a finished run (``hub.extract_spec``); anything the agreement in
   force does not permit is refused at once (403, audited).
2. ``POST /v1/extracts/{id}/decisions`` ``{"decision", "capacity", "reason"?}``: approvers
   approve or refuse, each in a capacity the request needs (``agency:<id>`` for an approver
   of that agency, ``governance`` for information governance). The requester can never
   decide; one person fills one capacity. When every capacity has an approval that has not
   expired, from at least ``extracts.min_approvers`` different people, the request is
   approved and its build job queued; any refusal ends it.
3. ``GET /v1/extracts/{id}/manifest`` and ``GET /v1/extracts/{id}/files/{name}``: the
   requester, and only the requester, fetches the signed manifest with its audit proof
   bundle and downloads the files until the release expires. Every download is audited
   with the files' hash and recipient.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from aiohttp import web
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from audit.bundle import format_bundle
from hub.auth import new_id
from hub.context import Context
from hub.errors import BadRequest, Conflict, Forbidden, Gone, NotFound
from hub.extract_spec import (
    GOVERNANCE,
    REQUEST_KEYS,
    parse_extract_spec,
    required_capacities,
)
from hub.governance import project_terms
from hub.jobs import enqueue
from hub.manifest import Release, sign_manifest
from hub.permissions import Role
from hub.store.schema import (
    extract_decisions,
    extract_outputs,
    extract_requests,
    linkage_runs,
    run_results,
)

__all__ = [
    "decide",
    "download_file",
    "list_extracts",
    "manifest",
    "release_key",
    "request_extract",
    "show_extract",
]

_DAY_US = 86_400 * 1_000_000


async def request_extract(ctx: Context) -> web.Response:
    project_id = ctx.request.match_info["project_id"]
    doc = await ctx.json_body(
        REQUEST_KEYS, frozenset({"run", "kind", "justification", "attributes"})
    )
    p = ctx.principal
    assert p is not None
    services = ctx.services
    request_id = new_id("ext_")
    async with services.store.write() as conn:
        terms = await project_terms(conn, project_id)
        run = (
            await conn.execute(
                select(linkage_runs, run_results.c.status.label("result_status"))
                .outerjoin(run_results, run_results.c.run_id == linkage_runs.c.id)
                .where(linkage_runs.c.id == doc["run"], linkage_runs.c.project_id == project_id)
            )
        ).first()
        if run is None:
            raise NotFound(f"no run {doc['run']!r} in project {project_id}")
        if run.result_status != "succeeded":
            raise Conflict(f"run {run.id} has not finished successfully")
        agencies = await _run_agencies(conn, run)
        spec = parse_extract_spec(doc, terms.agreement, agencies)
        required = required_capacities(spec)
        await conn.execute(
            insert(extract_requests).values(
                id=request_id,
                run_id=run.id,
                project_id=project_id,
                requester=p.user_id,
                kind=spec.kind,
                spec=spec.document,
                spec_hash=spec.spec_hash,
                justification=spec.justification,
                agreement_id=terms.agreement_id,
                agreement_version=terms.version,
                required=json.dumps(list(required)),
                status="pending",
                created_us=services.now_us(),
            )
        )
        await ctx.audit_in(
            conn,
            resource=f"extract/{request_id}",
            dsa_id=terms.agreement_id,
            dsa_version=terms.version,
            purpose=terms.agreement.title[:200],
            query_hash=spec.spec_hash,
            columns=spec.columns,
        )
    ctx.settle()
    body = {
        "id": request_id,
        "status": "pending",
        "required": list(required),
        "audit_entry": ctx.last_entry(),
    }
    return web.json_response(body, status=201)


async def _run_agencies(conn: AsyncConnection, run: Any) -> list[str]:
    from hub.store.schema import dataset_versions

    ids = json.loads(run.datasets)
    rows = await conn.scalars(
        select(dataset_versions.c.agency_id).where(dataset_versions.c.id.in_(ids))
    )
    return sorted(set(rows.all()))


def _request_json(row: Any, decisions: list[Any], output: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "project": row.project_id,
        "run": row.run_id,
        "kind": row.kind,
        "status": row.status,
        "requester": row.requester,
        "justification": row.justification,
        "agreement": row.agreement_id,
        "agreement_version": row.agreement_version,
        "required": json.loads(row.required),
        "spec": json.loads(row.spec),
        "created_us": row.created_us,
        "decisions": [
            {
                "approver": d.approver,
                "capacity": d.capacity,
                "decision": d.decision,
                "reason": d.reason,
                "created_us": d.created_us,
                "expires_us": d.expires_us,
            }
            for d in decisions
        ],
    }
    if output is not None:
        out["release"] = {
            "files": [
                {k: f[k] for k in ("name", "sha256", "rows", "bytes")}
                for f in json.loads(output.files)
            ],
            "release_entry": output.release_entry,
            "expires_us": output.expires_us,
        }
    return out


async def _load(conn: AsyncConnection, request_id: str) -> tuple[Any, list[Any], Any]:
    row = (
        await conn.execute(select(extract_requests).where(extract_requests.c.id == request_id))
    ).first()
    if row is None:
        raise NotFound(f"no extract request {request_id!r}")
    decisions = (
        await conn.execute(
            select(extract_decisions)
            .where(extract_decisions.c.request_id == request_id)
            .order_by(extract_decisions.c.created_us)
        )
    ).all()
    output = (
        await conn.execute(
            select(extract_outputs).where(extract_outputs.c.request_id == request_id)
        )
    ).first()
    return row, list(decisions), output


def _visible(ctx: Context, row: Any) -> None:
    """Analysts see their own requests; approvers see all (they must, to decide)."""
    p = ctx.principal
    assert p is not None
    if ctx.role == Role.ANALYST and row.requester != p.user_id and Role.APPROVER not in p.roles:
        raise NotFound(f"no extract request {row.id!r} of yours")


async def list_extracts(ctx: Context) -> web.Response:
    project_id = ctx.request.match_info["project_id"]
    p = ctx.principal
    assert p is not None
    query = select(extract_requests).where(extract_requests.c.project_id == project_id)
    if Role.APPROVER not in p.roles:
        query = query.where(extract_requests.c.requester == p.user_id)
    async with ctx.services.store.read() as conn:
        rows = (await conn.execute(query.order_by(extract_requests.c.created_us))).all()
    await ctx.audit(resource=f"project/{project_id}/extracts", rows=len(rows))
    listed = [
        {
            "id": r.id,
            "run": r.run_id,
            "kind": r.kind,
            "status": r.status,
            "requester": r.requester,
            "required": json.loads(r.required),
            "created_us": r.created_us,
        }
        for r in rows
    ]
    return web.json_response({"extracts": listed})


async def show_extract(ctx: Context) -> web.Response:
    request_id = ctx.request.match_info["extract_id"]
    async with ctx.services.store.read() as conn:
        row, decisions, output = await _load(conn, request_id)
    _visible(ctx, row)
    await ctx.audit(
        resource=f"extract/{request_id}", dsa_id=row.agreement_id, dsa_version=row.agreement_version
    )
    return web.json_response(_request_json(row, decisions, output))


def _approved(required: list[str], decisions: list[Any], now_us: int, min_people: int) -> bool:
    """Every capacity has an unexpired approval, from enough different people."""
    live = [d for d in decisions if d.decision == "approve" and d.expires_us > now_us]
    filled = {d.capacity: d.approver for d in live}
    return all(c in filled for c in required) and len(set(filled.values())) >= min_people


async def decide(ctx: Context) -> web.Response:
    request_id = ctx.request.match_info["extract_id"]
    doc = await ctx.json_body(
        frozenset({"decision", "capacity", "reason"}), frozenset({"decision", "capacity"})
    )
    decision, capacity, reason = doc["decision"], doc["capacity"], doc.get("reason")
    if decision not in ("approve", "refuse"):
        raise BadRequest("decision must be approve or refuse")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 2000):
        raise BadRequest("reason must be a string of at most 2000 characters")
    if decision == "refuse" and not (reason or "").strip():
        raise BadRequest("a refusal needs a reason")
    ctx.action = "approve" if decision == "approve" else "refuse"
    p = ctx.principal
    assert p is not None
    services = ctx.services
    settings = services.config.extracts
    now = services.now_us()
    async with services.store.write() as conn:
        row, decisions, _ = await _load(conn, request_id)
        required = json.loads(row.required)
        if row.requester == p.user_id:
            raise Forbidden("the requester cannot approve or refuse their own request")
        if row.status != "pending":
            raise Conflict(f"extract request {request_id} is {row.status}, not pending")
        if capacity not in required:
            raise BadRequest(f"capacity must be one of: {', '.join(required)}")
        if capacity != GOVERNANCE and p.agency_id != capacity.removeprefix("agency:"):
            raise Forbidden(f"only an approver of {capacity.removeprefix('agency:')} decides there")
        live = [d for d in decisions if d.decision == "approve" and d.expires_us > now]
        if any(d.approver == p.user_id and d.capacity != capacity for d in live):
            raise Forbidden("you have approved in another capacity: a second person must decide")
        if any(d.capacity == capacity and d.approver != p.user_id for d in live):
            raise Conflict(f"{capacity} has already approved this request")
        record = {
            "request_id": request_id,
            "approver": p.user_id,
            "capacity": capacity,
            "decision": decision,
            "reason": (reason or "").strip() or None,
            "created_us": now,
            "expires_us": now + settings.approval_valid_days * _DAY_US,
        }
        await conn.execute(insert(extract_decisions).values(**record))
        status = row.status
        job_id = None
        if decision == "refuse":
            status = "refused"
        elif _approved(
            required,
            [*decisions, SimpleNamespace(**record)],
            now,
            settings.min_approvers,
        ):
            status = "approved"
            job_id = await conn.run_sync(
                lambda c: enqueue(
                    c,
                    kind="extract",
                    project_id=row.project_id,
                    subject_id=request_id,
                    created_by=row.requester,
                    now_us=now,
                    max_attempts=services.config.workers.max_attempts,
                )
            )
        if status != row.status:
            await conn.execute(
                update(extract_requests)
                .where(extract_requests.c.id == request_id, extract_requests.c.status == "pending")
                .values(status=status, decided_us=now, job_id=job_id)
            )
        approvers = sorted(
            {d.approver for d in decisions if d.decision == "approve"}
            | ({p.user_id} if decision == "approve" else set())
        )
        await ctx.audit_in(
            conn,
            resource=f"extract/{request_id}",
            dsa_id=row.agreement_id,
            dsa_version=row.agreement_version,
            query_hash=row.spec_hash,
            approvers=tuple(approvers),
        )
    ctx.settle()
    body = {"id": request_id, "status": status, "audit_entry": ctx.last_entry()}
    return web.json_response(body)


async def _release(ctx: Context, request_id: str) -> tuple[Any, Any]:
    p = ctx.principal
    assert p is not None
    async with ctx.services.store.read() as conn:
        row, _, output = await _load(conn, request_id)
    if row.requester != p.user_id:
        raise Forbidden("only the requester may download an extract")
    if output is None:
        raise Conflict(f"extract request {request_id} is {row.status}: nothing to download yet")
    if output.expires_us <= ctx.services.now_us():
        raise Gone(f"the release of {request_id} expired; request it again")
    return row, output


async def manifest(ctx: Context) -> web.Response:
    request_id = ctx.request.match_info["extract_id"]
    row, output = await _release(ctx, request_id)
    services = ctx.services
    log = services.trail.log
    async with services.store.read() as conn:
        proof = await conn.run_sync(log.bundle_in, output.release_entry, None)
        entry = await conn.run_sync(log.entry_bytes_in, output.release_entry)
    body = {"manifest_version": 1, "hub": services.config.origin, **json.loads(output.manifest)}
    release = Release(
        sign_manifest(body, services.release_key), entry.decode("ascii"), format_bundle(proof)
    )
    await ctx.audit(
        resource=f"extract/{request_id}/manifest",
        dsa_id=row.agreement_id,
        dsa_version=row.agreement_version,
    )
    return web.json_response(release.to_json())


async def download_file(ctx: Context) -> web.Response:
    request_id = ctx.request.match_info["extract_id"]
    name = ctx.request.match_info["name"]
    row, output = await _release(ctx, request_id)
    files = {f["name"]: f for f in json.loads(output.files)}
    if name not in files:
        raise NotFound(f"the release has no file {name!r}")
    f = files[name]
    datastore = ctx.services.datastore
    stored = f["stored"]
    key = datastore.data_key(bytes.fromhex(f["wrapped_key"]), f"{request_id}/{stored}")
    data = await asyncio.to_thread(datastore.read_output, request_id, stored, key)
    await ctx.audit(
        resource=f"extract/{request_id}/files/{name}",
        dsa_id=row.agreement_id,
        dsa_version=row.agreement_version,
        rows=int(f["rows"]),
        output_hash=f["sha256"],
        recipients=(row.requester,),
    )
    kind = "text/csv; charset=utf-8" if name.endswith(".csv") else "application/vnd.apache.parquet"
    return web.Response(
        body=data,
        content_type=kind.split(";")[0],
        charset="utf-8" if name.endswith(".csv") else None,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-SHA256": f["sha256"],
            "Cache-Control": "no-store",
        },
    )


async def release_key(ctx: Context) -> web.Response:
    await ctx.audit(resource="releases/key")
    vkey = ctx.services.release_key.verifier().to_vkey()
    return web.json_response({"name": ctx.services.release_key.name, "vkey": vkey})
