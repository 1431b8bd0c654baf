"""The ``extract`` job: build an approved extract request's files.

The worker checks the request is still approved and the agreement still permits it (an
agreement may have changed since), reads the run's entities and, from each agency's dataset
version, only the record pseudonyms and the requested attribute columns, builds the tables
(``hub.extract_build``), writes each file encrypted under its own data key and records the
release (``extract_outputs``), the request's new status, the job's success and the
``extract-build`` audit entry in one transaction. The manifest is signed when it is fetched
(``hub.manifest``), over what that transaction stored.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, insert, select, update

from audit.entry import AuditEntry
from hub.agreements import parse_agreement
from hub.errors import HubError
from hub.extract_build import build_extract
from hub.extract_spec import parse_extract_spec
from hub.jobs import finish, write_transaction
from hub.linkjob import load_entities, load_links
from hub.manifest import files_digest
from hub.release.disclosure import DisclosureRules
from hub.store.schema import (
    agreement_versions,
    dataset_versions,
    extract_decisions,
    extract_outputs,
    extract_requests,
    linkage_runs,
    run_results,
)
from hub.worker import JobContext, JobFailed, on_failure
from linkage.inputs import read_encoded_bytes

__all__ = ["run_extract_job", "table_bytes"]

_DAY_US = 86_400 * 1_000_000


def table_bytes(table: pa.Table, fmt: str) -> bytes:
    """The table as Parquet (zstd) or CSV (RFC 4180, header row, UTF-8)."""
    if fmt == "parquet":
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        return sink.getvalue()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.column_names)
    for row in zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True):
        writer.writerow(["" if v is None else _csv_value(v) for v in row])
    return out.getvalue().encode("utf-8")


def _csv_value(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # a cell starting with = + - @ would be a formula in a spreadsheet (CSV injection)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _numeric(text) else text


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _flatten(doc: dict[str, Any], prefix: str = "") -> tuple[str, ...]:
    """``{"rules": {"min_cell": 10}}`` -> ``("rules.min_cell=10",)``, for the audit entry."""
    out: list[str] = []
    for key, value in sorted(doc.items()):
        if isinstance(value, dict):
            out.extend(_flatten(value, f"{prefix}{key}."))
        else:
            out.append(f"{prefix}{key}={value}")
    return tuple(out)


def _attribute_table(ctx: JobContext, row: Any, fields: tuple[str, ...]) -> pa.Table:
    if row.erased_us is not None or row.wrapped_key is None:
        raise JobFailed(f"dataset version {row.id} was erased: the extract cannot be built")
    key = ctx.datastore.data_key(row.wrapped_key, row.id)
    dataset = read_encoded_bytes(ctx.datastore.read_dataset(row.id, key), row.agency_id)
    missing = [f for f in fields if f not in dataset.table.column_names]
    if missing:
        raise JobFailed(f"{row.agency_id}'s dataset version {row.id} has no field {missing[0]!r}")
    pseudonyms = dataset.table.column("record_pseudonym").to_pylist()
    columns: dict[str, Any] = {"record": pa.array([p.hex() for p in pseudonyms], pa.string())}
    for f in fields:
        columns[f] = dataset.table.column(f)
    return pa.table(columns)


def run_extract_job(ctx: JobContext) -> None:
    request_id = ctx.job.subject_id
    with ctx.engine.connect() as conn:
        request = conn.execute(
            select(extract_requests).where(extract_requests.c.id == request_id)
        ).one()
        run = conn.execute(select(linkage_runs).where(linkage_runs.c.id == request.run_id)).one()
        result = conn.execute(
            select(run_results).where(run_results.c.run_id == request.run_id)
        ).one()
        newest = conn.execute(
            select(agreement_versions)
            .where(agreement_versions.c.agreement_id == request.agreement_id)
            .order_by(agreement_versions.c.version.desc())
            .limit(1)
        ).one()
        inputs = conn.execute(
            select(dataset_versions).where(dataset_versions.c.id.in_(json.loads(run.datasets)))
        ).all()
        approvals = conn.execute(
            select(extract_decisions).where(
                extract_decisions.c.request_id == request_id,
                extract_decisions.c.decision == "approve",
            )
        ).all()
    if request.status != "approved":
        raise JobFailed(f"extract request {request_id} is {request.status}, not approved")
    agreement = parse_agreement(json.loads(newest.document))
    if not agreement.in_force(datetime.now(UTC).date()):
        raise JobFailed(f"agreement {request.agreement_id} is no longer in force")
    by_agency = {r.agency_id: r for r in inputs}
    try:
        spec = parse_extract_spec(json.loads(request.spec), agreement, sorted(by_agency))
    except HubError as exc:  # the agreement changed since the request: refuse to build
        raise JobFailed(
            f"the agreement in force no longer permits this request: {exc.message}"
        ) from None
    ctx.progress("reading the run's entities", 0.1)
    entities = load_entities(ctx.datastore, result)
    links = load_links(ctx.datastore, result) if "match_weights" in spec.include else None
    ctx.progress("reading attributes", 0.3)
    attributes = {
        agency: _attribute_table(ctx, by_agency[agency], fields)
        for agency, fields in spec.attributes
    }
    ctx.progress("building", 0.6)
    d = agreement.disclosure
    rules = DisclosureRules(
        min_cell=d.min_cell, rounding=d.rounding, secondary_suppression=d.secondary_suppression
    )
    built = build_extract(spec, entities, attributes, rules, links)
    ctx.progress("encrypting", 0.8)
    ext = "parquet" if spec.format == "parquet" else "csv"
    files = []
    for stem, table in built.tables.items():
        name = f"{stem}.{ext}"
        stored = f"{name}-{ctx.job.attempts}"  # each attempt its own files (see hub.linkjob)
        data = table_bytes(table, spec.format)
        context = f"{request_id}/{stored}"
        wrapped = ctx.datastore.new_wrapped_key(context)
        ctx.datastore.write_output(
            request_id, stored, data, ctx.datastore.data_key(wrapped, context)
        )
        files.append(
            {
                "name": name,
                "stored": stored,
                "sha256": hashlib.sha256(data).hexdigest(),
                "rows": table.num_rows,
                "bytes": len(data),
                "columns": table.column_names,
                "wrapped_key": wrapped.hex(),
            }
        )
    output_hash = files_digest(files)
    now = ctx.now_us()
    approvers = sorted({a.approver for a in approvals})
    disclosure_actions = _flatten(built.disclosure) if built.disclosure else ()
    manifest_body: dict[str, Any] = {
        "extract": request_id,
        "project": request.project_id,
        "agreement": {"id": request.agreement_id, "version": newest.version},
        "purpose": agreement.purpose,
        "run": {"id": run.id, "model": result.model_hash, "threshold": result.threshold},
        "kind": spec.kind,
        "format": spec.format,
        "requested_by": request.requester,
        "approvals": [
            {"approver": a.approver, "capacity": a.capacity, "at_us": a.created_us}
            for a in sorted(approvals, key=lambda a: (a.capacity, a.approver))
        ],
        "fields": list(spec.columns),
        "generalisation": json.loads(request.spec).get("generalise", {}),
        "disclosure": built.disclosure,
        "files": [{k: f[k] for k in ("name", "sha256", "rows", "bytes", "columns")} for f in files],
        "output_hash": output_hash,
        "created_us": now,
        "expires_us": now + ctx.config.extracts.download_valid_days * _DAY_US,
    }
    pending = None
    with write_transaction(ctx.engine) as conn:
        entry = ctx.entry(
            action="extract-build",
            resource=f"extract/{request_id}",
            dsa_id=request.agreement_id,
            dsa_version=newest.version,
            purpose=agreement.title[:200],
            approvers=tuple(approvers),
            query_hash=request.spec_hash,
            model_version=(result.model_hash or "")[:16] or None,
            threshold=result.threshold,
            rows=sum(int(f["rows"]) for f in files),
            columns=tuple(spec.columns),
            disclosure_controls=disclosure_actions,
            output_hash=output_hash,
            recipients=(request.requester,),
        )
        pending = ctx.worker.audit.append_in(conn, [entry])
        index = pending.receipts[0].sequence
        conn.execute(
            insert(extract_outputs).values(
                request_id=request_id,
                files=json.dumps(files, sort_keys=True),
                manifest=json.dumps({**manifest_body, "release_entry": index}, sort_keys=True),
                release_entry=index,
                created_us=now,
                expires_us=manifest_body["expires_us"],
            )
        )
        conn.execute(
            update(extract_requests)
            .where(extract_requests.c.id == request_id, extract_requests.c.status == "approved")
            .values(status="released")
        )
        finish(conn, ctx.job.id, ctx.worker.id, now, status="succeeded")
    ctx.worker.audit.committed(pending)


@on_failure("extract")
def _extract_failed(ctx: JobContext, conn: Connection, message: str) -> list[AuditEntry]:
    request_id = ctx.job.subject_id
    request = conn.execute(
        select(extract_requests).where(extract_requests.c.id == request_id)
    ).one()
    conn.execute(
        update(extract_requests).where(extract_requests.c.id == request_id).values(status="failed")
    )
    return [
        ctx.entry(
            action="extract-build",
            outcome="error",
            resource=f"extract/{request_id}",
            dsa_id=request.agreement_id,
            dsa_version=request.agreement_version,
        )
    ]
