"""The audit log's tables in the hub's database, and the queries over them.

Four tables, all append-only (the database itself refuses UPDATE and DELETE, and on
PostgreSQL TRUNCATE, with triggers installed by ``create_schema``):

- ``audit_entries``: one row per entry: ``seq`` (the leaf index), the canonical bytes
  (``body``, the Merkle leaf data) and copies of the fields auditors filter on (time in
  microseconds since the epoch, actor, agency, action, DSA id, outcome). The copies are
  conveniences: ``audit verify`` checks that each agrees with ``body``.
- ``audit_nodes``: every completed tree node ``(level, idx, hash)``; level 0 holds the
  leaf hashes. Proofs are built from these in O(log n) lookups.
- ``audit_checkpoints``: each signed checkpoint (a C2SP signed note), by tree size.
- ``audit_cosignatures``: witnesses' cosignature lines, by checkpoint size and witness.

Everything here takes a SQLAlchemy ``Connection`` so that the same functions serve the
synchronous command line and, through ``run_sync``, the asynchronous hub.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from audit.errors import StoreError
from audit.frontier import Node

__all__ = [
    "APPEND_ONLY_TABLES",
    "EntryFilter",
    "StoredCheckpoint",
    "StoredCosignature",
    "StoredEntry",
    "check_schema",
    "checkpoint_at",
    "checkpoints",
    "cosignatures",
    "create_schema",
    "entries",
    "entry_count",
    "has_schema",
    "insert_checkpoint",
    "insert_cosignature",
    "insert_entries",
    "insert_nodes",
    "iter_checkpoints",
    "iter_cosignatures",
    "iter_entries",
    "latest_checkpoint",
    "metadata",
    "node_hashes",
    "time_to_us",
]

metadata = MetaData()

entries = Table(
    "audit_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("time_us", BigInteger, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("agency", String(200)),
    Column("action", String(40), nullable=False),
    Column("dsa_id", String(200)),
    Column("outcome", String(16), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Index("audit_entries_time", "time_us"),
    Index("audit_entries_actor", "actor"),
    Index("audit_entries_agency", "agency"),
    Index("audit_entries_action", "action"),
    Index("audit_entries_dsa", "dsa_id"),
)

nodes = Table(
    "audit_nodes",
    metadata,
    Column("level", SmallInteger, nullable=False),
    Column("idx", BigInteger, nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    PrimaryKeyConstraint("level", "idx", name="audit_nodes_pk"),
)

checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("note", Text, nullable=False),
    Column("signed_us", BigInteger, nullable=False),
)

cosignatures = Table(
    "audit_cosignatures",
    metadata,
    Column("size", BigInteger, nullable=False),
    Column("witness", String(200), nullable=False),
    Column("key_id", LargeBinary(4), nullable=False),
    Column("line", Text, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("received_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("size", "witness", "key_id", name="audit_cosignatures_pk"),
)

APPEND_ONLY_TABLES = tuple(t.name for t in (entries, nodes, checkpoints, cosignatures))

_SQLITE_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS {table}_no_{verb} BEFORE {verb} ON {table}
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: {verb} on {table} refused'); END
"""

# "%%" because psycopg reads "%" as a placeholder even without parameters.
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit log is append-only: %% on %% refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$
"""

_PG_TRIGGERS = """
CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()
"""


def create_schema(conn: Connection) -> None:
    """Create the log's tables and their append-only triggers (idempotent)."""
    metadata.create_all(conn)
    dialect = conn.dialect.name
    if dialect == "sqlite":
        for table in APPEND_ONLY_TABLES:
            for verb in ("UPDATE", "DELETE"):
                conn.exec_driver_sql(_SQLITE_TRIGGER.format(table=table, verb=verb))
    elif dialect == "postgresql":
        conn.exec_driver_sql(_PG_FUNCTION)
        for table in APPEND_ONLY_TABLES:
            for statement in _PG_TRIGGERS.format(table=table).split(";"):
                conn.exec_driver_sql(statement)
    else:  # pragma: no cover - db.normalise_url refuses other back ends
        raise StoreError(f"unsupported database {dialect!r}")


def has_schema(conn: Connection) -> bool:
    """Whether the database holds the log's tables."""
    from sqlalchemy import inspect

    names = set(inspect(conn).get_table_names())
    return all(t in names for t in APPEND_ONLY_TABLES)


def time_to_us(t: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (exact, no float)."""
    delta = t.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One row of ``audit_entries``."""

    seq: int
    time_us: int
    actor: str
    agency: str | None
    action: str
    dsa_id: str | None
    outcome: str
    body: bytes


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    note: str
    signed_us: int


@dataclass(frozen=True, slots=True)
class StoredCosignature:
    size: int
    witness: str
    key_id: bytes
    line: str
    timestamp: int
    received_us: int


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """What ``audit show`` filters on; ``None`` means any. Times are inclusive-exclusive
    ``[since, until)`` in microseconds since the epoch; ``seq`` bounds likewise."""

    since_us: int | None = None
    until_us: int | None = None
    actor: str | None = None
    agency: str | None = None
    action: str | None = None
    dsa_id: str | None = None
    outcome: str | None = None
    min_seq: int | None = None
    max_seq: int | None = None

    def clauses(self) -> list[object]:
        c = entries.c
        out: list[object] = []
        if self.since_us is not None:
            out.append(c.time_us >= self.since_us)
        if self.until_us is not None:
            out.append(c.time_us < self.until_us)
        for name in ("actor", "agency", "action", "dsa_id", "outcome"):
            value = getattr(self, name)
            if value is not None:
                out.append(c[name] == value)
        if self.min_seq is not None:
            out.append(c.seq >= self.min_seq)
        if self.max_seq is not None:
            out.append(c.seq < self.max_seq)
        return out


def entry_count(conn: Connection) -> int:
    """The number of stored entries (the next sequence number, if there are no gaps)."""
    value = conn.execute(select(func.coalesce(func.max(entries.c.seq) + 1, 0))).scalar_one()
    return int(value)


def _insert_sql(conn: Connection, table: Table) -> str:
    """A plain INSERT for the driver itself: the writer's hot path skips SQLAlchemy's
    per-row parameter processing (about a third of an append's cost)."""
    n = len(table.columns)
    style = conn.dialect.paramstyle
    if style == "qmark":
        marks = ["?"] * n
    elif style in ("format", "pyformat"):
        marks = ["%s"] * n
    elif style == "numeric_dollar":  # asyncpg
        marks = [f"${i}" for i in range(1, n + 1)]
    elif style == "numeric":
        marks = [f":{i}" for i in range(1, n + 1)]
    else:  # pragma: no cover - no driver we support
        raise StoreError(f"unsupported parameter style {style!r}")
    names = ", ".join(c.name for c in table.columns)
    return f"INSERT INTO {table.name} ({names}) VALUES ({', '.join(marks)})"


def insert_entries(conn: Connection, rows: Sequence[StoredEntry]) -> None:
    if rows:
        conn.exec_driver_sql(
            _insert_sql(conn, entries),
            [
                (r.seq, r.time_us, r.actor, r.agency, r.action, r.dsa_id, r.outcome, r.body)
                for r in rows
            ],
        )


def insert_nodes(conn: Connection, made: Sequence[Node]) -> None:
    if made:
        conn.exec_driver_sql(_insert_sql(conn, nodes), list(made))


def insert_checkpoint(conn: Connection, size: int, note: str, signed_us: int) -> None:
    conn.execute(insert(checkpoints).values(size=size, note=note, signed_us=signed_us))


def insert_cosignature(conn: Connection, cosig: StoredCosignature) -> None:
    conn.execute(
        insert(cosignatures).values(
            size=cosig.size,
            witness=cosig.witness,
            key_id=cosig.key_id,
            line=cosig.line,
            timestamp=cosig.timestamp,
            received_us=cosig.received_us,
        )
    )


def node_hashes(
    conn: Connection, coords: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    """The stored hashes of the nodes at ``coords`` (missing nodes are absent)."""
    wanted = sorted(set(coords))
    found: dict[tuple[int, int], bytes] = {}
    for start in range(0, len(wanted), 200):
        chunk = wanted[start : start + 200]
        cond = or_(*(and_(nodes.c.level == lv, nodes.c.idx == ix) for lv, ix in chunk))
        for level, idx, value in conn.execute(
            select(nodes.c.level, nodes.c.idx, nodes.c.hash).where(cond)
        ):
            found[(int(level), int(idx))] = bytes(value)
    return found


def _entry(row: Sequence[object]) -> StoredEntry:
    seq, time_us, actor, agency, action, dsa_id, outcome, body = row
    return StoredEntry(
        int(seq),  # type: ignore[call-overload]
        int(time_us),  # type: ignore[call-overload]
        str(actor),
        None if agency is None else str(agency),
        str(action),
        None if dsa_id is None else str(dsa_id),
        str(outcome),
        bytes(body),  # type: ignore[call-overload]
    )


def iter_entries(
    conn: Connection,
    where: EntryFilter | None = None,
    *,
    limit: int | None = None,
    descending: bool = False,
    batch: int = 10_000,
) -> Iterator[StoredEntry]:
    """Entries matching ``where``, in sequence order (or reversed), streamed."""
    query = select(entries).order_by(entries.c.seq.desc() if descending else entries.c.seq)
    if where is not None:
        for clause in where.clauses():
            query = query.where(clause)  # type: ignore[arg-type]
    if limit is not None:
        query = query.limit(limit)
    result = conn.execution_options(yield_per=batch).execute(query)
    for row in result:
        yield _entry(tuple(row))


def iter_checkpoints(conn: Connection) -> Iterator[StoredCheckpoint]:
    for size, note, signed_us in conn.execute(select(checkpoints).order_by(checkpoints.c.size)):
        yield StoredCheckpoint(int(size), str(note), int(signed_us))


def latest_checkpoint(conn: Connection) -> StoredCheckpoint | None:
    row = conn.execute(select(checkpoints).order_by(checkpoints.c.size.desc()).limit(1)).first()
    return None if row is None else StoredCheckpoint(int(row[0]), str(row[1]), int(row[2]))


def checkpoint_at(conn: Connection, size: int) -> StoredCheckpoint | None:
    row = conn.execute(select(checkpoints).where(checkpoints.c.size == size)).first()
    return None if row is None else StoredCheckpoint(int(row[0]), str(row[1]), int(row[2]))


def iter_cosignatures(conn: Connection, size: int | None = None) -> Iterator[StoredCosignature]:
    query = select(cosignatures).order_by(cosignatures.c.size, cosignatures.c.witness)
    if size is not None:
        query = query.where(cosignatures.c.size == size)
    for row in conn.execute(query):
        yield StoredCosignature(
            int(row[0]), str(row[1]), bytes(row[2]), str(row[3]), int(row[4]), int(row[5])
        )


def check_schema(conn: Connection) -> None:
    """Raise ``StoreError`` unless the database holds the log's tables."""
    try:
        ok = has_schema(conn)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {exc}") from None
    if not ok:
        raise StoreError("the database holds no audit log (run `audit init` or `hub init`)")
