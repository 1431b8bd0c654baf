"""Data sharing agreements (append-only versions) and linkage projects.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_SQLITE_GUARD = """
CREATE TRIGGER agreement_versions_no_{verb} BEFORE {verb} ON agreement_versions
BEGIN SELECT RAISE(ABORT, 'agreement versions are never changed: {verb} refused'); END
"""
_PG_GUARD = (
    """
CREATE OR REPLACE FUNCTION agreement_versions_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'agreement versions are never changed: %% refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$
""",
    """
CREATE TRIGGER agreement_versions_frozen BEFORE UPDATE OR DELETE ON agreement_versions
  FOR EACH ROW EXECUTE FUNCTION agreement_versions_frozen()
""",
)


def upgrade() -> None:
    op.create_table(
        "agreement_versions",
        sa.Column("agreement_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("agreement_id", "version", name="agreement_versions_pk"),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("agreement_id", sa.String(64), nullable=False),
        sa.Column("schema_id", sa.String(64), nullable=False),
        sa.Column("schema_hash", sa.String(64), nullable=False),
        sa.Column("key_check_value", sa.String(16), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            bind.exec_driver_sql(_SQLITE_GUARD.format(verb=verb))
    else:
        for statement in _PG_GUARD:
            bind.exec_driver_sql(statement)


def downgrade() -> None:
    raise NotImplementedError("agreement versions are never removed")
