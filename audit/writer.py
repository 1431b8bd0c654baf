"""Group commit for the audit log: many concurrent requests, one writer, few transactions.

``BatchingWriter.submit(entry)`` is what an async request handler awaits. Entries wait in
a queue; one task takes everything queued (up to ``max_batch``), appends it with
``AuditLog.append`` on a dedicated thread (one database transaction, one signed
checkpoint) and only then resolves each caller's future with its ``Receipt``. While a
batch commits, new entries queue up for the next one, so under load the batch size
grows by itself and the cost of each fsync and signature is shared.

If a batch fails, every entry in it fails with the same error and none is acknowledged;
the writer goes on with the next batch. ``close`` drains what is queued, then stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from audit.entry import AuditEntry
from audit.errors import AuditError
from audit.log import Receipt

__all__ = ["BatchingWriter"]

AppendFn = Callable[[Sequence[AuditEntry]], list[Receipt]]
AsyncAppendFn = Callable[[Sequence[AuditEntry]], Awaitable[list[Receipt]]]
_Item = tuple[AuditEntry, "asyncio.Future[Receipt]"]


class BatchingWriter:
    """Batches ``submit``ted entries into calls of ``append`` (normally ``AuditLog.append``)."""

    def __init__(
        self,
        append: AppendFn | None = None,
        *,
        async_append: AsyncAppendFn | None = None,
        max_batch: int = 1000,
    ) -> None:
        """Give ``append`` (blocking; run on the writer's own thread) or ``async_append``
        (a coroutine function, awaited on the event loop: the hub's async database)."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if (append is None) == (async_append is None):
            raise ValueError("give exactly one of append and async_append")
        self._append = append
        self._async_append = async_append
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-writer")
        self._closing = False
        self.batches = 0
        self.entries = 0

    async def __aenter__(self) -> BatchingWriter:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-writer")

    async def submit(self, entry: AuditEntry) -> Receipt:
        """Append ``entry``; returns once it is durable and covered by a signed checkpoint."""
        if self._closing or self._task is None:
            raise AuditError("the audit writer is not running")
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        await self._queue.put((entry, future))
        return await future

    async def close(self) -> None:
        """Finish every queued entry, then stop the writer task and its thread."""
        if self._task is None:
            return
        self._closing = True
        await self._queue.put(None)
        await self._task
        self._task = None
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch: list[_Item] = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            drafts = [entry for entry, _ in batch]
            try:
                if self._async_append is not None:
                    receipts = await self._async_append(drafts)
                else:
                    assert self._append is not None
                    receipts = await loop.run_in_executor(self._executor, self._append, drafts)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            self.entries += len(batch)
            for (_, future), receipt in zip(batch, receipts, strict=True):
                if not future.done():
                    future.set_result(receipt)
