"""Linkage runs: started by an analyst (or a data officer of a party agency) over chosen
dataset versions, run by a worker (``hub.linkjob``), listed and shown with their job's
progress; and feedback to agencies from a finished run.

``POST /v1/projects/{project}/runs`` ``{"datasets"?: [...], "threshold"?: p}``: without
``datasets``, the newest live version of every agency's uploads. The run's request is stored
(append-only) with a queued job in one transaction with its audit entry.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from aiohttp import web
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.auth import new_id
from hub.context import Context
from hub.errors import BadRequest, Conflict, Forbidden, NotFound
from hub.governance import project_terms
from hub.jobs import enqueue, request_cancel
from hub.permissions import Role
from hub.store.schema import dataset_versions, jobs, linkage_runs, run_results

_RUN_FIELDS = frozenset({"datasets", "threshold"})


async def _chosen_datasets(conn: AsyncConnection, project_id: str, asked: object) -> list[Any]:
    t = dataset_versions
    live = select(t).where(t.c.project_id == project_id, t.c.erased_us.is_(None))
    if asked is None:
        newest = (
            select(t.c.agency_id, func.max(t.c.version).label("version"))
            .where(t.c.project_id == project_id, t.c.erased_us.is_(None))
            .group_by(t.c.agency_id)
            .subquery()
        )
        rows = (
            await conn.execute(
                live.join(
                    newest,
                    (t.c.agency_id == newest.c.agency_id) & (t.c.version == newest.c.version),
                )
            )
        ).all()
    else:
        if (
            not isinstance(asked, list)
            or not all(isinstance(d, str) for d in asked)
            or len(set(asked)) != len(asked)
        ):
            raise BadRequest("datasets must be a list of distinct dataset version ids")
        rows = (await conn.execute(live.where(t.c.id.in_(asked)))).all()
        missing = sorted(set(asked) - {r.id for r in rows})
        if missing:
            raise NotFound(f"no live dataset version {missing[0]!r} in this project")
    per_agency = Counter(r.agency_id for r in rows)
    if len(per_agency) < 2:
        raise Conflict("a run needs live dataset versions from at least two agencies")
    twice = sorted(a for a, n in per_agency.items() if n > 1)
    if twice:
        raise BadRequest(f"one dataset version per agency: {twice[0]} has several")
    return sorted(rows, key=lambda r: r.agency_id)


async def start_run(ctx: Context) -> web.Response:
    project_id = ctx.request.match_info["project_id"]
    doc = await ctx.json_body(_RUN_FIELDS)
    threshold = doc.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0.0 < threshold <= 1.0
    ):
        raise BadRequest("threshold must be a match probability in (0, 1]")
    p = ctx.principal
    assert p is not None
    services = ctx.services
    run_id = new_id("run_")
    async with services.store.write() as conn:
        terms = await project_terms(conn, project_id)
        if ctx.role == Role.DATA_OFFICER and terms.agreement.party(p.agency_id or "") is None:
            raise Forbidden(f"your agency is not a party to agreement {terms.agreement_id}")
        rows = await _chosen_datasets(conn, project_id, doc.get("datasets"))
        settings = {"threshold": threshold}
        job_id = await conn.run_sync(
            lambda c: enqueue(
                c,
                kind="link",
                project_id=project_id,
                subject_id=run_id,
                created_by=p.user_id,
                now_us=services.now_us(),
                max_attempts=services.config.workers.max_attempts,
            )
        )
        await conn.execute(
            insert(linkage_runs).values(
                id=run_id,
                project_id=project_id,
                job_id=job_id,
                agreement_id=terms.agreement_id,
                agreement_version=terms.version,
                datasets=json.dumps([r.id for r in rows]),
                schema_hash=terms.project.schema_hash,
                settings=json.dumps(settings, sort_keys=True),
                created_by=p.user_id,
                created_us=services.now_us(),
            )
        )
        await ctx.audit_in(
            conn,
            resource=f"run/{run_id}",
            dsa_id=terms.agreement_id,
            dsa_version=terms.version,
            purpose=terms.agreement.title[:200],
        )
    ctx.settle()
    body = {
        "run": run_id,
        "job": job_id,
        "datasets": [r.id for r in rows],
        "status": "queued",
        "audit_entry": ctx.last_entry(),
    }
    return web.json_response(body, status=202)


def _run_json(run: Any, job: Any, result: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": run.id,
        "project": run.project_id,
        "agreement": run.agreement_id,
        "agreement_version": run.agreement_version,
        "datasets": json.loads(run.datasets),
        "settings": json.loads(run.settings),
        "created_by": run.created_by,
        "created_us": run.created_us,
        "job": {
            "id": job.id,
            "status": job.status,
            "stage": job.stage,
            "progress": job.progress,
            "attempts": job.attempts,
            "error": job.error,
        },
    }
    if result is not None:
        out["result"] = {
            "status": result.status,
            "threshold": result.threshold,
            "links": result.links,
            "entities": result.entities,
            "records": result.records,
            "model": result.model_hash,
            "previous_run": result.previous_run_id,
            "finished_us": result.finished_us,
            "error": result.error,
        }
    return out


def _prefixed(table: Any, prefix: str) -> list[Any]:
    return [c.label(prefix + c.name) for c in table.c]


def _runs_query() -> Any:
    return (
        select(
            *_prefixed(linkage_runs, "r_"), *_prefixed(jobs, "j_"), *_prefixed(run_results, "x_")
        )
        .join(jobs, jobs.c.id == linkage_runs.c.job_id)
        .outerjoin(run_results, run_results.c.run_id == linkage_runs.c.id)
    )


def _part(row: Any, prefix: str) -> SimpleNamespace:
    return SimpleNamespace(
        **{k[len(prefix) :]: v for k, v in row._mapping.items() if k.startswith(prefix)}
    )


def _split(row: Any) -> tuple[Any, Any, Any]:
    result = _part(row, "x_")
    return _part(row, "r_"), _part(row, "j_"), None if result.run_id is None else result


async def list_runs(ctx: Context) -> web.Response:
    project_id = ctx.request.match_info["project_id"]
    async with ctx.services.store.read() as conn:
        rows = (
            await conn.execute(
                _runs_query()
                .where(linkage_runs.c.project_id == project_id)
                .order_by(linkage_runs.c.created_us)
            )
        ).all()
    await ctx.audit(resource=f"project/{project_id}/runs", rows=len(rows))
    return web.json_response({"runs": [_run_json(*_split(r)) for r in rows]})


async def show_run(ctx: Context) -> web.Response:
    run_id = ctx.request.match_info["run_id"]
    async with ctx.services.store.read() as conn:
        row = (await conn.execute(_runs_query().where(linkage_runs.c.id == run_id))).first()
    if row is None:
        raise NotFound(f"no run {run_id!r}")
    run, job, result = _split(row)
    await ctx.audit(
        resource=f"run/{run_id}", dsa_id=run.agreement_id, dsa_version=run.agreement_version
    )
    body = _run_json(run, job, result)
    if result is not None and result.diagnostics:
        diagnostics = json.loads(result.diagnostics)
        diagnostics.pop("model", None)
        body["diagnostics"] = diagnostics
    return web.json_response(body)


async def cancel_run(ctx: Context) -> web.Response:
    run_id = ctx.request.match_info["run_id"]
    async with ctx.services.store.write() as conn:
        run = (await conn.execute(select(linkage_runs).where(linkage_runs.c.id == run_id))).first()
        if run is None:
            raise NotFound(f"no run {run_id!r}")
        status = await conn.run_sync(request_cancel, run.job_id, ctx.services.now_us())
        if status not in ("cancelled", "cancelling"):
            raise Conflict(f"run {run_id} has already {status}")
        await ctx.audit_in(
            conn,
            resource=f"run/{run_id}",
            dsa_id=run.agreement_id,
            dsa_version=run.agreement_version,
        )
    ctx.settle()
    body = {"run": run_id, "status": status, "audit_entry": ctx.last_entry()}
    return web.json_response(body)


__all__ = ["cancel_run", "feedback", "list_runs", "show_run", "start_run"]


async def feedback(ctx: Context) -> web.Response:
    """For a data officer: which of their agency's records the run linked to records of the
    agencies the agreement lets them learn about (a ``connectors.feedback`` Parquet file;
    ``connector lookup`` maps its pseudonyms back to the agency's own record ids)."""
    run_id = ctx.request.match_info["run_id"]
    p = ctx.principal
    assert p is not None and p.agency_id is not None
    services = ctx.services
    async with services.store.read() as conn:
        row = (await conn.execute(_runs_query().where(linkage_runs.c.id == run_id))).first()
        if row is None:
            raise NotFound(f"no run {run_id!r}")
        run, _, result = _split(row)
        terms = await project_terms(conn, run.project_id)
    if result is None or result.status != "succeeded":
        raise Conflict(f"run {run_id} has not finished successfully")
    about = terms.agreement.feedback_about(p.agency_id)
    if not about:
        raise Forbidden(
            f"agreement {terms.agreement_id} gives {p.agency_id} no feedback from linkage runs"
        )
    data, rows = await asyncio.to_thread(
        _feedback_file, services.datastore, run, result, p.agency_id, about
    )
    await ctx.audit(
        resource=f"run/{run_id}/feedback",
        dsa_id=terms.agreement_id,
        dsa_version=terms.version,
        rows=rows,
        output_hash=hashlib.sha256(data).hexdigest(),
        recipients=(p.agency_id,),
    )
    return web.Response(
        body=data,
        content_type="application/vnd.apache.parquet",
        headers={
            "Content-Disposition": f'attachment; filename="feedback-{run_id}.parquet"',
            "Cache-Control": "no-store",
        },
    )


def _feedback_file(
    datastore: Any, run: Any, result: Any, agency: str, about: tuple[str, ...]
) -> tuple[bytes, int]:
    from connectors.feedback import feedback_bytes, feedback_table
    from hub.linkjob import load_entities

    entities = load_entities(datastore, result)
    entity_ids = entities.column("entity_id").to_pylist()
    datasets = entities.column("dataset").to_pylist()
    records = entities.column("record").to_pylist()
    others: dict[str, Counter[str]] = {}
    mine: dict[str, list[str]] = {}
    for entity, dataset, record in zip(entity_ids, datasets, records, strict=True):
        if dataset == agency:
            mine.setdefault(entity, []).append(record)
        elif dataset in about:
            others.setdefault(entity, Counter())[dataset] += 1
    rows = [
        (bytes.fromhex(record), other, count)
        for entity, recs in mine.items()
        for record in recs
        for other, count in sorted(others.get(entity, Counter()).items())
    ]
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    table = feedback_table(rows, agency=agency, project=run.project_id, run=run.id, created=created)
    return feedback_bytes(table), len(rows)
