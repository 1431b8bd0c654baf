"""Opening the hub's database for the audit log: SQLite (the embedded default) or
PostgreSQL (production), through one SQLAlchemy Core code path.

``open_engine`` takes what a user types: a file path (SQLite) or a database URL
(``sqlite:///...``, ``postgresql://...``). SQLite connections use WAL with
``synchronous=FULL`` so that a committed transaction survives power loss, and begin
their transactions explicitly, so that the log's writer can take the database's write
lock up front (``BEGIN IMMEDIATE``). PostgreSQL URLs use psycopg 3.

``write_lock`` is how the single writer serialises itself across processes: SQLite's
write lock (taken by ``BEGIN IMMEDIATE``) or a PostgreSQL transaction-scoped advisory
lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from audit.errors import StoreError

__all__ = [
    "WRITE_LOCK_ID",
    "configure_sqlite",
    "immediate_options",
    "normalise_url",
    "open_engine",
    "write_lock",
]

WRITE_LOCK_ID = 0x6175646974  # "audit": the PostgreSQL advisory lock the writer holds
_IMMEDIATE = "audit_immediate"
_BUSY_TIMEOUT_MS = 30_000


def normalise_url(target: str | Path) -> str:
    """A SQLAlchemy URL for a path or URL: paths become SQLite files, ``postgresql://``
    and ``postgres://`` use psycopg 3. Other back ends are refused."""
    raw = str(target)
    if "://" not in raw:
        return f"sqlite:///{Path(raw).expanduser().resolve()}"
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {exc}") from None
    backend = url.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    if backend == "sqlite":
        return url.render_as_string(hide_password=False)
    if backend == "postgresql":
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise StoreError(f"unsupported database {backend!r}: use SQLite or PostgreSQL")


def configure_sqlite(engine: Engine) -> None:
    """WAL, synchronous=FULL, a busy timeout and explicit BEGIN on every connection of a
    SQLite ``engine`` (also the sync side of an async engine)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def open_engine(target: str | Path, *, create: bool = False) -> Engine:
    """An engine for the database at ``target`` (path or URL).

    A SQLite file must exist unless ``create`` is true, so that a mistyped path is an
    error rather than a fresh empty log that verifies.
    """
    url = normalise_url(target)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise StoreError("an in-memory SQLite database cannot hold an audit log")
        if not create and not Path(database).is_file():
            raise StoreError(f"no database file at {database}")
        engine = create_engine(url)
        configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def write_lock(conn: Connection) -> None:
    """Take the log's write lock for the rest of ``conn``'s current transaction.

    On SQLite the transaction must have been begun with ``immediate(conn)``'s options
    (the lock is the database's own write lock); on PostgreSQL this takes an advisory
    lock that is released at commit or rollback.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_ID})


def immediate_options() -> dict[str, Any]:
    """Execution options that make a SQLite transaction take the write lock at BEGIN."""
    return {_IMMEDIATE: True}
