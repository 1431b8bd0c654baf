"""The hub's side of the audit log: appending entries and serving the log to auditors.

Two ways in, both through the same single writer (``audit.log.AuditLog``):

- ``append_in(conn, entries)`` inside the transaction of the action being recorded (a
  change to agencies, users, tokens, agreements, an upload's commit), so the action and
  its entry commit together or not at all; call ``committed`` after the commit;
- ``record(entry)`` for everything that changes nothing (reads, refusals, failed logins),
  batched by a ``BatchingWriter``: many concurrent requests share one transaction.

Either way a request's response is sent only after its entry is durable.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from audit import store as audit_store
from audit.entry import AuditEntry
from audit.log import AuditLog, PendingAppend, Receipt
from audit.writer import BatchingWriter
from hub.store.db import Store

__all__ = ["AuditTrail"]


class AuditTrail:
    """Appends to and reads from the audit log in the hub's database."""

    def __init__(self, store: Store, log: AuditLog) -> None:
        self.store = store
        self.log = log
        self._writer = BatchingWriter(async_append=self._append_batch, max_batch=500)

    def start(self) -> None:
        self._writer.start()

    async def close(self) -> None:
        await self._writer.close()

    async def _append_batch(self, drafts: Sequence[AuditEntry]) -> list[Receipt]:
        async with self.store.write() as conn:
            pending = await conn.run_sync(self.log.append_in, drafts)
        return self.log.committed(pending)

    async def record(self, entry: AuditEntry) -> Receipt:
        """Append ``entry`` on its own (batched with concurrent ones); returns once durable."""
        return await self._writer.submit(entry)

    async def append_in(
        self, conn: AsyncConnection, entries: Sequence[AuditEntry]
    ) -> PendingAppend:
        """Append ``entries`` in the caller's write transaction (see the module docstring)."""
        return await conn.run_sync(self.log.append_in, entries)

    def committed(self, pending: PendingAppend) -> list[Receipt]:
        return self.log.committed(pending)

    async def entries(
        self, where: audit_store.EntryFilter, limit: int
    ) -> list[audit_store.StoredEntry]:
        def query(conn: Connection) -> list[audit_store.StoredEntry]:
            return list(audit_store.iter_entries(conn, where, limit=limit))

        async with self.store.read() as conn:
            return await conn.run_sync(query)
