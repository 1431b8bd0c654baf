"""The job queue, linkage runs and their results, extract requests, their decisions and
their outputs.

Runs' requests and results, extract decisions and extract outputs are append-only: the
database refuses UPDATE and DELETE on them (a finished run or a release never changes; a
decision is never rewritten).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FROZEN = ("linkage_runs", "run_results", "extract_decisions", "extract_outputs")
_SQLITE_GUARD = """
CREATE TRIGGER {table}_no_{verb} BEFORE {verb} ON {table}
BEGIN SELECT RAISE(ABORT, '{table} rows are never changed: {verb} refused'); END
"""
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION hub_rows_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%% rows are never changed: %% refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$
"""
_PG_TRIGGER = """
CREATE TRIGGER {table}_frozen BEFORE UPDATE OR DELETE ON {table}
  FOR EACH ROW EXECUTE FUNCTION hub_rows_frozen()
"""


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(200), nullable=False),
        sa.Column("progress", sa.Float),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("worker", sa.String(200)),
        sa.Column("error", sa.Text),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("started_us", sa.BigInteger),
        sa.Column("heartbeat_us", sa.BigInteger),
        sa.Column("finished_us", sa.BigInteger),
    )
    op.create_index("jobs_queue", "jobs", ["status", "created_us"])
    op.create_table(
        "linkage_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False, unique=True),
        sa.Column("agreement_id", sa.String(64), nullable=False),
        sa.Column("agreement_version", sa.Integer, nullable=False),
        sa.Column("datasets", sa.Text, nullable=False),
        sa.Column("schema_hash", sa.String(64), nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    op.create_index("linkage_runs_project", "linkage_runs", ["project_id", "created_us"])
    op.create_table(
        "run_results",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer),
        sa.Column("model_hash", sa.String(64)),
        sa.Column("threshold", sa.Float),
        sa.Column("links", sa.BigInteger),
        sa.Column("entities", sa.BigInteger),
        sa.Column("records", sa.BigInteger),
        sa.Column("diagnostics", sa.Text),
        sa.Column("links_key", sa.LargeBinary),
        sa.Column("entities_key", sa.LargeBinary),
        sa.Column("previous_run_id", sa.String(64)),
        sa.Column("error", sa.Text),
        sa.Column("finished_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "extract_requests",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("justification", sa.Text, nullable=False),
        sa.Column("agreement_id", sa.String(64), nullable=False),
        sa.Column("agreement_version", sa.Integer, nullable=False),
        sa.Column("required", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(64)),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("decided_us", sa.BigInteger),
    )
    op.create_index("extract_requests_project", "extract_requests", ["project_id", "created_us"])
    op.create_table(
        "extract_decisions",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("approver", sa.String(64), nullable=False),
        sa.Column("capacity", sa.String(80), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(
            "request_id", "approver", "capacity", "created_us", name="extract_decisions_pk"
        ),
    )
    op.create_table(
        "extract_outputs",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("files", sa.Text, nullable=False),
        sa.Column("manifest", sa.Text, nullable=False),
        sa.Column("release_entry", sa.BigInteger, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for table in _FROZEN:
            for verb in ("UPDATE", "DELETE"):
                bind.exec_driver_sql(_SQLITE_GUARD.format(table=table, verb=verb))
    else:
        bind.exec_driver_sql(_PG_FUNCTION)
        for table in _FROZEN:
            bind.exec_driver_sql(_PG_TRIGGER.format(table=table))


def downgrade() -> None:
    raise NotImplementedError("runs and releases are evidence: they are never removed")
