"""The hub's database: one async SQLAlchemy engine (aiosqlite or asyncpg) and migrations.

``Store.read()`` and ``Store.write()`` hand out connections inside a transaction. Writes
on SQLite begin with ``BEGIN IMMEDIATE`` (the database's write lock up front, so two
writers wait for each other instead of failing on a lock upgrade); on PostgreSQL they are
ordinary transactions. The audit log appends inside the same transaction as the action it
records (``hub.audit_trail``), so both commit or neither does.

``migrate`` applies the Alembic migrations in ``hub/migrations`` on a synchronous
connection (pysqlite or psycopg) and is what ``hub migrate`` and ``hub init`` run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from importlib.resources import files

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from audit.db import configure_sqlite, immediate_options, open_engine
from hub.errors import ConfigError, HubError, ServiceUnavailable, StorageFull

__all__ = [
    "Store",
    "async_url",
    "current_revision",
    "database_error",
    "head_revision",
    "migrate",
]

#: SQLSTATEs of a connection that went away: class 08 (connection exception) and the server
#: shutting down, crashing or not yet accepting connections (57P01 to 57P03).
_GONE = ("08", "57P01", "57P02", "57P03")


def database_error(exc: DBAPIError) -> HubError | None:
    """The hub error a database failure means (the database unreachable or restarting, or
    its disk full); None for anything else (a constraint or a trigger's refusal is the
    caller's to handle)."""
    state = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
    if state == "53100" or "database or disk is full" in str(exc.orig):
        return StorageFull()
    if (
        isinstance(exc, OperationalError | InterfaceError)
        or exc.connection_invalidated
        or state.startswith(_GONE)
    ):
        return ServiceUnavailable(f"the database is unavailable: {type(exc).__name__}")
    return None


@contextmanager
def _translated() -> Iterator[None]:
    """Raise the hub error a database failure in the block means (``database_error``)."""
    try:
        yield
    except DBAPIError as exc:
        mapped = database_error(exc)
        if mapped is None:
            raise
        raise mapped from exc
    except ConnectionError as exc:  # asyncpg's connect can fail with the bare OS error
        raise ServiceUnavailable(f"the database is unavailable: {type(exc).__name__}") from exc


def async_url(url: str) -> str:
    """The async-driver form of a ``sqlite:///`` or ``postgresql://`` URL."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ConfigError(f"unsupported database {backend!r}")


class Store:
    """The async engine and the two kinds of transaction the hub uses."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(async_url(url), pool_pre_ping=True)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            configure_sqlite(self.engine.sync_engine)

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a read transaction (rolled back at the end)."""
        with _translated():
            async with self.engine.connect() as conn, conn.begin():
                yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction, committed when the block ends normally."""
        with _translated():
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(**immediate_options())
                async with conn.begin():
                    yield conn


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(files("hub") / "migrations"))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    """The migration the database is at (None: never migrated)."""
    engine = open_engine(url, create=False)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def migrate(url: str, *, create: bool = False) -> tuple[str | None, str]:
    """Apply every pending migration; returns (revision before, revision after)."""
    engine = open_engine(url, create=create)
    try:
        with engine.connect() as conn:
            before = MigrationContext.configure(conn).get_current_revision()
        with engine.begin() as conn:
            cfg = _alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        return before, head_revision()
    except SQLAlchemyError as exc:
        raise ConfigError(f"migration failed: {exc}") from None
    finally:
        engine.dispose()
