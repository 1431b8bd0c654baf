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
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

__all__ = ["agencies", "metadata", "tokens", "user_roles", "users"]

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
