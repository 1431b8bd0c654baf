"""The web console: browser sessions and the record of server-side log verifications.

``ui_sessions`` holds one row per console sign-in. Only the SHA-256 of the session secret
(the cookie's value) is stored, so a copy of the database cannot be used to sign in; a
session ends at ``expires_us`` (never later than the API token it was opened with) or
when it is revoked (sign-out). ``log_verifications`` records who ran "Verify now" on the
auditor's page, when, and what the full verification found; it is append-only.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_SQLITE_GUARD = """
CREATE TRIGGER log_verifications_no_{verb} BEFORE {verb} ON log_verifications
BEGIN SELECT RAISE(ABORT, 'log_verifications rows are never changed: {verb} refused'); END
"""
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION hub_verifications_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%% rows are never changed: %% refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$
"""
_PG_TRIGGER = """
CREATE TRIGGER log_verifications_frozen BEFORE UPDATE OR DELETE ON log_verifications
  FOR EACH ROW EXECUTE FUNCTION hub_verifications_frozen()
"""


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("secret_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("token_id", sa.String(64), sa.ForeignKey("tokens.id"), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
        sa.Column("revoked_us", sa.BigInteger),
    )
    op.create_index("ui_sessions_user", "ui_sessions", ["user_id"])
    op.create_table(
        "log_verifications",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("verified_by", sa.String(64), nullable=False),
        sa.Column("verified_us", sa.BigInteger, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("entries", sa.BigInteger, nullable=False),
        sa.Column("checkpoint_size", sa.BigInteger),
        sa.Column("problem", sa.Text),
        sa.Column("seconds", sa.Float, nullable=False),
    )
    op.create_index("log_verifications_time", "log_verifications", ["verified_us"])
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            bind.exec_driver_sql(_SQLITE_GUARD.format(verb=verb))
    else:
        bind.exec_driver_sql(_PG_FUNCTION)
        bind.exec_driver_sql(_PG_TRIGGER)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS log_verifications_frozen ON log_verifications")
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS hub_verifications_frozen()")
    op.drop_table("log_verifications")
    op.drop_index("ui_sessions_user", table_name="ui_sessions")
    op.drop_table("ui_sessions")
