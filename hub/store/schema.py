"""The hub's tables (SQLAlchemy Core). Migrations in ``hub/migrations`` create them; this
module is what the code queries. The audit log's four tables belong to ``audit.store``.

Times are integers: microseconds since the Unix epoch, UTC (``*_us``), so that SQLite and
PostgreSQL compare and sort them the same way. Ids are short random strings with a type
prefix (``u_``, ``tok_``, ...) except agencies, whose id is a slug an operator chooses.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "agencies",
    "agreement_versions",
    "client_certificates",
    "dataset_versions",
    "extract_decisions",
    "extract_outputs",
    "extract_requests",
    "jobs",
    "linkage_runs",
    "log_verifications",
    "metadata",
    "projects",
    "run_results",
    "tokens",
    "ui_sessions",
    "upload_chunks",
    "upload_sessions",
    "user_roles",
    "users",
]

metadata = MetaData()

agencies = Table(
    "agencies",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("agency_id", String(64), ForeignKey("agencies.id")),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_us", BigInteger, nullable=False),
)

user_roles = Table(
    "user_roles",
    metadata,
    Column("user_id", String(64), ForeignKey("users.id"), nullable=False),
    Column("role", String(32), nullable=False),
    PrimaryKeyConstraint("user_id", "role", name="user_roles_pk"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id"), nullable=False),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("label", Text),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("revoked_us", BigInteger),
    Index("tokens_user", "user_id"),
)

agreement_versions = Table(
    "agreement_versions",
    metadata,
    Column("agreement_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("document", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("created_by", String(64), nullable=False),
    PrimaryKeyConstraint("agreement_id", "version", name="agreement_versions_pk"),
)

projects = Table(
    "projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("agreement_id", String(64), nullable=False),
    Column("schema_id", String(64), nullable=False),
    Column("schema_hash", String(64), nullable=False),
    Column("key_check_value", String(16), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

upload_sessions = Table(
    "upload_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("agency_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("chunk_size", BigInteger, nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
)

upload_chunks = Table(
    "upload_chunks",
    metadata,
    Column("session_id", String(64), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("received_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("session_id", "idx", name="upload_chunks_pk"),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("agency_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("upload_session_id", String(64), nullable=False, unique=True),
    Column("rows", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("columns", Text, nullable=False),
    Column("schema_hash", String(64), nullable=False),
    Column("key_check_value", String(16), nullable=False),
    Column("agreement_id", String(64), nullable=False),
    Column("agreement_version", Integer, nullable=False),
    Column("wrapped_key", LargeBinary),
    Column("created_us", BigInteger, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("erased_us", BigInteger),
    Column("erased_by", String(64)),
    UniqueConstraint("project_id", "agency_id", "version", name="dataset_versions_number"),
)

client_certificates = Table(
    "client_certificates",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("agency_id", String(64), ForeignKey("agencies.id"), nullable=False),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("subject", String(500), nullable=False),
    Column("not_after_us", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("revoked_us", BigInteger),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("project_id", String(64), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("stage", String(200), nullable=False),
    Column("progress", Float),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("worker", String(200)),
    Column("error", Text),
    Column("cancel_requested", Boolean, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("started_us", BigInteger),
    Column("heartbeat_us", BigInteger),
    Column("finished_us", BigInteger),
    Index("jobs_queue", "status", "created_us"),
)

linkage_runs = Table(
    "linkage_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("job_id", String(64), nullable=False, unique=True),
    Column("agreement_id", String(64), nullable=False),
    Column("agreement_version", Integer, nullable=False),
    Column("datasets", Text, nullable=False),
    Column("schema_hash", String(64), nullable=False),
    Column("settings", Text, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Index("linkage_runs_project", "project_id", "created_us"),
)

run_results = Table(
    "run_results",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer),
    Column("model_hash", String(64)),
    Column("threshold", Float),
    Column("links", BigInteger),
    Column("entities", BigInteger),
    Column("records", BigInteger),
    Column("diagnostics", Text),
    Column("links_key", LargeBinary),
    Column("entities_key", LargeBinary),
    Column("previous_run_id", String(64)),
    Column("error", Text),
    Column("finished_us", BigInteger, nullable=False),
)

extract_requests = Table(
    "extract_requests",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("project_id", String(64), nullable=False),
    Column("requester", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("spec", Text, nullable=False),
    Column("spec_hash", String(64), nullable=False),
    Column("justification", Text, nullable=False),
    Column("agreement_id", String(64), nullable=False),
    Column("agreement_version", Integer, nullable=False),
    Column("required", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("job_id", String(64)),
    Column("created_us", BigInteger, nullable=False),
    Column("decided_us", BigInteger),
    Index("extract_requests_project", "project_id", "created_us"),
)

extract_decisions = Table(
    "extract_decisions",
    metadata,
    Column("request_id", String(64), nullable=False),
    Column("approver", String(64), nullable=False),
    Column("capacity", String(80), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("reason", Text),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    PrimaryKeyConstraint(
        "request_id", "approver", "capacity", "created_us", name="extract_decisions_pk"
    ),
)

extract_outputs = Table(
    "extract_outputs",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("files", Text, nullable=False),
    Column("manifest", Text, nullable=False),
    Column("release_entry", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
)

ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("secret_hash", LargeBinary(32), nullable=False, unique=True),
    Column("user_id", String(64), ForeignKey("users.id"), nullable=False),
    Column("token_id", String(64), ForeignKey("tokens.id"), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("revoked_us", BigInteger),
    Index("ui_sessions_user", "user_id"),
)

log_verifications = Table(
    "log_verifications",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("verified_by", String(64), nullable=False),
    Column("verified_us", BigInteger, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("entries", BigInteger, nullable=False),
    Column("checkpoint_size", BigInteger),
    Column("problem", Text),
    Column("seconds", Float, nullable=False),
    Index("log_verifications_time", "verified_us"),
)
