"""The ``link`` job: link a run's dataset versions and store its links, entities and
diagnostics.

The worker decrypts each input dataset version into memory (never to disk), links them on
the configured engine (DuckDB in-process by default, Spark by configuration), carries
entity ids forward from the project's previous finished run (``linkage.stable_ids``),
encrypts the links and entities under fresh data keys and stores them with the run's
result row, the job's success and the ``link-run`` audit entry in one transaction. A run's
request (``linkage_runs``) and result (``run_results``) rows are append-only: a finished run
never changes.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, insert, select

from audit.entry import AuditEntry
from hub.datastore import DataStore
from hub.store.schema import dataset_versions, linkage_runs, run_results
from hub.worker import JobContext, JobFailed, on_failure
from linkage.engines import DuckDBEngine, Engine
from linkage.errors import LinkageError
from linkage.inputs import EncodedDataset, read_encoded_bytes
from linkage.run import LinkSettings, link
from linkage.stable_ids import carry_forward

__all__ = ["load_entities", "load_links", "run_link_job"]


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _load_dataset(ctx: JobContext, row: Any) -> EncodedDataset:
    if row.erased_us is not None or row.wrapped_key is None:
        raise JobFailed(f"dataset version {row.id} was erased")
    key = ctx.datastore.data_key(row.wrapped_key, row.id)
    data = ctx.datastore.read_dataset(row.id, key)
    return read_encoded_bytes(data, row.agency_id)


def _engine(ctx: JobContext) -> Engine:
    settings = ctx.config.workers
    if settings.engine == "spark":
        from pyspark.sql import SparkSession

        from linkage.engines import SparkEngine

        session = (
            SparkSession.builder.master(settings.spark_master)
            .appName("pprl-hub-linkage")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.memory", settings.spark_driver_memory)
            .getOrCreate()
        )
        checkpoints = ctx.datastore.scratch_dir(ctx.job.id)
        session.sparkContext.setCheckpointDir(str(checkpoints))
        return SparkEngine(session)
    return DuckDBEngine(threads=settings.engine_threads or None)


def _previous_entities(ctx: JobContext, conn: Connection, project_id: str, run_id: str) -> Any:
    """The newest finished run of the project before this one (None if there is none)."""
    row = conn.execute(
        select(run_results)
        .join(linkage_runs, linkage_runs.c.id == run_results.c.run_id)
        .where(
            linkage_runs.c.project_id == project_id,
            run_results.c.run_id != run_id,
            run_results.c.status == "succeeded",
        )
        .order_by(run_results.c.finished_us.desc())
        .limit(1)
    ).first()
    return row


def _stored_name(name: str, attempt: int) -> str:
    """Each attempt writes its own files: a worker that lost its claim but is still running
    can never overwrite the files of the attempt whose result was stored."""
    return f"{name}-{attempt}"


def _load(datastore: DataStore, result: Any, name: str, wrapped: bytes) -> pa.Table:
    stored = _stored_name(name, result.attempt)
    key = datastore.data_key(wrapped, f"{result.run_id}/{stored}")
    return pq.read_table(io.BytesIO(datastore.read_output(result.run_id, stored, key)))


def load_entities(datastore: DataStore, result: Any) -> pa.Table:
    """A finished run's entities (``result`` is its ``run_results`` row)."""
    return _load(datastore, result, "entities", result.entities_key)


def load_links(datastore: DataStore, result: Any) -> pa.Table:
    """A finished run's links (``result`` is its ``run_results`` row)."""
    return _load(datastore, result, "links", result.links_key)


def run_link_job(ctx: JobContext) -> None:
    from linkage.cli import diagnostics

    run_id = ctx.job.subject_id
    with ctx.engine.connect() as conn:
        run = conn.execute(select(linkage_runs).where(linkage_runs.c.id == run_id)).one()
        wanted = json.loads(run.datasets)
        rows = conn.execute(select(dataset_versions).where(dataset_versions.c.id.in_(wanted))).all()
        previous = _previous_entities(ctx, conn, run.project_id, run_id)
    if len(rows) != len(wanted):
        raise JobFailed("a dataset version of this run no longer exists")
    ctx.progress("decrypting datasets", 0.02)
    datasets = [_load_dataset(ctx, r) for r in sorted(rows, key=lambda r: r.agency_id)]
    settings_doc = json.loads(run.settings)
    settings = LinkSettings(threshold=settings_doc.get("threshold"))
    ctx.progress("linking", 0.05)
    engine = _engine(ctx)
    engine_name = engine.name
    try:
        result = link(datasets, settings, engine)
    except LinkageError as exc:
        raise JobFailed(f"linkage failed: {exc}") from None
    ctx.progress("assigning entity ids", 0.85)
    entities = result.entities
    if previous is not None:
        before = load_entities(ctx.datastore, previous)
        entities = carry_forward(before, entities, salt=run_id)
    ctx.progress("storing results", 0.9)
    keys = {}
    for name, table in (("links", result.links), ("entities", entities)):
        stored = _stored_name(name, ctx.job.attempts)
        wrapped = ctx.datastore.new_wrapped_key(f"{run_id}/{stored}")
        data_key = ctx.datastore.data_key(wrapped, f"{run_id}/{stored}")
        ctx.datastore.write_output(run_id, stored, _parquet(table), data_key)
        keys[name] = wrapped
    diag = {**diagnostics(result), "engine": engine_name}
    model_json = json.dumps(result.model, sort_keys=True, default=str)
    model_hash = hashlib.sha256(model_json.encode()).hexdigest()
    entity_count = len(set(entities.column("entity_id").to_pylist()))

    def store(conn: Connection) -> list[AuditEntry]:
        conn.execute(
            insert(run_results).values(
                run_id=run_id,
                status="succeeded",
                attempt=ctx.job.attempts,
                model_hash=model_hash,
                threshold=float(result.choice.threshold),
                links=result.links.num_rows,
                entities=entity_count,
                records=entities.num_rows,
                diagnostics=json.dumps(diag, sort_keys=True, default=str),
                links_key=keys["links"],
                entities_key=keys["entities"],
                previous_run_id=None if previous is None else previous.run_id,
                error=None,
                finished_us=ctx.now_us(),
            )
        )
        return [
            ctx.entry(
                action="link-run",
                resource=f"run/{run_id}",
                dsa_id=run.agreement_id,
                dsa_version=run.agreement_version,
                model_version=model_hash[:16],
                threshold=float(result.choice.threshold),
                rows=result.links.num_rows,
            )
        ]

    ctx.commit(store)


@on_failure("link")
def _link_failed(ctx: JobContext, conn: Connection, message: str) -> list[AuditEntry]:
    run_id = ctx.job.subject_id
    run = conn.execute(select(linkage_runs).where(linkage_runs.c.id == run_id)).one()
    conn.execute(
        insert(run_results).values(
            run_id=run_id, status="failed", error=message[:1000], finished_us=ctx.now_us()
        )
    )
    return [
        ctx.entry(
            action="link-run",
            outcome="error",
            resource=f"run/{run_id}",
            dsa_id=run.agreement_id,
            dsa_version=run.agreement_version,
        )
    ]
